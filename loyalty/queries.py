"""Batched reads for the API's DataLoaders: one statement per relation, whatever the page size.

Each function takes many accounts (customer ids) at once and gives exactly what its
one-account counterpart in the engine gives (`ledger.balance_of`, `tiers.qualifying_value`,
`scheduled.expiring_soon`), so a page of customers costs the same few statements as one.
Nothing here writes or locks.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from core.clock import as_utc
from graph.enums import EventType
from graph.models import Customer, Event
from loyalty.definition import ProgramDefinition, TierMetric
from loyalty.ledger import OPEN_LOTS, balances_for
from loyalty.models import Account, LedgerEntry, Lot
from loyalty.scheduled import Expiring

__all__ = ["accounts_for", "balances_for", "expiring_for", "ledger_for", "qualifying_for"]
from loyalty.tiers import EARNING_KINDS


async def accounts_for(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Account]:
    rows = await session.execute(select(Account).where(col(Account.customer_id).in_(customer_ids)))
    return {row.customer_id: row for row in rows.scalars()}


async def qualifying_for(
    session: AsyncSession,
    customer_ids: Sequence[uuid.UUID],
    program: ProgramDefinition,
    now: datetime,
) -> dict[uuid.UUID, int]:
    """`tiers.qualifying_value` for many accounts in one statement."""
    start = now - timedelta(days=program.tiers.window_days)
    if program.tiers.metric is TierMetric.POINTS_EARNED:
        rows = await session.execute(
            select(col(LedgerEntry.customer_id), func.sum(col(LedgerEntry.points)))
            .where(
                col(LedgerEntry.customer_id).in_(customer_ids),
                col(LedgerEntry.kind).in_(EARNING_KINDS),
                col(LedgerEntry.occurred_at) > start,
                col(LedgerEntry.occurred_at) <= now,
            )
            .group_by(col(LedgerEntry.customer_id))
        )
        found = {row[0]: int(row[1] or 0) for row in rows}
    else:
        # An account's spend counts its own events and those of customers merged into it.
        owner = case(
            (col(Customer.id).in_(customer_ids), col(Customer.id)),
            else_=col(Customer.survivor_id),
        ).label("owner")
        amount = func.coalesce(col(Event.amount_minor), 0)
        net = func.sum(
            case(
                (col(Event.type) == EventType.PURCHASE, amount),
                (col(Event.type) == EventType.RETURN, -amount),
                else_=0,
            )
        )
        rows = await session.execute(
            select(owner, net)
            .join(Customer, col(Customer.id) == col(Event.customer_id))
            .where(
                or_(
                    col(Customer.id).in_(customer_ids), col(Customer.survivor_id).in_(customer_ids)
                ),
                col(Event.occurred_at) > start,
                col(Event.occurred_at) <= now,
            )
            .group_by(owner)
        )
        found = {row[0]: int(row[1] or 0) for row in rows}
    return {key: max(found.get(key, 0), 0) for key in customer_ids}


async def expiring_for(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID], *, at: datetime, days: int
) -> dict[uuid.UUID, Expiring]:
    """`scheduled.expiring_soon` for many accounts: points in open lots that expire within
    `days` after `at`, and the first such instant. Accounts with none are left out."""
    rows = await session.execute(
        select(col(Lot.customer_id), func.sum(col(Lot.remaining)), func.min(col(Lot.expires_at)))
        .where(
            col(Lot.customer_id).in_(customer_ids),
            col(Lot.status).in_(OPEN_LOTS),
            col(Lot.remaining) > 0,
            col(Lot.expires_at) > at,
            col(Lot.expires_at) <= at + timedelta(days=days),
        )
        .group_by(col(Lot.customer_id))
    )
    return {
        row[0]: Expiring(customer_id=row[0], points=int(row[1]), first_expiry=as_utc(row[2] or at))
        for row in rows
    }


async def ledger_for(
    session: AsyncSession,
    customer_ids: Sequence[uuid.UUID],
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> dict[uuid.UUID, list[LedgerEntry]]:
    """The newest `first + 1` entries per account after the keyset `after` (newest first by
    `occurred_at`, then id), in one statement; the extra entry tells whether more follow."""
    conditions: list[ColumnElement[bool]] = [col(LedgerEntry.customer_id).in_(customer_ids)]
    if after is not None:
        at, last_id = after
        conditions.append(
            or_(
                col(LedgerEntry.occurred_at) < at,
                and_(col(LedgerEntry.occurred_at) == at, col(LedgerEntry.id) < last_id),
            )
        )
    rank = (
        func.row_number()
        .over(
            partition_by=col(LedgerEntry.customer_id),
            order_by=(col(LedgerEntry.occurred_at).desc(), col(LedgerEntry.id).desc()),
        )
        .label("rank")
    )
    inner = select(LedgerEntry, rank).where(*conditions).subquery()
    entry = aliased(LedgerEntry, inner)
    rows = await session.execute(
        select(entry)
        .where(inner.c.rank <= first + 1)
        .order_by(inner.c.customer_id, inner.c.occurred_at.desc(), inner.c.id.desc())
    )
    grouped: dict[uuid.UUID, list[LedgerEntry]] = defaultdict(list)
    for row in rows.scalars():
        grouped[row.customer_id].append(row)
    return grouped
