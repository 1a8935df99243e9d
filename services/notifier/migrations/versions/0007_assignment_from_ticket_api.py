"""ticket_view: the priority ticket_api applied; ticket_sla: whom triage asked to assign and
whether its decision opens a call task (assignment mail follows ticket_api's applied
assignment, with triage's due time and call task)

Revision ID: 0007
Revises: 0006

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_view", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.String(length=8), nullable=True))
    with op.batch_alter_table("ticket_sla", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("call_customer", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_sla", schema=None) as batch_op:
        batch_op.drop_column("call_customer")
        batch_op.drop_column("assignee_id")
    with op.batch_alter_table("ticket_view", schema=None) as batch_op:
        batch_op.drop_column("priority")
