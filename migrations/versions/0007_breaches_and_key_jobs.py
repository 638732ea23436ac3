"""breaches and key jobs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('breach',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('detected_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('data_categories', sa.String(length=400), nullable=False),
    sa.Column('subjects_affected', sa.Integer(), nullable=True),
    sa.Column('initial_due_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('initial_notified_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('final_due_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('final_notified_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_breach_detected_at'), 'breach', ['detected_at'], unique=False)
    op.create_table('key_job',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=24), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=True),
    sa.Column('after_id', sa.String(length=64), nullable=True),
    sa.Column('passes', sa.Integer(), nullable=False),
    sa.Column('pass_rows', sa.Integer(), nullable=False),
    sa.Column('rows_rewritten', sa.Integer(), nullable=False),
    sa.Column('keys_created', sa.Integer(), nullable=False),
    sa.Column('keys_retired', sa.Integer(), nullable=False),
    sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_key_job_status'), 'key_job', ['status'], unique=False)
    with op.batch_alter_table('data_key') as batch:
        batch.add_column(
            sa.Column('retired_at', core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('data_key') as batch:
        batch.drop_column('retired_at')
    op.drop_index(op.f('ix_key_job_status'), table_name='key_job')
    op.drop_table('key_job')
    op.drop_index(op.f('ix_breach_detected_at'), table_name='breach')
    op.drop_table('breach')
