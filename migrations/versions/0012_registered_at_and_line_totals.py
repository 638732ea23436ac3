"""customer registration date, purchase line totals, bulk import checkpoints

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-07

`customer.registered_at` starts as the row's creation time, moved back to the customer's
earliest event; `event_line.total_minor` starts as quantity x unit price.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('import_checkpoint',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('last_line', sa.Integer(), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_checkpoint'))
    )
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('registered_at', core.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE customer SET registered_at = created_at"
    )
    op.execute(
        "UPDATE customer SET registered_at = (SELECT MIN(e.occurred_at) FROM event e "
        "WHERE e.customer_id = customer.id) WHERE EXISTS (SELECT 1 FROM event e "
        "WHERE e.customer_id = customer.id AND e.occurred_at < customer.registered_at)"
    )
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.alter_column(
            'registered_at', existing_type=core.db.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.create_index(
            batch_op.f('ix_customer_registered_at'), ['registered_at'], unique=False
        )
    with op.batch_alter_table('event_line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('total_minor', sa.BigInteger(), nullable=True))
    op.execute("UPDATE event_line SET total_minor = quantity * unit_price_minor")
    with op.batch_alter_table('event_line', schema=None) as batch_op:
        batch_op.alter_column('total_minor', existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('event_line', schema=None) as batch_op:
        batch_op.drop_column('total_minor')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_registered_at'))
        batch_op.drop_column('registered_at')
    op.drop_table('import_checkpoint')
