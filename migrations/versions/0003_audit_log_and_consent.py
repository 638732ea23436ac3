"""audit log and consent

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:33:54.275714
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entry")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_entry_hash")),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entry_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_subject"), ["subject"], unique=False)

    op.create_table(
        "consent_document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("valid_from", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_to", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_document")),
        sa.UniqueConstraint(
            "purpose",
            "language",
            "version",
            name=op.f("uq_consent_document_purpose_language_version"),
        ),
    )
    with op.batch_alter_table("consent_document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_document_purpose"), ["purpose"], unique=False)

    op.create_table(
        "consent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("allowed_categories", sa.JSON(), nullable=False),
        sa.Column("granted_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["consent_document.id"],
            name=op.f("fk_consent_document_id_consent_document"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
        sa.UniqueConstraint(
            "subject_id", "purpose", "channel", name=op.f("uq_consent_subject_id_purpose_channel")
        ),
    )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_audience", ["purpose", "channel", "status", "subject_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consent_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "consent_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consent_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("allowed_categories", sa.JSON(), nullable=False),
        sa.Column("occurred_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("collected_channel", sa.String(length=24), nullable=False),
        sa.Column("method", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("ip_ct", sa.LargeBinary(), nullable=True),
        sa.Column("user_agent_ct", sa.LargeBinary(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consent.id"], name=op.f("fk_consent_change_consent_id_consent")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["consent_document.id"],
            name=op.f("fk_consent_change_document_id_consent_document"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_change")),
    )
    with op.batch_alter_table("consent_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_change_consent_id"), ["consent_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_change_occurred_at"), ["occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_change_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "processing_restriction",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("restricted_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("restricted_by", sa.String(length=100), nullable=False),
        sa.Column("lifted_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_restriction")),
    )
    with op.batch_alter_table("processing_restriction", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_restriction_request_id"), ["request_id"], unique=False
        )
        batch_op.create_index(
            "ix_processing_restriction_subject", ["subject_id", "lifted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("processing_restriction", schema=None) as batch_op:
        batch_op.drop_index("ix_processing_restriction_subject")
        batch_op.drop_index(batch_op.f("ix_processing_restriction_request_id"))

    op.drop_table("processing_restriction")
    with op.batch_alter_table("consent_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_change_subject_id"))
        batch_op.drop_index(batch_op.f("ix_consent_change_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_consent_change_consent_id"))

    op.drop_table("consent_change")
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_subject_id"))
        batch_op.drop_index("ix_consent_audience")

    op.drop_table("consent")
    with op.batch_alter_table("consent_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_document_purpose"))

    op.drop_table("consent_document")
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_subject"))
        batch_op.drop_index(batch_op.f("ix_audit_entry_at"))
        batch_op.drop_index(batch_op.f("ix_audit_entry_action"))

    op.drop_table("audit_entry")
