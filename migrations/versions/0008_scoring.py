"""scoring

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scoring_run',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('cutoff', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('churn_model', sa.String(length=100), nullable=True),
    sa.Column('value_model', sa.String(length=100), nullable=True),
    sa.Column('scored', sa.Integer(), nullable=False),
    sa.Column('not_permitted', sa.Integer(), nullable=False),
    sa.Column('not_scorable', sa.Integer(), nullable=False),
    sa.Column('removed', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scoring_run'))
    )
    with op.batch_alter_table('scoring_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scoring_run_started_at'), ['started_at'], unique=False)

    op.create_table('customer_influence',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('cutoff', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('computed_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('percentile', sa.Float(), nullable=False),
    sa.Column('reach', sa.BigInteger(), nullable=False),
    sa.Column('review_count', sa.Integer(), nullable=False),
    sa.Column('helpful_votes', sa.Integer(), nullable=False),
    sa.Column('referrals_made', sa.Integer(), nullable=False),
    sa.Column('referrals_converted', sa.Integer(), nullable=False),
    sa.Column('referred_spend_minor', sa.BigInteger(), nullable=False),
    sa.Column('own_spend_minor', sa.BigInteger(), nullable=False),
    sa.Column('own_spend_percentile', sa.Float(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('run_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_customer_influence_customer_id_customer')),
    sa.ForeignKeyConstraint(['run_id'], ['scoring_run.id'], name=op.f('fk_customer_influence_run_id_scoring_run')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_influence'))
    )
    with op.batch_alter_table('customer_influence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_influence_percentile'), ['percentile'], unique=False)

    op.create_table('customer_score',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('model_version', sa.String(length=32), nullable=False),
    sa.Column('cutoff', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('horizon_days', sa.Integer(), nullable=False),
    sa.Column('scored_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('band', sa.String(length=16), nullable=False),
    sa.Column('percentile', sa.Float(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('network_value_minor', sa.BigInteger(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('run_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_customer_score_customer_id_customer')),
    sa.ForeignKeyConstraint(['run_id'], ['scoring_run.id'], name=op.f('fk_customer_score_run_id_scoring_run')),
    sa.PrimaryKeyConstraint('customer_id', 'kind', name=op.f('pk_customer_score'))
    )
    with op.batch_alter_table('customer_score', schema=None) as batch_op:
        batch_op.create_index('ix_customer_score_kind_band', ['kind', 'band'], unique=False)
        batch_op.create_index('ix_customer_score_kind_score', ['kind', 'score'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('customer_score', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_score_kind_score')
        batch_op.drop_index('ix_customer_score_kind_band')

    op.drop_table('customer_score')
    with op.batch_alter_table('customer_influence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_influence_percentile'))

    op.drop_table('customer_influence')
    with op.batch_alter_table('scoring_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scoring_run_started_at'))

    op.drop_table('scoring_run')
