"""Tables of the loyalty engine: program versions, accounts, a journal of entries, lots and
the allocations that tie every debit to the lots it consumed.

No balance is stored. An account's balance is the sum of its lots' `remaining`, less the debt a
return may leave (`LedgerEntry.outstanding`). Every identity below is checked by
`loyalty.verify`:

- a lot's `remaining` = its `amount` - the sum of its allocations, and 0 <= remaining <= amount;
- an entry's `points` = the amounts of the lots it created - its allocations - its outstanding;
- an allocation takes from a lot of the entry's own account.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy import UniqueConstraint as Unique
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.db import UTCDateTime


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(ForeignKey(target), nullable=nullable, index=index),
    )


class EntryKind(StrEnum):
    EARN = "EARN"  # points for a purchase
    BONUS = "BONUS"  # a fixed bonus (registration, first purchase, birthday, review)
    REFERRAL = "REFERRAL"  # a referral reward
    ADJUST = "ADJUST"  # an operator's correction, with a reason
    REDEEM = "REDEEM"  # points paid at once
    RESERVE = "RESERVE"  # points held at checkout
    COMMIT = "COMMIT"  # a hold became a payment (moves no points)
    RELEASE = "RELEASE"  # a hold cancelled or expired: its points go back to their lots
    EXPIRE = "EXPIRE"
    REVERSAL = "REVERSAL"  # points of a returned purchase taken back
    REFUND = "REFUND"  # points paid for a returned purchase given back
    TRANSFER_OUT = "TRANSFER_OUT"  # a merge moved the balance to the survivor
    TRANSFER_IN = "TRANSFER_IN"


class LotStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


class ReservationStatus(StrEnum):
    HELD = "HELD"
    COMMITTED = "COMMITTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class Program(SQLModel, table=True):
    """One version of a program definition. Exactly one row is active."""

    __tablename__ = "loyalty_program"
    __table_args__ = (
        Unique("code", "version"),
        Index(
            "uq_loyalty_program_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(sa_type=String(64))
    version: int
    name: str = Field(sa_type=String(200))
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    digest: str = Field(sa_type=String(64))
    active: bool = Field(default=True)
    loaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    loaded_by: str = Field(sa_type=String(100))


class Account(SQLModel, table=True):
    """A customer's membership: the row every writer locks, and the tier. No balance here."""

    __tablename__ = "loyalty_account"

    customer_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("customer.id"), primary_key=True, nullable=False)
    )
    tier: str = Field(sa_type=String(64))
    tier_since: datetime = Field(sa_type=UTCDateTime)
    tier_reviewed_at: datetime = Field(sa_type=UTCDateTime, index=True)
    grace_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LedgerEntry(SQLModel, table=True):
    """One movement of points, as it happened. Append-only, except `outstanding`, the part of a
    return's debit not yet covered by points (it falls as later earnings pay the debt)."""

    __tablename__ = "loyalty_entry"
    __table_args__ = (
        Index("ix_loyalty_entry_account", "customer_id", "occurred_at", "id"),
        Index("ix_loyalty_entry_event", "event_id", "kind"),
        Index("ix_loyalty_entry_purchase", "purchase_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = _fk("loyalty_account.customer_id", index=False)
    kind: str = Field(sa_type=String(16))
    points: int = Field(sa_type=BigInteger)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    program_id: uuid.UUID | None = _fk("loyalty_program.id", nullable=True, index=False)
    rule_code: str | None = Field(default=None, sa_type=String(64))
    event_id: uuid.UUID | None = _fk("event.id", nullable=True, index=False)
    purchase_id: uuid.UUID | None = _fk("event.id", nullable=True, index=False)
    reservation_id: uuid.UUID | None = _fk("loyalty_reservation.id", nullable=True)
    order_total_minor: int | None = Field(default=None, sa_type=BigInteger)
    idempotency_key: str | None = Field(default=None, sa_type=String(64), unique=True)
    request_hash: str | None = Field(default=None, sa_type=String(64))
    actor: str = Field(default="system", sa_type=String(100))
    reason_ct: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    outstanding: int = Field(default=0, sa_type=BigInteger)


class Lot(SQLModel, table=True):
    """Points credited together, spent earliest-expiry first."""

    __tablename__ = "loyalty_lot"
    __table_args__ = (
        Index("ix_loyalty_lot_account", "customer_id", "status", "expires_at"),
        Index("ix_loyalty_lot_available", "status", "available_at"),
        Index("ix_loyalty_lot_expiry", "status", "expires_at"),
        Index("ix_loyalty_lot_event", "event_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = _fk("loyalty_account.customer_id", index=False)
    entry_id: uuid.UUID = _fk("loyalty_entry.id")
    kind: str = Field(sa_type=String(16))
    amount: int = Field(sa_type=BigInteger)
    remaining: int = Field(sa_type=BigInteger)
    status: str = Field(sa_type=String(16))
    earned_at: datetime = Field(sa_type=UTCDateTime)
    available_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    event_id: uuid.UUID | None = _fk("event.id", nullable=True, index=False)
    rule_code: str | None = Field(default=None, sa_type=String(64))
    origin_lot_id: uuid.UUID | None = _fk("loyalty_lot.id", nullable=True)


class Allocation(SQLModel, table=True):
    """Points an entry took from a lot (negative: gave back, when a hold is released)."""

    __tablename__ = "loyalty_allocation"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    entry_id: uuid.UUID = _fk("loyalty_entry.id")
    lot_id: uuid.UUID = _fk("loyalty_lot.id")
    points: int = Field(sa_type=BigInteger)


class Reservation(SQLModel, table=True):
    """Points held at checkout until committed, cancelled, or the hold runs out."""

    __tablename__ = "loyalty_reservation"
    __table_args__ = (Index("ix_loyalty_reservation_open", "status", "expires_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = _fk("loyalty_account.customer_id")
    points: int = Field(sa_type=BigInteger)
    status: str = Field(default=ReservationStatus.HELD, sa_type=String(16))
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    order_total_minor: int = Field(sa_type=BigInteger)
    purchase_id: uuid.UUID | None = _fk("event.id", nullable=True, index=False)
    idempotency_key: str = Field(sa_type=String(64), unique=True)
    request_hash: str = Field(sa_type=String(64))


class TierChange(SQLModel, table=True):
    __tablename__ = "loyalty_tier_change"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID = _fk("loyalty_account.customer_id")
    from_tier: str | None = Field(default=None, sa_type=String(64))
    to_tier: str = Field(sa_type=String(64))
    reason: str = Field(sa_type=String(32))
    qualifying: int = Field(sa_type=BigInteger)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
