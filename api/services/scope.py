"""Which cameras a query covers, and which clock its buckets follow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Camera, CountLine, Site
from api.schemas import CameraStatus
from api.services.errors import NotFoundError
from api.services.grid import RangeError

ONLINE_MIN_S = 180
ONLINE_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class Audience:
    """Whose eyes a read serves: the public sees public sites only; a signed-in reader sees
    private sites too, all of them or only those their account is restricted to."""

    private: bool
    site_ids: frozenset[str] | None = None

    def may_see(self, site: Site) -> bool:
        """Whether this audience may read `site` at all."""
        if not self.private:
            return site.public
        return self.site_ids is None or site.id in self.site_ids


PUBLIC = Audience(private=False)
"""Anonymous readers: the open-data feeds."""
EVERYONE_PRIVATE = Audience(private=True)
"""A reader of every site, public or private (admins, unrestricted accounts)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Resolved cameras (ids) and the timezone to align buckets to."""

    cameras: tuple[str, ...]
    tz: ZoneInfo


def visible_sites(session: Session, audience: Audience, site_id: str | None = None) -> list[Site]:
    """Sites the audience may see, optionally just one (404 when it is not visible)."""
    statement = select(Site).order_by(Site.id)
    if not audience.private:
        statement = statement.where(Site.public.is_(True))
    elif audience.site_ids is not None:
        statement = statement.where(Site.id.in_(sorted(audience.site_ids)))
    if site_id is not None:
        statement = statement.where(Site.id == site_id)
    sites = list(session.scalars(statement))
    if site_id is not None and not sites:
        raise NotFoundError(f"site {site_id!r} does not exist")
    return sites


def zone_info(name: str) -> ZoneInfo:
    """An IANA timezone, or a 422 that names the bad value."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RangeError(f"unknown timezone {name!r}") from exc


def resolve_scope(
    session: Session,
    audience: Audience,
    site_id: str | None = None,
    camera_id: str | None = None,
    line: str | None = None,
    tz: str | None = None,
) -> Scope:
    """Visible cameras matching the filters; buckets follow `tz`, else their site's clock."""
    sites = {s.id: s for s in visible_sites(session, audience, site_id)}
    cameras = [c for s in sites.values() for c in s.cameras]
    if camera_id is not None:
        cameras = [c for c in cameras if c.id == camera_id]
        if not cameras:
            raise NotFoundError(f"camera {camera_id!r} does not exist")
    if line is not None:
        with_line = set(session.scalars(select(CountLine.camera_id).where(CountLine.name == line)))
        cameras = [c for c in cameras if c.id in with_line]
    zones = {sites[c.site_id].timezone for c in cameras} or {
        s.timezone for s in sites.values() if site_id is not None
    }
    timezone = tz or (zones.pop() if len(zones) == 1 else "UTC")
    return Scope(cameras=tuple(c.id for c in cameras), tz=zone_info(timezone))


def camera_status(camera: Camera, now: datetime | None = None) -> CameraStatus:
    """online: seen within three report intervals (at least three minutes)."""
    if camera.last_seen_at is None:
        return "never"
    window = timedelta(seconds=max(ONLINE_MIN_S, ONLINE_INTERVALS * camera.interval_seconds))
    return "online" if (now or datetime.now(UTC)) - camera.last_seen_at <= window else "offline"
