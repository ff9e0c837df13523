"""Pre-aggregated rollups, maintained at ingest so long-range queries read few rows.

A report goes into a rollup bucket only when its interval divides the bucket, so the bucket
holds it whole (a 30-minute or 10-minute report is in the hourly rollup but in no 15-minute
bucket): a bucket's count then always
belongs to the coverage it claims, and a coarse interval shows up as a gap, never as a guess.

Movements have their own coverage: only a v2 report counted with two or more lines (the
worker's gates) watched movements, so a bin of version-1 or single-line reports is a movement
gap, not zero movements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.models import (
    CameraRollup,
    LineRollup,
    MovementCoverageRollup,
    MovementRollup,
    UnmatchedRollup,
)
from contract import VEHICLE_CLASSES, IntervalReport, VehicleClass

ROLLUP_GRANULARITIES_S: tuple[int, ...] = (900, 3600)
CLASS_COLUMNS: dict[VehicleClass, str] = {c: f"n_{c}" for c in VEHICLE_CLASSES}
MIN_GATES = 2
"""The worker counts movements when its set-up has at least this many lines (its gates)."""


def bucket_start(start_s: int, granularity_s: int) -> int:
    """Start of the UTC-aligned bucket holding `start_s`."""
    return start_s - start_s % granularity_s


def rollup_window(
    model: Any, granularity: int, cameras: Sequence[str], start: int, end: int
) -> tuple[ColumnElement[bool], ...]:
    """Conditions for the rollup rows of `cameras` at one granularity with buckets in
    [start, end): every reader of a rollup table selects this way."""
    return (
        model.granularity_s == granularity,
        model.camera_id.in_(cameras),
        model.bucket_start_s >= start,
        model.bucket_start_s < end,
    )


def class_counts() -> dict[str, int]:
    """A zero per class column (a new rollup row)."""
    return dict.fromkeys(CLASS_COLUMNS.values(), 0)


def watch() -> dict[str, Any]:
    """A new coverage row: nothing watched yet."""
    return {"covered_s": 0.0, "reports": 0}


@dataclass
class RollupDelta:
    """Increments for a set of rollup rows, summed in memory before one upsert per table."""

    lines: defaultdict[tuple[int, str, int, str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(class_counts)
    )
    movements: defaultdict[tuple[int, str, int, str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(class_counts)
    )
    unmatched: defaultdict[tuple[int, str, int, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(class_counts)
    )
    cameras: defaultdict[tuple[int, str, int], dict[str, Any]] = field(
        default_factory=lambda: defaultdict(lambda: watch() | class_counts())
    )
    movement_watch: defaultdict[tuple[int, str, int], dict[str, Any]] = field(
        default_factory=lambda: defaultdict(watch)
    )
    """Coverage of the reports that watched movements."""

    def add(self, report: IntervalReport, gates: int) -> None:
        """Fold one report into every rollup granularity that can hold it whole; `gates` is
        how many lines the set-up it was counted with has (ingest knows its layout)."""
        start_s = report.interval_start_s
        covered_s = report.coverage * report.interval_seconds
        buckets = tuple(
            (granularity, bucket_start(start_s, granularity))
            for granularity in ROLLUP_GRANULARITIES_S
            if not granularity % report.interval_seconds
        )
        carries = bool(report.movements or report.unmatched)
        watches = report.schema_version >= 2 and (carries or gates >= MIN_GATES)
        for granularity, bucket in buckets:
            if watches:
                watched = self.movement_watch[(granularity, report.camera_id, bucket)]
                watched["covered_s"] += covered_s
                watched["reports"] += 1
            camera_row = self.cameras[(granularity, report.camera_id, bucket)]
            camera_row["covered_s"] += covered_s
            camera_row["reports"] += 1
            for row in report.counts:
                column = CLASS_COLUMNS[row.vehicle_class]
                key = (granularity, report.camera_id, bucket, row.line, row.direction)
                self.lines[key][column] += row.count
                camera_row[column] += row.count
            for move in report.movements:
                key = (granularity, report.camera_id, bucket, move.origin, move.destination)
                self.movements[key][CLASS_COLUMNS[move.vehicle_class]] += move.count
            for single in report.unmatched:
                gate_key = (granularity, report.camera_id, bucket, single.gate)
                self.unmatched[gate_key][CLASS_COLUMNS[single.vehicle_class]] += single.count

    def apply(self, session: Session) -> None:
        """Add the increments to the stored rollups (insert or add, atomically per row)."""
        line_keys = ("granularity_s", "camera_id", "bucket_start_s", "line", "direction")
        camera_keys = ("granularity_s", "camera_id", "bucket_start_s")
        upsert_add(session, LineRollup.__table__, line_keys, rows_of(line_keys, self.lines.items()))
        upsert_add(
            session, CameraRollup.__table__, camera_keys, rows_of(camera_keys, self.cameras.items())
        )
        move_keys = (*camera_keys, "origin", "destination")
        upsert_add(
            session, MovementRollup.__table__, move_keys, rows_of(move_keys, self.movements.items())
        )
        gate_keys = (*camera_keys, "gate")
        upsert_add(
            session,
            UnmatchedRollup.__table__,
            gate_keys,
            rows_of(gate_keys, self.unmatched.items()),
        )
        upsert_add(
            session,
            MovementCoverageRollup.__table__,
            camera_keys,
            rows_of(camera_keys, self.movement_watch.items()),
        )


def rows_of(
    keys: Sequence[str], items: Iterable[tuple[tuple[Any, ...], dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Key tuples and value dicts as insert rows."""
    return [dict(zip(keys, key, strict=True)) | values for key, values in items]


def upsert_add(
    session: Session, table: Any, keys: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE SET col = col + excluded.col (SQLite and PostgreSQL).

    Rows go in key order: two transactions adding to the same rows (two groups of one
    camera's backlog) then lock them in the same order, and cannot deadlock.
    """
    if not rows:
        return
    assert isinstance(table, Table)
    added = tuple(name for name in rows[0] if name not in keys)
    in_order = sorted(rows, key=lambda row: tuple(row[name] for name in keys))
    if session.get_bind().dialect.name == "postgresql":
        columns = (*keys, *added)
        arrays = {name: [row[name] for row in in_order] for name in columns}
        session.execute(adding_upsert_of_arrays(table, tuple(keys), added), arrays)
    else:
        session.execute(adding_upsert(table, tuple(keys), added), in_order)


@cache
def adding_upsert(table: Table, keys: tuple[str, ...], added: tuple[str, ...]) -> Any:
    """The upsert of `upsert_add` for SQLite, one execution a row, built once per table and
    column set: building its ``excluded`` columns costs more than running it."""
    return adding(sqlite.insert(table), keys, added)


@cache
def adding_upsert_of_arrays(table: Table, keys: tuple[str, ...], added: tuple[str, ...]) -> Any:
    """The upsert of `upsert_add` for PostgreSQL: every row in one statement, one array a
    column (``unnest`` keeps their order), not one execution a row."""
    columns = (*keys, *added)
    arrays = [cast(bindparam(name), postgresql.ARRAY(table.c[name].type)) for name in columns]
    source = func.unnest(*arrays).table_valued(*columns).render_derived()
    rows = select(*(source.c[name] for name in columns))
    return adding(postgresql.insert(table).from_select(columns, rows), keys, added)


def adding(
    statement: postgresql.Insert | sqlite.Insert, keys: tuple[str, ...], added: tuple[str, ...]
) -> Any:
    """`statement`, adding its `added` columns to those of a row of the same `keys`."""
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: statement.table.c[name] + statement.excluded[name] for name in added},
    )
