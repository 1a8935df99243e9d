"""books keep their own time: account opened_at, plan low-block threshold, notices kept,
idempotency records

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('idempotency_record',
    sa.Column('caller', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('caller', 'key')
    )
    with op.batch_alter_table('idempotency_record', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_record_created_at', ['created_at'], unique=False)
    with op.batch_alter_table('billing_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('billing_plan', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('block_low_threshold_percent', sa.Integer(), server_default='20', nullable=False)
        )
    with op.batch_alter_table('billing_notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('period_key', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=True))
        batch_op.add_column(sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('of_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('threshold_percent', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('billing_notice', schema=None) as batch_op:
        batch_op.drop_column('threshold_percent')
        batch_op.drop_column('of_minutes')
        batch_op.drop_column('minutes')
        batch_op.drop_column('occurred_at')
        batch_op.drop_column('period_key')
    with op.batch_alter_table('billing_plan', schema=None) as batch_op:
        batch_op.drop_column('block_low_threshold_percent')
    with op.batch_alter_table('billing_account', schema=None) as batch_op:
        batch_op.drop_column('opened_at')
    with op.batch_alter_table('idempotency_record', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_record_created_at')
    op.drop_table('idempotency_record')
