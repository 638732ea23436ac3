"""The scheduled work in sets (`scheduled_batch.catch_up_many`) does exactly what the per-account
path (`ledger.catch_up` + `tiers.review_tier` for each due account, as `run_scheduled` did
before) does, dates every entry at its due instant, and does it once when two runs overlap."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core.db import begin_write, create_engine, session_factory, transaction
from core.settings import Settings
from loyalty.ledger import catch_up, expiring_by, lock_account
from loyalty.models import Account, Allocation, EntryKind, LedgerEntry, Lot, Reservation
from loyalty.program import active_program
from loyalty.redemption import redeem, reserve
from loyalty.scheduled import _due_accounts, run_scheduled
from loyalty.tiers import review_tier
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from tests.integration.loyalty_helpers import Loyalty, program

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TIERS = {
    "window_days": 30,
    "review_every_days": 30,
    "grace_days": 30,
    "downgrade": "one_level",
    "levels": [
        {"code": "base", "name": "Base", "threshold": 0},
        {"code": "silver", "name": "Silver", "threshold": 100},
        {"code": "gold", "name": "Gold", "threshold": 1000},
    ],
}


@pytest.fixture
async def loyalty(sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring) -> Loyalty:
    helper = Loyalty(sessions, provider)
    await helper.load(program(tiers=TIERS))
    return helper


def phones(start: int = 0) -> Iterator[str]:
    number = start
    while True:
        number += 1
        yield f"+7916{number:07d}"


async def hold(loyalty: Loyalty, customer_id: uuid.UUID, points: int, at: datetime) -> None:
    async with transaction(loyalty.sessions) as session:
        await reserve(
            session,
            FieldCipher(session, loyalty.provider),
            customer_id=customer_id,
            points=points,
            idempotency_key=loyalty.key(),
            order_total_minor=points * 1_000,
            now=at,
        )


async def spend(loyalty: Loyalty, customer_id: uuid.UUID, points: int, at: datetime) -> None:
    async with transaction(loyalty.sessions) as session:
        await redeem(
            session,
            FieldCipher(session, loyalty.provider),
            customer_id=customer_id,
            points=points,
            idempotency_key=loyalty.key(),
            order_total_minor=points * 1_000,
            now=at,
        )


async def history(loyalty: Loyalty) -> list[uuid.UUID]:
    """Members whose accounts meet every kind of scheduled work: pending lots, lots that expire,
    a hold that outlives its lot's expiry, a return's debt paid by a later activation, and tier
    reviews that upgrade, start a grace period, keep, and downgrade."""
    numbers = phones()
    members = [await loyalty.member(next(numbers), at=T0) for _ in range(7)]
    for position, member in enumerate(members):  # 0 to 3,000 points, bought on different days
        await loyalty.buy(member, position * 50_000, at=T0 + timedelta(days=position))
    late = T0 + timedelta(days=35)
    await loyalty.buy(members[1], 2_000, at=late)  # 20 points: too few to keep silver
    await loyalty.buy(members[2], 150_000, at=late)  # upgraded at once, reviewed later
    # a hold taken 5 minutes before its lot expires, released 10 minutes after
    expiry = T0 + timedelta(days=100 + 3)  # members[3]'s lot
    await hold(loyalty, members[3], 40, expiry - timedelta(minutes=5))
    # a return after the points were spent leaves a debt; a later purchase pays it on activation
    await spend(loyalty, members[4], 1_000, T0 + timedelta(days=20))
    purchase = await loyalty.buy(members[5], 40_000, at=T0 + timedelta(days=1))
    await spend(loyalty, members[5], 300, T0 + timedelta(days=15))
    await loyalty.give_back(purchase, 1, at=T0 + timedelta(days=16))  # 300 of 400 are owed
    await loyalty.buy(members[5], 60_000, at=T0 + timedelta(days=17))
    await loyalty.buy(members[6], 30_000, at=T0 + timedelta(days=110))  # pending at the end
    return members


async def per_account(session: AsyncSession, at: datetime) -> None:
    """The old `run_scheduled`: every due account on its own, through the one-account path."""
    program_now = await active_program(session)
    assert program_now is not None
    every = timedelta(days=program_now.rules.tiers.review_every_days)
    for customer_id in await _due_accounts(session, at, every):
        account = await lock_account(session, customer_id, program_now.rules, at)
        await catch_up(session, account, program_now, at)
        if account.tier_reviewed_at <= at - every:
            await review_tier(session, account, program_now.rules, at)


async def snapshot(session: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    """The ledger's rows without what differs from run to run (new ids, recording times)."""

    async def rows(query: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(map(str, row)) for row in await session.execute(text(query)))

    entry = "e.customer_id, e.kind, e.points, e.occurred_at, e.rule_code, e.reservation_id"
    return {
        "entries": await rows(f"SELECT {entry}, e.outstanding FROM loyalty_entry e"),
        "allocations": await rows(
            f"SELECT {entry}, a.lot_id, a.points FROM loyalty_allocation a"
            " JOIN loyalty_entry e ON e.id = a.entry_id"
        ),
        "lots": await rows("SELECT id, remaining, status FROM loyalty_lot"),
        "accounts": await rows("SELECT * FROM loyalty_account"),
        "changes": await rows(
            "SELECT customer_id, from_tier, to_tier, reason, qualifying, occurred_at"
            " FROM loyalty_tier_change"
        ),
        "holds": await rows("SELECT id, status, closed_at FROM loyalty_reservation"),
    }


