"""Sites and cameras: the registry that ingest validates reports against."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from api.models import (
    Camera,
    CameraRollup,
    CountLine,
    CountRecord,
    LineRollup,
    MovementCoverageRollup,
    MovementRecord,
    MovementRollup,
    Site,
    UnmatchedRecord,
    UnmatchedRollup,
    User,
    UserSite,
    Zone,
    ZoneRecord,
)
from api.schemas import CameraIn, LineIn, SiteIn, SiteUpdate, ZoneIn
from api.services.audit import CLI, Origin
from api.services.errors import AlreadyExistsError, ForbiddenError, NotFoundError
from api.services.scope import EVERYONE_PRIVATE, Audience
from contract.camera import CameraSetup


class SiteInUseError(AlreadyExistsError):
    """Deleting the site would leave accounts restricted to no site, which reads as every site."""


def require_manageable(origin: Origin, site_id: str) -> None:
    """Editors restricted to some sites change only those (checked before any lookup, so the
    answer says nothing about whether another site exists)."""
    if origin.principal is not None and not origin.principal.may_manage_site(site_id):
        raise ForbiddenError(f"your account may not manage site {site_id!r}")


def create_site(session: Session, spec: SiteIn, origin: Origin = CLI) -> Site:
    """Register a site; its id must be new."""
    require_manageable(origin, spec.id)
    if session.get(Site, spec.id) is not None:
        raise AlreadyExistsError(f"site {spec.id!r} already exists")
    site = Site(**spec.model_dump(), created_at=datetime.now(UTC))
    session.add(site)
    session.flush()
    origin.record(session, "site.create", spec.id, spec.model_dump(exclude={"id"}))
    return site


def require_site(session: Session, site_id: str) -> Site:
    """The site with this id, or a NotFoundError that names it."""
    site = session.get(Site, site_id)
    if site is None:
        raise NotFoundError(f"site {site_id!r} does not exist")
    return site


def update_site(session: Session, site_id: str, spec: SiteUpdate, origin: Origin = CLI) -> Site:
    """Replace a site's editable fields; the event lists the fields that changed."""
    require_manageable(origin, site_id)
    site = require_site(session, site_id)
    changed = {k: v for k, v in spec.model_dump().items() if getattr(site, k) != v}
    for name, value in changed.items():
        setattr(site, name, value)
    session.flush()
    origin.record(session, "site.update", site_id, {"changed": changed})
    return site


def delete_site(session: Session, site_id: str, origin: Origin = CLI) -> list[str]:
    """Delete a site with its cameras and everything they reported; returns the camera ids.

    Reports, device health and tokens go with each camera (foreign keys cascade); a report's
    rows and the rollups have no foreign key (ingest writes them without a lookup), so they
    go here.
    """
    require_manageable(origin, site_id)
    site = require_site(session, site_id)
    stranded = only_site_of(session, site_id)
    if stranded:
        raise SiteInUseError(
            f"accounts restricted to site {site_id!r} alone would see every site once it is "
            f"gone: {', '.join(stranded)}; an admin must change their sites first"
        )
    cameras = [c.id for c in site.cameras]
    unkeyed = (
        *(CountRecord, ZoneRecord, MovementRecord, UnmatchedRecord),
        *(LineRollup, CameraRollup, MovementRollup, UnmatchedRollup, MovementCoverageRollup),
    )
    for table in unkeyed:
        session.execute(delete(table).where(table.camera_id.in_(cameras)))
    session.delete(site)
    session.flush()
    origin.record(session, "site.delete", site_id, {"name": site.name, "cameras": cameras})
    return cameras


def only_site_of(session: Session, site_id: str) -> list[str]:
    """E-mails of the accounts whose site restriction is this site alone."""
    linked = select(UserSite.user_id).where(UserSite.site_id == site_id)
    alone = (
        select(UserSite.user_id)
        .where(UserSite.user_id.in_(linked))
        .group_by(UserSite.user_id)
        .having(func.count() == 1)
    )
    return list(session.scalars(select(User.email).where(User.id.in_(alone)).order_by(User.email)))


