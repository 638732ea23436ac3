"""Signed export files (owned by privacy.exports)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, String
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime


class ExportFile(SQLModel, table=True):
    """One export written to the exports directory, with its detached signature beside it.

    The row holds no personal data: the kind, the format, the filters it was made with, how
    many rows it has and the SHA-256 of its bytes. `/exports/{id}` serves the file (with a
    short-lived link) until `expires_at`.
    """

    __tablename__ = "export_file"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(sa_type=String(32))  # consent_audit
    format: str = Field(sa_type=String(8))  # csv | json | xlsx
    filters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rows: int = Field(sa_type=BigInteger)
    size_bytes: int = Field(sa_type=BigInteger)
    sha256: str = Field(sa_type=String(64))
    file_name: str = Field(sa_type=String(200))  # inside the exports directory
    created_by: str = Field(sa_type=String(100))  # a pseudonymous actor label
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)
