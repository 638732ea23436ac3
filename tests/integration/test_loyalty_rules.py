"""Program rules end to end: multipliers by priority, caps, bonuses, tiers, referral rewards,
return policies, refunds of points paid, and balances that follow merges."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core.db import transaction
from core.errors import DomainError
from graph.customers import register_customer
from graph.enums import Channel
from graph.influence import accept_referral, create_referral, submit_review
from graph.merge import merge_customers, unmerge_customer
from loyalty.errors import LoyaltyErrorCode
from loyalty.models import Account, EntryKind, LedgerEntry, Program
from loyalty.program import active_program, load_program
from loyalty.redemption import adjust, redeem
from loyalty.scheduled import run_scheduled
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from tests.integration.loyalty_helpers import Loyalty, program

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=11)  # past the 10-day pending period of the test program


def helper(sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring) -> Loyalty:
    return Loyalty(sessions, provider)


async def entries(
    sessions: async_sessionmaker[AsyncSession], customer_id: uuid.UUID, kind: EntryKind
) -> list[LedgerEntry]:
    async with sessions() as session:
        rows = await session.execute(
            select(LedgerEntry).where(
                col(LedgerEntry.customer_id) == customer_id, col(LedgerEntry.kind) == kind
            )
        )
        return list(rows.scalars())


async def test_rules_apply_by_priority_and_stop(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(
        program(
            earn={
                "points": 1,
                "per_minor": 100,
                "rules": [
                    {
                        "code": "books",
                        "priority": 10,
                        "when": {"categories": ["books"]},
                        "multiplier": "2",
                    },
                    {
                        "code": "app",
                        "priority": 20,
                        "when": {"channels": ["MOBILE_APP"]},
                        "multiplier": "3",
                        "stop": True,
                    },
                ],
            }
        )
    )
    reader = await given.member("+79160000011", at=T0)

    await given.buy(reader, 10_000, at=T0, channel=Channel.POS, category="books")  # 100 x 2
    await given.buy(
        reader, 10_000, at=T0, channel=Channel.MOBILE_APP, category="books"
    )  # 100 x 3, stop

    earned = await entries(sessions, reader, EntryKind.EARN)
    assert sorted(entry.points for entry in earned) == [200, 300]
    assert {entry.rule_code for entry in earned} == {"books", "app"}


async def test_daily_cap_limits_purchase_points(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(program(earn={"points": 1, "per_minor": 100, "caps": {"per_day": 150}}))
    buyer = await given.member("+79160000012", at=T0)

    await given.buy(buyer, 10_000, at=T0)
    await given.buy(buyer, 10_000, at=T0 + timedelta(hours=1))
    await given.buy(buyer, 10_000, at=T0 + timedelta(days=1))

    assert [e.points for e in await entries(sessions, buyer, EntryKind.EARN)] == [100, 50, 100]


async def test_bonuses_for_registration_first_purchase_birthday_and_review(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(
        program(
            earn={
                "points": 1,
                "per_minor": 100,
                "bonuses": [
                    {"code": "welcome", "event": "registration", "points": 10},
                    {"code": "first", "event": "first_purchase", "points": 20, "pending": True},
                    {"code": "birthday", "event": "birthday_month", "points": 30},
                    {"code": "review", "event": "review_accepted", "points": 5},
                ],
            }
        )
    )
    async with transaction(sessions) as session:
        registered = await register_customer(
            session,
            FieldCipher(session, provider),
            channel=Channel.WEB,
            email="bonus@example.com",
            email_verified=True,
            birth_date=date(1990, 3, 15),
            now=T0,
        )
    member = registered.customer.id
    await given.buy(member, 1_000, at=T0)
    await given.buy(member, 1_000, at=T0 + timedelta(days=1))  # birthday bonus once a year
    async with transaction(sessions) as session:
        await submit_review(
            session,
            FieldCipher(session, provider),
            customer_id=member,
            product_sku="SKU-1",
            rating=5,
            text="good",
            now=T0 + timedelta(days=2),
        )

    bonuses = sorted(e.rule_code or "" for e in await entries(sessions, member, EntryKind.BONUS))
    assert bonuses == ["birthday", "first", "review", "welcome"]
    assert (await given.balance(member, LATER)).available == 10 + 20 + 30 + 5 + 10 + 10


async def test_tier_upgrades_at_once_and_downgrades_only_at_review_after_grace(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(
        program(
            tiers={
                "window_days": 30,
                "review_every_days": 30,
                "grace_days": 30,
                "downgrade": "one_level",
                "levels": [
                    {"code": "base", "name": "Base", "threshold": 0},
                    {"code": "silver", "name": "Silver", "threshold": 100, "multiplier": "2"},
                    {"code": "gold", "name": "Gold", "threshold": 1000, "multiplier": "3"},
                ],
            }
        )
    )
    buyer = await given.member("+79160000013", at=T0)

    await given.buy(buyer, 150_000, at=T0)  # 1500 points: straight to gold
    assert await tier_of(sessions, buyer) == "gold"
    await given.buy(buyer, 1_000, at=T0 + timedelta(days=1))  # gold earns x 3
    assert [e.points for e in await entries(sessions, buyer, EntryKind.EARN)] == [1500, 30]

    await run_scheduled(sessions, at=T0 + timedelta(days=29))  # not yet reviewed
    assert await tier_of(sessions, buyer) == "gold"
    first_review = await run_scheduled(sessions, at=T0 + timedelta(days=40))
    assert first_review.tier_changes == {"GRACE": 1}
    assert await tier_of(sessions, buyer) == "gold"
    second_review = await run_scheduled(sessions, at=T0 + timedelta(days=75))
    assert second_review.tier_changes == {"DOWNGRADE": 1}
    assert await tier_of(sessions, buyer) == "silver"  # one level, not straight to base


async def tier_of(sessions: async_sessionmaker[AsyncSession], customer_id: uuid.UUID) -> str:
    async with sessions() as session:
        account = await session.get(Account, customer_id)
        assert account is not None
        return account.tier


async def refer(
    sessions: async_sessionmaker[AsyncSession],
    provider: LocalKeyring,
    referrer: uuid.UUID,
    referee: uuid.UUID,
) -> None:
    async with transaction(sessions) as session:
        referral = await create_referral(session, referrer_id=referrer, now=T0)
        await accept_referral(session, code=referral.code, referee_id=referee, now=T0)


async def test_referral_rewards_on_first_purchase_within_limit_and_budget(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(
        program(
            referral={
                "referrer_points": 50,
                "referee_points": 30,
                "max_rewarded_per_referrer": 1,
                "pending": False,
            }
        )
    )
    referrer = await given.member("+79160000020", at=T0)
    first = await given.member("+79160000021", at=T0)
    second = await given.member("+79160000022", at=T0)
    await refer(sessions, provider, referrer, first)
    await refer(sessions, provider, referrer, second)

    await given.buy(first, 1_000, at=T0)
    await given.buy(first, 1_000, at=T0)  # only the first purchase converts
    await given.buy(second, 1_000, at=T0)  # past the referrer's limit of one

    assert [e.points for e in await entries(sessions, referrer, EntryKind.REFERRAL)] == [50]
    assert [e.points for e in await entries(sessions, first, EntryKind.REFERRAL)] == [30]
    assert await entries(sessions, second, EntryKind.REFERRAL) == []
    await given.assert_verified()


async def test_no_referral_reward_when_referrer_and_referee_share_an_identifier(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(program(referral={"referrer_points": 50, "referee_points": 30}))
    referrer = await given.member("+79160000023", at=T0)
    async with transaction(sessions) as session:
        # The same phone, unverified, on a second account: one person inviting themself.
        twin = await register_customer(
            session,
            FieldCipher(session, provider),
            channel=Channel.WEB,
            phone="+79160000023",
            email="twin@example.com",
            email_verified=True,
            now=T0,
        )
    assert twin.created
    await refer(sessions, provider, referrer, twin.customer.id)

    await given.buy(twin.customer.id, 1_000, at=T0)

    assert await entries(sessions, referrer, EntryKind.REFERRAL) == []


async def test_referral_budget_is_never_exceeded(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(
        program(referral={"referrer_points": 50, "referee_points": 50, "budget_points": 150})
    )
    referrer = await given.member("+79160000024", at=T0)
    for number in range(3):
        friend = await given.member(f"+7916000003{number}", at=T0)
        await refer(sessions, provider, referrer, friend)
        await given.buy(friend, 1_000, at=T0)

    async with sessions() as session:
        paid = (
            await session.execute(
                select(func.sum(col(LedgerEntry.points))).where(
                    col(LedgerEntry.kind) == EntryKind.REFERRAL
                )
            )
        ).scalar_one()
    assert paid == 100  # a third pair of 100 would pass the budget of 150


@pytest.mark.parametrize("policy", ["claw_back_remaining", "allow_negative"])
async def test_return_after_the_points_were_spent_follows_the_policy(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring, policy: str
) -> None:
    given = helper(sessions, provider)
    await given.load(program(returns=policy))
    buyer = await given.member("+79160000040", at=T0)
    purchase = await given.buy(buyer, 100_000, at=T0, quantity=2)  # 1000 points
    async with transaction(sessions) as session:
        await redeem(
            session,
            FieldCipher(session, provider),
            customer_id=buyer,
            points=800,
            idempotency_key="spend-before-return",
            order_total_minor=1_000_000,
            now=LATER,
        )

    await given.give_back(purchase, 2, at=LATER)

    balance = await given.balance(buyer, LATER)
    assert balance.available == (0 if policy == "claw_back_remaining" else -800)
    await given.assert_verified()
    if policy == "allow_negative":
        await given.buy(buyer, 100_000, at=LATER)  # 1000 more points first pay the debt
        assert (await given.balance(buyer, LATER + timedelta(days=11))).available == 200
        await given.assert_verified()


async def test_points_paid_for_a_returned_purchase_are_refunded_in_proportion(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(program())
    buyer = await given.member("+79160000041", at=T0)
    async with transaction(sessions) as session:
        await adjust(
            session,
            FieldCipher(session, provider),
            customer_id=buyer,
            points=500,
            reason="welcome gift",
            idempotency_key="welcome-gift-1",
            actor="operator:test",
            now=T0,
        )
    purchase = await given.buy(buyer, 100_000, at=T0, quantity=4)  # 1000 RUB, earns 1000
    async with transaction(sessions) as session:
        await redeem(
            session,
            FieldCipher(session, provider),
            customer_id=buyer,
            points=400,
            idempotency_key="paid-with-points",
            purchase_id=purchase,
            now=T0,
        )

    await given.give_back(purchase, 1, at=T0 + timedelta(days=1))

    refunds = await entries(sessions, buyer, EntryKind.REFUND)
    assert [e.points for e in refunds] == [100]
    reversals = await entries(sessions, buyer, EntryKind.REVERSAL)
    assert [e.points for e in reversals] == [-250]
    await given.assert_verified()


async def test_a_merge_moves_the_balance_and_an_unmerge_moves_it_back(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(program())
    older = await given.member("+79160000050", at=T0)
    newer = await given.member("+79160000051", at=T0 + timedelta(hours=1))
    await given.buy(older, 10_000, at=T0)  # 100, pending until T0 + 10 days
    await given.buy(newer, 20_000, at=T0)  # 200

    async with transaction(sessions) as session:
        merged = await merge_customers(
            session,
            FieldCipher(session, provider),
            customer_ids=[older, newer],
            survivor_id=None,
            actor="operator:test",
            now=T0 + timedelta(days=1),
        )
    assert merged.survivor.id == older
    assert (await given.balance(older, T0 + timedelta(days=1))).pending == 300
    assert (await given.balance(newer, T0 + timedelta(days=1))).pending == 0
    assert (await given.balance(older, LATER)).available == 300  # dates kept: still pending

    async with transaction(sessions) as session:
        await unmerge_customer(
            session, given.provider, customer_id=newer, actor="operator:test", now=T0 + timedelta(days=2)
        )
    assert (await given.balance(older, LATER)).available == 100
    assert (await given.balance(newer, LATER)).available == 200
    await given.assert_verified()


async def test_loading_the_same_program_twice_keeps_one_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        first, created = await load_program(session, program(), actor="test")
    async with transaction(sessions) as session:
        again, created_again = await load_program(session, program(), actor="test")
        changed, created_changed = await load_program(
            session, program(pending_days=3), actor="test"
        )
    assert created and not created_again and created_changed
    assert again.id == first.id and changed.version == 2
    async with sessions() as session:
        active = await active_program(session)
        versions = (await session.execute(select(func.count()).select_from(Program))).scalar_one()
    assert active is not None and active.rules.pending_days == 3 and versions == 2


async def test_an_adjustment_below_zero_is_refused_and_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    given = helper(sessions, provider)
    await given.load(program())
    member = await given.member("+79160000060", at=T0)
    with pytest.raises(DomainError) as refused:
        async with transaction(sessions) as session:
            await adjust(
                session,
                FieldCipher(session, provider),
                customer_id=member,
                points=-5,
                reason="correction",
                idempotency_key="correction-1",
                actor="operator:test",
                now=T0,
            )
    assert refused.value.code == LoyaltyErrorCode.INSUFFICIENT_POINTS
    assert await entries(sessions, member, EntryKind.ADJUST) == []
