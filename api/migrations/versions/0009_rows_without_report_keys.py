"""A report's rows lose their foreign key to it (issue 12)

PostgreSQL checked the key for every count, zone, movement and unmatched row against the
partitioned report table: during a 24-hour backlog that check was two thirds of the
database's work per report (0.12 ms of CPU with it, 0.04 without). Ingest writes the rows only
with their report, in one transaction, and deletes them with it (site deletion and retention
do, and PostgreSQL drops a month's partitions of all five tables together), so the key
guarded nothing that the code does not. The report keeps its key to its camera.

On PostgreSQL this drops four constraints (their partitions' go with them); SQLite rebuilds
the four tables, one copy of their rows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_TABLES = ("count_rows", "zone_rows", "movement_rows", "unmatched_rows")
REPORT_KEY = ["camera_id", "interval_start_s"]


def upgrade() -> None:
    """Apply this revision (SQLite rebuilds each table; PostgreSQL drops the constraints)."""
    for table in ROW_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_camera_id_interval_reports", type_="foreignkey")


def downgrade() -> None:
    """Revert this revision: every row must have its report again."""
    for table in ROW_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(
                f"fk_{table}_camera_id_interval_reports",
                "interval_reports",
                REPORT_KEY,
                REPORT_KEY,
                ondelete="CASCADE",
            )
