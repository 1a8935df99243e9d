"""agent: the consultant's timezone (staff mail in the reader's zone); ticket_sla: the closed
days (holidays) between a ticket's arrival and its clock's start, named in the acknowledgment

Revision ID: 0006
Revises: 0003

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("ticket_sla", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_days", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_sla", schema=None) as batch_op:
        batch_op.drop_column("closed_days")
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_column("timezone")
