"""billing_account: the organization's billing and primary contact (whom notices go to)

Filled from organization.* events. An account that existed before keeps writing to its
billing address (else accounting) until its organization's next event names the contacts.

Revision ID: 0004
Revises: 0003

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("billing_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("billing_contact_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True)
        )
        batch_op.add_column(
            sa.Column("primary_contact_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_account", schema=None) as batch_op:
        batch_op.drop_column("primary_contact_email")
        batch_op.drop_column("billing_contact_email")
