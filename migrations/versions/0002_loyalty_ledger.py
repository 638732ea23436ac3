"""loyalty ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('loyalty_program',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('loaded_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('loaded_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_program')),
    sa.UniqueConstraint('code', 'version', name=op.f('uq_loyalty_program_code_version'))
    )
    with op.batch_alter_table('loyalty_program', schema=None) as batch_op:
        batch_op.create_index('uq_loyalty_program_active', ['active'], unique=True, sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))

    op.create_table('loyalty_account',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('tier', sa.String(length=64), nullable=False),
    sa.Column('tier_since', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tier_reviewed_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('grace_until', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_loyalty_account_customer_id_customer')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_loyalty_account'))
    )
    with op.batch_alter_table('loyalty_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_account_tier_reviewed_at'), ['tier_reviewed_at'], unique=False)

    op.create_table('loyalty_reservation',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('order_total_minor', sa.BigInteger(), nullable=False),
    sa.Column('purchase_id', sa.Uuid(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['loyalty_account.customer_id'], name=op.f('fk_loyalty_reservation_customer_id_loyalty_account')),
    sa.ForeignKeyConstraint(['purchase_id'], ['event.id'], name=op.f('fk_loyalty_reservation_purchase_id_event')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_reservation')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_loyalty_reservation_idempotency_key'))
    )
    with op.batch_alter_table('loyalty_reservation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_reservation_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_loyalty_reservation_open', ['status', 'expires_at'], unique=False)

    op.create_table('loyalty_tier_change',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('from_tier', sa.String(length=64), nullable=True),
    sa.Column('to_tier', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('qualifying', sa.BigInteger(), nullable=False),
    sa.Column('occurred_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['loyalty_account.customer_id'], name=op.f('fk_loyalty_tier_change_customer_id_loyalty_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_tier_change'))
    )
    with op.batch_alter_table('loyalty_tier_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_tier_change_customer_id'), ['customer_id'], unique=False)

    op.create_table('loyalty_entry',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('occurred_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=True),
    sa.Column('rule_code', sa.String(length=64), nullable=True),
    sa.Column('event_id', sa.Uuid(), nullable=True),
    sa.Column('purchase_id', sa.Uuid(), nullable=True),
    sa.Column('reservation_id', sa.Uuid(), nullable=True),
    sa.Column('order_total_minor', sa.BigInteger(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('reason_ct', sa.LargeBinary(), nullable=True),
    sa.Column('outstanding', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['loyalty_account.customer_id'], name=op.f('fk_loyalty_entry_customer_id_loyalty_account')),
    sa.ForeignKeyConstraint(['event_id'], ['event.id'], name=op.f('fk_loyalty_entry_event_id_event')),
    sa.ForeignKeyConstraint(['program_id'], ['loyalty_program.id'], name=op.f('fk_loyalty_entry_program_id_loyalty_program')),
    sa.ForeignKeyConstraint(['purchase_id'], ['event.id'], name=op.f('fk_loyalty_entry_purchase_id_event')),
    sa.ForeignKeyConstraint(['reservation_id'], ['loyalty_reservation.id'], name=op.f('fk_loyalty_entry_reservation_id_loyalty_reservation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_entry')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_loyalty_entry_idempotency_key'))
    )
    with op.batch_alter_table('loyalty_entry', schema=None) as batch_op:
        batch_op.create_index('ix_loyalty_entry_account', ['customer_id', 'occurred_at', 'id'], unique=False)
        batch_op.create_index('ix_loyalty_entry_event', ['event_id', 'kind'], unique=False)
        batch_op.create_index('ix_loyalty_entry_purchase', ['purchase_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_entry_reservation_id'), ['reservation_id'], unique=False)

    op.create_table('loyalty_lot',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('earned_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('available_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('event_id', sa.Uuid(), nullable=True),
    sa.Column('rule_code', sa.String(length=64), nullable=True),
    sa.Column('origin_lot_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['loyalty_account.customer_id'], name=op.f('fk_loyalty_lot_customer_id_loyalty_account')),
    sa.ForeignKeyConstraint(['entry_id'], ['loyalty_entry.id'], name=op.f('fk_loyalty_lot_entry_id_loyalty_entry')),
    sa.ForeignKeyConstraint(['event_id'], ['event.id'], name=op.f('fk_loyalty_lot_event_id_event')),
    sa.ForeignKeyConstraint(['origin_lot_id'], ['loyalty_lot.id'], name=op.f('fk_loyalty_lot_origin_lot_id_loyalty_lot')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_lot'))
    )
    with op.batch_alter_table('loyalty_lot', schema=None) as batch_op:
        batch_op.create_index('ix_loyalty_lot_account', ['customer_id', 'status', 'expires_at'], unique=False)
        batch_op.create_index('ix_loyalty_lot_available', ['status', 'available_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_lot_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index('ix_loyalty_lot_event', ['event_id'], unique=False)
        batch_op.create_index('ix_loyalty_lot_expiry', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_lot_origin_lot_id'), ['origin_lot_id'], unique=False)

    op.create_table('loyalty_allocation',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('lot_id', sa.Uuid(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['loyalty_entry.id'], name=op.f('fk_loyalty_allocation_entry_id_loyalty_entry')),
    sa.ForeignKeyConstraint(['lot_id'], ['loyalty_lot.id'], name=op.f('fk_loyalty_allocation_lot_id_loyalty_lot')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_allocation'))
    )
    with op.batch_alter_table('loyalty_allocation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_allocation_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_loyalty_allocation_lot_id'), ['lot_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('loyalty_allocation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_allocation_lot_id'))
        batch_op.drop_index(batch_op.f('ix_loyalty_allocation_entry_id'))

    op.drop_table('loyalty_allocation')
    with op.batch_alter_table('loyalty_lot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_lot_origin_lot_id'))
        batch_op.drop_index('ix_loyalty_lot_expiry')
        batch_op.drop_index('ix_loyalty_lot_event')
        batch_op.drop_index(batch_op.f('ix_loyalty_lot_entry_id'))
        batch_op.drop_index('ix_loyalty_lot_available')
        batch_op.drop_index('ix_loyalty_lot_account')

    op.drop_table('loyalty_lot')
    with op.batch_alter_table('loyalty_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_entry_reservation_id'))
        batch_op.drop_index('ix_loyalty_entry_purchase')
        batch_op.drop_index('ix_loyalty_entry_event')
        batch_op.drop_index('ix_loyalty_entry_account')

    op.drop_table('loyalty_entry')
    with op.batch_alter_table('loyalty_tier_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_tier_change_customer_id'))

    op.drop_table('loyalty_tier_change')
    with op.batch_alter_table('loyalty_reservation', schema=None) as batch_op:
        batch_op.drop_index('ix_loyalty_reservation_open')
        batch_op.drop_index(batch_op.f('ix_loyalty_reservation_customer_id'))

    op.drop_table('loyalty_reservation')
    with op.batch_alter_table('loyalty_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_account_tier_reviewed_at'))

    op.drop_table('loyalty_account')
    with op.batch_alter_table('loyalty_program', schema=None) as batch_op:
        batch_op.drop_index('uq_loyalty_program_active', sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))

    op.drop_table('loyalty_program')
