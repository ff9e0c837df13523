"""Observations: the published rollup cells, one per Datastream and bucket, as a SQL view.

The values follow the open-data rule in api/services/disclosure.py exactly (see
docs/api-planner.md, "Small counts"): a 15-minute observation is a finest cell; an hour whose
15-minute buckets hold all its reports is the sum of its published quarters, any other hour
its own finest cell; a day is the sum of its published hours; the all-classes property is the
sum of the published classes. With suppression on, only ended buckets are published and a
withheld cell reads `result: null` with `resultQuality.suppressed: true`. A bucket nobody
watched has no observation at all: a gap, never a zero.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import Subquery

from api.models import CameraRollup, LineRollup
from api.services.rollups import CLASS_COLUMNS
from api.services.sta.context import Context, Hints
from api.services.sta.views import (
    LEVELS,
    Expr,
    View,
    composite_id,
    hinted,
    line_keys,
    properties_table,
)
from contract import VEHICLE_CLASSES, VehicleClass

QUARTER, HOUR, DAY = 900, 3600, 86400
KEY_COLUMNS = ("camera_id", "site_id", "line", "direction")
OBSERVATION_KEY = ("camera_id", "line", "direction", "level", "property", "start_s")
"""The view columns an Observation's id is made of, in id order."""


def withheld(count: ColumnElement[int], threshold: int) -> ColumnElement[int]:
    """1 where a finest cell's count is withheld (1 to threshold - 1), else 0."""
    if not threshold:
        return literal(0)
    return case((and_(count >= 1, count < threshold), 1), else_=0)


def shown(count: ColumnElement[int], threshold: int) -> ColumnElement[int]:
    """A finest cell's count as it counts towards a sum: 0 where it is withheld."""
    if not threshold:
        return count
    return case((and_(count >= 1, count < threshold), 0), else_=count)


def bounded(column: Expr, lo: int | None, hi: int | None) -> list[Any]:
    """lo <= column < hi, each side only where given."""
    conditions = []
    if lo is not None:
        conditions.append(column >= lo)
    if hi is not None:
        conditions.append(column < hi)
    return conditions


def floor_to(moment: int | None, size: int) -> int | None:
    return None if moment is None else moment - moment % size


def end_bound(moment: int | None, size: int) -> int | None:
    """The end of the `size` bucket that holds `moment - 1`: buckets starting before `moment`
    end by then."""
    return None if moment is None else (moment - 1) - (moment - 1) % size + size


def resolved(camera: Expr, hour: Expr) -> ColumnElement[bool]:
    """Whether the hour's 15-minute buckets hold every report of the hour."""
    hours, quarters = aliased(CameraRollup), aliased(CameraRollup)
    in_hour = (
        select(hours.reports)
        .where(hours.granularity_s == HOUR, hours.camera_id == camera, hours.bucket_start_s == hour)
        .scalar_subquery()
    )
    in_quarters = (
        select(func.coalesce(func.sum(quarters.reports), 0))
        .where(
            quarters.granularity_s == QUARTER,
            quarters.camera_id == camera,
            quarters.bucket_start_s >= hour,
            quarters.bucket_start_s < hour + HOUR,
        )
        .scalar_subquery()
    )
    return in_hour == in_quarters


def class_count(rollup: Any, vehicle_class: VehicleClass) -> ColumnElement[int]:
    count: ColumnElement[int] = func.coalesce(getattr(rollup, CLASS_COLUMNS[vehicle_class]), 0)
    return count


def cell_columns(keys: Subquery, start: Expr, covered: Expr) -> list[Any]:
    return [
        *(keys.c[k] for k in KEY_COLUMNS),
        start.label("start_s"),
        covered.label("covered_s"),
    ]


def rollup_join(keys: Subquery, granularity: int, camera: Any, line: Any) -> tuple[Any, Any]:
    """The join conditions of a camera rollup and its line rollup to the line keys."""
    on_camera = and_(camera.granularity_s == granularity, camera.camera_id == keys.c.camera_id)
    on_line = and_(
        line.granularity_s == granularity,
        line.camera_id == camera.camera_id,
        line.bucket_start_s == camera.bucket_start_s,
        line.line == keys.c.line,
        line.direction == keys.c.direction,
    )
    return on_camera, on_line


