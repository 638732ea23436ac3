"""The scheduled work for a batch of accounts in one transaction, in sets.

`catch_up_many` does for thousands of accounts what `ledger.catch_up` and `tiers.review_tier` do
for one, with a handful of statements per batch instead of a dozen per account:

1. the batch's accounts are locked in one statement, in id order (`FOR UPDATE` on PostgreSQL;
   on SQLite the transaction already holds the write lock), so live writers and a second run
   wait, and everything below is decided on what the database holds under that lock;
2. holds past their time are released through `ledger.release` (rare: checkouts abandoned);
3. lots past their expiry expire: one `EXPIRE` entry per lot with points left, dated at the
   lot's `expires_at`, with its allocation, inserted in bulk, and one `UPDATE` of the lots;
4. pending lots whose time has come activate in one `UPDATE`;
5. a return's unpaid debt is paid down through `ledger.settle_debt` (rare);
6. tiers due for review are reviewed: qualifying values in one grouped statement
   (`tiers.qualifying_values`), the decision by `tiers.decide_review`, one `UPDATE` per
   distinct outcome and the tier changes inserted in bulk.

Which lots expire or activate is `ledger.expiring_by` / `ledger.activating_by`, the same
predicates `ledger.catch_up` uses for one account; every update is conditional on them, so a
second run (or one that waited for this one's lock) finds nothing left to do.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from loyalty.ledger import activating_by, expiring_by, release, settle_debt
from loyalty.models import (
    Account,
    Allocation,
    EntryKind,
    LedgerEntry,
    Lot,
    LotStatus,
    Reservation,
    ReservationStatus,
    TierChange,
)
from loyalty.program import ActiveProgram
from loyalty.tiers import decide_review, qualifying_values

BATCH_ACCOUNTS = 5_000  # accounts per transaction: short locks, few statements


@dataclass(slots=True)
class BatchDone:
    accounts: set[uuid.UUID] = field(default_factory=set)  # those that had work
    released_holds: int = 0
    activated_lots: int = 0
    expired_lots: int = 0
    expired_points: int = 0
    tier_reviews: int = 0
    tier_changes: dict[str, int] = field(default_factory=dict)


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def _release_holds(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    program: ActiveProgram,
    at: datetime,
    done: BatchDone,
) -> None:
    stale = (
        await session.execute(
            select(Reservation)
            .where(
                col(Reservation.customer_id).in_(ids),
                col(Reservation.status) == ReservationStatus.HELD,
                col(Reservation.expires_at) <= at,
            )
            .order_by(col(Reservation.customer_id), col(Reservation.expires_at))
        )
    ).scalars()
    for reservation in list(stale):
        account = await session.get(Account, reservation.customer_id)
        assert account is not None
        await release(
            session,
            account,
            program,
            reservation,
            status=ReservationStatus.EXPIRED,
            when=reservation.expires_at,
        )
        done.released_holds += 1
        done.accounts.add(reservation.customer_id)


async def _expire_lots(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    program: ActiveProgram,
    at: datetime,
    done: BatchDone,
) -> None:
    due = (
        await session.execute(
            select(
                col(Lot.id),
                col(Lot.customer_id),
                col(Lot.remaining),
                col(Lot.expires_at),
                col(Lot.rule_code),
            ).where(col(Lot.customer_id).in_(ids), expiring_by(at))
        )
    ).all()
    if not due:
        return
    recorded = utcnow()
    entries: list[dict[str, Any]] = []
    allocations: list[dict[str, Any]] = []
    for lot_id, customer_id, remaining, expires_at, rule_code in due:
        done.accounts.add(customer_id)
        done.expired_lots += 1
        done.expired_points += remaining
        if remaining <= 0:
            continue
        entry_id = uuid.uuid4()
        entries.append(
            {
                "id": entry_id,
                "customer_id": customer_id,
                "kind": EntryKind.EXPIRE.value,
                "points": -remaining,
                "occurred_at": expires_at,  # the due instant, not the run's
                "recorded_at": recorded,
                "program_id": program.row.id,
                "rule_code": rule_code,
                "actor": "system",
                "outstanding": 0,
            }
        )
        allocations.append(
            {"id": uuid.uuid4(), "entry_id": entry_id, "lot_id": lot_id, "points": remaining}
        )
    if entries:
        await session.execute(insert(_table(LedgerEntry)), entries)
        await session.execute(insert(_table(Allocation)), allocations)
    lots = _table(Lot)
    expired = await session.execute(
        update(lots)
        .where(lots.c.customer_id.in_(ids), expiring_by(at))
        .values(remaining=0, status=LotStatus.EXPIRED.value)
    )
    # Under the batch's lock nothing else can change these lots between the two statements.
    assert expired.rowcount == len(due), "lots changed under the scheduled run's lock"  # type: ignore[attr-defined]


async def _activate_lots(
    session: AsyncSession, ids: Sequence[uuid.UUID], at: datetime, done: BatchDone
) -> None:
    lots = _table(Lot)
    activated = await session.execute(
        update(lots)
        .where(lots.c.customer_id.in_(ids), activating_by(at))
        .values(status=LotStatus.ACTIVE.value)
        .returning(lots.c.customer_id)
    )
    for (customer_id,) in activated:
        done.activated_lots += 1
        done.accounts.add(customer_id)


async def _settle_debts(session: AsyncSession, ids: Sequence[uuid.UUID], at: datetime) -> None:
    owing = await session.execute(
        select(col(LedgerEntry.customer_id))
        .where(col(LedgerEntry.customer_id).in_(ids), col(LedgerEntry.outstanding) > 0)
        .distinct()
    )
    for (customer_id,) in owing.all():
        account = await session.get(Account, customer_id, populate_existing=True)
        assert account is not None
        await settle_debt(session, account, at)


async def _review_tiers(
    session: AsyncSession,
    locked: Sequence[Any],
    program: ActiveProgram,
    at: datetime,
    done: BatchDone,
) -> None:
    rules = program.rules
    review_every = timedelta(days=rules.tiers.review_every_days)
    due = [row for row in locked if as_utc(row.tier_reviewed_at) <= at - review_every]
    if not due:
        return
    values = await qualifying_values(session, [row.customer_id for row in due], rules, at)
    groups: dict[tuple[tuple[str, Any], ...], list[uuid.UUID]] = {}
    changes: list[dict[str, Any]] = []
    for row in due:
        grace = None if row.grace_until is None else as_utc(row.grace_until)
        value = values[row.customer_id]
        decision = decide_review(rules, row.tier, grace, value, at)
        sets: dict[str, Any] = {"tier_reviewed_at": at}
        if decision.to is not None:
            sets |= {"tier": decision.to.code, "tier_since": at}
            changes.append(
                {
                    "id": uuid.uuid4(),
                    "customer_id": row.customer_id,
                    "from_tier": row.tier,
                    "to_tier": decision.to.code,
                    "reason": decision.outcome,
                    "qualifying": value,
                    "occurred_at": at,
                }
            )
        if decision.grace_until != grace:
            sets["grace_until"] = decision.grace_until
        groups.setdefault(tuple(sorted(sets.items())), []).append(row.customer_id)
        done.tier_reviews += 1
        done.accounts.add(row.customer_id)
        if decision.outcome:
            done.tier_changes[decision.outcome] = done.tier_changes.get(decision.outcome, 0) + 1
    accounts = _table(Account)
    for sets_key, members in groups.items():
        await session.execute(
            update(accounts).where(accounts.c.customer_id.in_(members)).values(dict(sets_key))
        )
    if changes:
        await session.execute(insert(_table(TierChange)), changes)


async def catch_up_many(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID], program: ActiveProgram, at: datetime
) -> BatchDone:
    """Bring the accounts `customer_ids` up to `at` and review the tiers due, in the caller's
    (writing) transaction. Idempotent: what is done is recorded, so it is never due again."""
    done = BatchDone()
    ids = sorted(set(customer_ids), key=str)
    if not ids:
        return done
    accounts = _table(Account)
    locked = (
        await session.execute(
            select(
                accounts.c.customer_id,
                accounts.c.tier,
                accounts.c.tier_reviewed_at,
                accounts.c.grace_until,
            )
            .where(accounts.c.customer_id.in_(ids))
            .order_by(accounts.c.customer_id)
            .with_for_update()
        )
    ).all()
    await _release_holds(session, ids, program, at, done)
    await session.flush()
    await _expire_lots(session, ids, program, at, done)
    await _activate_lots(session, ids, at, done)
    # The bulk statements bypassed the session: what it loaded for the holds is stale.
    session.expire_all()
    await _settle_debts(session, ids, at)
    await session.flush()
    await _review_tiers(session, locked, program, at, done)
    return done
