"""Tables of probabilistic identity resolution. None holds plaintext.

A candidate pair carries its score and per-field evidence (agreement label and weight), never a
value. A blocking key is a keyed hash (HMAC under the blind-index secret, with the rule name in
the message) of the normalised values of one blocking rule: it finds a new registration's block
without decrypting the base, and a copy of the database does not reverse it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Float, ForeignKey, Index, String
from sqlalchemy import UniqueConstraint as Unique
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime


class CandidateStatus(StrEnum):
    PENDING = "PENDING"
    MERGED = "MERGED"
    DISTINCT = "DISTINCT"
    AUTO_MERGED = "AUTO_MERGED"


class DuplicateCandidate(SQLModel, table=True):
    """Two customers the matcher thinks may be one person. `left_id` < `right_id` (as text)."""

    __tablename__ = "duplicate_candidate"
    __table_args__ = (
        Unique("left_id", "right_id"),
        Index("ix_duplicate_candidate_status_score", "status", "probability"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    left_id: uuid.UUID = Field(sa_column=Column(ForeignKey("customer.id"), nullable=False))
    right_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("customer.id"), nullable=False, index=True)
    )
    probability: float = Field(sa_column=Column(Float, nullable=False))
    match_weight: float = Field(sa_column=Column(Float, nullable=False))
    # [{"field": "last_name", "agreement": "Exact match on surname_key", "weight": 7.1}, ...]
    evidence: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    status: str = Field(default=CandidateStatus.PENDING, sa_type=String(16))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, sa_type=String(100))
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    merge_record_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("merge_record.id"), nullable=True)
    )


class BlockingKey(SQLModel, table=True):
    __tablename__ = "blocking_key"
    __table_args__ = (
        Unique("customer_id", "rule"),
        Index("ix_blocking_key_lookup", "rule", "key_hash"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = Field(sa_column=Column(ForeignKey("customer.id"), nullable=False))
    rule: str = Field(sa_type=String(24))
    key_hash: str = Field(sa_type=String(64))


class MatchModel(SQLModel, table=True):
    """A trained matcher: Splink's model JSON (m and u probabilities, no records)."""

    __tablename__ = "match_model"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    records: int = Field(default=0)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
