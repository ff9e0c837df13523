"""commissioning review fixes: validation sessions keep their sheet

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """A session's lines, directions and classes as they were when it opened (older sessions
    have none and read the camera's current ones)."""
    with op.batch_alter_table("validation_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sheet", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("validation_sessions", schema=None) as batch_op:
        batch_op.drop_column("sheet")
