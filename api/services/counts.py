"""Count time series: SQL sums per stored bucket, folded into clock-aligned buckets here.

Source rows come from the rollups (15 min, 1 h) or, for 1-minute buckets and for the
benchmark baseline, from the raw count rows. Either way a bucket's count is null when the
cameras in scope watched none of it, so a gap never reads as zero traffic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, literal, select
from sqlalchemy.orm import Session

from api.models import CameraRollup, CountLine, CountRecord, IntervalReportRecord, LineRollup
from api.services.grid import Grid
from api.services.rollups import CLASS_COLUMNS, ROLLUP_GRANULARITIES_S
from contract import VEHICLE_CLASSES, VehicleClass

GroupField = Literal["camera", "line", "direction", "vehicle_class"]
GROUP_FIELDS: tuple[GroupField, ...] = ("camera", "line", "direction", "vehicle_class")
Source = Literal["rollup", "raw"]


@dataclass(frozen=True, slots=True)
class CountFilter:
    """Which counts: cameras already resolved (and visible), optional line/direction/class."""

    cameras: tuple[str, ...]
    line: str | None = None
    direction: str | None = None
    vehicle_class: VehicleClass | None = None


@dataclass(frozen=True, slots=True)
class Series:
    """One series: its key (fields not grouped on are None), a value per bucket, and the
    coverage of the cameras it draws on (its counts are null where that is 0)."""

    key: dict[GroupField, str | None]
    counts: list[int | None]
    coverage: list[float]

    @property
    def total(self) -> int:
        return sum(c for c in self.counts if c is not None)


@dataclass(frozen=True, slots=True)
class CountSeries:
    """Buckets with the coverage of every camera in scope, and the series over them."""

    grid: Grid
    coverage: list[float]
    series: list[Series]

    @property
    def total(self) -> int | None:
        """Sum over covered buckets; None when nothing was watched at all."""
        if not any(self.coverage):
            return None
        return sum(s.total for s in self.series)


Watched = dict[str | None, list[float]]
"""Seconds watched per bucket, per camera (None: summed over every camera in scope)."""


def count_series(
    session: Session,
    grid: Grid,
    where: CountFilter,
    group_by: Sequence[GroupField] = (),
    source: Source = "rollup",
) -> CountSeries:
    """The series of `where` over `grid`, one per `group_by` value counted in the range.

    A series exists once its key has a non-zero count in the range; from then on it reads 0
    in every bucket its cameras watched without traffic and null in every one they did not.
    Its cameras: the one it is keyed by, else those with its line and direction (registered
    now, or seen in its counts), else every camera in scope; on a multi-camera site a camera
    that was down is a gap in its own series, not a zero pooled with the others' coverage.
    """
    use_raw = source == "raw" or grid.bucket == "1min"
    if not use_raw:
        choices = ROLLUP_GRANULARITIES_S
    elif grid.bucket == "1min":
        choices = (60,)
    else:
        choices = (60, *ROLLUP_GRANULARITIES_S)
    granularity = grid.source_granularity(choices)
    by_line = needs_lines(where, group_by)
    # when series may draw on different cameras, the rows keep the camera to tell which
    per_camera = "camera" in group_by or (by_line and len(where.cameras) > 1)
    fields = [f for f in GROUP_FIELDS[:3] if f in group_by or (f == "camera" and per_camera)]
    if use_raw:
        rows = raw_count_rows(session, grid, where, fields, granularity)
    else:
        rows = rollup_count_rows(session, grid, where, fields, granularity)
    # the camera rollup carries coverage in the same rows; otherwise it takes its own query
    camera_level = not use_raw and not by_line
    watched: Watched = (
        {} if camera_level else fold_coverage(session, grid, where, granularity, use_raw)
    )
    sums: dict[tuple[str | None, ...], list[int]] = {}
    seen: dict[tuple[str | None, ...], set[str]] = defaultdict(set)
    for moment, key_values, counts, seconds in rows:
        i = grid.index(moment)
        if i is None:
            continue
        camera = key_values[0]
        if camera_level:
            watched.setdefault(camera, [0.0] * len(grid))[i] += seconds
        if "camera" not in group_by:
            key_values = (None, *key_values[1:])
        for vehicle_class, n in counts:
            key = (*key_values, vehicle_class if "vehicle_class" in group_by else None)
            values = sums.get(key)
            if values is None:
                if not n:  # rollups hold zeros for every class; raw rows may not
                    continue
                values = sums[key] = [0] * len(grid)
            values[i] += n
            if camera is not None:
                seen[key].add(camera)
    if not group_by and not sums:
        sums[(None,) * len(GROUP_FIELDS)] = [0] * len(grid)
    lines = (
        registered_lines(session, where.cameras) if per_camera and "camera" not in group_by else {}
    )

    def cameras_of(key: tuple[str | None, ...]) -> Collection[str] | None:
        """The cameras a series draws on (None: every camera in scope)."""
        if "camera" in group_by:
            return [str(key[0])]
        if not lines:
            return None
        line, direction = key[1] or where.line, key[2] or where.direction
        having = {c for c, named in lines.items() if carries(named, line, direction)}
        return (having | seen.get(key, set())) or None

    def coverage_of(cameras: Collection[str] | None) -> list[float]:
        """Mean coverage of these cameras per bucket (None: of every camera in scope)."""
        chosen = list(watched.values()) if cameras is None else [watched.get(c) for c in cameras]
        share = 1 / (max(len(where.cameras), 1) if cameras is None else len(cameras))
        seconds = [0.0] * len(grid)
        for column in chosen:
            for i, value in enumerate(column or ()):
                seconds[i] += value
        return [
            min(t * share / (e - s), 1.0)
            for t, s, e in zip(seconds, grid.starts, grid.ends, strict=True)
        ]

    series = []
    for key, values in sorted(sums.items(), key=lambda item: [k or "" for k in item[0]]):
        coverage = coverage_of(cameras_of(key))
        series.append(
            Series(
                key=dict(zip(GROUP_FIELDS, key, strict=True)),
                counts=[n if c > 0 else None for n, c in zip(values, coverage, strict=True)],
                coverage=coverage,
            )
        )
    return CountSeries(grid=grid, coverage=coverage_of(None), series=series)


def carries(lines: dict[str, set[str]], line: str | None, direction: str | None) -> bool:
    """Whether a camera with these lines (name -> direction labels) counts line/direction."""
    named = [labels for name, labels in lines.items() if line is None or name == line]
    return bool(named) and (direction is None or any(direction in labels for labels in named))


def registered_lines(session: Session, cameras: Sequence[str]) -> dict[str, dict[str, set[str]]]:
    """camera -> line -> its direction labels, as registered now."""
    lines: dict[str, dict[str, set[str]]] = defaultdict(dict)
    statement = select(CountLine.camera_id, CountLine.name, CountLine.directions).where(
        CountLine.camera_id.in_(cameras)
    )
    for camera, name, directions in session.execute(statement):
        lines[camera][name] = set(directions.values())
    return lines


def fold_coverage(
    session: Session, grid: Grid, where: CountFilter, granularity: int, use_raw: bool
) -> Watched:
    """Seconds watched per bucket by each camera in scope."""
    if use_raw:
        start = IntervalReportRecord.interval_start_s
        moment = start - start % granularity
        camera: ColumnElement[str] = IntervalReportRecord.camera_id.expression
        statement = select(
            camera,
            moment,
            func.sum(IntervalReportRecord.coverage * IntervalReportRecord.interval_seconds),
        ).where(
            literal(granularity) % IntervalReportRecord.interval_seconds == 0,
            camera.in_(where.cameras),
            start >= grid.start,
            start < grid.end,
        )
    else:
        moment = CameraRollup.bucket_start_s.expression
        camera = CameraRollup.camera_id.expression
        statement = select(camera, moment, func.sum(CameraRollup.covered_s)).where(
            CameraRollup.granularity_s == granularity,
            camera.in_(where.cameras),
            moment >= grid.start,
            moment < grid.end,
        )
    watched: Watched = {}
    for camera_id, bucket, seconds in session.execute(statement.group_by(camera, moment)).all():
        i = grid.index(int(bucket))
        if i is not None:
            watched.setdefault(camera_id, [0.0] * len(grid))[i] += float(seconds or 0)
    return watched


RowOut = tuple[int, tuple[str | None, ...], list[tuple[str, int]], float]
"""Bucket start, key values, per-class counts, seconds watched (camera rollup only, else 0)."""


def needs_lines(where: CountFilter, group_by: Sequence[GroupField]) -> bool:
    """Lines or directions matter, so the camera-level rollup cannot answer."""
    return bool(where.line or where.direction or {"line", "direction"} & set(group_by))


def key_columns(model: Any, group_by: Sequence[GroupField]) -> list[ColumnElement[Any]]:
    """Columns for the grouped fields other than the class (camera, line, direction)."""
    names = {"camera": "camera_id", "line": "line", "direction": "direction"}
    return [getattr(model, names[f]) for f in GROUP_FIELDS[:3] if f in group_by]


def spread_key(values: Sequence[Any], group_by: Sequence[GroupField]) -> tuple[str | None, ...]:
    """Selected key values placed at their field's position, None elsewhere."""
    given = iter(values)
    return tuple(next(given) if f in group_by else None for f in GROUP_FIELDS[:3])


