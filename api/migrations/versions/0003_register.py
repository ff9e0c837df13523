"""public camera register: listed sites, bytes received per report and camera hour, worker software

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("listed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("interval_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wire_bytes", sa.Integer(), nullable=True))
    with op.batch_alter_table("device_health", schema=None) as batch_op:
        batch_op.add_column(sa.Column("software_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("code_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("model_sha256", sa.String(length=64), nullable=True))
    op.create_table(
        "camera_traffic",
        sa.Column("camera_id", sa.String(length=32), nullable=False),
        sa.Column("hour_start_s", sa.BigInteger(), nullable=False),
        sa.Column("report_bytes", sa.BigInteger(), nullable=False),
        sa.Column("report_requests", sa.Integer(), nullable=False),
        sa.Column("heartbeat_bytes", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_requests", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_camera_traffic_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("camera_id", "hour_start_s", name=op.f("pk_camera_traffic")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("camera_traffic")
    with op.batch_alter_table("device_health", schema=None) as batch_op:
        batch_op.drop_column("model_sha256")
        batch_op.drop_column("code_sha256")
        batch_op.drop_column("software_version")
    with op.batch_alter_table("interval_reports", schema=None) as batch_op:
        batch_op.drop_column("wire_bytes")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("listed")
