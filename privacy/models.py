"""Tables owned by privacy. Privacy never imports a domain's tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime


class DataKey(SQLModel, table=True):
    """One data key per data subject and version, stored only wrapped by a root key.

    Destroying a subject's keys (crypto-shredding) makes every ciphertext of that subject, in the
    database and in any backup, unreadable.
    """

    __tablename__ = "data_key"
    __table_args__ = (UniqueConstraint("subject_id", "version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID = Field(index=True)
    version: int = Field(default=1)
    root_key_id: str = Field(sa_type=String(64))
    wrapped_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    destroyed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when a newer version replaced this one and no ciphertext uses it any more
    # (`loyalgraph keys reencrypt`); the wrapped key is dropped then. Not an erasure.
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEntry(SQLModel, table=True):
    """One append-only, hash-chained audit record (see `privacy.audit`).

    `subject` is a keyed pseudonym of the data subject, never a customer id, a name or an
    identifier; `details` holds codes, ids of non-personal rows and ciphertext digests only.
    """

    __tablename__ = "audit_entry"

    seq: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(sa_type=String(100))
    action: str = Field(sa_type=String(64), index=True)
    subject: str | None = Field(default=None, sa_type=String(64), index=True)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(sa_type=String(64))
    hash: str = Field(sa_type=String(64), unique=True)
