"""The ledger's moving parts: locking an account, crediting a lot, allocating a debit to lots
earliest-expiry first, releasing a hold, and bringing an account up to date at an instant.

Every function here runs inside the caller's transaction after `lock_account`: on PostgreSQL the
account row is locked `FOR UPDATE`, on SQLite the write transaction is `BEGIN IMMEDIATE`
(`core.db.begin_write`). So two redemptions against one account are serialised, and each sees
the lots the other left.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from loyalty.definition import ProgramDefinition
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
from loyalty.program import ActiveProgram

OPEN_LOTS = (LotStatus.PENDING, LotStatus.ACTIVE)


@dataclass(frozen=True, slots=True)
class Balance:
    available: int  # spendable now (negative only while a return's debt is unpaid)
    pending: int  # earned, waiting for the pending period
    held: int  # reserved at checkouts not yet committed


async def lock_account(
    session: AsyncSession, customer_id: uuid.UUID, program: ProgramDefinition, now: datetime
) -> Account:
    """The customer's account, created on first use, locked for the rest of the transaction."""
    values = {
        "customer_id": customer_id,
        "tier": program.tiers.levels[0].code,
        "tier_since": now,
        "tier_reviewed_at": now,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(Account).values(**values).on_conflict_do_nothing(index_elements=["customer_id"])
    )
    account = (
        await session.execute(
            select(Account)
            .where(col(Account.customer_id) == customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return account


def expiring_by(now: datetime) -> ColumnElement[bool]:
    """An open lot whose expiry has come by `now`: it expires, dated at its `expires_at`."""
    return and_(col(Lot.status).in_(OPEN_LOTS), col(Lot.expires_at) <= now)


def activating_by(now: datetime) -> ColumnElement[bool]:
    """A pending lot whose pending period is over by `now` and that has not expired."""
    return and_(
        col(Lot.status) == LotStatus.PENDING,
        col(Lot.available_at) <= now,
        or_(col(Lot.expires_at).is_(None), col(Lot.expires_at) > now),
    )


def _spendable_at(now: datetime) -> ColumnElement[bool]:
    """A lot whose points may be spent at `now` (whatever its remaining), even if the
    scheduled job has not yet activated or expired it."""
    return and_(
        col(Lot.earned_at) <= now,
        or_(
            col(Lot.status) == LotStatus.ACTIVE,
            and_(col(Lot.status) == LotStatus.PENDING, col(Lot.available_at) <= now),
        ),
        or_(col(Lot.expires_at).is_(None), col(Lot.expires_at) > now),
    )


async def balances_for(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID], now: datetime
) -> dict[uuid.UUID, Balance]:
    """Balances as of `now` for many accounts in four statements, whether or not the
    scheduled job has caught up: a lot past its pending period counts as spendable, a lot past
    its expiry does not, and a hold past its time gives its points back at once."""
    waiting = and_(
        col(Lot.status) == LotStatus.PENDING,
        col(Lot.available_at) > now,
        or_(col(Lot.expires_at).is_(None), col(Lot.expires_at) > now),
    )
    lots = await session.execute(
        select(
            col(Lot.customer_id),
            func.coalesce(func.sum(col(Lot.remaining)).filter(_spendable_at(now)), 0),
            func.coalesce(func.sum(col(Lot.remaining)).filter(waiting), 0),
        )
        .where(col(Lot.customer_id).in_(customer_ids))
        .group_by(col(Lot.customer_id))
    )
    sums = {row[0]: (int(row[1]), int(row[2])) for row in lots}
    debts = await session.execute(
        select(col(LedgerEntry.customer_id), func.sum(col(LedgerEntry.outstanding)))
        .where(col(LedgerEntry.customer_id).in_(customer_ids), col(LedgerEntry.outstanding) > 0)
        .group_by(col(LedgerEntry.customer_id))
    )
    debt = {row[0]: int(row[1] or 0) for row in debts}
    holds = await session.execute(
        select(col(Reservation.customer_id), func.sum(col(Reservation.points)))
        .where(
            col(Reservation.customer_id).in_(customer_ids),
            col(Reservation.status) == ReservationStatus.HELD,
            col(Reservation.expires_at) > now,
        )
        .group_by(col(Reservation.customer_id))
    )
    held = {row[0]: int(row[1] or 0) for row in holds}
    # Holds past their time that nobody has released yet: their points are back in their lots
    # (those still spendable) the moment anyone writes to the account.
    lapsed_rows = await session.execute(
        select(col(Reservation.customer_id), func.sum(col(Allocation.points)))
        .join(LedgerEntry, col(LedgerEntry.reservation_id) == col(Reservation.id))
        .join(Allocation, col(Allocation.entry_id) == col(LedgerEntry.id))
        .join(Lot, col(Lot.id) == col(Allocation.lot_id))
        .where(
            col(Reservation.customer_id).in_(customer_ids),
            col(Reservation.status) == ReservationStatus.HELD,
            col(Reservation.expires_at) <= now,
            col(LedgerEntry.kind) == EntryKind.RESERVE,
            _spendable_at(now),
        )
        .group_by(col(Reservation.customer_id))
    )
    lapsed = {row[0]: int(row[1] or 0) for row in lapsed_rows}
    return {
        key: Balance(
            available=sums.get(key, (0, 0))[0] + lapsed.get(key, 0) - debt.get(key, 0),
            pending=sums.get(key, (0, 0))[1],
            held=held.get(key, 0),
        )
        for key in customer_ids
    }


async def balance_of(session: AsyncSession, customer_id: uuid.UUID, now: datetime) -> Balance:
    """One account's balance as of `now` (see `balances_for`)."""
    return (await balances_for(session, [customer_id], now))[customer_id]


def new_entry(
    account: Account, program: ActiveProgram | None, kind: EntryKind, points: int, when: datetime
) -> LedgerEntry:
    return LedgerEntry(
        customer_id=account.customer_id,
        kind=kind,
        points=points,
        occurred_at=when,
        program_id=program.row.id if program else None,
    )


async def credit(
    session: AsyncSession,
    account: Account,
    entry: LedgerEntry,
    *,
    earned_at: datetime,
    available_at: datetime,
    expires_at: datetime | None,
    now: datetime,
    lot_kind: str | None = None,
    event_id: uuid.UUID | None = None,
    origin: Lot | None = None,
) -> Lot:
    """Add `entry` (a credit of `entry.points` > 0) and the lot it creates."""
    lot = Lot(
        customer_id=account.customer_id,
        entry_id=entry.id,
        kind=lot_kind or entry.kind,
        amount=entry.points,
        remaining=entry.points,
        status=LotStatus.PENDING if available_at > now else LotStatus.ACTIVE,
        earned_at=earned_at,
        available_at=available_at,
        expires_at=expires_at,
        event_id=event_id,
        rule_code=entry.rule_code,
        origin_lot_id=origin.id if origin else None,
    )
    session.add(entry)
    await session.flush()
    session.add(lot)
    await session.flush()
    if lot.status == LotStatus.ACTIVE:
        await settle_debt(session, account, now)
    return lot


async def credit_by_policy(
    session: AsyncSession,
    account: Account,
    program: ActiveProgram,
    entry: LedgerEntry,
    *,
    pending: bool,
    now: datetime,
    event_id: uuid.UUID | None = None,
) -> Lot:
    """Credit `entry` as earned at its `occurred_at`, spendable and expiring when the
    program's pending period and expiry policy say."""
    earned_at = entry.occurred_at
    return await credit(
        session,
        account,
        entry,
        earned_at=earned_at,
        available_at=program.rules.available_at(earned_at, pending=pending),
        expires_at=program.rules.expires_at(earned_at),
        now=now,
        event_id=event_id,
    )


async def spendable_lots(
    session: AsyncSession, customer_id: uuid.UUID, now: datetime, *, first: uuid.UUID | None = None
) -> list[Lot]:
    """Lots a debit may take from, in the order it takes them: earliest expiry first (points
    that never expire last), then oldest. With `first`, that event's own lots come first."""
    query = select(Lot).where(
        col(Lot.customer_id) == customer_id, col(Lot.remaining) > 0, _spendable_at(now)
    )
    rows = list((await session.execute(query)).scalars().all())
    far = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(
        key=lambda lot: (
            0 if first is not None and lot.event_id == first else 1,
            lot.expires_at or far,
            lot.earned_at,
            str(lot.id),
        )
    )
    return rows


async def allocate(session: AsyncSession, entry: LedgerEntry, lots: list[Lot], points: int) -> int:
    """Take up to `points` from `lots` in order for `entry`; returns what was taken."""
    taken = 0
    for lot in lots:
        if taken == points:
            break
        take = min(lot.remaining, points - taken)
        if take <= 0:
            continue
        lot.remaining -= take
        session.add(Allocation(entry_id=entry.id, lot_id=lot.id, points=take))
        taken += take
    await session.flush()
    return taken


async def debit(
    session: AsyncSession,
    entry: LedgerEntry,
    lots: list[Lot],
    *,
    points: int,
    allow_debt: bool = False,
) -> int:
    """Record `entry` as a debit of `points`, allocated to `lots`. Without `allow_debt` the
    caller must have checked that the lots cover it; with it, the shortfall becomes the
    entry's `outstanding` debt. Returns the points actually taken from lots."""
    entry.points = -points
    session.add(entry)
    await session.flush()
    taken = await allocate(session, entry, lots, points)
    if taken < points:
        if not allow_debt:
            raise AssertionError("a debit was not covered by the lots checked for it")
        entry.outstanding = points - taken
        await session.flush()
    return taken


async def settle_debt(session: AsyncSession, account: Account, now: datetime) -> None:
    """Pay down a return's unpaid debt from spendable lots, oldest debt first."""
    debts = list(
        (
            await session.execute(
                select(LedgerEntry)
                .where(
                    col(LedgerEntry.customer_id) == account.customer_id,
                    col(LedgerEntry.outstanding) > 0,
                )
                .order_by(col(LedgerEntry.occurred_at), col(LedgerEntry.id))
            )
        )
        .scalars()
        .all()
    )
    if not debts:
        return
    lots = await spendable_lots(session, account.customer_id, now)
    for debt in debts:
        paid = await allocate(session, debt, lots, debt.outstanding)
        debt.outstanding -= paid
    await session.flush()


async def release(
    session: AsyncSession,
    account: Account,
    program: ActiveProgram | None,
    reservation: Reservation,
    *,
    status: ReservationStatus,
    when: datetime,
) -> LedgerEntry:
    """Give a hold's points back to the lots it took them from. Points whose lot expired
    meanwhile expire at once."""
    reserve = (
        await session.execute(
            select(LedgerEntry).where(
                col(LedgerEntry.reservation_id) == reservation.id,
                col(LedgerEntry.kind) == EntryKind.RESERVE,
            )
        )
    ).scalar_one()
    taken = (
        await session.execute(select(Allocation).where(col(Allocation.entry_id) == reserve.id))
    ).scalars()
    back = new_entry(account, program, EntryKind.RELEASE, reservation.points, when)
    back.reservation_id = reservation.id
    session.add(back)
    await session.flush()
    returned: list[Lot] = []
    for allocation in list(taken):
        lot = await session.get(Lot, allocation.lot_id, populate_existing=True)
        assert lot is not None
        lot.remaining += allocation.points
        session.add(Allocation(entry_id=back.id, lot_id=lot.id, points=-allocation.points))
        returned.append(lot)
    reservation.status = status
    reservation.closed_at = when
    await session.flush()
    for lot in returned:
        if lot.status in (LotStatus.EXPIRED, LotStatus.CANCELLED) or (
            lot.expires_at is not None and lot.expires_at <= when
        ):
            await expire_lot(session, account, program, lot, when=max(when, lot.expires_at or when))
    return back


async def expire_lot(
    session: AsyncSession,
    account: Account,
    program: ActiveProgram | None,
    lot: Lot,
    *,
    when: datetime,
) -> None:
    if lot.remaining > 0:
        entry = new_entry(account, program, EntryKind.EXPIRE, 0, when)
        entry.rule_code = lot.rule_code
        await debit(session, entry, [lot], points=lot.remaining)
    if lot.status != LotStatus.CANCELLED:
        lot.status = LotStatus.EXPIRED
    await session.flush()


@dataclass(slots=True)
class CaughtUp:
    released_holds: int = 0
    activated_lots: int = 0
    expired_lots: int = 0
    expired_points: int = 0


async def catch_up(
    session: AsyncSession, account: Account, program: ActiveProgram | None, now: datetime
) -> CaughtUp:
    """Bring a locked account up to `now`: holds past their time are released, pending lots
    whose time has come activate, lots past their expiry expire, and debt is paid down."""
    done = CaughtUp()
    stale = (
        await session.execute(
            select(Reservation)
            .where(
                col(Reservation.customer_id) == account.customer_id,
                col(Reservation.status) == ReservationStatus.HELD,
                col(Reservation.expires_at) <= now,
            )
            .order_by(col(Reservation.expires_at))
        )
    ).scalars()
    for reservation in list(stale):
        await release(
            session,
            account,
            program,
            reservation,
            status=ReservationStatus.EXPIRED,
            when=reservation.expires_at,
        )
        done.released_holds += 1
    due = (
        await session.execute(
            select(Lot)
            .where(
                col(Lot.customer_id) == account.customer_id,
                or_(expiring_by(now), activating_by(now)),
            )
            .execution_options(populate_existing=True)
        )
    ).scalars()
    for lot in sorted(due, key=lambda lot: (lot.expires_at or now, lot.available_at)):
        if lot.expires_at is not None and lot.expires_at <= now:
            done.expired_lots += 1
            done.expired_points += lot.remaining
            await expire_lot(session, account, program, lot, when=lot.expires_at)
        else:
            done.activated_lots += 1
            lot.status = LotStatus.ACTIVE
    await session.flush()
    await settle_debt(session, account, now)
    return done
