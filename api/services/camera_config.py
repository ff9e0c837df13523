"""Camera configurations: every version of each camera's set-up, who saved it and when.

The API is the source of truth for where and what a camera counts (lines, zones,
calibration, interval, classes). Each save is a new version that never changes afterwards;
workers pull the newest, and the older ones stay so that reports counted with them are still
checked against the set-up they were counted with. Versions are numbered per camera from 1,
and version 1 is what the camera was registered with (its site file's set-up, or the
registry's names when it was registered without one): a report that names no version the API
gave (a worker counting with its site file) is checked against it. A site file's
`config_version` is the file's revision, never one of these numbers. Saving also updates the
registry (interval, lines, zones, config version) and records an audit event. Nothing here
commits: the request or the command does, so the version, the registry and the audit event
land together.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from api.models import Camera, CameraConfig, CountLine, DeviceHealth
from api.responses import CalibrationFit, CameraConfigOut, ConfigVersionOut
from api.schemas import CalibrationFitIn, CameraIn
from api.services import registry
from api.services.audit import CLI, CLI_ACTOR, Origin
from api.services.errors import AlreadyExistsError, NotFoundError, RejectedError
from api.services.scope import Audience
from contract import ConfigPull
from contract.camera import SETUP_FIELDS, Calibration, CameraSetup
from contract.report import GEOMETRIC_DIRECTIONS, MAX_CONFIG_VERSION
from contract.site import Camera as SiteCamera

NAMED_FIELDS = ("lines", "zones")
"""Set-up fields that are lists of named items: the audit summary names the items changed."""
REGISTERED_NOTE = (
    "as registered: line and zone names, direction labels, lanes and interval; the registry"
    " held no geometry, so the lines and zones drawn here are placeholders"
)
"""The note of a version 1 made from a registry entry (kept only to check reports)."""


class StaleVersionError(AlreadyExistsError):
    """Another version was saved since the editor loaded theirs: saving would silently undo
    it (409)."""


def setup_json(setup: CameraSetup) -> dict[str, Any]:
    """The stored form: set-up fields only. A site file's camera is a set-up too, but it also
    holds the stream URL, which may carry credentials and never leaves the device."""
    return setup.model_dump(mode="json", include=set(SETUP_FIELDS))


def setup_of(record: CameraConfig) -> CameraSetup:
    return CameraSetup.model_validate(record.setup)


def latest_config(session: Session, camera_id: str) -> CameraConfig | None:
    """The newest stored version of the camera's set-up (None: it has none)."""
    statement = (
        select(CameraConfig)
        .where(CameraConfig.camera_id == camera_id)
        .order_by(CameraConfig.version.desc())
        .limit(1)
    )
    return session.scalars(statement).first()


def require_config(session: Session, camera_id: str, version: int | None = None) -> CameraConfig:
    """One stored version (default the newest), or a NotFoundError that says which."""
    if version is None:
        record = latest_config(session, camera_id)
    else:
        record = session.get(CameraConfig, (camera_id, version))
    if record is None:
        which = "no configuration" if version is None else f"no configuration version {version}"
        raise NotFoundError(f"camera {camera_id!r} has {which} stored")
    return record


def cameras_report_setups(
    session: Session, versions: Mapping[str, Collection[int]]
) -> dict[str, tuple[dict[int, CameraSetup], tuple[int, CameraSetup] | None]]:
    """For each camera (by id), the stored set-ups among its `versions`, by version, and its
    registration (the oldest stored version, None when none is stored), all in one query:
    ingest checks each report against its version, and one with none or an unknown one
    against the registration."""
    oldest = aliased(CameraConfig)
    first = (
        select(func.min(oldest.version))
        .where(oldest.camera_id == CameraConfig.camera_id)
        .scalar_subquery()
    )
    wanted = sorted({v for numbers in versions.values() for v in numbers})
    statement = select(CameraConfig).where(
        CameraConfig.camera_id.in_(sorted(versions)),
        CameraConfig.version.in_(wanted) | (CameraConfig.version == first),
    )
    records: dict[str, list[CameraConfig]] = {camera_id: [] for camera_id in versions}
    for record in session.scalars(statement):
        records[record.camera_id].append(record)
    found = {}
    for camera_id, stored in records.items():
        asked = versions[camera_id]
        oldest_record = min(stored, key=lambda r: r.version, default=None)
        registration = (
            (oldest_record.version, setup_of(oldest_record)) if oldest_record is not None else None
        )
        setups = {r.version: setup_of(r) for r in stored if r.version in asked}
        found[camera_id] = (setups, registration)
    return found