def rollup_count_rows(
    session: Session,
    grid: Grid,
    where: CountFilter,
    group_by: Sequence[GroupField],
    granularity: int,
) -> Iterable[RowOut]:
    """Per-class sums from the rollups: the camera rollup unless lines or directions matter."""
    by_line = needs_lines(where, group_by)
    model: Any = LineRollup if by_line else CameraRollup
    classes = [where.vehicle_class] if where.vehicle_class else list(VEHICLE_CLASSES)
    keys = key_columns(model, group_by)
    moment = model.bucket_start_s
    seconds = literal(0.0) if by_line else func.sum(CameraRollup.covered_s)
    statement: Select[Any] = select(
        moment, *keys, seconds, *[func.sum(getattr(model, CLASS_COLUMNS[c])) for c in classes]
    ).where(
        model.granularity_s == granularity,
        model.camera_id.in_(where.cameras),
        moment >= grid.start,
        moment < grid.end,
    )
    if where.line:
        statement = statement.where(model.line == where.line)
    if where.direction:
        statement = statement.where(model.direction == where.direction)
    for row in session.execute(statement.group_by(moment, *keys)):
        values = list(row)
        sums = values[2 + len(keys) :]
        yield (
            int(values[0]),
            spread_key(values[1 : 1 + len(keys)], group_by),
            [(c, int(n or 0)) for c, n in zip(classes, sums, strict=True)],
            float(values[1 + len(keys)] or 0),
        )


