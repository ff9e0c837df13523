"""commissioning: camera configuration versions, scene maps, validation sessions, movements

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:41:06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""

    op.create_table(
        "camera_configs",
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("setup", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_camera_configs_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("camera_id", "version", name=op.f("pk_camera_configs")),
    )
    op.create_table(
        "scene_maps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_scene_maps_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scene_maps")),
    )
    with op.batch_alter_table("scene_maps", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scene_maps_camera_window", ["camera_id", "window_end"], unique=False
        )

    op.create_table(
        "validation_sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("starts_at_s", sa.BigInteger(), nullable=False),
        sa.Column("ends_at_s", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("manual", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_validation_sessions_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_sessions")),
    )
    with op.batch_alter_table("validation_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_validation_sessions_camera", ["camera_id", "starts_at_s"], unique=False
        )

    op.create_table(
        "movement_rows",
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("interval_start_s", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("vehicle_class", sa.String(length=16), nullable=False),
        sa.Column("movement", sa.String(length=8), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id", "interval_start_s"],
            ["interval_reports.camera_id", "interval_reports.interval_start_s"],
            name=op.f("fk_movement_rows_camera_id_interval_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "camera_id",
            "interval_start_s",
            "origin",
            "destination",
            "vehicle_class",
            name=op.f("pk_movement_rows"),
        ),
    )
    op.create_table(
        "unmatched_rows",
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("interval_start_s", sa.BigInteger(), nullable=False),
        sa.Column("gate", sa.String(length=32), nullable=False),
        sa.Column("vehicle_class", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id", "interval_start_s"],
            ["interval_reports.camera_id", "interval_reports.interval_start_s"],
            name=op.f("fk_unmatched_rows_camera_id_interval_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "camera_id", "interval_start_s", "gate", "vehicle_class", name=op.f("pk_unmatched_rows")
        ),
    )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scene_map_requested_at", sa.DateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("device_health", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_pull", sa.JSON(), nullable=True))

    with op.batch_alter_table("interval_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("analysed_fps", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("detection_share", sa.Float(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""

    with op.batch_alter_table("interval_reports", schema=None) as batch_op:
        batch_op.drop_column("detection_share")
        batch_op.drop_column("analysed_fps")
        batch_op.drop_column("config_version")

    with op.batch_alter_table("device_health", schema=None) as batch_op:
        batch_op.drop_column("config_pull")

    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("scene_map_requested_at")

    op.drop_table("unmatched_rows")
    op.drop_table("movement_rows")
    with op.batch_alter_table("validation_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_validation_sessions_camera")

    op.drop_table("validation_sessions")
    with op.batch_alter_table("scene_maps", schema=None) as batch_op:
        batch_op.drop_index("ix_scene_maps_camera_window")

    op.drop_table("scene_maps")
    op.drop_table("camera_configs")
