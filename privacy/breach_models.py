"""Breach register and key re-encryption jobs (owned by privacy.breaches, privacy.rotation)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, String, Text
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime


class Breach(SQLModel, table=True):
    """An incident with personal data and its two notification deadlines to the regulator
    (152-FZ art. 21 part 3.1: within 24 hours of detection, results within 72 hours).

    The description is written by staff about the incident, not about a person: it must not
    contain personal data (the CLI says so when it asks for it).
    """

    __tablename__ = "breach"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    detected_at: datetime = Field(sa_type=UTCDateTime, index=True)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    recorded_by: str = Field(sa_type=String(100))
    description: str = Field(sa_column=Column(Text, nullable=False))
    data_categories: str = Field(sa_type=String(400))
    subjects_affected: int | None = Field(default=None)
    initial_due_at: datetime = Field(sa_type=UTCDateTime)
    initial_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    final_due_at: datetime = Field(sa_type=UTCDateTime)
    final_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class KeyJob(SQLModel, table=True):
    """A resumable re-encryption run: where it got to, so an interrupted run continues there."""

    __tablename__ = "key_job"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(sa_type=String(24))
    status: str = Field(sa_type=String(16), index=True)  # RUNNING | DONE
    phase: str = Field(sa_type=String(24))
    table_name: str | None = Field(default=None, sa_type=String(64))
    after_id: str | None = Field(default=None, sa_type=String(64))
    passes: int = Field(default=0)
    pass_rows: int = Field(default=0)  # rows rewritten in the current pass
    rows_rewritten: int = Field(default=0)
    keys_created: int = Field(default=0)
    keys_retired: int = Field(default=0)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_by: str = Field(sa_type=String(100))
