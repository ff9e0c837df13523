"""Zone congestion series: per-bucket means of each zone measure, per camera and zone."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.models import IntervalReportRecord, ZoneRecord
from api.responses import BucketOut, ZoneSeriesList, ZoneSeriesOut
from api.services.counts import within_reports
from api.services.grid import Grid
from api.services.rollups import ROLLUP_GRANULARITIES_S
from api.services.scope import Scope

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
