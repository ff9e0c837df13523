"""Pre-aggregated rollups, maintained at ingest so long-range queries read few rows.

A report goes into a rollup bucket only when its interval divides the bucket, so the bucket
holds it whole (a 30-minute or 10-minute report is in the hourly rollup but in no 15-minute
bucket): a bucket's count then always
belongs to the coverage it claims, and a coarse interval shows up as a gap, never as a guess.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api.models import CameraRollup, LineRollup
from contract import VEHICLE_CLASSES, IntervalReport, VehicleClass

ROLLUP_GRANULARITIES_S: tuple[int, ...] = (900, 3600)
CLASS_COLUMNS: dict[VehicleClass, str] = {c: f"n_{c}" for c in VEHICLE_CLASSES}


def bucket_start(start_s: int, granularity_s: int) -> int:
    """Start of the UTC-aligned bucket holding `start_s`."""
    return start_s - start_s % granularity_s


@dataclass
class RollupDelta:
    """Increments for a set of rollup rows, summed in memory before one upsert per table."""

    lines: defaultdict[tuple[int, str, int, str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(CLASS_COLUMNS.values(), 0))
    )
    cameras: defaultdict[tuple[int, str, int], dict[str, Any]] = field(
        default_factory=lambda: defaultdict(
            lambda: {"covered_s": 0.0, "reports": 0} | dict.fromkeys(CLASS_COLUMNS.values(), 0)
        )
    )

    def add(self, report: IntervalReport) -> None:
        """Fold one report into every rollup granularity that can hold it whole."""
        start_s = int(report.interval_start.timestamp())
        for granularity in ROLLUP_GRANULARITIES_S:
            if granularity % report.interval_seconds:
                continue
            bucket = bucket_start(start_s, granularity)
            camera_row = self.cameras[(granularity, report.camera_id, bucket)]
            camera_row["covered_s"] += report.coverage * report.interval_seconds
            camera_row["reports"] += 1
            for row in report.counts:
                column = CLASS_COLUMNS[row.vehicle_class]
                key = (granularity, report.camera_id, bucket, row.line, row.direction)
                self.lines[key][column] += row.count
                camera_row[column] += row.count

    def apply(self, session: Session) -> None:
        """Add the increments to the stored rollups (insert or add, atomically per row)."""
        line_keys = ("granularity_s", "camera_id", "bucket_start_s", "line", "direction")
        camera_keys = ("granularity_s", "camera_id", "bucket_start_s")
        upsert_add(session, LineRollup.__table__, line_keys, rows_of(line_keys, self.lines.items()))
        upsert_add(
            session, CameraRollup.__table__, camera_keys, rows_of(camera_keys, self.cameras.items())
        )


def rows_of(
    keys: Sequence[str], items: Iterable[tuple[tuple[Any, ...], dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Key tuples and value dicts as insert rows."""
    return [dict(zip(keys, key, strict=True)) | values for key, values in items]


def upsert_add(
    session: Session, table: Any, keys: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE SET col = col + excluded.col (SQLite and PostgreSQL)."""
    if not rows:
        return
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    added = [name for name in rows[0] if name not in keys]
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in added},
    )
    session.execute(statement, rows)
