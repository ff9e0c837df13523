"""per-vehicle speed histograms and PCU in zone rows and rollups (issue 11)

Zone rows already keep the speed histogram (JSON, one count per contract bin), which the
zone series merges by summing per bin; this revision adds the PCU density next to the
vehicle density.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("zone_rows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("density_pcu_km_lane", sa.Float(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("zone_rows", schema=None) as batch_op:
        batch_op.drop_column("density_pcu_km_lane")