async def test_sets_give_what_the_per_account_path_gives(
    loyalty: Loyalty, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await history(loyalty)
    kinds: set[str] = set()
    for days in (12, 31, 45, 62, 103, 125):
        at = T0 + timedelta(days=days)
        async with sessions() as session:
            await begin_write(session)
            await per_account(session, at)
            expected = await snapshot(session)
            await session.rollback()
        report = await run_scheduled(sessions, at=at, batch_size=2)
        async with sessions() as session:
            assert await snapshot(session) == expected, f"differs at day {days}"
        kinds |= set(report.tier_changes)
        kinds |= {"ACTIVATE"} if report.activated_lots else set()
        kinds |= {"EXPIRE"} if report.expired_points else set()
        kinds |= {"RELEASE"} if report.released_holds else set()
    # the history met every kind of work, so the comparison above covered each
    # (an upgrade happens at once when points are earned, so reviews here never upgrade; the
    # review's decision is `tiers.decide_review` on both paths)
    assert kinds == {"ACTIVATE", "EXPIRE", "RELEASE", "GRACE", "DOWNGRADE"}
    async with sessions() as session:
        settled = await session.scalar(
            select(col(LedgerEntry.outstanding)).where(col(LedgerEntry.kind) == EntryKind.REVERSAL)
        )
    assert settled == 0  # the debt was paid by a lot the scheduled run activated
    await loyalty.assert_verified()


async def test_every_entry_is_dated_at_its_due_instant(
    loyalty: Loyalty, sessions: async_sessionmaker[AsyncSession]
) -> None:
    members = await history(loyalty)
    late = T0 + timedelta(days=400)  # long after everything fell due
    report = await run_scheduled(sessions, at=late)
    assert report.accounts == len(members) and report.expired_lots > 0
    async with sessions() as session:
        expired = (
            await session.execute(
                select(LedgerEntry, Lot)
                .join(Allocation, col(Allocation.entry_id) == col(LedgerEntry.id))
                .join(Lot, col(Lot.id) == col(Allocation.lot_id))
                .where(col(LedgerEntry.kind) == EntryKind.EXPIRE)
            )
        ).all()
        released = (
            await session.execute(
                select(LedgerEntry, Reservation)
                .join(Reservation, col(Reservation.id) == col(LedgerEntry.reservation_id))
                .where(col(LedgerEntry.kind) == EntryKind.RELEASE)
            )
        ).all()
    assert expired and released
    for entry, lot in expired:
        assert lot.expires_at is not None
        assert entry.occurred_at == max(lot.expires_at, entry.occurred_at)
        assert entry.occurred_at < late
    held_lot_expired_at = {entry.occurred_at for entry, _ in expired}
    for entry, reservation in released:
        assert entry.occurred_at == reservation.expires_at == reservation.closed_at
        # the held points came back after their lot's expiry: they expire at the release
        assert reservation.expires_at in held_lot_expired_at
    assert {entry.occurred_at for entry, lot in expired if entry.occurred_at != lot.expires_at} \
        == {reservation.expires_at for _, reservation in released}  # fmt: skip
    await loyalty.assert_verified()


async def test_two_runs_at_once_do_the_work_once(
    loyalty: Loyalty, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    members = await history(loyalty)
    numbers = phones(start=100)
    for _ in range(12):  # more accounts, so the two runs' batches interleave
        member = await loyalty.member(next(numbers), at=T0)
        await loyalty.buy(member, 25_000, at=T0)
        members.append(member)
    at = T0 + timedelta(days=200)
    async with sessions() as session:
        due_lots = await session.scalar(
            select(func.count()).select_from(Lot).where(expiring_by(at))
        )
    engines = [create_engine(settings.database_url) for _ in range(2)]
    try:
        reports = await asyncio.gather(
            *(run_scheduled(session_factory(engine), at=at, batch_size=3) for engine in engines)
        )
    finally:
        for engine in engines:
            await engine.dispose()
    # one lot expires as its hold is released (counted as the released hold), the others by
    # the expiry step; each once, whichever run did it
    assert sum(report.released_holds for report in reports) == 1
    assert sum(report.expired_lots for report in reports) == due_lots - 1 > 0
    assert sum(report.tier_reviews for report in reports) == len(members)
    async with sessions() as session:
        twice = await session.execute(
            text(
                "SELECT a.lot_id FROM loyalty_allocation a JOIN loyalty_entry e"
                " ON e.id = a.entry_id WHERE e.kind = 'EXPIRE' GROUP BY a.lot_id"
                " HAVING count(*) > 1"
            )
        )
        assert twice.all() == []
        reviewed = await session.scalar(
            select(func.count()).select_from(Account).where(col(Account.tier_reviewed_at) == at)
        )
        assert reviewed == len(members)
    again = await run_scheduled(sessions, at=at)
    assert (again.accounts, again.expired_lots, again.tier_reviews) == (0, 0, 0)
    await loyalty.assert_verified()
