"""Zone congestion series: per-bucket figures of each zone, per camera and zone.

Most measures are means of the reports' interval means (sums and counts in SQL). Speeds are
merged exactly instead: each report's histogram counts vehicles per speed bin, so a bucket's
histogram is the per-bin sum over its reports; its mean speed is the reports' means weighted
by their vehicles (the exact mean over the bucket's vehicles), and its v85 is read off the
merged histogram (``SpeedMerge.v85``), never averaged from interval p85s.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from api.models import IntervalReportRecord, ZoneRecord
from api.responses import BucketOut, ZoneSeriesList, ZoneSeriesOut
from api.services.counts import within_reports
from api.services.grid import Grid
from api.services.rollups import ROLLUP_GRANULARITIES_S
from api.services.scope import Scope
from contract import SPEED_BIN_EDGES_KMH

ZONE_MEANS = (
    "mean_vehicles",
    "occupancy_time",
    "occupancy_area",
    "stopped_share",
    "queue_vehicles",
    "queue_m",
    "density_veh_km_lane",
    "density_pcu_km_lane",
)
V85 = 0.85


@dataclass(slots=True)
class SpeedMerge:
    """The speeds of one bucket, merged from its reports' histograms."""

    histogram: list[int] = field(default_factory=lambda: [0] * len(SPEED_BIN_EDGES_KMH))
    speed_sum: float = 0.0
    """Sum over reports of mean speed x vehicles: the sum of the vehicles' speeds."""
    p85_low: float = math.inf
    p85_high: float = -math.inf
    """Smallest and largest report v85: the merged v85 lies between them."""

    @property
    def vehicles(self) -> int:
        return sum(self.histogram)

    def add(self, histogram: Sequence[int], mean_kmh: float, p85_kmh: float) -> None:
        """Fold in one report that measured at least one vehicle."""
        self.histogram = [a + b for a, b in zip(self.histogram, histogram, strict=True)]
        self.speed_sum += mean_kmh * sum(histogram)
        self.p85_low = min(self.p85_low, p85_kmh)
        self.p85_high = max(self.p85_high, p85_kmh)

    def mean(self) -> float:
        """Mean speed over the bucket's vehicles (exact: each report's mean, weighted)."""
        return self.speed_sum / self.vehicles

    def v85(self) -> float:
        """85th percentile of the merged histogram, held between the reports' own v85s.

        Within the bin holding the 85 % rank the vehicles are taken as spread evenly:
        v85 = lower edge + (0.85 N - vehicles below the bin) / vehicles in the bin x bin
        width. The open last bin (>= 130 km/h) has no width, so there it is its lower edge.
        A pooled percentile cannot lie outside its parts' percentiles, so the result is
        clipped to [smallest, largest] report v85, which also makes a one-report bucket
        exact.
        """
        estimate = histogram_percentile(self.histogram, V85)
        return min(max(estimate, self.p85_low), self.p85_high)


def histogram_percentile(histogram: Sequence[int], share: float) -> float:
    """The ``share`` quantile of vehicles counted per contract speed bin, linear in the bin."""
    rank = share * sum(histogram)
    below = 0
    for i, count in enumerate(histogram):
        if count and below + count >= rank:
            low = SPEED_BIN_EDGES_KMH[i]
            if i + 1 == len(SPEED_BIN_EDGES_KMH):
                return float(low)
            width = SPEED_BIN_EDGES_KMH[i + 1] - low
            return low + (rank - below) / count * width
        below += count
    raise ValueError("a histogram without vehicles has no percentile")


def _zone_rows(
    columns: Sequence[Any], scope: Scope, zone: str | None, grid: Grid, granularity: int
) -> Select[Any]:
    """Zone rows of reports in scope and inside the grid, optionally of one zone."""
    statement = within_reports(select(*columns), ZoneRecord, scope.cameras, grid, granularity)
    return statement if zone is None else statement.where(ZoneRecord.zone == zone)


def _speeds(
    session: Session,
    scope: Scope,
    zone: str | None,
    grid: Grid,
    granularity: int,
    moment: ColumnElement[int],
) -> dict[tuple[str, str], dict[int, SpeedMerge]]:
    """Merged speeds per (camera, zone) and bucket index."""
    statement = _zone_rows(
        (
            ZoneRecord.camera_id,
            ZoneRecord.zone,
            moment,
            ZoneRecord.speed_histogram,
            ZoneRecord.mean_speed_kmh,
            ZoneRecord.p85_speed_kmh,
        ),
        scope,
        zone,
        grid,
        granularity,
    ).where(ZoneRecord.mean_speed_kmh.is_not(None))
    merged: dict[tuple[str, str], dict[int, SpeedMerge]] = defaultdict(
        lambda: defaultdict(SpeedMerge)
    )
    for camera, zone_name, bucket, histogram, mean, p85 in session.execute(statement):
        i = grid.index(int(bucket))
        if i is not None and histogram and sum(histogram):
            merged[(camera, zone_name)][i].add(histogram, mean, p85)
    return merged


def zone_series(session: Session, scope: Scope, zone: str | None, grid: Grid) -> ZoneSeriesList:
    """Per-bucket figures of each zone: means folded from SQL sums, speeds merged exactly."""
    granularity = grid.source_granularity((60, *ROLLUP_GRANULARITIES_S))
    start = ZoneRecord.interval_start_s
    moment = start - start % granularity
    measures = [getattr(ZoneRecord, m) for m in ZONE_MEANS]
    statement = _zone_rows(
        (
            ZoneRecord.camera_id,
            ZoneRecord.zone,
            moment,
            func.sum(IntervalReportRecord.coverage * IntervalReportRecord.interval_seconds),
            func.max(ZoneRecord.max_vehicles),
            func.max(ZoneRecord.los),
            *[func.sum(m) for m in measures],
            *[func.count(m) for m in measures],
        ),
        scope,
        zone,
        grid,
        granularity,
    ).group_by(ZoneRecord.camera_id, ZoneRecord.zone, moment)
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
    speeds = _speeds(session, scope, zone, grid, granularity, moment)
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
        merged = [speeds[(camera, zone_name)].get(i) for i in range(size)]
        series.append(
            ZoneSeriesOut(
                camera=camera,
                zone=zone_name,
                coverage=coverage,
                max_vehicles=acc["max_vehicles"],
                los=acc["los"],
                speed_histogram=[m.histogram if m else None for m in merged],
                speed_vehicles=[m.vehicles if m else None for m in merged],
                mean_speed_kmh=[m.mean() if m else None for m in merged],
                p85_speed_kmh=[m.v85() if m else None for m in merged],
                **means,
            )
        )
    return ZoneSeriesList(
        bucket=grid.bucket,
        timezone=grid.tz.key,
        from_=grid.iso(grid.start),
        to=grid.iso(grid.end),
        speed_bin_edges_kmh=list(SPEED_BIN_EDGES_KMH),
        buckets=[
            BucketOut(start=grid.iso(s), end=grid.iso(e))
            for s, e in zip(grid.starts, grid.ends, strict=True)
        ],
        series=series,
    )
