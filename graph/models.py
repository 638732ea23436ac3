"""SQLModel tables of the customer graph. Personal data columns hold ciphertext only (`*_ct`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy import UniqueConstraint as Unique
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime


def _ct() -> Any:
    """A nullable ciphertext column."""
    return Field(default=None, sa_column=Column(LargeBinary, nullable=True))


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(ForeignKey(target), nullable=nullable, index=index),
    )


class Customer(SQLModel, table=True):
    __tablename__ = "customer"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    status: str = Field(default="ACTIVE", sa_type=String(16))
    survivor_id: uuid.UUID | None = _fk("customer.id", nullable=True)
    registered_channel: str = Field(sa_type=String(24))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    # When the customer joined: given at registration (an import's `registered_at`), and moved
    # back to the earliest event recorded for them, so history imported later stays true.
    registered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    first_name_ct: bytes | None = _ct()
    last_name_ct: bytes | None = _ct()
    birth_date_ct: bytes | None = _ct()
    address_ct: bytes | None = _ct()


class Identity(SQLModel, table=True):
    """An identifier of a customer. Only a keyed blind index and the ciphertext are stored.

    A verified identifier belongs to at most one customer (partial unique index); unverified
    copies may exist on several customers and never merge them.
    """

    __tablename__ = "identity"
    __table_args__ = (
        Unique("customer_id", "kind", "value_index"),
        Index(
            "uq_identity_verified_value",
            "kind",
            "value_index",
            unique=True,
            sqlite_where=text("verified"),
            postgresql_where=text("verified"),
        ),
        Index("ix_identity_lookup", "kind", "value_index"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = _fk("customer.id")
    kind: str = Field(sa_type=String(16))
    source_system: str | None = Field(default=None, sa_type=String(64))
    value_index: str = Field(sa_type=String(64))
    value_ct: bytes | None = _ct()
    verified: bool = Field(default=False)
    channel: str = Field(sa_type=String(24))
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Store(SQLModel, table=True):
    __tablename__ = "store"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(sa_type=String(32), unique=True)
    name: str = Field(sa_type=String(200))
    city: str = Field(sa_type=String(100))
    channel: str = Field(default="POS", sa_type=String(24))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Event(SQLModel, table=True):
    """A business event exactly as it arrived. Never updated or deleted (append-only).

    `customer_id` is the customer the event was recorded for; after a merge the survivor sees
    it through the survivor pointer, so merges and unmerges never rewrite events.
    """

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_customer_time", "customer_id", "occurred_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = _fk("customer.id", index=False)
    type: str = Field(sa_type=String(24))
    channel: str = Field(sa_type=String(24))
    store_id: uuid.UUID | None = _fk("store.id", nullable=True, index=False)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # SHA-256 of the client's key (see graph.events.stored_idempotency_key).
    idempotency_key: str | None = Field(default=None, sa_type=String(200), unique=True)
    request_hash: str | None = Field(default=None, sa_type=String(64))
    external_ref: str | None = Field(default=None, sa_type=String(100))
    currency: str | None = Field(default=None, sa_type=String(3))
    amount_minor: int | None = Field(default=None, sa_type=BigInteger)
    purchase_id: uuid.UUID | None = _fk("event.id", nullable=True)
    topic: str | None = Field(default=None, sa_type=String(64))  # a code, never free text
    satisfaction: int | None = Field(default=None)
    campaign: str | None = Field(default=None, sa_type=String(100))
    campaign_channel: str | None = Field(default=None, sa_type=String(24))
    action: str | None = Field(default=None, sa_type=String(24))


class EventLine(SQLModel, table=True):
    """A line of a purchase or return: quantity at a unit price in minor units."""

    __tablename__ = "event_line"
    __table_args__ = (Unique("event_id", "line_no"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    event_id: uuid.UUID = _fk("event.id", index=False)
    line_no: int
    sku: str = Field(sa_type=String(64))
    category: str = Field(sa_type=String(64))
    quantity: int
    # Whole minor units; when a line's total does not divide by its quantity this is the
    # floor and `total_minor` is the amount paid (see graph.lines.price_line).
    unit_price_minor: int = Field(sa_type=BigInteger)
    total_minor: int = Field(sa_type=BigInteger)


class Review(SQLModel, table=True):
    """A product review. The text is encrypted under the author's data key, so erasing the
    author makes it unreadable everywhere."""

    __tablename__ = "review"
    __table_args__ = (Unique("customer_id", "product_sku"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = _fk("customer.id", index=False)
    product_sku: str = Field(sa_type=String(64), index=True)
    rating: int
    text_ct: bytes | None = _ct()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReviewVote(SQLModel, table=True):
    __tablename__ = "review_vote"
    __table_args__ = (Unique("review_id", "voter_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    review_id: uuid.UUID = _fk("review.id", index=False)
    voter_id: uuid.UUID = _fk("customer.id")
    helpful: bool
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Referral(SQLModel, table=True):
    __tablename__ = "referral"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    referrer_id: uuid.UUID = _fk("customer.id")
    referee_id: uuid.UUID | None = _fk("customer.id", nullable=True)
    code: str = Field(sa_type=String(32), unique=True)
    status: str = Field(default="INVITED", sa_type=String(16))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    registered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    converted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SocialProfile(SQLModel, table=True):
    __tablename__ = "social_profile"
    __table_args__ = (Unique("platform", "handle_index"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = _fk("customer.id")
    platform: str = Field(sa_type=String(16))
    handle_index: str = Field(sa_type=String(64))
    handle_ct: bytes | None = _ct()
    followers: int = Field(default=0)  # the latest count; its history is FollowerCount
    linked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FollowerCount(SQLModel, table=True):
    """A profile's follower count as observed at a moment (each link and refresh adds one), so
    that a feature at a past cutoff reads the count known then, not today's."""

    __tablename__ = "follower_count"
    __table_args__ = (Index("ix_follower_count_profile_time", "profile_id", "observed_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    profile_id: uuid.UUID = _fk("social_profile.id", index=False)
    followers: int = Field(default=0)
    observed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MergeRecord(SQLModel, table=True):
    """One merge, with what it changed, so that `customerUnmerge` can restore it exactly.

    `details` holds the ids of customers that were re-pointed from the merged customer to the
    survivor and, per profile column filled from the merged customer, a hash of the ciphertext
    written (so an unmerge clears only what the merge wrote and nobody changed since).
    """

    __tablename__ = "merge_record"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    survivor_id: uuid.UUID = _fk("customer.id")
    merged_id: uuid.UUID = _fk("customer.id")
    actor: str = Field(sa_type=String(100))
    reason_ct: bytes | None = _ct()  # the operator's note, encrypted under the survivor's key
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    undone_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    undone_by: str | None = Field(default=None, sa_type=String(100))


class ImportCheckpoint(SQLModel, table=True):
    """How far a bulk import of one file got: written in each batch's own transaction, so
    `--resume` restarts after the last batch that committed. Holds counts and line numbers
    with reasons, never a value from the file."""

    __tablename__ = "import_checkpoint"

    id: str = Field(primary_key=True, sa_type=String(100))  # "<what>:<sha-256 of the file>"
    last_line: int = Field(default=0)
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    done: bool = Field(default=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
