"""organization: its billing contact and primary contact (whom billing writes to)

The primary contact of an organization that already has tickets is the contact of its first
ticket, as it is for new organizations.

Revision ID: 0012
Revises: 0011

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billing_contact_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("primary_contact_id", sa.Uuid(), nullable=True))
    op.execute(
        """
        UPDATE organization SET primary_contact_id = (
            SELECT ticket.contact_id FROM ticket
            WHERE ticket.organization_id = organization.id
            ORDER BY ticket.created_at, ticket.number LIMIT 1
        )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("organization", schema=None) as batch_op:
        batch_op.drop_column("primary_contact_id")
        batch_op.drop_column("billing_contact_id")
