"""Device health for planners: the last heartbeat, coverage per local day, and cameras that
look frozen (fully watched, yet no vehicles for far longer than their own history makes
plausible: a frozen picture or a covered lens counts nothing while reporting full coverage).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from api.models import Camera, CameraRollup, DeviceHealth, Site
from api.responses import DayCoverage, DeviceHealthList, DeviceHealthOut, HeartbeatOut
from api.services.grid import make_grid, utc_now
from api.services.register import software_of
from api.services.rollups import CLASS_COLUMNS, ROLLUP_GRANULARITIES_S
from api.services.scope import camera_status, zone_info
from api.services.sites import HOUR_S, hour_start
from api.settings import Settings

FULL_COVERAGE = 0.95
"""An hour counts as fully watched from this share on."""
HISTORY_DAYS = 28
"""How far back a camera's own history of empty hours is read."""
FLOOR_HOURS = 3
"""The shortest run of empty, fully watched hours that can be suspect."""
NEW_CAMERA_HOURS = 12
"""A camera with little history is suspect only from this many empty hours on."""
SETTLED_HOURS = 72
"""Fully watched hours of history a camera needs before shorter runs can be judged."""
PLAUSIBLE_FACTOR = 2
"""A run is suspect from this many times the longest run of the camera's history."""
STALE_HOURS = 2
"""A run must reach one of the last complete hours: a camera that stopped reporting is
offline, not frozen."""


def daily_coverage(session: Session, camera: Camera, tz_name: str, days: int) -> list[DayCoverage]:
    """Coverage and report count per local day, oldest first, from the rollups."""
    tz = zone_info(tz_name)
    now = utc_now().astimezone(tz)
    # up to the end of today, so days=1 (today only) is a range, not an empty one
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=tz)
    grid = make_grid("1d", tz, now - timedelta(days=days - 1), tomorrow, None)
    granularity = grid.source_granularity(ROLLUP_GRANULARITIES_S)
    rows = session.execute(
        select(CameraRollup.bucket_start_s, CameraRollup.covered_s, CameraRollup.reports).where(
            CameraRollup.granularity_s == granularity,
            CameraRollup.camera_id == camera.id,
            CameraRollup.bucket_start_s >= grid.start,
            CameraRollup.bucket_start_s < grid.end,
        )
    ).all()
    covered = [0.0] * len(grid)
    reports = [0] * len(grid)
    for bucket, seconds, n in rows:
        i = grid.index(int(bucket))
        if i is not None:
            covered[i] += seconds
            reports[i] += n
    return [
        DayCoverage(date=grid.iso(s).date(), coverage=min(c / (e - s), 1.0), reports=n)
        for s, e, c, n in zip(grid.starts, grid.ends, covered, reports, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class EmptyHours:
    """A camera's runs of fully watched hours without a vehicle."""

    current: int
    """Hours in the run that ends at the camera's latest complete hour."""
    current_start_s: int
    longest_before: int
    """The longest run in the history before the current one."""
    history_hours: int
    """Fully watched hours in the history before the current run."""

    def suspect(self) -> str | None:
        """Why the current run is implausible for this camera, or None."""
        settled = self.history_hours >= SETTLED_HOURS
        floor = FLOOR_HOURS if settled else NEW_CAMERA_HOURS
        if self.current < max(floor, PLAUSIBLE_FACTOR * self.longest_before):
            return None
        since = datetime.fromtimestamp(self.current_start_s, UTC).strftime("%Y-%m-%d %H:%M UTC")
        history = (
            f"its longest such run in the {HISTORY_DAYS} days before was {self.longest_before} h"
            if settled
            else f"too little history ({self.history_hours} fully watched hours) to judge less"
        )
        return (
            f"no vehicles in {self.current} fully watched hours in a row (since {since}); {history}"
        )


def empty_hours(session: Session, cameras: Sequence[str], now: datetime) -> dict[str, EmptyHours]:
    """Each camera's empty-hour runs over the last `HISTORY_DAYS`, from the hourly camera
    rollup in two queries: the empty hours themselves, and each camera's latest and number
    of fully watched hours."""
    current_hour = hour_start(now)
    start = current_hour - HISTORY_DAYS * 24 * HOUR_S
    full = CameraRollup.covered_s >= FULL_COVERAGE * HOUR_S
    in_window = (
        CameraRollup.granularity_s == HOUR_S,
        CameraRollup.camera_id.in_(cameras),
        CameraRollup.bucket_start_s >= start,
        CameraRollup.bucket_start_s < current_hour,
    )
    vehicles = sum(getattr(CameraRollup, c) for c in CLASS_COLUMNS.values())
    empty: dict[str, set[int]] = defaultdict(set)
    for camera, bucket in session.execute(
        select(CameraRollup.camera_id, CameraRollup.bucket_start_s).where(
            *in_window, full, vehicles == 0
        )
    ):
        empty[camera].add(int(bucket))
    found = {}
    for camera, latest, watched in session.execute(
        select(
            CameraRollup.camera_id,
            func.max(CameraRollup.bucket_start_s),
            func.sum(case((full, 1), else_=0)),
        )
        .where(*in_window)
        .group_by(CameraRollup.camera_id)
    ):
        hours = empty[camera]
        run, hour = 0, int(latest)
        if hour >= current_hour - STALE_HOURS * HOUR_S:
            while hour in hours:
                run, hour = run + 1, hour - HOUR_S
        found[camera] = EmptyHours(
            current=run,
            current_start_s=hour + HOUR_S,
            longest_before=longest_run(h for h in hours if h <= hour),
            history_hours=int(watched or 0) - run,
        )
    return found


def longest_run(hours: Iterable[int]) -> int:
    """The most consecutive hours among these hour starts."""
    longest, run, previous = 0, 0, None
    for hour in sorted(hours):
        run = run + 1 if previous is not None and hour - previous == HOUR_S else 1
        longest, previous = max(longest, run), hour
    return longest


def device_health(
    session: Session, settings: Settings, sites: Sequence[Site], days: int
) -> DeviceHealthList:
    """Every camera of the given sites with its last heartbeat, daily coverage and whether it
    looks frozen."""
    now = utc_now()
    cameras = [(site, camera) for site in sites for camera in site.cameras]
    runs = empty_hours(session, [camera.id for _, camera in cameras], now)
    out = []
    for site, camera in cameras:
        beat = session.get(DeviceHealth, camera.id)
        reason = runs[camera.id].suspect() if camera.id in runs else None
        out.append(
            DeviceHealthOut(
                camera=camera.id,
                site=site.id,
                status=camera_status(camera, now),
                last_seen_at=camera.last_seen_at,
                config_version=camera.config_version,
                reported_config_version=camera.reported_config_version,
                last_heartbeat=HeartbeatOut.model_validate(beat, from_attributes=True)
                if beat
                else None,
                dead_lettered_reports=beat.dead_lettered_reports if beat else 0,
                suspect_frozen=reason is not None,
                suspect_reason=reason,
                software=software_of(beat, settings),
                coverage_by_day=daily_coverage(session, camera, site.timezone, days),
            )
        )
    return DeviceHealthList(cameras=out)
