"""movement rollups (turning movements, issue 11)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:30:00
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLASSES = ("bicycle", "car", "motorcycle", "bus", "truck")
GRANULARITIES_S = (900, 3600)
TABLES = {
    "movement_rollups": ("movement_rows", ("origin", "destination")),
    "unmatched_rollups": ("unmatched_rows", ("gate",)),
}
COVERAGE = "movement_coverage_rollups"
MIN_GATES = 2
"""As api.services.rollups: a worker counts movements with two or more lines (gates)."""


def upgrade() -> None:
    """Create the rollups and fill them from the movement rows and reports already stored."""
    create_coverage()
    for table, (_, keys) in TABLES.items():
        op.create_table(
            table,
            sa.Column("granularity_s", sa.Integer(), nullable=False),
            sa.Column("camera_id", sa.String(length=32), nullable=False),
            sa.Column("bucket_start_s", sa.BigInteger(), nullable=False),
            *(sa.Column(key, sa.String(length=32), nullable=False) for key in keys),
            *(sa.Column(f"n_{c}", sa.Integer(), nullable=False) for c in CLASSES),
            sa.PrimaryKeyConstraint(
                "granularity_s", "camera_id", "bucket_start_s", *keys, name=op.f(f"pk_{table}")
            ),
        )
    reports = sa.table(
        "interval_reports",
        sa.column("camera_id"),
        sa.column("interval_start_s"),
        sa.column("interval_seconds"),
    )
    for table, (source, keys) in TABLES.items():
        rows = sa.table(
            source,
            *(sa.column(k) for k in ("camera_id", "interval_start_s", "vehicle_class", "count")),
            *(sa.column(k) for k in keys),
        )
        names = [
            "granularity_s",
            "camera_id",
            "bucket_start_s",
            *keys,
            *(f"n_{c}" for c in CLASSES),
        ]
        target = sa.table(table, *(sa.column(name) for name in names))
        for granularity in GRANULARITIES_S:
            bucket = rows.c.interval_start_s - rows.c.interval_start_s % granularity
            sums = [
                sa.func.sum(sa.case((rows.c.vehicle_class == c, rows.c["count"]), else_=0))
                for c in CLASSES
            ]
            selected = (
                sa.select(
                    sa.literal(granularity),
                    rows.c.camera_id,
                    bucket,
                    *(rows.c[k] for k in keys),
                    *sums,
                )
                .join_from(
                    rows,
                    reports,
                    sa.and_(
                        reports.c.camera_id == rows.c.camera_id,
                        reports.c.interval_start_s == rows.c.interval_start_s,
                    ),
                )
                .where(sa.literal(granularity) % reports.c.interval_seconds == 0)
                .group_by(rows.c.camera_id, bucket, *(rows.c[k] for k in keys))
            )
            op.execute(target.insert().from_select(names, selected))
    fill_coverage()


def create_coverage() -> None:
    """Seconds per bucket in which a camera watched movements (not every report does)."""
    op.create_table(
        COVERAGE,
        sa.Column("granularity_s", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("bucket_start_s", sa.BigInteger(), nullable=False),
        sa.Column("covered_s", sa.Float(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "granularity_s", "camera_id", "bucket_start_s", name=op.f(f"pk_{COVERAGE}")
        ),
    )


def gate_counts() -> tuple[dict[tuple[str, int], int], dict[str, int]]:
    """Lines per stored (camera, version), and per camera those of its registration (the
    oldest stored version, else its registry entry)."""
    bind = op.get_bind()
    configs = sa.table(
        "camera_configs", sa.column("camera_id"), sa.column("version"), sa.column("setup", sa.JSON)
    )
    stored = {
        (camera, int(version)): len((body or {}).get("lines") or [])
        for camera, version, body in bind.execute(sa.select(*configs.c))
    }
    lines = sa.table("count_lines", sa.column("camera_id"))
    counted = sa.select(lines.c.camera_id, sa.func.count()).group_by(lines.c.camera_id)
    registered = {camera: int(n) for camera, n in bind.execute(counted)}
    for camera, version in sorted(stored, reverse=True):
        registered[camera] = stored[(camera, version)]  # ends on the oldest version
    return stored, registered


def fill_coverage() -> None:
    """Movement coverage from the v2 reports that watched movements: they carry movement
    rows, or their set-up (as ingest resolves it) has two or more lines."""
    bind = op.get_bind()
    stored, registered = gate_counts()
    carrying = set()
    for source in ("movement_rows", "unmatched_rows"):
        rows = sa.table(source, sa.column("camera_id"), sa.column("interval_start_s"))
        carrying |= set(bind.execute(sa.select(rows.c.camera_id, rows.c.interval_start_s)))
    names = ("camera_id", "interval_start_s", "interval_seconds", "coverage", "config_version")
    reports = sa.table(
        "interval_reports", *(sa.column(k) for k in names), sa.column("payload", sa.JSON)
    )
    selected = sa.select(*(reports.c[k] for k in names)).where(
        reports.c.payload["schema_version"].as_integer() >= 2
    )
    totals: defaultdict[tuple[int, str, int], list[float]] = defaultdict(lambda: [0.0, 0])
    for camera, start, seconds, coverage, version in bind.execute(selected):
        gates = stored.get((camera, version), registered.get(camera, 0))
        if (camera, start) not in carrying and gates < MIN_GATES:
            continue
        for granularity in GRANULARITIES_S:
            if granularity % seconds == 0:
                total = totals[(granularity, camera, start - start % granularity)]
                total[0] += coverage * seconds
                total[1] += 1
    target = sa.table(
        COVERAGE,
        *(
            sa.column(k)
            for k in ("granularity_s", "camera_id", "bucket_start_s", "covered_s", "reports")
        ),
    )
    values = [
        {
            "granularity_s": granularity,
            "camera_id": camera,
            "bucket_start_s": bucket,
            "covered_s": covered,
            "reports": int(n),
        }
        for (granularity, camera, bucket), (covered, n) in sorted(totals.items())
    ]
    if values:
        op.bulk_insert(target, values)


def downgrade() -> None:
    """Drop the rollups (the movement rows and reports they came from stay)."""
    for table in (*TABLES, COVERAGE):
        op.drop_table(table)
