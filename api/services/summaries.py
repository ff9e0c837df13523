"""Count summaries for planners: series in their response shape, totals and class mix, peak
hour and PHF, hour-of-week means."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.models import CameraConfig
from api.responses import (
    CountSeriesOut,
    CoveredBucket,
    HourOfWeekOut,
    PeakHour,
    SeriesOut,
    SummaryOut,
)
from api.services.counts import CountFilter, CountSeries, GroupField, count_series
from api.services.grid import make_grid
from api.services.scope import Scope
from contract import HEAVY_VEHICLE_CLASSES, VEHICLE_CLASSES
from contract.planning import PcuFactors

DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
PEAK_WINDOW = 4


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
        series=[
            SeriesOut(
                **s.key,
                counts=s.counts,
                total=s.total,
                coverage=None if s.coverage == result.coverage else s.coverage,
            )
            for s in result.series
        ],
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
        phf=peak_hour_factor(volume, busiest),
    )


def peak_hour_factor(volume: int, busiest_15min: int) -> float | None:
    """PHF = V_hour / (4 x V15_max); None for an hour without traffic."""
    return round(volume / (PEAK_WINDOW * busiest_15min), 4) if busiest_15min else None


def share(part: int | None, whole: int | None) -> float | None:
    return round(part / whole, 4) if part is not None and whole else None


def pcu_factors(session: Session, cameras: Sequence[str]) -> dict[str, PcuFactors]:
    """Each camera's PCU factors: those of its newest stored configuration, else defaults."""
    newest = (
        select(CameraConfig.camera_id, func.max(CameraConfig.version).label("version"))
        .where(CameraConfig.camera_id.in_(cameras))
        .group_by(CameraConfig.camera_id)
        .subquery()
    )
    statement = select(CameraConfig.camera_id, CameraConfig.setup).join(
        newest,
        (CameraConfig.camera_id == newest.c.camera_id) & (CameraConfig.version == newest.c.version),
    )
    stored = {
        camera: PcuFactors.model_validate(setup.get("pcu", {}))
        for camera, setup in session.execute(statement)
    }
    return {camera: stored.get(camera, PcuFactors()) for camera in cameras}


def summary(
    session: Session, scope: Scope, where: CountFilter, start: datetime, end: datetime
) -> SummaryOut:
    """Totals, class mix and PCU from hourly buckets, peak hour from 15-minute buckets.

    PCU weigh each camera's counts with that camera's factors, so a site whose cameras
    count with different factors still adds up."""
    hourly = count_series(
        session, make_grid("1h", scope.tz, start, end, None), where, ("camera", "vehicle_class")
    )
    quarter = count_series(session, make_grid("15min", scope.tz, start, end, None), where)
    total = hourly.total
    covered = any(hourly.coverage)
    factors = pcu_factors(session, where.cameras)
    by_class: dict[str, int | None] = {c: 0 if covered else None for c in VEHICLE_CLASSES}
    pcu_by_class: dict[str, float | None] = {c: 0.0 if covered else None for c in VEHICLE_CLASSES}
    for s in hourly.series:
        camera, vehicle_class = str(s.key["camera"]), s.key["vehicle_class"]
        assert vehicle_class in VEHICLE_CLASSES
        by_class[vehicle_class] = (by_class[vehicle_class] or 0) + s.total
        pcu = s.total * factors[camera].of(vehicle_class)
        pcu_by_class[vehicle_class] = (pcu_by_class[vehicle_class] or 0.0) + pcu
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
        pcu_total=round(sum(v or 0.0 for v in pcu_by_class.values()), 2) if covered else None,
        pcu_by_class={c: None if v is None else round(v, 2) for c, v in pcu_by_class.items()},
        pcu_factors=factors,
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
