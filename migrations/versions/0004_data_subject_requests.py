"""data subject requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_subject_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("received_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("extended", sa.Boolean(), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("received_via", sa.String(length=24), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("reason_ct", sa.LargeBinary(), nullable=True),
        sa.Column("changes_ct", sa.LargeBinary(), nullable=True),
        sa.Column("package_json_ct", sa.LargeBinary(), nullable=True),
        sa.Column("package_html_ct", sa.LargeBinary(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("closed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_subject_request")),
    )
    with op.batch_alter_table("data_subject_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_subject_request_due_at"), ["due_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_data_subject_request_kind"), ["kind"], unique=False)
        batch_op.create_index(
            "ix_data_subject_request_status_due", ["status", "due_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_data_subject_request_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "data_subject_request_step",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=False),
        sa.Column("reason_ct", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["data_subject_request.id"],
            name=op.f("fk_data_subject_request_step_request_id_data_subject_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_subject_request_step")),
        sa.UniqueConstraint(
            "request_id", "seq", name=op.f("uq_data_subject_request_step_request_id_seq")
        ),
    )
    with op.batch_alter_table("data_subject_request_step", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_subject_request_step_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("data_subject_request_step", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_subject_request_step_request_id"))
    op.drop_table("data_subject_request_step")
    with op.batch_alter_table("data_subject_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_subject_request_subject_id"))
        batch_op.drop_index("ix_data_subject_request_status_due")
        batch_op.drop_index(batch_op.f("ix_data_subject_request_kind"))
        batch_op.drop_index(batch_op.f("ix_data_subject_request_due_at"))
    op.drop_table("data_subject_request")