def current_version(session: Session, camera: Camera) -> int:
    """The version a worker should count with: the newest stored, 0 when none is (the worker
    counts with its site file; the registry's `config_version` is that file's revision, not a
    version the API could hand out)."""
    newest = session.scalar(
        select(func.max(CameraConfig.version)).where(CameraConfig.camera_id == camera.id)
    )
    return 0 if newest is None else int(newest)


def registered_setup(camera: Camera) -> CameraSetup | None:
    """A registry entry as a set-up: its names, direction labels, lanes, lengths and
    interval, on placeholder geometry in relative coordinates (a line across the frame for
    each, on the axis its renamed directions name; a small box per zone). None when the
    entry is no valid set-up."""
    lines = [placeholder_line(line, i, len(camera.lines)) for i, line in enumerate(camera.lines)]
    zones = []
    for i, zone in enumerate(camera.zones):
        left, width = 0.05 + 0.9 * i / len(camera.zones), 0.7 / len(camera.zones)
        box = [[left, 0.85], [left + width, 0.85], [left + width, 0.95], [left, 0.95]]
        zones.append(
            {"name": zone.name, "polygon": box, "lanes": zone.lanes, "length_m": zone.length_m}
        )
    try:
        return CameraSetup.model_validate(
            {"lines": lines, "zones": zones, "interval_seconds": camera.interval_seconds}
        )
    except ValidationError:
        return None


def placeholder_line(line: CountLine, index: int, count: int) -> dict[str, Any]:
    """Line `index` of `count` across the frame, keeping the registry's direction labels."""
    labels = line.directions
    renamed = {g: labels[g] for g in GEOMETRIC_DIRECTIONS if labels.get(g, g) != g}
    at = (index + 1) / (count + 1)
    across = any(g in renamed for g in ("left", "right")) and not any(
        g in renamed for g in ("down", "up")
    )
    points = [[at, 0.05], [at, 0.95]] if across else [[0.05, at], [0.95, at]]
    return {"name": line.name, "points": points, "direction_names": renamed}


def save_config(
    session: Session,
    camera_id: str,
    setup: CameraSetup,
    *,
    note: str = "",
    base_version: int | None = None,
    origin: Origin = CLI,
) -> CameraConfig:
    """Store `setup` as the camera's next version and count with it from now on. A camera's
    first save stores its registry entry as version 1 first, so the reports its worker
    counted before the switch are still checked against what was registered.

    `base_version`, the version the editor started from, must still be the newest (else
    StaleVersionError); None saves regardless (the command line).
    """
    camera = registry.require_manageable_camera(session, origin, camera_id)
    latest = latest_config(session, camera.id)
    newest = latest.version if latest is not None else None
    if base_version is not None and base_version != newest:
        raise StaleVersionError(
            f"camera {camera.id!r} is at configuration version {newest} now, not {base_version}:"
            " someone saved since you loaded it; reload it and make your change again"
        )
    registered = registered_setup(camera) if latest is None else None
    if registered is not None:
        newest = store_version(
            session, camera.id, registered, 1, REGISTERED_NOTE, origin, None
        ).version
    version = (newest or 0) + 1
    record = store_version(session, camera.id, setup, version, note, origin, latest)
    spec = registry.camera_from_setup(camera.id, camera.site_id, setup, version, camera.name)
    registry.apply_registration(session, camera, spec)
    return record


class VersionedSetupError(AlreadyExistsError):
    """The camera's set-up is versioned: a plain registry edit would bypass the history."""


def refuse_unversioned_change(session: Session, spec: CameraIn) -> None:
    """Once a camera has configuration versions, its interval, lines and zones change only
    through a new version (``PUT /api/v1/cameras/{id}/config``), which the worker pulls; a
    registry edit would change what ingest accepts but not what the camera counts."""
    latest = latest_config(session, spec.id)
    if latest is None:
        return
    versioned = registry.camera_from_setup(
        spec.id, spec.site_id, setup_of(latest), latest.version, spec.name
    )
    if spec != versioned:
        raise VersionedSetupError(
            f"camera {spec.id!r} has configuration versions (latest {latest.version}): change "
            f"its interval, lines or zones with PUT /api/v1/cameras/{spec.id}/config (or "
            "`python -m api camera-config set`); this endpoint changes its name and site only"
        )


def register_from_site_file(
    session: Session,
    configured: SiteCamera,
    site_id: str,
    *,
    replace: bool = False,
    note: str = "",
    origin: Origin = CLI,
) -> CameraConfig:
    """Register a site file's camera and store its set-up as a version, so the API is the
    source of truth from registration on.

    The version is the camera's next one (1 for a new camera), whatever the file's
    revision; registering the newest stored set-up again adds no version.
    """
    setup = configured.setup()
    latest = latest_config(session, configured.id)
    kept = latest if latest is not None and latest.setup == setup_json(setup) else None
    newest = latest.version if latest is not None else 0
    version = newest if kept is not None else newest + 1
    spec = registry.camera_from_setup(configured.id, site_id, setup, version)
    registry.register_camera(session, spec, replace=replace, origin=origin)
    return kept or store_version(session, configured.id, setup, version, note, origin, latest)


