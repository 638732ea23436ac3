"""customer graph

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_key',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('app_name', sa.String(length=100), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_key')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_key_key_hash'))
    )
    op.create_table('customer',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('survivor_id', sa.Uuid(), nullable=True),
    sa.Column('registered_channel', sa.String(length=24), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_name_ct', sa.LargeBinary(), nullable=True),
    sa.Column('last_name_ct', sa.LargeBinary(), nullable=True),
    sa.Column('birth_date_ct', sa.LargeBinary(), nullable=True),
    sa.Column('address_ct', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['survivor_id'], ['customer.id'], name=op.f('fk_customer_survivor_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer'))
    )
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_survivor_id'), ['survivor_id'], unique=False)

    op.create_table('data_key',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('root_key_id', sa.String(length=64), nullable=False),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('destroyed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_key')),
    sa.UniqueConstraint('subject_id', 'version', name=op.f('uq_data_key_subject_id_version'))
    )
    with op.batch_alter_table('data_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_key_subject_id'), ['subject_id'], unique=False)

    op.create_table('store',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=24), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store')),
    sa.UniqueConstraint('code', name=op.f('uq_store_code'))
    )
    op.create_table('event',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=24), nullable=False),
    sa.Column('channel', sa.String(length=24), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=True),
    sa.Column('occurred_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('external_ref', sa.String(length=100), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('purchase_id', sa.Uuid(), nullable=True),
    sa.Column('topic', sa.String(length=64), nullable=True),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.Column('campaign', sa.String(length=100), nullable=True),
    sa.Column('campaign_channel', sa.String(length=24), nullable=True),
    sa.Column('action', sa.String(length=24), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_event_customer_id_customer')),
    sa.ForeignKeyConstraint(['purchase_id'], ['event.id'], name=op.f('fk_event_purchase_id_event')),
    sa.ForeignKeyConstraint(['store_id'], ['store.id'], name=op.f('fk_event_store_id_store')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_event_idempotency_key'))
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index('ix_event_customer_time', ['customer_id', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_purchase_id'), ['purchase_id'], unique=False)

    op.create_table('identity',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source_system', sa.String(length=64), nullable=True),
    sa.Column('value_index', sa.String(length=64), nullable=False),
    sa.Column('value_ct', sa.LargeBinary(), nullable=True),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('channel', sa.String(length=24), nullable=False),
    sa.Column('first_seen', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_identity_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity')),
    sa.UniqueConstraint('customer_id', 'kind', 'value_index', name=op.f('uq_identity_customer_id_kind_value_index'))
    )
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_identity_lookup', ['kind', 'value_index'], unique=False)
        batch_op.create_index('uq_identity_verified_value', ['kind', 'value_index'], unique=True, sqlite_where=sa.text('verified'), postgresql_where=sa.text('verified'))

    op.create_table('merge_record',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('survivor_id', sa.Uuid(), nullable=False),
    sa.Column('merged_id', sa.Uuid(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('reason_ct', sa.LargeBinary(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('undone_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('undone_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['merged_id'], ['customer.id'], name=op.f('fk_merge_record_merged_id_customer')),
    sa.ForeignKeyConstraint(['survivor_id'], ['customer.id'], name=op.f('fk_merge_record_survivor_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merge_record'))
    )
    with op.batch_alter_table('merge_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_merge_record_merged_id'), ['merged_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_merge_record_survivor_id'), ['survivor_id'], unique=False)

    op.create_table('referral',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('referrer_id', sa.Uuid(), nullable=False),
    sa.Column('referee_id', sa.Uuid(), nullable=True),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('registered_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('converted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['referee_id'], ['customer.id'], name=op.f('fk_referral_referee_id_customer')),
    sa.ForeignKeyConstraint(['referrer_id'], ['customer.id'], name=op.f('fk_referral_referrer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral')),
    sa.UniqueConstraint('code', name=op.f('uq_referral_code'))
    )
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_referee_id'), ['referee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_referrer_id'), ['referrer_id'], unique=False)

    op.create_table('review',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('product_sku', sa.String(length=64), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=False),
    sa.Column('text_ct', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_review_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review')),
    sa.UniqueConstraint('customer_id', 'product_sku', name=op.f('uq_review_customer_id_product_sku'))
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_product_sku'), ['product_sku'], unique=False)

    op.create_table('social_profile',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('handle_index', sa.String(length=64), nullable=False),
    sa.Column('handle_ct', sa.LargeBinary(), nullable=True),
    sa.Column('followers', sa.Integer(), nullable=False),
    sa.Column('linked_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_social_profile_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_social_profile')),
    sa.UniqueConstraint('platform', 'handle_index', name=op.f('uq_social_profile_platform_handle_index'))
    )
    with op.batch_alter_table('social_profile', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_social_profile_customer_id'), ['customer_id'], unique=False)

    op.create_table('event_line',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['event.id'], name=op.f('fk_event_line_event_id_event')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_line')),
    sa.UniqueConstraint('event_id', 'line_no', name=op.f('uq_event_line_event_id_line_no'))
    )
    op.create_table('review_vote',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('review_id', sa.Uuid(), nullable=False),
    sa.Column('voter_id', sa.Uuid(), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['review_id'], ['review.id'], name=op.f('fk_review_vote_review_id_review')),
    sa.ForeignKeyConstraint(['voter_id'], ['customer.id'], name=op.f('fk_review_vote_voter_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_vote')),
    sa.UniqueConstraint('review_id', 'voter_id', name=op.f('uq_review_vote_review_id_voter_id'))
    )
    with op.batch_alter_table('review_vote', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_vote_voter_id'), ['voter_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('review_vote', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_vote_voter_id'))

    op.drop_table('review_vote')
    op.drop_table('event_line')
    with op.batch_alter_table('social_profile', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_social_profile_customer_id'))

    op.drop_table('social_profile')
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_product_sku'))

    op.drop_table('review')
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_referrer_id'))
        batch_op.drop_index(batch_op.f('ix_referral_referee_id'))

    op.drop_table('referral')
    with op.batch_alter_table('merge_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_merge_record_survivor_id'))
        batch_op.drop_index(batch_op.f('ix_merge_record_merged_id'))

    op.drop_table('merge_record')
    with op.batch_alter_table('identity', schema=None) as batch_op:
        batch_op.drop_index('uq_identity_verified_value', sqlite_where=sa.text('verified'), postgresql_where=sa.text('verified'))
        batch_op.drop_index('ix_identity_lookup')
        batch_op.drop_index(batch_op.f('ix_identity_customer_id'))

    op.drop_table('identity')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_purchase_id'))
        batch_op.drop_index('ix_event_customer_time')

    op.drop_table('event')
    op.drop_table('store')
    with op.batch_alter_table('data_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_key_subject_id'))

    op.drop_table('data_key')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_survivor_id'))
        batch_op.drop_index(batch_op.f('ix_customer_created_at'))

    op.drop_table('customer')
    op.drop_table('api_key')
