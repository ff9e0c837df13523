"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 12:00:34.605044
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "camera_rollups",
        sa.Column("granularity_s", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("bucket_start_s", sa.BigInteger(), nullable=False),
        sa.Column("covered_s", sa.Float(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("n_bicycle", sa.Integer(), nullable=False),
        sa.Column("n_car", sa.Integer(), nullable=False),
        sa.Column("n_motorcycle", sa.Integer(), nullable=False),
        sa.Column("n_bus", sa.Integer(), nullable=False),
        sa.Column("n_truck", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "granularity_s", "camera_id", "bucket_start_s", name=op.f("pk_camera_rollups")
        ),
    )
    with op.batch_alter_table("camera_rollups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_camera_rollups_bucket",
            [
                "granularity_s",
                "bucket_start_s",
                "camera_id",
                "covered_s",
                "n_bicycle",
                "n_car",
                "n_motorcycle",
                "n_bus",
                "n_truck",
            ],
            unique=False,
        )

    op.create_table(
        "line_rollups",
        sa.Column("granularity_s", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("bucket_start_s", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=32), nullable=False),
        sa.Column("n_bicycle", sa.Integer(), nullable=False),
        sa.Column("n_car", sa.Integer(), nullable=False),
        sa.Column("n_motorcycle", sa.Integer(), nullable=False),
        sa.Column("n_bus", sa.Integer(), nullable=False),
        sa.Column("n_truck", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "granularity_s",
            "camera_id",
            "bucket_start_s",
            "line",
            "direction",
            name=op.f("pk_line_rollups"),
        ),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("road", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("site_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("reported_config_version", sa.Integer(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_report_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_cameras_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
    )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cameras_site_id"), ["site_id"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("camera_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_api_tokens_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_camera_id"), ["camera_id"], unique=False)

    op.create_table(
        "count_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("directions", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_count_lines_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_count_lines")),
        sa.UniqueConstraint("camera_id", "name", name=op.f("uq_count_lines_camera_id")),
    )
    op.create_table(
        "device_health",
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uptime_s", sa.Float(), nullable=False),
        sa.Column("outbox_backlog", sa.Integer(), nullable=False),
        sa.Column("dropped_reports", sa.Integer(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("streams", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_device_health_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_device_health")),
    )
    op.create_table(
        "interval_reports",
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("interval_start_s", sa.BigInteger(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("frames_processed", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("reconnects", sa.Integer(), nullable=False),
        sa.Column("stalls", sa.Integer(), nullable=False),
        sa.Column("dropped_reports", sa.Integer(), nullable=False),
        sa.Column("outbox_backlog", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_interval_reports_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_interval_reports")),
        sa.UniqueConstraint(
            "camera_id", "interval_start_s", name=op.f("uq_interval_reports_camera_id")
        ),
    )
    op.create_table(
        "zones",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("lanes", sa.Integer(), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_zones_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zones")),
        sa.UniqueConstraint("camera_id", "name", name=op.f("uq_zones_camera_id")),
    )
    op.create_table(
        "count_rows",
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("interval_start_s", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=32), nullable=False),
        sa.Column("vehicle_class", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id", "interval_start_s"],
            ["interval_reports.camera_id", "interval_reports.interval_start_s"],
            name=op.f("fk_count_rows_camera_id_interval_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "camera_id",
            "interval_start_s",
            "line",
            "direction",
            "vehicle_class",
            name=op.f("pk_count_rows"),
        ),
    )
    op.create_table(
        "zone_rows",
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("interval_start_s", sa.BigInteger(), nullable=False),
        sa.Column("zone", sa.String(length=32), nullable=False),
        sa.Column("mean_vehicles", sa.Float(), nullable=False),
        sa.Column("max_vehicles", sa.Integer(), nullable=False),
        sa.Column("occupancy_time", sa.Float(), nullable=False),
        sa.Column("occupancy_area", sa.Float(), nullable=False),
        sa.Column("mean_speed_kmh", sa.Float(), nullable=True),
        sa.Column("p85_speed_kmh", sa.Float(), nullable=True),
        sa.Column("speed_histogram", sa.JSON(), nullable=True),
        sa.Column("stopped_share", sa.Float(), nullable=False),
        sa.Column("queue_vehicles", sa.Float(), nullable=False),
        sa.Column("queue_m", sa.Float(), nullable=True),
        sa.Column("density_veh_km_lane", sa.Float(), nullable=True),
        sa.Column("los", sa.String(length=1), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id", "interval_start_s"],
            ["interval_reports.camera_id", "interval_reports.interval_start_s"],
            name=op.f("fk_zone_rows_camera_id_interval_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("camera_id", "interval_start_s", "zone", name=op.f("pk_zone_rows")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("zone_rows")
    op.drop_table("count_rows")
    op.drop_table("zones")
    op.drop_table("interval_reports")
    op.drop_table("device_health")
    op.drop_table("count_lines")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_camera_id"))

    op.drop_table("api_tokens")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cameras_site_id"))

    op.drop_table("cameras")
    op.drop_table("sites")
    op.drop_table("line_rollups")
    with op.batch_alter_table("camera_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_camera_rollups_bucket")

    op.drop_table("camera_rollups")
