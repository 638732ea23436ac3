"""Data subject request tables (owned by privacy.requests).

A request names its subject by id only (privacy never imports a domain's tables). Everything a
person wrote or a package that holds their data is ciphertext under the subject's data key: the
reasons, the requested changes of a rectification, the access package. Erasing the subject
makes them unreadable, while the request's kind, status and dates stay as proof that it was
answered on time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime


class RequestKind(StrEnum):
    ACCESS = "ACCESS"
    RECTIFICATION = "RECTIFICATION"
    BLOCKING = "BLOCKING"
    DESTRUCTION = "DESTRUCTION"
    CONSENT_WITHDRAWAL = "CONSENT_WITHDRAWAL"


class RequestStatus(StrEnum):
    RECEIVED = "RECEIVED"
    IDENTITY_VERIFIED = "IDENTITY_VERIFIED"
    IN_PROGRESS = "IN_PROGRESS"
    EXTENDED = "EXTENDED"
    COMPLETED = "COMPLETED"
    REFUSED = "REFUSED"


OPEN_STATUSES = frozenset(
    {
        RequestStatus.RECEIVED,
        RequestStatus.IDENTITY_VERIFIED,
        RequestStatus.IN_PROGRESS,
        RequestStatus.EXTENDED,
    }
)


def _ct() -> Any:
    return Field(default=None, sa_column=Column(LargeBinary, nullable=True))


class DataSubjectRequest(SQLModel, table=True):
    __tablename__ = "data_subject_request"
    __table_args__ = (Index("ix_data_subject_request_status_due", "status", "due_at", "id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID = Field(index=True)
    kind: str = Field(sa_type=String(24), index=True)
    status: str = Field(sa_type=String(24))
    received_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    extended: bool = Field(default=False)
    # Who filed it: the subject themself or staff on their behalf (a pseudonymous actor label).
    submitted_by: str = Field(sa_type=String(100))
    # Where the request came in (privacy.purposes.CollectionChannel: WEB, POS, PAPER...).
    received_via: str = Field(sa_type=String(24))
    # Consent withdrawal: the purpose and channel withdrawn (codes, not personal data).
    purpose: str | None = Field(default=None, sa_type=String(32))
    channel: str | None = Field(default=None, sa_type=String(16))
    reason_ct: bytes | None = _ct()  # the subject's own words, if any
    changes_ct: bytes | None = _ct()  # rectification: JSON {field: new value or null}
    package_json_ct: bytes | None = _ct()  # access: the machine-readable package
    package_html_ct: bytes | None = _ct()  # access: the human-readable page
    # What execution produced, without personal data: a certificate id, changed field names...
    outcome: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DataSubjectRequestStep(SQLModel, table=True):
    """One step of a request's history, as it happened. Never updated."""

    __tablename__ = "data_subject_request_step"
    __table_args__ = (UniqueConstraint("request_id", "seq"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("data_subject_request.id"), nullable=False, index=True)
    )
    seq: int
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(sa_type=String(100))
    action: str = Field(sa_type=String(24))
    from_status: str | None = Field(default=None, sa_type=String(24))
    to_status: str = Field(sa_type=String(24))
    reason_ct: bytes | None = _ct()


REQUEST_TABLE = DataSubjectRequest.__tablename__
STEP_TABLE = DataSubjectRequestStep.__tablename__
