"""Destruction certificate tables (owned by privacy.subject_rights)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, String
from sqlmodel import Field, SQLModel

from core.clock import as_utc
from core.db import UTCDateTime


class DestructionCertificate(SQLModel, table=True):
    """Proof that a data subject's personal data was destroyed: what, when, how, by whom.

    Holds no personal data: the subject's customer ids (random, and pointing only to anonymous
    rows afterwards), the ids of the shredded data keys, per-table counts and column names, and
    a SHA-256 over all of it (`digest`) so a later edit of the row shows.
    """

    __tablename__ = "destruction_certificate"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID = Field(unique=True)
    request_id: uuid.UUID = Field(index=True)
    actor: str = Field(sa_type=String(100))
    destroyed_at: datetime = Field(sa_type=UTCDateTime)
    method: str = Field(sa_type=String(200))
    subject_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    key_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    items: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    digest: str = Field(sa_type=String(64))

    def contents_digest(self) -> str:
        """SHA-256 over the certificate's contents (everything but `digest` itself)."""
        payload = json.dumps(
            [
                str(self.id),
                str(self.subject_id),
                str(self.request_id),
                self.actor,
                as_utc(self.destroyed_at).isoformat(),
                self.method,
                self.subject_ids,
                self.key_ids,
                self.items,
            ],
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "subjectId": str(self.subject_id),
            "subjectIds": list(self.subject_ids),
            "requestId": str(self.request_id),
            "destroyedAt": as_utc(self.destroyed_at).isoformat(),
            "destroyedBy": self.actor,
            "method": self.method,
            "keysDestroyed": list(self.key_ids),
            "items": list(self.items),
            "digest": self.digest,
            "intact": self.digest == self.contents_digest(),
        }