def register_camera(
    session: Session, spec: CameraIn, *, replace: bool = False, origin: Origin = CLI
) -> Camera:
    """Register a camera, or with `replace` update an existing one's lines and zones.

    Stored counts keep their line and direction labels, so replacing lines never loses data.
    """
    require_manageable(origin, spec.site_id)
    if session.get(Site, spec.site_id) is None:
        raise NotFoundError(f"site {spec.site_id!r} does not exist")
    camera = session.get(Camera, spec.id)
    if camera is not None and not replace:
        raise AlreadyExistsError(f"camera {spec.id!r} already exists (use replace to update it)")
    if camera is not None and camera.site_id != spec.site_id:
        principal = origin.principal
        if principal is not None and not principal.may_manage_site(camera.site_id):
            # camera ids are global, so the id is known to be taken; where it is, is not said
            raise ForbiddenError(f"camera {spec.id!r} is on a site your account may not manage")
    action = "camera.create" if camera is None else "camera.replace"
    if camera is None:
        camera = Camera(id=spec.id, created_at=datetime.now(UTC))
        session.add(camera)
    apply_registration(session, camera, spec)
    details = spec.model_dump(mode="json", exclude={"id"})
    origin.record(session, action, spec.id, details)
    return camera


def apply_registration(session: Session, camera: Camera, spec: CameraIn) -> None:
    """Make the camera's registry entry what `spec` says: its interval, lines and zones are
    what ingest checks reports against (a stored configuration version lands here too)."""
    camera.site_id = spec.site_id
    camera.name = spec.name or spec.id
    camera.interval_seconds = spec.interval_seconds
    camera.config_version = spec.config_version
    camera.lines, camera.zones = [], []
    session.flush()  # drop the old rows first: names are unique per camera
    camera.lines = [CountLine(name=x.name, directions=x.directions()) for x in spec.lines]
    camera.zones = [Zone(name=z.name, lanes=z.lanes, length_m=z.length_m) for z in spec.zones]
    session.flush()


def camera_from_setup(
    camera_id: str, site_id: str, setup: CameraSetup, config_version: int, name: str = ""
) -> CameraIn:
    """The registry's view of a camera set-up: names, direction labels, lanes and lengths
    (the geometry stays in the set-up, and a site file's stream URL on the device)."""
    return CameraIn(
        id=camera_id,
        site_id=site_id,
        name=name,
        interval_seconds=setup.interval_seconds,
        config_version=config_version,
        lines=[LineIn(name=x.name, direction_names=dict(x.direction_names)) for x in setup.lines],
        zones=[ZoneIn(name=z.name, lanes=z.lanes, length_m=z.length_m) for z in setup.zones],
    )


def require_camera(session: Session, camera_id: str) -> Camera:
    """The camera with this id, or a NotFoundError that names it."""
    camera = session.get(Camera, camera_id)
    if camera is None:
        raise NotFoundError(f"camera {camera_id!r} does not exist")
    return camera


def require_visible_camera(session: Session, audience: Audience, camera_id: str) -> Camera:
    """The camera when the audience may see its site; otherwise the same 404 as for a camera
    that does not exist, so a restricted reader learns nothing about other sites."""
    camera = session.get(Camera, camera_id)
    if camera is None or not audience.may_see(camera.site):
        raise NotFoundError(f"camera {camera_id!r} does not exist")
    return camera


def require_manageable_camera(session: Session, origin: Origin, camera_id: str) -> Camera:
    """The camera when the caller may change its site: the 404 of a camera that does not
    exist when the caller may not even see its site (so the answer says nothing about other
    sites), a 403 when they see it but may not manage it."""
    audience = origin.principal.audience if origin.principal is not None else EVERYONE_PRIVATE
    camera = require_visible_camera(session, audience, camera_id)
    require_manageable(origin, camera.site_id)
    return camera
