"""Earning is channel-agnostic, returns take back their share, and time moves lots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from graph.enums import Channel
from loyalty.scheduled import run_scheduled
from privacy.keys import LocalKeyring
from tests.integration.loyalty_helpers import Loyalty, program

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def loyalty(
    sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> Loyalty:
    helper = Loyalty(sessions, provider)
    await helper.load(program())
    return helper


async def test_pos_and_online_purchases_earn_by_the_same_rules(loyalty: Loyalty) -> None:
    shop = await loyalty.member("+79160000001", at=T0)
    web = await loyalty.member("+79160000002", at=T0)

    await loyalty.buy(shop, 123_456, at=T0, channel=Channel.POS)
    await loyalty.buy(web, 123_456, at=T0, channel=Channel.WEB)

    later = T0 + timedelta(days=11)
    assert (await loyalty.balance(shop, later)).available == 1234
    assert (await loyalty.balance(web, later)).available == 1234
    await loyalty.assert_verified()


async def test_returning_half_a_purchase_takes_back_half_its_points(loyalty: Loyalty) -> None:
    buyer = await loyalty.member("+79160000003", at=T0)
    purchase = await loyalty.buy(buyer, 100_000, at=T0, quantity=10)
    assert (await loyalty.balance(buyer, T0)).pending == 1000

    await loyalty.give_back(purchase, 5, at=T0 + timedelta(days=2))

    balance = await loyalty.balance(buyer, T0 + timedelta(days=2))
    assert balance.pending == 500
    await loyalty.give_back(purchase, 5, at=T0 + timedelta(days=3))
    assert (await loyalty.balance(buyer, T0 + timedelta(days=30))).available == 0
    await loyalty.assert_verified()


async def test_activation_and_expiry_happen_at_their_instant(
    loyalty: Loyalty, sessions: async_sessionmaker[AsyncSession]
) -> None:
    buyer = await loyalty.member("+79160000004", at=T0)
    await loyalty.buy(buyer, 50_000, at=T0)
    active_at = T0 + timedelta(days=10)
    expires_at = T0 + timedelta(days=100)

    before = await run_scheduled(sessions, at=active_at - timedelta(seconds=1))
    assert before.activated_lots == 0
    assert (await loyalty.balance(buyer, active_at - timedelta(seconds=1))).pending == 500

    report = await run_scheduled(sessions, at=active_at)
    assert report.activated_lots == 1
    again = await run_scheduled(sessions, at=active_at)
    assert again.activated_lots == 0

    assert (await run_scheduled(sessions, at=expires_at - timedelta(seconds=1))).expired_lots == 0
    expired = await run_scheduled(sessions, at=expires_at)
    assert (expired.expired_lots, expired.expired_points) == (1, 500)
    assert (await loyalty.balance(buyer, expires_at)).available == 0
    await loyalty.assert_verified()
