"""erasure: destruction certificates

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "destruction_certificate",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("destroyed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=False),
        sa.Column("subject_ids", sa.JSON(), nullable=False),
        sa.Column("key_ids", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destruction_certificate")),
        sa.UniqueConstraint("subject_id", name=op.f("uq_destruction_certificate_subject_id")),
    )
    with op.batch_alter_table("destruction_certificate", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_destruction_certificate_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("destruction_certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destruction_certificate_request_id"))
    op.drop_table("destruction_certificate")
