"""PostgreSQL range partitioning of raw interval rows and retention (issue 12)

The five raw tables become range-partitioned by ``interval_start_s`` on PostgreSQL: one
partition per UTC month that holds rows (``<table>_pYYYY_MM``) and a default partition each;
api/services/partitions.py creates the months ahead and drops them under retention. Rows are
copied into the new tables, so this takes as long as one copy of the raw rows.

A partitioned table's unique keys must hold the partition key, so the report table's primary
key becomes its natural key ``(camera_id, interval_start_s)`` (already unique, and what the row
tables point at); ``report_id`` is derived from exactly that pair (contract), so it stays
unique. SQLite keeps its single tables.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 16:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORT_KEY = ("camera_id", "interval_start_s")
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "interval_reports": REPORT_KEY,
    "count_rows": (*REPORT_KEY, "line", "direction", "vehicle_class"),
    "zone_rows": (*REPORT_KEY, "zone"),
    "movement_rows": (*REPORT_KEY, "origin", "destination", "vehicle_class"),
    "unmatched_rows": (*REPORT_KEY, "gate", "vehicle_class"),
}
"""Report table first: the row tables reference it."""
ROW_TABLES = tuple(PRIMARY_KEYS)[1:]


def months_holding_rows() -> list[tuple[int, int]]:
    """(year, month) of every UTC month from the oldest stored report to the newest."""
    low, high = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT min(interval_start_s), max(interval_start_s) FROM interval_reports"
        )
        .one()
    )
    if low is None:
        return []
    first, last = (datetime.fromtimestamp(s, UTC) for s in (low, high))
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = year + month // 12, month % 12 + 1
    return months


def month_bounds(year: int, month: int) -> tuple[int, int]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def add_keys(table: str) -> None:
    """The primary key and foreign keys, under the names the plain tables had."""
    columns = ", ".join(PRIMARY_KEYS[table])
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({columns})")
    if table == "interval_reports":
        op.execute(
            "ALTER TABLE interval_reports ADD CONSTRAINT fk_interval_reports_camera_id_cameras"
            " FOREIGN KEY (camera_id) REFERENCES cameras (id) ON DELETE CASCADE"
        )
    else:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_camera_id_interval_reports"
            " FOREIGN KEY (camera_id, interval_start_s)"
            " REFERENCES interval_reports (camera_id, interval_start_s) ON DELETE CASCADE"
        )


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    months = months_holding_rows()
    for table in PRIMARY_KEYS:
        op.execute(
            f"CREATE TABLE {table}_partitioned (LIKE {table} INCLUDING DEFAULTS)"
            " PARTITION BY RANGE (interval_start_s)"
        )
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table}_partitioned DEFAULT")
        for year, month in months:
            low, high = month_bounds(year, month)
            op.execute(
                f"CREATE TABLE {table}_p{year:04d}_{month:02d} PARTITION OF {table}_partitioned"
                f" FOR VALUES FROM ({low}) TO ({high})"
            )
        op.execute(f"INSERT INTO {table}_partitioned SELECT * FROM {table}")  # noqa: S608
    for table in reversed(PRIMARY_KEYS):
        op.execute(f"DROP TABLE {table}")
    for table in PRIMARY_KEYS:
        op.execute(f"ALTER TABLE {table}_partitioned RENAME TO {table}")
        add_keys(table)


def downgrade() -> None:
    """Revert this revision: plain tables again, with every row."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in PRIMARY_KEYS:
        op.execute(f"CREATE TABLE {table}_plain (LIKE {table} INCLUDING DEFAULTS)")
        op.execute(f"INSERT INTO {table}_plain SELECT * FROM {table}")  # noqa: S608
    for table in reversed(PRIMARY_KEYS):
        op.execute(f"DROP TABLE {table} CASCADE")
    for table in PRIMARY_KEYS:
        op.execute(f"ALTER TABLE {table}_plain RENAME TO {table}")
    op.execute(
        "ALTER TABLE interval_reports ADD CONSTRAINT pk_interval_reports PRIMARY KEY (report_id)"
    )
    op.execute(
        "ALTER TABLE interval_reports ADD CONSTRAINT uq_interval_reports_camera_id"
        " UNIQUE (camera_id, interval_start_s)"
    )
    op.execute(
        "ALTER TABLE interval_reports ADD CONSTRAINT fk_interval_reports_camera_id_cameras"
        " FOREIGN KEY (camera_id) REFERENCES cameras (id) ON DELETE CASCADE"
    )
    for table in ROW_TABLES:
        columns = ", ".join(PRIMARY_KEYS[table])
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({columns})")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_camera_id_interval_reports"
            " FOREIGN KEY (camera_id, interval_start_s)"
            " REFERENCES interval_reports (camera_id, interval_start_s) ON DELETE CASCADE"
        )