def store_version(
    session: Session,
    camera_id: str,
    setup: CameraSetup,
    version: int,
    note: str,
    origin: Origin,
    previous: CameraConfig | None,
) -> CameraConfig:
    """Insert the version and its audit event. A concurrent save of the same version number
    fails on the insert, the first write here, and is a StaleVersionError like a stale base."""
    if version > MAX_CONFIG_VERSION:
        raise RejectedError(f"configuration versions end at {MAX_CONFIG_VERSION}")
    actor = origin.principal.actor if origin.principal is not None else CLI_ACTOR
    record = CameraConfig(
        camera_id=camera_id,
        version=version,
        setup=setup_json(setup),
        created_at=datetime.now(UTC),
        created_by=actor,
        note=note,
    )
    session.add(record)
    try:
        session.flush()
    except IntegrityError as exc:
        raise StaleVersionError(
            f"configuration version {version} of camera {camera_id!r} was saved by someone else"
            " at the same moment; reload it and make your change again"
        ) from exc
    before = setup_of(previous) if previous is not None else None
    details = {"version": version, "note": note, "changed": change_summary(before, setup)}
    origin.record(session, "camera.config", camera_id, details)
    return record


def change_summary(old: CameraSetup | None, new: CameraSetup) -> dict[str, Any]:
    """What a version changes, for the audit log: the lines and zones added, removed or
    changed (by name), whether the calibration did, and the old and new value of the rest."""
    before = setup_json(old) if old is not None else {}
    after = setup_json(new)
    summary: dict[str, Any] = {}
    for field in SETUP_FIELDS:
        was, now = before.get(field), after[field]
        if was == now:
            continue
        if field in NAMED_FIELDS:
            summary[field] = named_changes(was or [], now)
        elif field == "calibration":
            summary[field] = "added" if was is None else "removed" if now is None else "changed"
        else:
            summary[field] = {"from": was, "to": now}
    return summary


def named_changes(
    old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]
) -> dict[str, list[str]]:
    """Names of the items added, removed and changed (only the kinds that occur)."""
    was = {item["name"]: item for item in old}
    now = {item["name"]: item for item in new}
    kinds = {
        "added": [name for name in now if name not in was],
        "removed": [name for name in was if name not in now],
        "changed": [name for name in now if name in was and was[name] != now[name]],
    }
    return {kind: names for kind, names in kinds.items() if names}


def config_view(
    session: Session, audience: Audience, camera_id: str, version: int | None = None
) -> CameraConfigOut:
    """A stored version (default the newest) with what the worker last said about it."""
    camera = registry.require_visible_camera(session, audience, camera_id)
    record = require_config(session, camera.id, version)
    health = session.get(DeviceHealth, camera.id)
    pull = health.config_pull if health is not None else None
    return CameraConfigOut(
        camera_id=camera.id,
        version=record.version,
        setup=setup_of(record),
        created_at=record.created_at,
        created_by=record.created_by,
        note=record.note,
        reported_version=camera.reported_config_version,
        config_pull=ConfigPull.model_validate(pull) if pull is not None else None,
    )


def version_history(session: Session, audience: Audience, camera_id: str) -> list[ConfigVersionOut]:
    """Every stored version of the camera's set-up, newest first."""
    camera = registry.require_visible_camera(session, audience, camera_id)
    statement = (
        select(CameraConfig)
        .where(CameraConfig.camera_id == camera.id)
        .order_by(CameraConfig.version.desc())
    )
    return [
        ConfigVersionOut(
            version=r.version, created_at=r.created_at, created_by=r.created_by, note=r.note
        )
        for r in session.scalars(statement)
    ]


def fit_calibration(
    session: Session, origin: Origin, camera_id: str, spec: CalibrationFitIn
) -> CalibrationFit:
    """Fit the image-to-ground homography of the points and say how well they agree; stores
    nothing (the editor saves the calibration with the set-up)."""
    registry.require_manageable_camera(session, origin, camera_id)
    try:
        calibration = Calibration(
            image_points=spec.image_points, ground_points_m=spec.ground_points()
        )
    except ValidationError as exc:
        raise RejectedError("; ".join(problem_text(e) for e in exc.errors())) from exc
    return CalibrationFit(
        calibration=calibration, reprojection_error_m=calibration.reprojection_error_m()
    )


def problem_text(error: Any) -> str:
    """A validation problem as the rule worded it (pydantic prefixes "Value error, ")."""
    cause = error.get("ctx", {}).get("error")
    return str(cause) if cause is not None else str(error["msg"])
