"""The scheduled work, as one idempotent command: `loyalgraph loyalty run-scheduled [--at]`.

Accounts that have something due are handled in batches (`scheduled_batch.catch_up_many`,
5,000 accounts per transaction, a few set-based statements per batch) under their locks, and
everything is re-checked under those locks, so running the command twice, or twice at once,
does the work once. Every entry is dated at its due instant (a lot's expiry, a hold's end).
`at` defaults to now; passing it replays the schedule at another instant.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core.clock import as_utc
from core.db import transaction
from loyalty.ledger import OPEN_LOTS, activating_by, expiring_by
from loyalty.models import Account, Lot, Reservation, ReservationStatus
from loyalty.program import active_program
from loyalty.scheduled_batch import BATCH_ACCOUNTS, catch_up_many


@dataclass(frozen=True, slots=True)
class Expiring:
    customer_id: uuid.UUID
    points: int
    first_expiry: datetime


@dataclass(slots=True)
class ScheduledReport:
    at: datetime
    accounts: int = 0
    released_holds: int = 0
    activated_lots: int = 0
    expired_lots: int = 0
    expired_points: int = 0
    tier_reviews: int = 0
    tier_changes: dict[str, int] = field(default_factory=dict)
    expiring: list[Expiring] = field(default_factory=list)


async def _due_accounts(
    session: AsyncSession, at: datetime, review_every: timedelta
) -> list[uuid.UUID]:
    lots = select(col(Lot.customer_id)).where(or_(expiring_by(at), activating_by(at)))
    holds = select(col(Reservation.customer_id)).where(
        col(Reservation.status) == ReservationStatus.HELD, col(Reservation.expires_at) <= at
    )
    reviews = select(col(Account.customer_id)).where(
        col(Account.tier_reviewed_at) <= at - review_every
    )
    rows = await session.execute(union(lots, holds, reviews))
    return sorted((row[0] for row in rows), key=str)


async def expiring_soon(
    session: AsyncSession, *, at: datetime, days: int, customer_id: uuid.UUID | None = None
) -> list[Expiring]:
    """Customers with points that expire within `days` after `at` (to remind them)."""
    query = (
        select(
            col(Lot.customer_id),
            func.sum(col(Lot.remaining)),
            func.min(col(Lot.expires_at)),
        )
        .where(
            col(Lot.status).in_(OPEN_LOTS),
            col(Lot.remaining) > 0,
            col(Lot.expires_at) > at,
            col(Lot.expires_at) <= at + timedelta(days=days),
        )
        .group_by(col(Lot.customer_id))
        .order_by(func.min(col(Lot.expires_at)))
    )
    if customer_id is not None:
        query = query.where(col(Lot.customer_id) == customer_id)
    return [
        Expiring(customer_id=row[0], points=int(row[1]), first_expiry=as_utc(row[2] or at))
        for row in await session.execute(query)
    ]


async def run_scheduled(
    sessions: async_sessionmaker[AsyncSession],
    *,
    at: datetime,
    expiring_within_days: int = 30,
    batch_size: int = BATCH_ACCOUNTS,
    progress: Callable[[int, int], None] | None = None,
) -> ScheduledReport:
    """Do the work due by `at` for every account that has some, `batch_size` accounts per
    transaction (`scheduled_batch.catch_up_many`); `progress(done, total)` after each batch."""
    report = ScheduledReport(at=at)
    async with sessions() as session:
        program = await active_program(session)
        if program is None:
            return report
        review_every = timedelta(days=program.rules.tiers.review_every_days)
        due = await _due_accounts(session, at, review_every)
    if progress is not None:
        progress(0, len(due))
    for start in range(0, len(due), batch_size):
        async with transaction(sessions) as session:
            program = await active_program(session)
            assert program is not None
            done = await catch_up_many(session, due[start : start + batch_size], program, at)
        report.accounts += len(done.accounts)
        report.released_holds += done.released_holds
        report.activated_lots += done.activated_lots
        report.expired_lots += done.expired_lots
        report.expired_points += done.expired_points
        report.tier_reviews += done.tier_reviews
        for outcome, count in done.tier_changes.items():
            report.tier_changes[outcome] = report.tier_changes.get(outcome, 0) + count
        if progress is not None:
            progress(min(start + batch_size, len(due)), len(due))
    async with sessions() as session:
        report.expiring = await expiring_soon(session, at=at, days=expiring_within_days)
    return report
