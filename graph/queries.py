"""Batched reads for the API's DataLoaders: one statement per relation, whatever the page size.

Every function is keyed by owner ids (a customer that is not merged). A survivor sees the rows
of every customer merged into it through `member_owner`, without rows ever being moved.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, case, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import SQLModel, col

from core.db import UTCDateTime
from graph.enums import CustomerStatus, EventType
from graph.models import (
    Customer,
    Event,
    EventLine,
    Identity,
    Referral,
    Review,
    ReviewVote,
    SocialProfile,
)

T = TypeVar("T")
OWNER = func.coalesce(col(Customer.survivor_id), col(Customer.id)).label("owner")


def _members(owners: Sequence[uuid.UUID]) -> ColumnElement[bool]:
    return or_(col(Customer.id).in_(owners), col(Customer.survivor_id).in_(owners))


def _group(rows: Sequence[Any]) -> dict[uuid.UUID, list[Any]]:
    grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for entity, owner in rows:
        grouped[owner].append(entity)
    return grouped


M = TypeVar("M", bound=SQLModel)
# No customer has more than this of anything listed whole (identities, referrals, profiles).
LIST_LIMIT = 100


async def _first_per_owner(
    session: AsyncSession,
    entity: type[M],
    owners: Sequence[uuid.UUID],
    *,
    customer: Any,
    order: tuple[Any, ...],
    limit: int = LIST_LIMIT,
) -> dict[uuid.UUID, list[M]]:
    """The first `limit` rows of `entity` per owner in `order`, in one statement: the rows of
    every customer merged into an owner count as the owner's (`customer` is the row's
    customer column)."""
    rank = func.row_number().over(partition_by=OWNER, order_by=order).label("rank")
    inner = (
        select(entity, OWNER, rank)
        .join(Customer, col(Customer.id) == customer)
        .where(_members(owners))
        .subquery()
    )
    alias = aliased(entity, inner)
    rows = await session.execute(
        select(alias, inner.c.owner)
        .where(inner.c.rank <= limit)
        .order_by(inner.c.owner, inner.c.rank)
    )
    return _group(rows.all())


async def customers_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Customer]:
    """Customers by id, each resolved to its survivor (two statements at most)."""
    rows = (
        (await session.execute(select(Customer).where(col(Customer.id).in_(ids)))).scalars().all()
    )
    found = {row.id: row for row in rows}
    survivors = {row.survivor_id for row in rows if row.survivor_id is not None} - found.keys()
    if survivors:
        extra = (
            (await session.execute(select(Customer).where(col(Customer.id).in_(survivors))))
            .scalars()
            .all()
        )
        found.update({row.id: row for row in extra})
    return {
        key: found[row.survivor_id] if row.survivor_id else row
        for key, row in ((key, found[key]) for key in ids if key in found)
    }


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    status: CustomerStatus | None = None
    registered_channel: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    # Conditions on `customer.id` that other domains contribute (scores, for one).
    extra: tuple[ColumnElement[bool], ...] = ()


async def customers_page(
    session: AsyncSession,
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
    filter: CustomerFilter,
) -> list[Customer]:
    """Up to `first + 1` customers in registration order (the extra one tells `hasNextPage`).
    Merged customers are hidden: their survivor stands for them."""
    query = select(Customer).where(col(Customer.survivor_id).is_(None))
    if filter.status is not None:
        query = query.where(col(Customer.status) == filter.status)
    if filter.registered_channel is not None:
        query = query.where(col(Customer.registered_channel) == filter.registered_channel)
    if filter.created_after is not None:
        query = query.where(col(Customer.created_at) >= filter.created_after)
    if filter.created_before is not None:
        query = query.where(col(Customer.created_at) < filter.created_before)
    if filter.extra:
        query = query.where(*filter.extra)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                col(Customer.created_at) > at,
                and_(col(Customer.created_at) == at, col(Customer.id) > last_id),
            )
        )
    query = query.order_by(col(Customer.created_at), col(Customer.id)).limit(first + 1)
    return list((await session.execute(query)).scalars().all())


async def identities_for(
    session: AsyncSession, owners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Identity]]:
    return await _first_per_owner(
        session,
        Identity,
        owners,
        customer=col(Identity.customer_id),
        order=(col(Identity.first_seen), col(Identity.id)),
    )


@dataclass(frozen=True, slots=True)
class EventFilter:
    types: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


async def events_for(
    session: AsyncSession,
    owners: Sequence[uuid.UUID],
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
    filter: EventFilter,
) -> dict[uuid.UUID, list[Event]]:
    """The newest `first + 1` events per owner, in one statement (a window function)."""
    conditions: list[ColumnElement[bool]] = [_members(owners)]
    if filter.types:
        conditions.append(col(Event.type).in_(filter.types))
    if filter.channels:
        conditions.append(col(Event.channel).in_(filter.channels))
    if filter.since is not None:
        conditions.append(col(Event.occurred_at) >= filter.since)
    if filter.until is not None:
        conditions.append(col(Event.occurred_at) < filter.until)
    if after is not None:
        at, last_id = after
        conditions.append(
            or_(
                col(Event.occurred_at) < at,
                and_(col(Event.occurred_at) == at, col(Event.id) < last_id),
            )
        )
    rank = (
        func.row_number()
        .over(partition_by=OWNER, order_by=(col(Event.occurred_at).desc(), col(Event.id).desc()))
        .label("rank")
    )
    inner = (
        select(Event, OWNER, rank)
        .join(Customer, col(Customer.id) == col(Event.customer_id))
        .where(*conditions)
        .subquery()
    )
    event = aliased(Event, inner)
    rows = await session.execute(
        select(event, inner.c.owner)
        .where(inner.c.rank <= first + 1)
        .order_by(inner.c.owner, inner.c.occurred_at.desc(), inner.c.id.desc())
    )
    return _group(rows.all())


async def lines_for(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[EventLine]]:
    rows = (
        (
            await session.execute(
                select(EventLine)
                .where(col(EventLine.event_id).in_(event_ids))
                .order_by(col(EventLine.event_id), col(EventLine.line_no))
            )
        )
        .scalars()
        .all()
    )
    grouped: dict[uuid.UUID, list[EventLine]] = defaultdict(list)
    for line in rows:
        grouped[line.event_id].append(line)
    return grouped


async def reviews_for(
    session: AsyncSession, owners: Sequence[uuid.UUID], *, limit: int
) -> dict[uuid.UUID, list[Review]]:
    return await _first_per_owner(
        session,
        Review,
        owners,
        customer=col(Review.customer_id),
        order=(col(Review.created_at).desc(), col(Review.id).desc()),
        limit=limit,
    )


@dataclass(frozen=True, slots=True)
class VoteCount:
    helpful: int = 0
    unhelpful: int = 0


async def votes_for(
    session: AsyncSession, review_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, VoteCount]:
    helpful = func.sum(case((col(ReviewVote.helpful).is_(True), 1), else_=0))
    rows = await session.execute(
        select(col(ReviewVote.review_id), helpful, func.count())
        .where(col(ReviewVote.review_id).in_(review_ids))
        .group_by(col(ReviewVote.review_id))
    )
    return {
        review_id: VoteCount(helpful=int(yes or 0), unhelpful=int(total) - int(yes or 0))
        for review_id, yes, total in rows.all()
    }


async def referrals_made_for(
    session: AsyncSession, owners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Referral]]:
    return await _first_per_owner(
        session,
        Referral,
        owners,
        customer=col(Referral.referrer_id),
        order=(col(Referral.created_at), col(Referral.id)),
    )


async def referred_by_for(
    session: AsyncSession, owners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Referral]:
    rows = await session.execute(
        select(Referral, OWNER)
        .join(Customer, col(Customer.id) == col(Referral.referee_id))
        .where(_members(owners))
        .order_by(col(Referral.registered_at))
    )
    found: dict[uuid.UUID, Referral] = {}
    for referral, owner in rows.all():
        found.setdefault(owner, referral)
    return found


async def social_for(
    session: AsyncSession, owners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SocialProfile]]:
    return await _first_per_owner(
        session,
        SocialProfile,
        owners,
        customer=col(SocialProfile.customer_id),
        order=(col(SocialProfile.linked_at), col(SocialProfile.id)),
    )


@dataclass(frozen=True, slots=True)
class RfmFacts:
    """Recency, frequency and monetary facts from raw purchase and return events."""

    currency: str
    frequency: int
    gross_minor: int
    returned_minor: int
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None

    @property
    def monetary_minor(self) -> int:
        return self.gross_minor - self.returned_minor

    @property
    def average_check_minor(self) -> int | None:
        return round(self.gross_minor / self.frequency) if self.frequency else None

    def recency_days(self, now: datetime) -> int | None:
        """Whole days (24-hour periods, floored) from the last purchase to `now`."""
        if self.last_purchase_at is None:
            return None
        return whole_days(self.last_purchase_at, now)

    @property
    def average_interpurchase_days(self) -> float | None:
        if self.frequency < 2 or self.first_purchase_at is None or self.last_purchase_at is None:
            return None
        span = (self.last_purchase_at - self.first_purchase_at).total_seconds() / 86400
        return span / (self.frequency - 1)

    def lifetime_days(self, now: datetime) -> int | None:
        """Whole days (24-hour periods, floored) from the first purchase to `now`."""
        if self.first_purchase_at is None:
            return None
        return whole_days(self.first_purchase_at, now)


def whole_days(start: datetime, end: datetime) -> int:
    """Complete days from `start` to `end` (floored; 0 on the same day, never negative)."""
    return max(0, (end - start) // timedelta(days=1))


async def rfm_for(
    session: AsyncSession, owners: Sequence[uuid.UUID], *, currency: str
) -> dict[uuid.UUID, RfmFacts]:
    """One aggregate statement for all owners, in the program currency."""
    is_purchase = col(Event.type) == EventType.PURCHASE
    is_return = col(Event.type) == EventType.RETURN
    purchase_time = case((is_purchase, col(Event.occurred_at)), else_=None)
    rows = await session.execute(
        select(
            OWNER,
            func.sum(case((is_purchase, 1), else_=0)),
            func.sum(case((is_purchase, col(Event.amount_minor)), else_=0)),
            func.sum(case((is_return, col(Event.amount_minor)), else_=0)),
            type_coerce(func.min(purchase_time), UTCDateTime()),
            type_coerce(func.max(purchase_time), UTCDateTime()),
        )
        .join(Customer, col(Customer.id) == col(Event.customer_id))
        .where(_members(owners), col(Event.currency) == currency, or_(is_purchase, is_return))
        .group_by(OWNER)
    )
    return {
        owner: RfmFacts(
            currency=currency,
            frequency=int(count or 0),
            gross_minor=int(gross or 0),
            returned_minor=int(returned or 0),
            first_purchase_at=first_at,
            last_purchase_at=last_at,
        )
        for owner, count, gross, returned, first_at, last_at in rows.all()
    }
