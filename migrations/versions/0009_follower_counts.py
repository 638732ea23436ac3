"""follower counts over time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

A profile linked before this revision has one observation, its current count at the time it
was linked: what was known of its past is only the latest count, and features read it from the
link on, as they did before.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('follower_count',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('profile_id', sa.Uuid(), nullable=False),
    sa.Column('followers', sa.Integer(), nullable=False),
    sa.Column('observed_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['profile_id'], ['social_profile.id'], name=op.f('fk_follower_count_profile_id_social_profile')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follower_count'))
    )
    with op.batch_alter_table('follower_count', schema=None) as batch_op:
        batch_op.create_index('ix_follower_count_profile_time', ['profile_id', 'observed_at'], unique=False)

    # One observation per existing profile; the profile's own id is a unique id for it.
    op.execute(
        "INSERT INTO follower_count (id, profile_id, followers, observed_at) "
        "SELECT id, id, followers, linked_at FROM social_profile"
    )


def downgrade() -> None:
    with op.batch_alter_table('follower_count', schema=None) as batch_op:
        batch_op.drop_index('ix_follower_count_profile_time')

    op.drop_table('follower_count')
