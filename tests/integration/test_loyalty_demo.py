"""The demo's points ledger: consistent, lively, and the ledger the engine itself would write."""

from __future__ import annotations

import io
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from rich.console import Console
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph import hooks
from graph.demo import seed_demo
from graph.enums import EventType, ReferralStatus
from graph.models import Customer, Event, Referral, Review
from loyalty.definition import ProgramDefinition, parse_definition
from loyalty.demo import DEMO_PROGRAM, seed_demo_ledger
from loyalty.ledger import catch_up, lock_account
from loyalty.listener import on_graph_fact
from loyalty.models import (
    Account,
    Allocation,
    EntryKind,
    LedgerEntry,
    Lot,
    LotStatus,
    Reservation,
    TierChange,
)
from loyalty.program import active_program, read_program_file
from loyalty.redemption import redeem
from loyalty.rules import max_redeemable
from loyalty.scheduled import run_scheduled
from loyalty.tiers import review_tier
from loyalty.verify import verify_ledger
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring

ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)


async def _seed(
    settings: Settings,
    provider: LocalKeyring,
    *,
    people: int,
    seed: int,
    rules: ProgramDefinition | None = None,
) -> None:
    console = Console(file=io.StringIO())
    await seed_demo(
        settings, provider, customers=people, seed=seed, if_empty=False, console=console,
        anchor=ANCHOR,
    )  # fmt: skip
    await seed_demo_ledger(settings, provider, seed=seed, now=ANCHOR, definition=rules)


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(
        (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
    )


async def test_the_demo_ledger_is_consistent_and_shows_a_living_program(settings, provider):
    # given a small demo retailer with its points history, built up to the anchor
    await _seed(settings, provider, people=300, seed=11)
    rules = read_program_file(DEMO_PROGRAM)
    async with _sessions(settings) as sessions:
        async with sessions() as session:
            # then every ledger invariant holds
            report = await verify_ledger(session)
            assert report.ok, report.breaches[:5]
            assert report.accounts == await _count(session, Customer)
            # and two years of it show: points spent, expired, still active and pending
            lots = Counter(
                dict(
                    (
                        await session.execute(select(Lot.status, func.count()).group_by(Lot.status))
                    ).all()
                )
            )
            assert (
                lots[LotStatus.EXPIRED] > 0
                and lots[LotStatus.ACTIVE] > 0
                and lots[LotStatus.PENDING] > 0
            )
            kinds = Counter(
                dict(
                    (
                        await session.execute(
                            select(LedgerEntry.kind, func.count()).group_by(LedgerEntry.kind)
                        )
                    ).all()
                )
            )
            for kind in (
                EntryKind.EARN,
                EntryKind.BONUS,
                EntryKind.REDEEM,
                EntryKind.EXPIRE,
                EntryKind.REVERSAL,
                EntryKind.REFERRAL,
            ):
                assert kinds[kind] > 0, kind
            tiers = Counter((await session.execute(select(Account.tier))).scalars())
            assert set(tiers) - {rules.tiers.levels[0].code}, tiers
            assert await _count(session, TierChange) > 0

            # expiry happened at its instant, never early, and nothing is left past it
            assert (
                await _count(
                    session, Lot, col(Lot.status) == LotStatus.EXPIRED, col(Lot.expires_at) > ANCHOR
                )
                == 0
            )
            open_lots = col(Lot.status).in_((LotStatus.ACTIVE, LotStatus.PENDING))
            assert await _count(session, Lot, open_lots, col(Lot.expires_at) <= ANCHOR) == 0
            assert (
                await _count(
                    session,
                    Lot,
                    col(Lot.status) == LotStatus.PENDING,
                    col(Lot.available_at) <= ANCHOR,
                )
                == 0
            )

            # a redemption pays at most the program's share of its purchase, earliest expiry
            # first: no lot spendable then and expiring before the last one it took still
            # holds points (a lot's remaining only ever falls here: no holds are released)
            redemptions = (
                (
                    await session.execute(
                        select(LedgerEntry).where(col(LedgerEntry.kind) == EntryKind.REDEEM)
                    )
                )
                .scalars()
                .all()
            )
            for entry in redemptions:
                assert entry.order_total_minor is not None and entry.purchase_id is not None
                assert -entry.points <= max_redeemable(
                    rules, order_total_minor=entry.order_total_minor
                )
                taken = (await session.execute(
                    select(func.max(Lot.expires_at)).join(Allocation, col(Allocation.lot_id) == col(Lot.id))
                    .where(col(Allocation.entry_id) == entry.id)
                )).scalar_one()  # fmt: skip
                skipped = await _count(
                    session, Lot, col(Lot.customer_id) == entry.customer_id, col(Lot.remaining) > 0,
                    col(Lot.available_at) <= entry.occurred_at, col(Lot.expires_at) > entry.occurred_at,
                    col(Lot.expires_at) < taken,
                )  # fmt: skip
                assert skipped == 0, entry.id

        # when the scheduled job runs at the same instant, it has nothing left to do
        scheduled = await run_scheduled(sessions, at=ANCHOR)
        assert (scheduled.accounts, scheduled.activated_lots, scheduled.expired_lots) == (0, 0, 0)
        assert scheduled.expiring  # and the reminder list is not empty


def _strict_program() -> ProgramDefinition:
    """The demo program with everything the demo's spending never reaches: tight caps,
    returns that leave a debt, calendar expiry, low tiers that fall at once, one rewarded
    referral per referrer."""
    data = yaml.safe_load(DEMO_PROGRAM.read_text(encoding="utf-8"))
    data["earn"]["caps"] = {"per_day": 120, "per_month": 300}
    data["returns"] = "allow_negative"
    data["pending_days"] = 0  # points spendable at once, so a return can find them spent
    data["expiry"] = {"policy": "end_of_month", "months": 5}
    data["redemption"].update(min_balance=0, max_share_percent=100)
    data["tiers"].update(downgrade="recalculate", grace_days=0, window_days=120)
    data["tiers"]["levels"][1]["threshold"] = 300
    data["tiers"]["levels"][2]["threshold"] = 700
    data["referral"]["max_rewarded_per_referrer"] = 1
    return parse_definition(data)


@pytest.mark.parametrize(
    ("program", "people", "seed"),
    [
        pytest.param("demo", 40, 5, id="demo-program"),
        pytest.param("strict", 30, 3, id="strict-program"),
    ],
)
async def test_the_demo_ledger_is_the_one_the_engine_writes(
    settings, provider, program, people, seed
):
    """Replay the same history through the engine's own functions (the listener, `redeem`, the
    scheduled review and catch-up) and compare: every account, tier change, entry and lot is
    the same. Lots earned at one instant with one expiry (a purchase and its first-purchase
    bonus) are spent in the order of their random ids, so those are compared as a group."""
    rules = read_program_file(DEMO_PROGRAM) if program == "demo" else _strict_program()
    await _seed(settings, provider, people=people, seed=seed, rules=rules)
    async with _sessions(settings) as sessions:
        bulk = await _dump(sessions)
        async with sessions() as session:
            redemptions = list(
                (
                    await session.execute(
                        select(LedgerEntry).where(col(LedgerEntry.kind) == EntryKind.REDEEM)
                    )
                ).scalars()
            )
            # the scheduled job runs all the time: at every instant a lot activates or expires
            instants = [
                (customer_id, instant)
                for customer_id, available, expires in (await session.execute(select(Lot.customer_id, Lot.available_at, Lot.expires_at))).all()
                for instant in (available, expires) if instant is not None
            ]  # fmt: skip
        await _forget_the_ledger(sessions)
        await _replay(sessions, provider, rules, redemptions, instants)
        replayed = await _dump(sessions)
        async with sessions() as session:
            assert (await verify_ledger(session)).ok
    assert replayed["accounts"] == bulk["accounts"]
    assert replayed["tier_changes"] == bulk["tier_changes"]
    assert replayed["entries"] == bulk["entries"]
    assert replayed["lots"] == bulk["lots"]
    assert replayed["groups"] == bulk["groups"]
    assert replayed["allocations"] == bulk["allocations"]
    # and the comparison covered every kind of history (the seeds were picked for it)
    assert {"EARN", "BONUS", "REDEEM", "REVERSAL", "REFERRAL", "EXPIRE"} <= bulk["kinds"]
    assert {change[3] for change in bulk["tier_changes"]} >= {"UPGRADE", "DOWNGRADE"}
    if program == "strict":
        assert bulk["capped"] and bulk["debts"], "caps and return debts were exercised"


async def _forget_the_ledger(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        for model in (Allocation, Lot, TierChange, LedgerEntry, Reservation, Account):
            await session.execute(delete(model))


Step = tuple[datetime, int, str, Callable[[AsyncSession], Awaitable[None]]]


async def _replay(
    sessions: async_sessionmaker[AsyncSession],
    provider: LocalKeyring,
    rules: ProgramDefinition,
    redemptions: list[LedgerEntry],
    instants: list[tuple[uuid.UUID, datetime]],
) -> None:
    """Every fact of the demo in the order it was recorded, each in its own transaction."""
    async with sessions() as session:
        customers = list((await session.execute(select(Customer))).scalars())
        events = list(
            (
                await session.execute(
                    select(Event).where(col(Event.type).in_((EventType.PURCHASE, EventType.RETURN)))
                )
            ).scalars()
        )
        reviews = list((await session.execute(select(Review))).scalars())
        referrals = list(
            (
                await session.execute(
                    select(Referral).where(col(Referral.status) == ReferralStatus.CONVERTED)
                )
            ).scalars()
        )
    by_id = {event.id: event for event in events}
    people = {customer.id: customer for customer in customers}
    steps: list[Step] = []

    def fact(
        make: Callable[[AsyncSession], hooks.GraphFact],
    ) -> Callable[[AsyncSession], Awaitable[None]]:
        return lambda session: on_graph_fact(session, make(session))

    for customer in customers:
        steps.append(
            (
                customer.created_at,
                0,
                str(customer.id),
                fact(lambda _, c=customer: hooks.CustomerRegistered(c)),
            )
        )
        every = timedelta(days=rules.tiers.review_every_days)
        at = customer.created_at + every
        while at <= ANCHOR:
            steps.append((at, -1, str(customer.id), _tier_review(customer.id, at)))
            at += every
    first: dict[uuid.UUID, Event] = {}
    for event in sorted(events, key=lambda e: (e.recorded_at, str(e.id))):
        if event.type == EventType.PURCHASE:
            is_first = event.customer_id not in first
            first.setdefault(event.customer_id, event)
            buyer = people[event.customer_id]
            steps.append((event.recorded_at, 1, str(event.id), fact(
                lambda session, e=event, b=buyer, f=is_first: hooks.PurchaseRecorded(FieldCipher(session, provider), e, b, f)
            )))  # fmt: skip
        else:
            assert event.purchase_id is not None
            purchase = by_id[event.purchase_id]
            steps.append(
                (
                    event.recorded_at,
                    1,
                    str(event.id),
                    fact(lambda _, e=event, p=purchase: hooks.ReturnRecorded(e, p)),
                )
            )
    for referral in referrals:
        assert referral.referee_id is not None
        bought = first[referral.referee_id]
        steps.append(
            (
                bought.recorded_at,
                2,
                str(referral.id),
                fact(lambda _, r=referral, p=bought: hooks.ReferralConverted(r, p)),
            )
        )
    for review in reviews:
        steps.append(
            (
                review.created_at,
                1,
                str(review.id),
                fact(lambda _, r=review: hooks.ReviewSubmitted(r)),
            )
        )
    for entry in redemptions:
        steps.append((entry.occurred_at, 3, str(entry.id), _redeem(provider, entry)))
    final = max(ANCHOR, *(step[0] for step in steps))  # as the bulk path does
    for customer_id, instant in instants:
        if instant <= final:
            steps.append((instant, -1, str(customer_id), _catch_up(customer_id, instant)))
    for _, _, _, act in sorted(steps, key=lambda step: step[:3]):
        async with transaction(sessions) as session:
            await act(session)
    await run_scheduled(sessions, at=final)


def _tier_review(customer_id: uuid.UUID, at: datetime) -> Callable[[AsyncSession], Awaitable[None]]:
    async def review(session: AsyncSession) -> None:  # what run_scheduled does for one account
        program = await active_program(session)
        assert program is not None
        account = await lock_account(session, customer_id, program.rules, at)
        await catch_up(session, account, program, at)
        await review_tier(session, account, program.rules, at)

    return review


def _catch_up(customer_id: uuid.UUID, at: datetime) -> Callable[[AsyncSession], Awaitable[None]]:
    async def run(session: AsyncSession) -> None:
        program = await active_program(session)
        assert program is not None
        await catch_up(
            session, await lock_account(session, customer_id, program.rules, at), program, at
        )

    return run


def _redeem(
    provider: LocalKeyring, entry: LedgerEntry
) -> Callable[[AsyncSession], Awaitable[None]]:
    async def pay(session: AsyncSession) -> None:
        await redeem(
            session, FieldCipher(session, provider), customer_id=entry.customer_id,
            points=-entry.points, idempotency_key=f"demo-{entry.id}",
            purchase_id=entry.purchase_id, now=entry.occurred_at,
        )  # fmt: skip

    return pay


async def _dump(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """The ledger without its ids. Lots of one customer earned at one instant with one expiry
    are told apart only by random ids, so their remaining points, the allocations to them and
    the EXPIRE entries that emptied them are compared per group."""
    async with sessions() as session:
        accounts = sorted(
            (a.customer_id, a.tier, a.tier_since, a.tier_reviewed_at, a.grace_until, a.created_at)
            for a in (await session.execute(select(Account))).scalars()
        )
        changes = sorted(
            (c.customer_id, c.from_tier, c.to_tier, c.reason, c.qualifying, c.occurred_at)
            for c in (await session.execute(select(TierChange))).scalars()
        )
        entries = list((await session.execute(select(LedgerEntry))).scalars())
        lots = list((await session.execute(select(Lot))).scalars())
        allocations = list((await session.execute(select(Allocation))).scalars())

    def group(lot: Lot) -> tuple[Any, ...]:
        return (lot.customer_id, lot.earned_at, lot.expires_at)

    def signature(entry: LedgerEntry) -> tuple[Any, ...]:
        if entry.kind == EntryKind.EXPIRE:
            return (entry.customer_id, entry.kind, entry.occurred_at)
        return (
            entry.customer_id, entry.kind, entry.points, entry.occurred_at, entry.rule_code,
            entry.event_id, entry.purchase_id, entry.order_total_minor, entry.outstanding,
        )  # fmt: skip

    expired: Counter[tuple[Any, ...]] = Counter()
    for entry in entries:
        if entry.kind == EntryKind.EXPIRE:
            expired[signature(entry)] += entry.points
    signatures = {entry.id: signature(entry) for entry in entries}

    def owed(entry: LedgerEntry) -> bool:
        """Whether a return left a debt: still owed, or paid by points earned after it."""
        later = [
            a for a in allocations
            if a.entry_id == entry.id and by_lot[a.lot_id].earned_at > entry.occurred_at
        ]  # fmt: skip
        return entry.outstanding > 0 or bool(later)

    by_lot = {lot.id: lot for lot in lots}
    remaining: Counter[tuple[Any, ...]] = Counter()
    for lot in lots:
        remaining[group(lot)] += lot.remaining
    taken: dict[tuple[Any, ...], int] = defaultdict(int)
    for allocation in allocations:
        taken[(signatures[allocation.entry_id], group(by_lot[allocation.lot_id]))] += (
            allocation.points
        )
    return {
        "kinds": {entry.kind for entry in entries},
        "capped": any(lot.kind == EntryKind.EARN and lot.amount in (120, 300) for lot in lots),
        "debts": any(owed(entry) for entry in entries if entry.kind == EntryKind.REVERSAL),
        "accounts": accounts,
        "tier_changes": changes,
        "entries": sorted(
            (s for e in entries if e.kind != EntryKind.EXPIRE for s in [signatures[e.id]]), key=repr
        )
        + sorted(expired.items(), key=repr),
        "lots": sorted(
            (
                lot.customer_id,
                lot.kind,
                lot.amount,
                lot.status,
                lot.earned_at,
                lot.available_at,
                lot.expires_at,
                lot.event_id,
                lot.rule_code,
            )
            for lot in lots
        ),
        "groups": sorted(remaining.items(), key=repr),
        "allocations": sorted(taken.items(), key=repr),
    }
