"""Consent tables: versioned documents, the current consent per subject, purpose and channel,
the append-only history of every change with its evidence, and processing restrictions
(blocking requested by the subject).

Subjects are referenced by id only (privacy never imports a domain's tables). Evidence that is
itself personal data (the IP address, the user agent) is stored as ciphertext under the
subject's data key, so erasing the subject erases it too.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime

NO_CHANNEL = "ANY"  # the channel of a purpose that is not per channel (all but marketing)


class ConsentDocument(SQLModel, table=True):
    """The text a subject agreed to. A new wording is a new version; old versions stay."""

    __tablename__ = "consent_document"
    __table_args__ = (UniqueConstraint("purpose", "language", "version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    purpose: str = Field(sa_type=String(32), index=True)
    language: str = Field(sa_type=String(8))
    version: int
    title: str = Field(sa_type=String(200))
    text: str = Field(sa_column=Column(Text, nullable=False))
    text_hash: str = Field(sa_type=String(64))  # sha256 of the UTF-8 text
    valid_from: datetime = Field(sa_type=UTCDateTime)
    valid_to: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Consent(SQLModel, table=True):
    """The current state of one subject's consent for one purpose and channel."""

    __tablename__ = "consent"
    __table_args__ = (
        UniqueConstraint("subject_id", "purpose", "channel"),
        # Audiences: everyone with a granted consent for one purpose and channel.
        Index("ix_consent_audience", "purpose", "channel", "status", "subject_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID = Field(index=True)
    purpose: str = Field(sa_type=String(32))
    channel: str = Field(default=NO_CHANNEL, sa_type=String(16))
    status: str = Field(sa_type=String(16))  # GRANTED | WITHDRAWN
    document_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("consent_document.id"), nullable=False)
    )
    # Dissemination only: the categories of data the subject allows to be made public.
    allowed_categories: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    granted_at: datetime = Field(sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsentChange(SQLModel, table=True):
    """One grant or withdrawal, as it happened, with its evidence. Never updated."""

    __tablename__ = "consent_change"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    consent_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("consent.id"), nullable=False, index=True)
    )
    subject_id: uuid.UUID = Field(index=True)
    purpose: str = Field(sa_type=String(32))
    channel: str = Field(sa_type=String(16))
    status: str = Field(sa_type=String(16))
    document_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("consent_document.id"), nullable=False)
    )
    allowed_categories: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    occurred_at: datetime = Field(sa_type=UTCDateTime, index=True)
    # Evidence: where and how it was collected, and by whom (a pseudonymous actor label).
    collected_channel: str = Field(sa_type=String(24))
    method: str = Field(sa_type=String(24))
    actor: str = Field(sa_type=String(100))
    ip_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    user_agent_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ProcessingRestriction(SQLModel, table=True):
    """A block on processing a subject's data (152-FZ art. 20-21), requested by the subject
    or set while a request is checked. While a row is not lifted, only storage continues:
    `privacy.enforcement` refuses every purpose. Rows are kept after lifting, as history."""

    __tablename__ = "processing_restriction"
    __table_args__ = (Index("ix_processing_restriction_subject", "subject_id", "lifted_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID
    # The data subject request that asked for it (no foreign key: requests live in a later
    # migration and privacy areas stay independent).
    request_id: uuid.UUID | None = Field(default=None, index=True)
    restricted_at: datetime = Field(sa_type=UTCDateTime)
    restricted_by: str = Field(sa_type=String(100))
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_by: str | None = Field(default=None, sa_type=String(100))
