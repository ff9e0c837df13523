"""Sites and cameras: the registry that ingest validates reports against."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from api.models import Camera, CountLine, Site, Zone
from api.schemas import CameraIn, LineIn, SiteIn, ZoneIn
from api.services.errors import AlreadyExistsError, NotFoundError
from detector.config import Camera as ConfiguredCamera


def create_site(session: Session, spec: SiteIn) -> Site:
    """Register a site; its id must be new."""
    if session.get(Site, spec.id) is not None:
        raise AlreadyExistsError(f"site {spec.id!r} already exists")
    site = Site(**spec.model_dump(), created_at=datetime.now(UTC))
    session.add(site)
    session.flush()
    return site


def register_camera(session: Session, spec: CameraIn, *, replace: bool = False) -> Camera:
    """Register a camera, or with `replace` update an existing one's lines and zones.

    Stored counts keep their line and direction labels, so replacing lines never loses data.
    """
    if session.get(Site, spec.site_id) is None:
        raise NotFoundError(f"site {spec.site_id!r} does not exist")
    camera = session.get(Camera, spec.id)
    if camera is not None and not replace:
        raise AlreadyExistsError(f"camera {spec.id!r} already exists (use replace to update it)")
    if camera is None:
        camera = Camera(id=spec.id, created_at=datetime.now(UTC))
        session.add(camera)
    camera.site_id = spec.site_id
    camera.name = spec.name or spec.id
    camera.interval_seconds = spec.interval_seconds
    camera.config_version = spec.config_version
    camera.lines, camera.zones = [], []
    session.flush()  # drop the old rows first: names are unique per camera
    camera.lines = [CountLine(name=x.name, directions=x.directions()) for x in spec.lines]
    camera.zones = [Zone(name=z.name, lanes=z.lanes, length_m=z.length_m) for z in spec.zones]
    session.flush()
    return camera


def camera_from_config(configured: ConfiguredCamera, site_id: str, config_version: int) -> CameraIn:
    """The registry's view of a camera in a worker's site config (its stream URL stays there)."""
    return CameraIn(
        id=configured.id,
        site_id=site_id,
        interval_seconds=configured.interval_seconds,
        config_version=config_version,
        lines=[
            LineIn(name=x.name, direction_names=dict(x.direction_names)) for x in configured.lines
        ],
        zones=[ZoneIn(name=z.name, lanes=z.lanes, length_m=z.length_m) for z in configured.zones],
    )


def require_camera(session: Session, camera_id: str) -> Camera:
    """The camera with this id, or a NotFoundError that names it."""
    camera = session.get(Camera, camera_id)
    if camera is None:
        raise NotFoundError(f"camera {camera_id!r} does not exist")
    return camera
