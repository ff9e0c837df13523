"""Planner read models: site listings, summaries, hour-of-week, zones and device health."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import __version__
from api.models import Camera, CameraRollup, DeviceHealth, IntervalReportRecord, Site, ZoneRecord
from api.responses import (
    BucketOut,
    CameraBrief,
    CameraDetail,
    CountSeriesOut,
    CoveredBucket,
    DayCoverage,
    DeviceHealthList,
    DeviceHealthOut,
    DirectionOut,
    HeartbeatOut,
    HourOfWeekOut,
    LicenceWithAttribution,
    LineOut,
    Meta,
    PeakHour,
    SeriesOut,
    SiteBrief,
    SiteDetail,
    SummaryOut,
    Totals,
    ZoneOut,
    ZoneSeriesList,
    ZoneSeriesOut,
)
from api.services.counts import (
    CountFilter,
    CountSeries,
    GroupField,
    count_series,
    within_reports,
)
from api.services.grid import BUCKET_SECONDS, Grid, make_grid, utc_now
from api.services.rollups import CLASS_COLUMNS, ROLLUP_GRANULARITIES_S
from api.services.scope import Scope, camera_status, zone_info
from api.settings import Settings
from contract import HEAVY_VEHICLE_CLASSES, VEHICLE_CLASSES

DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
PEAK_WINDOW = 4


def licence(settings: Settings) -> LicenceWithAttribution:
    """The open-data licence as configured."""
    return LicenceWithAttribution(
        id=settings.open_licence_id,
        url=settings.open_licence_url,
        attribution=settings.open_attribution,
    )


def meta(settings: Settings) -> Meta:
    """Constants and feed links for the dashboard."""
    return Meta(
        version=__version__,
        vehicle_classes=list(VEHICLE_CLASSES),
        heavy_vehicle_classes=sorted(HEAVY_VEHICLE_CLASSES),
        buckets=list(BUCKET_SECONDS),
        licence=licence(settings),
        open_data={
            "catalog": "/api/v1/open/catalog.json",
            "sites_geojson": "/api/v1/open/sites.geojson",
            "sites_json": "/api/v1/open/sites.json",
            "sites_csv": "/api/v1/open/sites.csv",
        },
    )


def totals_24h(session: Session, sites: Sequence[Site], now: datetime) -> dict[str, Totals]:
    """Each site's total over the last 24 hourly buckets, from the hourly camera rollup."""
    hour = 3600
    end = (int(now.timestamp()) // hour + 1) * hour
    start = end - 24 * hour
    total = sum(getattr(CameraRollup, c) for c in CLASS_COLUMNS.values())
    rows = session.execute(
        select(Camera.site_id, func.sum(CameraRollup.covered_s), func.sum(total))
        .join(Camera, Camera.id == CameraRollup.camera_id)
        .where(
            CameraRollup.granularity_s == hour,
            CameraRollup.bucket_start_s >= start,
            CameraRollup.bucket_start_s < end,
            Camera.site_id.in_([s.id for s in sites]),
        )
        .group_by(Camera.site_id)
    ).all()
    found = {site_id: (float(covered or 0), int(count or 0)) for site_id, covered, count in rows}
    result = {}
    for site in sites:
        covered, count = found.get(site.id, (0.0, 0))
        watchable = max(len(site.cameras), 1) * 24 * hour
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


def site_briefs(session: Session, sites: Sequence[Site]) -> list[SiteBrief]:
    """The listing: each site with its cameras' status and its 24-hour totals."""
    now = utc_now()
    totals = totals_24h(session, sites, now)
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
    totals = totals_24h(session, [site], now)[site.id]
    return SiteDetail(
        **site_brief_fields(site, totals), cameras=cameras, open_data=open_links(site)
    )


def series_out(result: CountSeries, group_by: Sequence[GroupField]) -> CountSeriesOut:
    """A computed series in its response shape."""
    grid = result.grid
    return CountSeriesOut(
        bucket=grid.bucket,
        timezone=grid.tz.key,
        from_=grid.iso(grid.start),
        to=grid.iso(grid.end),
        group_by=list(group_by),
        buckets=[
            CoveredBucket(start=grid.iso(s), end=grid.iso(e), coverage=c)
            for s, e, c in zip(grid.starts, grid.ends, result.coverage, strict=True)
        ],
        series=[SeriesOut(**s.key, counts=s.counts, total=s.total) for s in result.series],
        total=result.total,
    )


def summed(result: CountSeries) -> list[int | None]:
    """All series added per bucket, null where nothing was watched."""
    return [
        None if cov == 0 else sum(s.counts[i] or 0 for s in result.series)
        for i, cov in enumerate(result.coverage)
    ]


def peak_hour(result: CountSeries) -> PeakHour | None:
    """Busiest four consecutive covered 15-minute buckets, with the peak-hour factor."""
    volumes = summed(result)
    best: tuple[int, int] | None = None
    for i in range(len(volumes) - PEAK_WINDOW + 1):
        window = volumes[i : i + PEAK_WINDOW]
        if all(v is not None for v in window):
            volume = sum(v or 0 for v in window)
            if best is None or volume > best[1]:
                best = (i, volume)
    if best is None:
        return None
    i, volume = best
    busiest = max(v or 0 for v in volumes[i : i + PEAK_WINDOW])
    grid = result.grid
    return PeakHour(
        start=grid.iso(grid.starts[i]),
        end=grid.iso(grid.ends[i + PEAK_WINDOW - 1]),
        volume=volume,
        max_15min_volume=busiest,
        phf=round(volume / (PEAK_WINDOW * busiest), 4) if busiest else None,
    )


def share(part: int | None, whole: int | None) -> float | None:
    return round(part / whole, 4) if part is not None and whole else None


def summary(
    session: Session, scope: Scope, where: CountFilter, start: datetime, end: datetime
) -> SummaryOut:
    """Totals and class mix from hourly buckets, peak hour from 15-minute buckets."""
    hourly = count_series(
        session, make_grid("1h", scope.tz, start, end, None), where, ("vehicle_class",)
    )
    quarter = count_series(session, make_grid("15min", scope.tz, start, end, None), where)
    total = hourly.total
    covered = any(hourly.coverage)
    by_class = {c: 0 if covered else None for c in VEHICLE_CLASSES} | {
        str(s.key["vehicle_class"]): s.total for s in hourly.series
    }
    heavy = sum(by_class[c] or 0 for c in HEAVY_VEHICLE_CLASSES) if covered else None
    grid = hourly.grid
    return SummaryOut(
        from_=grid.iso(grid.start),
        to=grid.iso(grid.end),
        timezone=scope.tz.key,
        total=total,
        coverage=sum(hourly.coverage) / len(grid),
        by_class=by_class,
        class_share={c: share(n, total) for c, n in by_class.items()},
        heavy_vehicles=heavy,
        heavy_share=share(heavy, total),
        peak_hour=peak_hour(quarter),
    )


def hour_of_week(
    session: Session, scope: Scope, where: CountFilter, start: datetime, end: datetime
) -> HourOfWeekOut:
    """Mean volume per local weekday and hour over the hours that have data."""
    result = count_series(session, make_grid("1h", scope.tz, start, end, None), where)
    sums = [[0] * 24 for _ in DAY_NAMES]
    samples = [[0] * 24 for _ in DAY_NAMES]
    grid = result.grid
    for moment, volume in zip(grid.starts, summed(result), strict=True):
        if volume is not None:
            local = grid.iso(moment)
            sums[local.weekday()][local.hour] += volume
            samples[local.weekday()][local.hour] += 1
    return HourOfWeekOut(
        timezone=scope.tz.key,
        from_=grid.iso(grid.start),
        to=grid.iso(grid.end),
        days=DAY_NAMES,
        mean=[
            [round(s / n, 2) if n else None for s, n in zip(day_sums, day_n, strict=True)]
            for day_sums, day_n in zip(sums, samples, strict=True)
        ],
        samples=samples,
    )


ZONE_MEANS = (
    "mean_vehicles",
    "occupancy_time",
    "occupancy_area",
    "mean_speed_kmh",
    "p85_speed_kmh",
    "stopped_share",
    "queue_vehicles",
    "density_veh_km_lane",
)


def zone_series(session: Session, scope: Scope, zone: str | None, grid: Grid) -> ZoneSeriesList:
    """Per-bucket means of each zone measure (sums and counts in SQL, folded here)."""
    granularity = grid.source_granularity((60, *ROLLUP_GRANULARITIES_S))
    start = ZoneRecord.interval_start_s
    moment = start - start % granularity
    measures = [getattr(ZoneRecord, m) for m in ZONE_MEANS]
    statement = within_reports(
        select(
            ZoneRecord.camera_id,
            ZoneRecord.zone,
            moment,
            func.sum(IntervalReportRecord.coverage * IntervalReportRecord.interval_seconds),
            func.max(ZoneRecord.max_vehicles),
            func.max(ZoneRecord.los),
            *[func.sum(m) for m in measures],
            *[func.count(m) for m in measures],
        ),
        ZoneRecord,
        scope.cameras,
        grid,
        granularity,
    ).group_by(ZoneRecord.camera_id, ZoneRecord.zone, moment)
    if zone is not None:
        statement = statement.where(ZoneRecord.zone == zone)
    size = len(grid)
    folded: dict[tuple[str, str], dict[str, list[Any]]] = defaultdict(
        lambda: (
            {name: [None] * size for name in ("max_vehicles", "los")}
            | {name: [0.0] * size for name in ("covered", *ZONE_MEANS)}
            | {f"n_{name}": [0] * size for name in ZONE_MEANS}
        )
    )
    k = len(ZONE_MEANS)
    for camera, zone_name, bucket, covered, most, los, *rest in session.execute(statement):
        i = grid.index(int(bucket))
        if i is None:
            continue
        acc = folded[(camera, zone_name)]
        acc["covered"][i] += float(covered or 0)
        acc["max_vehicles"][i] = max(acc["max_vehicles"][i] or 0, int(most))
        acc["los"][i] = max(filter(None, (acc["los"][i], los)), default=None)
        for name, total, n in zip(ZONE_MEANS, rest[:k], rest[k:], strict=True):
            acc[name][i] += float(total or 0)
            acc[f"n_{name}"][i] += int(n)
    series = []
    for (camera, zone_name), acc in sorted(folded.items()):
        means = {
            name: [t / n if n else None for t, n in zip(acc[name], acc[f"n_{name}"], strict=True)]
            for name in ZONE_MEANS
        }
        coverage = [
            min(c / (e - s), 1.0)
            for c, s, e in zip(acc["covered"], grid.starts, grid.ends, strict=True)
        ]
        series.append(
            ZoneSeriesOut(
                camera=camera,
                zone=zone_name,
                coverage=coverage,
                max_vehicles=acc["max_vehicles"],
                los=acc["los"],
                **means,
            )
        )
    return ZoneSeriesList(
        bucket=grid.bucket,
        timezone=grid.tz.key,
        from_=grid.iso(grid.start),
        to=grid.iso(grid.end),
        buckets=[
            BucketOut(start=grid.iso(s), end=grid.iso(e))
            for s, e in zip(grid.starts, grid.ends, strict=True)
        ],
        series=series,
    )


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


def device_health(session: Session, sites: Sequence[Site], days: int) -> DeviceHealthList:
    """Every camera of the given sites with its last heartbeat and daily coverage."""
    now = utc_now()
    out = []
    for site in sites:
        for camera in site.cameras:
            beat = session.get(DeviceHealth, camera.id)
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
                    coverage_by_day=daily_coverage(session, camera, site.timezone, days),
                )
            )
    return DeviceHealthList(cameras=out)