def within_reports(
    statement: Select[Any], rows: Any, cameras: Sequence[str], grid: Grid, granularity: int
) -> Select[Any]:
    """Per-report rows (count or zone rows) joined to their interval report, kept where the
    report's interval divides ``granularity`` and lies in ``cameras`` and inside the grid."""
    start = rows.interval_start_s
    return statement.join(
        IntervalReportRecord,
        and_(
            IntervalReportRecord.camera_id == rows.camera_id,
            IntervalReportRecord.interval_start_s == start,
        ),
    ).where(
        literal(granularity) % IntervalReportRecord.interval_seconds == 0,
        rows.camera_id.in_(cameras),
        start >= grid.start,
        start < grid.end,
    )


def raw_count_rows(
    session: Session,
    grid: Grid,
    where: CountFilter,
    group_by: Sequence[GroupField],
    granularity: int,
) -> Iterable[RowOut]:
    """Per-class sums straight from the count rows (1-minute buckets, benchmark baseline)."""
    start = CountRecord.interval_start_s
    moment = start - start % granularity
    keys = key_columns(CountRecord, group_by)
    statement = within_reports(
        select(moment, *keys, CountRecord.vehicle_class, func.sum(CountRecord.count)),
        CountRecord,
        where.cameras,
        grid,
        granularity,
    )
    for column, value in (
        (CountRecord.line, where.line),
        (CountRecord.direction, where.direction),
        (CountRecord.vehicle_class, where.vehicle_class),
    ):
        if value:
            statement = statement.where(column == value)
    for row in session.execute(statement.group_by(moment, *keys, CountRecord.vehicle_class)):
        values = list(row)
        yield (
            int(values[0]),
            spread_key(values[1 : 1 + len(keys)], group_by),
            [(str(values[-2]), int(values[-1] or 0))],
            0.0,
        )
