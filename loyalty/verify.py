"""`loyalgraph ledger verify`: every invariant of the ledger, checked in SQL over all accounts.

A breach names the check and the id of the row (an account's id is a customer id, which is
pseudonymous); never a name or a phone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from loyalty.models import (
    Account,
    Allocation,
    EntryKind,
    LedgerEntry,
    Lot,
    LotStatus,
    Reservation,
    ReservationStatus,
)

MAX_LISTED = 100


@dataclass(frozen=True, slots=True)
class Breach:
    check: str
    subject: uuid.UUID
    detail: str


@dataclass(slots=True)
class VerifyReport:
    accounts: int = 0
    lots: int = 0
    entries: int = 0
    breaches: list[Breach] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaches


def _sum_alloc_by_lot() -> Any:
    return (
        select(col(Allocation.lot_id).label("lot_id"), func.sum(col(Allocation.points)).label("n"))
        .group_by(col(Allocation.lot_id))
        .subquery()
    )


async def verify_ledger(session: AsyncSession) -> VerifyReport:
    report = VerifyReport()
    report.accounts = (
        await session.execute(select(func.count()).select_from(Account))
    ).scalar_one()
    report.lots = (await session.execute(select(func.count()).select_from(Lot))).scalar_one()
    report.entries = (
        await session.execute(select(func.count()).select_from(LedgerEntry))
    ).scalar_one()

    async def collect(check: str, query: Any, describe: str) -> None:
        for row in (await session.execute(query.limit(MAX_LISTED))).all():
            report.breaches.append(Breach(check, row[0], describe.format(*row[1:])))

    taken = _sum_alloc_by_lot()
    await collect(
        "lot_remaining_matches_allocations",
        select(col(Lot.id), col(Lot.amount), col(Lot.remaining), func.coalesce(taken.c.n, 0))
        .outerjoin(taken, taken.c.lot_id == col(Lot.id))
        .where(col(Lot.remaining) != col(Lot.amount) - func.coalesce(taken.c.n, 0)),
        "amount {} remaining {} but allocations take {}",
    )
    await collect(
        "lot_remaining_in_range",
        select(col(Lot.id), col(Lot.amount), col(Lot.remaining)).where(
            or_(col(Lot.remaining) < 0, col(Lot.remaining) > col(Lot.amount), col(Lot.amount) <= 0)
        ),
        "amount {} remaining {}",
    )
    await collect(
        "closed_lot_is_empty",
        select(col(Lot.id), col(Lot.status), col(Lot.remaining)).where(
            col(Lot.status).in_((LotStatus.EXPIRED, LotStatus.CANCELLED)), col(Lot.remaining) != 0
        ),
        "{} lot still holds {}",
    )
    created = (
        select(col(Lot.entry_id).label("entry_id"), func.sum(col(Lot.amount)).label("n"))
        .group_by(col(Lot.entry_id))
        .subquery()
    )
    allocated = (
        select(
            col(Allocation.entry_id).label("entry_id"), func.sum(col(Allocation.points)).label("n")
        )
        .group_by(col(Allocation.entry_id))
        .subquery()
    )
    expected = (
        func.coalesce(created.c.n, 0)
        - func.coalesce(allocated.c.n, 0)
        - col(LedgerEntry.outstanding)
    )
    await collect(
        "entry_matches_lots_and_allocations",
        select(col(LedgerEntry.id), col(LedgerEntry.kind), col(LedgerEntry.points), expected)
        .outerjoin(created, created.c.entry_id == col(LedgerEntry.id))
        .outerjoin(allocated, allocated.c.entry_id == col(LedgerEntry.id))
        .where(col(LedgerEntry.points) != expected),
        "{} entry of {} points, but its lots and allocations make {}",
    )
    await collect(
        "debt_not_negative",
        select(col(LedgerEntry.id), col(LedgerEntry.outstanding)).where(
            col(LedgerEntry.outstanding) < 0
        ),
        "outstanding {}",
    )
    await collect(
        "allocation_within_account",
        select(col(Allocation.id), literal("x"))
        .join(LedgerEntry, col(LedgerEntry.id) == col(Allocation.entry_id))
        .join(Lot, col(Lot.id) == col(Allocation.lot_id))
        .where(col(Lot.customer_id) != col(LedgerEntry.customer_id)),
        "an entry took points from another account's lot{}",
    )
    held = (
        select(
            col(LedgerEntry.reservation_id).label("reservation_id"),
            func.sum(-col(LedgerEntry.points)).label("n"),
        )
        .where(col(LedgerEntry.kind).in_((EntryKind.RESERVE, EntryKind.RELEASE)))
        .group_by(col(LedgerEntry.reservation_id))
        .subquery()
    )
    open_states = (ReservationStatus.HELD, ReservationStatus.COMMITTED)
    await collect(
        "reservation_holds_its_points",
        select(col(Reservation.id), col(Reservation.status), func.coalesce(held.c.n, 0))
        .outerjoin(held, held.c.reservation_id == col(Reservation.id))
        .where(
            or_(
                col(Reservation.status).in_(open_states)
                & (func.coalesce(held.c.n, 0) != col(Reservation.points)),
                col(Reservation.status).not_in(open_states) & (func.coalesce(held.c.n, 0) != 0),
            )
        ),
        "{} reservation, but its entries hold {}",
    )
    journal = (
        select(
            col(LedgerEntry.customer_id).label("customer_id"),
            func.sum(col(LedgerEntry.points)).label("points"),
            func.sum(col(LedgerEntry.outstanding)).label("debt"),
        )
        .group_by(col(LedgerEntry.customer_id))
        .subquery()
    )
    lots = (
        select(col(Lot.customer_id).label("customer_id"), func.sum(col(Lot.remaining)).label("n"))
        .group_by(col(Lot.customer_id))
        .subquery()
    )
    await collect(
        "account_balance_matches_lots",
        select(
            col(Account.customer_id),
            func.coalesce(journal.c.points, 0),
            func.coalesce(lots.c.n, 0),
            func.coalesce(journal.c.debt, 0),
        )
        .outerjoin(journal, journal.c.customer_id == col(Account.customer_id))
        .outerjoin(lots, lots.c.customer_id == col(Account.customer_id))
        .where(
            func.coalesce(journal.c.points, 0)
            != func.coalesce(lots.c.n, 0) - func.coalesce(journal.c.debt, 0)
        ),
        "entries sum to {} but lots hold {} less a debt of {}",
    )
    return report