def quarter_cells(ctx: Context, hints: Hints, keys: Subquery) -> View:
    """Finest cells of 15 minutes (with suppression on: only in hours they hold whole)."""
    t = ctx.threshold
    cq, lq = aliased(CameraRollup), aliased(LineRollup)
    on_camera, on_line = rollup_join(keys, QUARTER, cq, lq)
    conditions = [cq.covered_s > 0, *bounded(cq.bucket_start_s, hints.start_lo, hints.start_hi)]
    if t:
        hour = cq.bucket_start_s - cq.bucket_start_s % HOUR
        conditions += [cq.bucket_start_s + QUARTER <= ctx.now_s, resolved(cq.camera_id, hour)]
    counts = {c: class_count(lq, c) for c in VEHICLE_CLASSES}
    return (
        select(
            *cell_columns(keys, cq.bucket_start_s, cq.covered_s),
            literal(0).label("summed"),
            *(shown(counts[c], t).label(f"s_{c}") for c in VEHICLE_CLASSES),
            *(withheld(counts[c], t).label(f"w_{c}") for c in VEHICLE_CLASSES),
        )
        .select_from(keys)
        .join(cq, on_camera)
        .outerjoin(lq, on_line)
        .where(*conditions)
    )


def quarter_sums(ctx: Context, hints: Hints) -> Subquery:
    """Per camera, line, direction and hour: the sum of the published 15-minute cells and
    whether any was withheld."""
    t = ctx.threshold
    lq = aliased(LineRollup)
    hour = lq.bucket_start_s - lq.bucket_start_s % HOUR
    lo, hi = floor_to(hints.start_lo, HOUR), end_bound(hints.start_hi, HOUR)
    counts = {c: class_count(lq, c) for c in VEHICLE_CLASSES}
    return (
        select(
            lq.camera_id,
            lq.line,
            lq.direction,
            hour.label("hour"),
            *(func.sum(shown(counts[c], t)).label(f"s_{c}") for c in VEHICLE_CLASSES),
            *(func.max(withheld(counts[c], t)).label(f"w_{c}") for c in VEHICLE_CLASSES),
        )
        .where(
            lq.granularity_s == QUARTER,
            *bounded(lq.bucket_start_s, lo, hi),
            *hinted(hints, [("camera_id", lq.camera_id)]),
        )
        .group_by(lq.camera_id, lq.line, lq.direction, hour)
        .subquery()
    )


def hour_cells(ctx: Context, hints: Hints, keys: Subquery) -> View:
    """Hours: with suppression on, the sum of the published quarters where the quarters hold
    the hour, else the hour as a finest cell; only ended hours."""
    t = ctx.threshold
    ch, lh = aliased(CameraRollup), aliased(LineRollup)
    on_camera, on_line = rollup_join(keys, HOUR, ch, lh)
    conditions = [ch.covered_s > 0, *bounded(ch.bucket_start_s, hints.start_lo, hints.start_hi)]
    counts = {c: class_count(lh, c) for c in VEHICLE_CLASSES}
    statement = (
        select().select_from(keys).join(ch, on_camera).outerjoin(lh, on_line).where(*conditions)
    )
    if not t:
        return statement.add_columns(
            *cell_columns(keys, ch.bucket_start_s, ch.covered_s),
            literal(0).label("summed"),
            *(counts[c].label(f"s_{c}") for c in VEHICLE_CLASSES),
            *(literal(0).label(f"w_{c}") for c in VEHICLE_CLASSES),
        )
    sums = quarter_sums(ctx, hints)
    whole = resolved(ch.camera_id, ch.bucket_start_s)
    on_sums = and_(
        sums.c.camera_id == keys.c.camera_id,
        sums.c.line == keys.c.line,
        sums.c.direction == keys.c.direction,
        sums.c.hour == ch.bucket_start_s,
    )
    return (
        statement.outerjoin(sums, on_sums)
        .where(ch.bucket_start_s + HOUR <= ctx.now_s)
        .add_columns(
            *cell_columns(keys, ch.bucket_start_s, ch.covered_s),
            case((whole, 1), else_=0).label("summed"),
            *(
                case((whole, func.coalesce(sums.c[f"s_{c}"], 0)), else_=shown(counts[c], t)).label(
                    f"s_{c}"
                )
                for c in VEHICLE_CLASSES
            ),
            *(
                case(
                    (whole, func.coalesce(sums.c[f"w_{c}"], 0)), else_=withheld(counts[c], t)
                ).label(f"w_{c}")
                for c in VEHICLE_CLASSES
            ),
        )
    )


