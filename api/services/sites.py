"""Sites as planners and the open data list them: metadata, camera status, 24-hour totals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.models import Camera, CameraRollup, Site
from api.responses import (
    CameraBrief,
    CameraDetail,
    DirectionOut,
    LineOut,
    SiteBrief,
    SiteDetail,
    Totals,
    ZoneOut,
)
from api.services.grid import utc_now
from api.services.rollups import CLASS_COLUMNS
from api.services.scope import camera_status

HOUR_S = 3600
DAY_HOURS = 24


def hour_start(now: datetime) -> int:
    """The start of the hour that holds `now` (epoch seconds)."""
    return int(now.timestamp()) // HOUR_S * HOUR_S


def hour_end(now: datetime) -> int:
    """The end of the hour that holds `now` (epoch seconds): the planner's 24 hours run to it."""
    return hour_start(now) + HOUR_S


def totals_24h(session: Session, sites: Sequence[Site], end_s: int) -> dict[str, Totals]:
    """Each site's total over the 24 hourly buckets before `end_s`, from the hourly camera
    rollup (count null where nothing was watched)."""
    start = end_s - DAY_HOURS * HOUR_S
    total = sum(getattr(CameraRollup, c) for c in CLASS_COLUMNS.values())
    rows = session.execute(
        select(Camera.site_id, func.sum(CameraRollup.covered_s), func.sum(total))
        .join(Camera, Camera.id == CameraRollup.camera_id)
        .where(
            CameraRollup.granularity_s == HOUR_S,
            CameraRollup.bucket_start_s >= start,
            CameraRollup.bucket_start_s < end_s,
            Camera.site_id.in_([s.id for s in sites]),
        )
        .group_by(Camera.site_id)
    ).all()
    found = {site_id: (float(covered or 0), int(count or 0)) for site_id, covered, count in rows}
    result = {}
    for site in sites:
        covered, count = found.get(site.id, (0.0, 0))
        watchable = max(len(site.cameras), 1) * DAY_HOURS * HOUR_S
        result[site.id] = Totals(
            count=count if covered > 0 else None, coverage=min(covered / watchable, 1.0)
        )
    return result


def site_brief_fields(site: Site, totals: Totals) -> dict[str, Any]:
    """Fields shared by the listing and the detail view."""
    reports = [c.last_report_at for c in site.cameras if c.last_report_at is not None]
    return {
        "id": site.id,
        "name": site.name,
        "road": site.road,
        "lat": site.lat,
        "lon": site.lon,
        "timezone": site.timezone,
        "description": site.description,
        "public": site.public,
        "listed": site.listed,
        "last_report_at": max(reports, default=None),
        "totals_24h": totals,
    }


def camera_brief_fields(camera: Camera, now: datetime) -> dict[str, Any]:
    return {
        "id": camera.id,
        "name": camera.name,
        "status": camera_status(camera, now),
        "last_seen_at": camera.last_seen_at,
    }


def site_briefs(
    session: Session, sites: Sequence[Site], totals: dict[str, Totals] | None = None
) -> list[SiteBrief]:
    """The listing: each site with its cameras' status and its 24-hour totals (by default the
    planner's, up to now; the open data passes its own suppressed ones)."""
    now = utc_now()
    totals = totals if totals is not None else totals_24h(session, sites, hour_end(now))
    return [
        SiteBrief(
            **site_brief_fields(site, totals[site.id]),
            cameras=[CameraBrief(**camera_brief_fields(c, now)) for c in site.cameras],
        )
        for site in sites
    ]


def open_links(site: Site) -> dict[str, str] | None:
    """Open-data URLs of a public site."""
    if not site.public:
        return None
    base = f"/api/v1/open/sites/{site.id}"
    return {
        f"counts_{granularity}_{fmt}": f"{base}/counts.{fmt}?granularity={granularity}"
        for granularity in ("15min", "1h")
        for fmt in ("csv", "json")
    }


def site_detail(session: Session, site: Site) -> SiteDetail:
    """A site with its cameras' lines (with direction labels) and zones."""
    now = utc_now()
    cameras = [
        CameraDetail(
            **camera_brief_fields(camera, now),
            interval_seconds=camera.interval_seconds,
            config_version=camera.config_version,
            reported_config_version=camera.reported_config_version,
            lines=[
                LineOut(
                    name=line.name,
                    directions=[
                        DirectionOut(geometric=g, label=x) for g, x in line.directions.items()
                    ],
                )
                for line in camera.lines
            ],
            zones=[ZoneOut(name=z.name, lanes=z.lanes, length_m=z.length_m) for z in camera.zones],
        )
        for camera in site.cameras
    ]
    totals = totals_24h(session, [site], hour_end(now))[site.id]
    return SiteDetail(
        **site_brief_fields(site, totals), cameras=cameras, open_data=open_links(site)
    )
