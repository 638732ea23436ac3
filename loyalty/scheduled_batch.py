"""The scheduled work for a batch of accounts in one transaction, in sets.

`catch_up_many` does for thousands of accounts what `ledger.catch_up` and `tiers.review_tier` do
for one, with a handful of statements per batch instead of a dozen per account:

1. the batch's accounts are locked in one statement, in id order (`FOR UPDATE` on PostgreSQL;
   on SQLite the transaction already holds the write lock), so live writers and a second run
   wait, and everything below is decided on what the database holds under that lock;
2. holds past their time are released through `ledger.release` (rare: checkouts abandoned);
3. lots past their expiry expire: one `EXPIRE` entry per lot with points left, dated at the
   lot's `expires_at`, with its allocation, each set made by one `INSERT ... SELECT` from a
   temporary note of the due lots, and one `UPDATE` of the lots;
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

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    MetaData,
    String,
    Table,
    Uuid,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable
from sqlmodel import col

from core.clock import as_utc, utcnow
from core.db import UTCDateTime
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


# The lots a batch expires, with the id of the EXPIRE entry each gets: filled and read in the
# batch's transaction. PostgreSQL drops it at commit; on SQLite it lives as long as the
# connection, so each batch empties it first.
_EXPIRING = Table(
    "lg_expiring_lots",
    MetaData(),
    Column("lot_id", Uuid, primary_key=True),
    Column("entry_id", Uuid, nullable=False),
    Column("customer_id", Uuid, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("rule_code", String(64)),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

# A random (version 4) UUID made by the database, as each dialect stores a `Uuid`.
_SQLITE_UUID4 = (
    "lower(hex(randomblob(4)) || hex(randomblob(2)) || '4' || substr(hex(randomblob(2)), 2)"
    " || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2)"
    " || hex(randomblob(6)))"
)


def _new_uuid(session: AsyncSession) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.gen_random_uuid()
    return literal_column(_SQLITE_UUID4)


async def _expire_lots(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    program: ActiveProgram,
    at: datetime,
    done: BatchDone,
) -> None:
    """Expire the batch's due lots in five statements, whatever their number: note them (and
    their new entries' ids), insert the entries and the allocations from that note, zero the
    lots, and read the counts back."""
    due, lots = _EXPIRING, _table(Lot)
    await session.execute(CreateTable(due, if_not_exists=True))
    await session.execute(delete(due))
    await session.execute(
        insert(due).from_select(
            ["lot_id", "entry_id", "customer_id", "remaining", "expires_at", "rule_code"],
            select(
                lots.c.id,
                _new_uuid(session),
                lots.c.customer_id,
                lots.c.remaining,
                lots.c.expires_at,
                lots.c.rule_code,
            ).where(lots.c.customer_id.in_(ids), expiring_by(at)),
        )
    )
    count, points = (
        await session.execute(select(func.count(), func.coalesce(func.sum(due.c.remaining), 0)))
    ).one()
    if not count:
        return
    await session.execute(
        insert(_table(LedgerEntry)).from_select(
            [
                "id",
                "customer_id",
                "kind",
                "points",
                "occurred_at",
                "recorded_at",
                "program_id",
                "rule_code",
                "actor",
                "outstanding",
            ],
            select(
                due.c.entry_id,
                due.c.customer_id,
                literal(EntryKind.EXPIRE.value, String(16)),
                -due.c.remaining,
                due.c.expires_at,  # the due instant, not the run's
                literal(utcnow(), UTCDateTime),
                literal(program.row.id, Uuid),
                due.c.rule_code,
                literal("system", String(100)),
                literal(0, BigInteger),
            ).where(due.c.remaining > 0),
        )
    )
    await session.execute(
        insert(_table(Allocation)).from_select(
            ["id", "entry_id", "lot_id", "points"],
            select(_new_uuid(session), due.c.entry_id, due.c.lot_id, due.c.remaining).where(
                due.c.remaining > 0
            ),
        )
    )
    expired = await session.execute(
        update(lots)
        .where(lots.c.id.in_(select(due.c.lot_id)), expiring_by(at))
        .values(remaining=0, status=LotStatus.EXPIRED.value)
    )
    # Under the batch's lock nothing else can change these lots between the statements.
    assert expired.rowcount == count, "lots changed under the scheduled run's lock"  # type: ignore[attr-defined]
    done.expired_lots += int(count)
    done.expired_points += int(points)
    done.accounts.update(
        row[0] for row in await session.execute(select(due.c.customer_id).distinct())
    )


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
