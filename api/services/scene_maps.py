"""Scene maps: stored as workers send them, asked for by editors, served back for set-up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.commissioning_schemas import SceneMapOut
from api.models import Camera, SceneMapRecord
from api.services.audit import Origin
from api.services.errors import NotFoundError, RejectedError
from contract.scene import SCENE_K_DEFAULT, SceneMap

KEEP_PER_CAMERA = 20
"""Older maps only show how a view changed; twenty is plenty for that."""
MIN_K = SCENE_K_DEFAULT
"""The fewest distinct vehicles per shown cell (and per shown class count) the API stores,
whatever a worker's settings say: two vehicles in a cell would tell each other's path."""


def store_scene_map(
    session: Session, camera: Camera, scene_map: SceneMap, now: datetime
) -> SceneMapRecord:
    """Keep a worker's map (the newest `KEEP_PER_CAMERA` per camera) and settle a pending
    request: the worker learns a map only when asked, so one that arrives after the request
    answers it (by the API's clock: the worker's may be off)."""
    if scene_map.camera_id != camera.id:
        raise RejectedError(
            f"the scene map is for camera {scene_map.camera_id!r}; this token belongs to"
            f" {camera.id!r}"
        )
    if scene_map.k < MIN_K:
        raise RejectedError(
            f"the scene map shows cells seen by {scene_map.k} vehicles; the API stores maps"
            f" with k of at least {MIN_K} (set scene.k to {MIN_K} or more)"
        )
    record = SceneMapRecord(
        camera_id=camera.id,
        window_start=scene_map.window_start,
        window_end=scene_map.window_end,
        received_at=now,
        payload=scene_map.model_dump(mode="json"),
    )
    session.add(record)
    session.flush()
    newest = (
        select(SceneMapRecord.id)
        .where(SceneMapRecord.camera_id == camera.id)
        .order_by(SceneMapRecord.id.desc())
        .limit(KEEP_PER_CAMERA)
    )
    session.execute(
        delete(SceneMapRecord).where(
            SceneMapRecord.camera_id == camera.id, SceneMapRecord.id.not_in(newest)
        )
    )
    requested = camera.scene_map_requested_at
    if requested is not None and now >= requested:
        camera.scene_map_requested_at = None
    return record


def request_scene_map(session: Session, camera: Camera, origin: Origin, now: datetime) -> datetime:
    """Ask the camera's worker for a fresh map; a request already pending keeps its time, so a
    map being learnt for it still settles it."""
    if camera.scene_map_requested_at is None:
        camera.scene_map_requested_at = now
    requested = camera.scene_map_requested_at
    origin.record(
        session, "camera.scene_map_request", camera.id, {"requested_at": requested.isoformat()}
    )
    return requested


def latest_scene_map(session: Session, camera: Camera) -> SceneMapOut:
    """The newest stored map, or a NotFoundError that says whether one is on its way."""
    record = session.scalars(
        select(SceneMapRecord)
        .where(SceneMapRecord.camera_id == camera.id)
        .order_by(SceneMapRecord.id.desc())
        .limit(1)
    ).first()
    requested = camera.scene_map_requested_at
    if record is None:
        pending = (
            f"one was requested at {requested.isoformat()} and arrives once the worker has"
            " learnt it"
            if requested is not None
            else "none has been requested (POST .../scene-map/request)"
        )
        raise NotFoundError(f"camera {camera.id!r} has no scene map yet: {pending}")
    return SceneMapOut(
        received_at=record.received_at,
        requested_at=requested,
        scene_map=SceneMap.model_validate(record.payload),
    )
