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

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from core.clock import as_utc
from loyalty.ledger import OPEN_LOTS, balances_for
from loyalty.models import Account, LedgerEntry, Lot
from loyalty.scheduled import Expiring

__all__ = ["accounts_for", "balances_for", "expiring_for", "ledger_for", "qualifying_for"]
from loyalty.tiers import qualifying_values


async def accounts_for(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Account]:
    rows = await session.execute(select(Account).where(col(Account.customer_id).in_(customer_ids)))
    return {row.customer_id: row for row in rows.scalars()}


qualifying_for = qualifying_values  # the engine's own rule, for many accounts


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
