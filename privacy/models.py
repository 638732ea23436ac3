"""Tables owned by privacy. Privacy never imports a domain's tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, LargeBinary, String, UniqueConstraint
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