def day_cells(ctx: Context, hints: Hints, keys: Subquery) -> View:
    """UTC days: the sum of the day's published hours (with suppression on, ended days)."""
    lo, hi = floor_to(hints.start_lo, DAY), end_bound(hints.start_hi, DAY)
    hours = hour_cells(ctx, Hints(hints.values, lo, hi), keys).subquery()
    day = hours.c.start_s - hours.c.start_s % DAY
    statement = select(
        *(hours.c[k] for k in KEY_COLUMNS),
        day.label("start_s"),
        func.sum(hours.c.covered_s).label("covered_s"),
        literal(1).label("summed"),
        *(func.sum(hours.c[f"s_{c}"]).label(f"s_{c}") for c in VEHICLE_CLASSES),
        *(func.max(hours.c[f"w_{c}"]).label(f"w_{c}") for c in VEHICLE_CLASSES),
    ).group_by(*(hours.c[k] for k in KEY_COLUMNS), day)
    if ctx.threshold:
        statement = statement.having(day + DAY <= ctx.now_s)
    return statement


CELLS = {"15min": quarter_cells, "1h": hour_cells, "1d": day_cells}


def published(cells: Subquery, level: str, seconds: int, hints: Hints) -> View:
    """One observation per cell and observed property: the property's published count."""
    pr = properties_table(hints)
    prop = pr.c.property
    every_class = sum((cells.c[f"s_{c}"] for c in VEHICLE_CLASSES), literal(0))
    any_withheld = sum((cells.c[f"w_{c}"] for c in VEHICLE_CLASSES), literal(0))
    count = case(*((prop == c, cells.c[f"s_{c}"]) for c in VEHICLE_CLASSES), else_=every_class)
    hidden = case(
        *((prop == c, cells.c[f"w_{c}"]) for c in VEHICLE_CLASSES),
        else_=case((any_withheld > 0, 1), else_=0),
    )
    coverage = case((cells.c.covered_s >= seconds, 1.0), else_=cells.c.covered_s / float(seconds))
    return (
        select(
            cells.c.camera_id,
            cells.c.site_id,
            cells.c.line,
            cells.c.direction,
            literal(level).label("level"),
            prop.label("property"),
            cells.c.start_s,
            (cells.c.start_s + seconds).label("end_s"),
            case((and_(hidden == 1, count == 0), null()), else_=count).label("result"),
            cast(hidden, Boolean).label("suppressed"),
            coverage.label("coverage"),
            cells.c.summed,
        )
        .select_from(cells)
        .join(pr, true())
    )


def observations(ctx: Context, hints: Hints) -> View:
    """Every published observation the hints allow (the hints only prune)."""
    keys = line_keys(hints)
    branches = [
        published(CELLS[level](ctx, hints, keys).subquery(), level, seconds, hints)
        for level, seconds, _ in LEVELS
        if hints.allows("level", level)
    ]
    if not branches:
        branches = [
            published(quarter_cells(ctx, hints, keys).where(false()).subquery(), "15min", 1, hints)
        ]
    cells = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery("observed")
    return select(
        composite_id(*(cells.c[k] for k in OBSERVATION_KEY)).label("id"),
        *cells.c,
    )
