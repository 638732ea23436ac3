"""The loyalty engine over GraphQL: earning from every channel, spending points, typed payload
errors that change nothing, concurrent redemptions, who may do what, the program and quotes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from api.schema.common import customer_uuid, to_global_id
from core.clock import utcnow
from core.db import transaction
from loyalty import models
from loyalty.ledger import balance_of
from loyalty.program import active_program, read_program_file
from loyalty.redemption import adjust, reserve
from loyalty.tiers import qualifying_value
from loyalty.verify import verify_ledger
from privacy.fields import FieldCipher
from tests.api.operations import (
    LEDGER_PAGE,
    LOYALTY_ACCOUNT,
    LOYALTY_PROGRAM,
    POINTS_ADJUST,
    POINTS_CANCEL,
    POINTS_COMMIT,
    POINTS_QUOTE,
    POINTS_REDEEM,
    POINTS_RESERVE,
    PURCHASE,
    REGISTER,
    purchase_input,
    redeem_input,
    reserve_input,
)
from tests.integration.loyalty_helpers import DEMO_PROGRAM, Loyalty, program

RETURN = "mutation($input: ReturnRecordInput!) { returnRecord(input: $input) { errors { code } } }"
MERGE = (
    "mutation($input: CustomersMergeInput!) { customersMerge(input: $input) { errors { code } } }"
)
BALANCE = "query($id: ID!) { customer(id: $id) { loyalty { balance } } }"
LEDGER_FIELD = "query($id: ID!) { customer(id: $id) { loyalty { ledger(first: 5) { edges { node { kind %s } } } } } }"

# 1 point per 1.00, redemptions up to half an order, spendable from any balance.
SPEND = {"point_value_minor": 100, "max_share_percent": 50, "min_balance": 0, "hold_minutes": 15}
BOOKS_AND_MILK = [
    {"sku": "BOOK-1", "category": "books", "quantity": 2, "unitPriceMinor": 50_000},
    {"sku": "MILK-1", "category": "grocery", "quantity": 1, "unitPriceMinor": 20_000},
]


@pytest.fixture
async def loyalty(sessions, provider) -> Loyalty:
    helper = Loyalty(sessions, provider)
    await helper.load(program(redemption=SPEND))
    return helper


async def _member(gql, phone: str) -> str:
    fields = {"channel": "POS", "phone": phone, "phoneVerified": True}
    data = await gql.data(REGISTER, {"input": fields}, as_="app")
    assert data["customerRegister"]["errors"] == []
    return data["customerRegister"]["customer"]["id"]


async def _payload(gql, operation: str, input: dict, **caller) -> dict:
    """The one payload an operation returns for `input` (by default as an operator)."""
    [payload] = (await gql.data(operation, {"input": input}, **caller)).values()
    return payload


async def _give(gql, customer: str, points: int) -> None:
    adjusted = {
        "customerId": customer,
        "points": points,
        "reason": "goodwill credit",
        "idempotencyKey": f"goodwill-{uuid.uuid4().hex}",
    }
    assert (await _payload(gql, POINTS_ADJUST, adjusted))["errors"] == []


async def _buy(gql, customer: str, key: str, **line) -> str:
    bought = await _payload(gql, PURCHASE, purchase_input(customer, key, **line), as_="app")
    return bought["purchase"]["id"]


async def _account(gql, customer: str) -> dict:
    return (await gql.data(LOYALTY_ACCOUNT, {"id": customer}))["customer"]["loyalty"]


def _kinds(account: dict) -> list[str]:
    return [edge["node"]["kind"] for edge in account["ledger"]["edges"]]


def _as(customer: str) -> dict:
    return {"as_": "customer", "customer": str(customer_uuid(customer))}


def _codes(body: dict) -> set[str]:
    return {error["extensions"]["code"] for error in body.get("errors", [])}


async def _row_counts(sessions) -> dict[str, int]:
    tables = (models.LedgerEntry, models.Lot, models.Allocation, models.Reservation, models.Account)
    async with sessions() as session:
        return {
            table.__tablename__: (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
            for table in tables
        }


async def _assert_ledger_verifies(sessions) -> None:
    async with sessions() as session:
        report = await verify_ledger(session)
    assert report.ok, report.breaches


# --- 1. earning --------------------------------------------------------------------------


async def test_pos_and_web_purchases_earn_the_same_points(gql, loyalty):
    shop = await _member(gql, "+79165550001")
    web = await _member(gql, "+79165550002")

    at_pos = await _buy(gql, shop, "pos-receipt-0001", price=12_345, quantity=2)
    online = await _buy(gql, web, "web-order-00001", price=12_345, quantity=2, channel="WEB")

    for customer, purchase in ((shop, at_pos), (web, online)):
        account = await _account(gql, customer)
        assert account["pendingBalance"] == 246  # 246.90 spent, 1 point per 1.00, floored
        assert account["balance"] == 0  # spendable after the 10-day return window
        assert account["heldPoints"] == 0
        assert account["tier"] == {"code": "base", "name": "Base", "multiplier": "1"}
        [earn] = [edge["node"] for edge in account["ledger"]["edges"]]
        assert (earn["kind"], earn["points"], earn["purchaseId"]) == ("EARN", 246, purchase)
        assert account["expiringSoon"]["points"] == 246  # the test program's points live 100 days
        assert account["expiringSoon"]["firstExpiry"] is not None
        assert account["tierProgress"] == {"qualifying": 246, "nextTier": None, "remaining": 0}
    await _assert_ledger_verifies(loyalty.sessions)


async def test_the_account_agrees_with_the_engine(gql, loyalty, sessions):
    customer = await _member(gql, "+79165550003")
    await _buy(gql, customer, "agree-receipt-1", price=50_000, quantity=1)
    await _give(gql, customer, 300)
    await _payload(gql, POINTS_RESERVE, reserve_input(customer, 120, "agree-hold-0001"))

    account = await _account(gql, customer)
    async with sessions() as session:
        engine = await balance_of(session, customer_uuid(customer), utcnow())
    shown = (account["balance"], account["pendingBalance"], account["heldPoints"])
    assert shown == (engine.available, engine.pending, engine.held) == (180, 500, 120)


async def test_tier_progress_on_spend_counts_returns_and_merged_customers(gql, sessions, provider):
    levels = [{"code": "base", "name": "Base", "threshold": 0}, {"code": "silver", "name": "Silver", "threshold": 100_000}]  # fmt: skip
    await Loyalty(sessions, provider).load(program(tiers={"metric": "spend", "levels": levels}))
    keeper = await _member(gql, "+79165550004")
    merged = await _member(gql, "+79165550005")
    bought = await _buy(gql, keeper, "spend-receipt-01", quantity=3)  # 300.00
    await _buy(gql, merged, "spend-receipt-02", quantity=2)  # 200.00
    give_back = {"purchaseId": bought, "channel": "POS", "idempotencyKey": "spend-return-01"}
    returned = await _payload(
        gql, RETURN, give_back | {"lines": [{"sku": "SKU-1", "quantity": 1}]}, as_="app"
    )
    assert returned["errors"] == []
    merging = {"customerIds": [keeper, merged], "survivorId": keeper}
    assert (await _payload(gql, MERGE, merging))["errors"] == []

    progress = (await _account(gql, keeper))["tierProgress"]
    async with sessions() as session:
        account = await session.get(models.Account, customer_uuid(keeper))
        active = await active_program(session)
        engine = await qualifying_value(session, account, active.rules, utcnow())
    assert progress["qualifying"] == engine == 40_000  # 300.00 - 100.00 + 200.00
    assert (progress["nextTier"]["code"], progress["remaining"]) == ("silver", 60_000)


# --- 2. spending ---------------------------------------------------------------------------


async def test_redeem_reserve_commit_cancel_and_replays(gql, loyalty):
    customer = await _member(gql, "+79165550010")
    await _give(gql, customer, 1000)

    spend = redeem_input(customer, 100, "redeem-key-0001", total=100_000)
    redeemed = await _payload(gql, POINTS_REDEEM, spend)
    assert redeemed["errors"] == []
    assert (redeemed["replayed"], redeemed["entry"]["kind"], redeemed["entry"]["points"]) == (
        False,
        "REDEEM",
        -100,
    )
    assert redeemed["account"]["balance"] == 900
    again = await _payload(gql, POINTS_REDEEM, spend)
    assert (again["replayed"], again["entry"]["id"]) == (True, redeemed["entry"]["id"])
    assert again["account"]["balance"] == 900  # debited once

    hold = reserve_input(customer, 200, "hold-key-00001")
    held = await _payload(gql, POINTS_RESERVE, hold)
    assert held["errors"] == []
    assert (held["reservation"]["status"], held["reservation"]["points"]) == ("HELD", 200)
    assert held["account"] == {"balance": 700, "heldPoints": 200}
    held_again = await _payload(gql, POINTS_RESERVE, hold)
    assert (held_again["replayed"], held_again["reservation"]["id"]) == (
        True,
        held["reservation"]["id"],
    )
    assert held_again["account"] == {"balance": 700, "heldPoints": 200}

    close = {"customerId": customer, "reservationId": held["reservation"]["id"]}
    committed = await _payload(gql, POINTS_COMMIT, close)
    assert (committed["replayed"], committed["reservation"]["status"]) == (False, "COMMITTED")
    assert committed["reservation"]["closedAt"] is not None
    assert committed["account"] == {"balance": 700, "heldPoints": 0}
    assert (await _payload(gql, POINTS_COMMIT, close))["replayed"] is True

    second = await _payload(gql, POINTS_RESERVE, reserve_input(customer, 300, "hold-key-00002"))
    assert second["account"] == {"balance": 400, "heldPoints": 300}
    release = {"customerId": customer, "reservationId": second["reservation"]["id"]}
    cancelled = await _payload(gql, POINTS_CANCEL, release)
    assert (cancelled["replayed"], cancelled["reservation"]["status"]) == (False, "CANCELLED")
    assert cancelled["account"] == {"balance": 700, "heldPoints": 0}
    assert (await _payload(gql, POINTS_CANCEL, release))["replayed"] is True

    account = await _account(gql, customer)
    assert _kinds(account) == ["RELEASE", "RESERVE", "COMMIT", "RESERVE", "REDEEM", "ADJUST"]
    assert account["ledger"]["edges"][0]["node"]["reservationId"] == second["reservation"]["id"]
    assert account["balance"] == 700
    await _assert_ledger_verifies(loyalty.sessions)


async def test_a_redemption_can_pay_for_a_recorded_purchase(gql, loyalty):
    customer = await _member(gql, "+79165550011")
    await _give(gql, customer, 500)
    purchase = await _buy(gql, customer, "paid-with-points-1", price=40_000, quantity=1)

    pay = {"customerId": customer, "idempotencyKey": "pay-purchase-01", "purchaseId": purchase}
    paid = await _payload(gql, POINTS_REDEEM, pay | {"points": 200})
    assert paid["errors"] == []
    assert paid["entry"]["purchaseId"] == purchase
    more = pay | {"points": 201, "idempotencyKey": "pay-purchase-02"}
    too_much = await _payload(gql, POINTS_REDEEM, more)
    assert too_much["errors"][0]["code"] == "SHARE_EXCEEDED"  # half of 400.00


async def test_the_ledger_pages_newest_first_with_signed_cursors(gql, loyalty):
    customer = await _member(gql, "+79165550012")
    for n in range(5):
        await _give(gql, customer, 10 + n)
    seen, after = [], None
    while True:
        page = await gql.data(LEDGER_PAGE, {"id": customer, "first": 2, "after": after})
        ledger = page["customer"]["loyalty"]["ledger"]
        seen += [edge["node"]["points"] for edge in ledger["edges"]]
        if not ledger["pageInfo"]["hasNextPage"]:
            break
        after = ledger["pageInfo"]["endCursor"]
    assert seen == [14, 13, 12, 11, 10]
    tampered = after[:-4] + ("AAAA" if not after.endswith("AAAA") else "BBBB")
    bad = await gql.call(LEDGER_PAGE, {"id": customer, "first": 2, "after": tampered})
    assert _codes(bad) == {"INVALID_CURSOR"}
    too_big = await gql.call(LEDGER_PAGE, {"id": customer, "first": 101})
    assert _codes(too_big) == {"BAD_USER_INPUT"}


# --- 3. bad input --------------------------------------------------------------------------


async def _expired_hold(sessions, provider, customer: str) -> str:
    """400 points, then 150 of them held an hour ago for 15 minutes (through the engine: no
    request can place a hold in the past)."""
    past, raw = utcnow() - timedelta(hours=1), customer_uuid(customer)
    async with transaction(sessions) as session:
        cipher = FieldCipher(session, provider)
        earlier = past - timedelta(hours=1)
        await adjust(
            session,
            cipher,
            customer_id=raw,
            points=400,
            reason="setup",
            actor="t",
            idempotency_key="setup-expired-hold",
            now=earlier,
        )
        held = await reserve(
            session,
            cipher,
            customer_id=raw,
            points=150,
            idempotency_key="expired-hold-01",
            order_total_minor=100_000,
            now=past,
        )
    return to_global_id("PointsReservation", held.reservation.id)


async def test_bad_input_is_a_typed_payload_error_and_changes_nothing(
    gql, loyalty, sessions, provider
):
    customer = await _member(gql, "+79165550020")
    other = await _member(gql, "+79165550021")
    await _give(gql, customer, 1000)
    await _give(gql, other, 100)
    first = await _payload(gql, POINTS_REDEEM, redeem_input(customer, 100, "reused-key-0001"))
    assert first["errors"] == []
    theirs = await _payload(gql, POINTS_RESERVE, reserve_input(other, 10, "other-hold-001"))
    expired = await _expired_hold(sessions, provider, other)
    unknown = to_global_id("PointsReservation", uuid.uuid4())
    nobody = to_global_id("Customer", uuid.uuid4())

    def spend(points: int, key: str, **extra: object) -> dict:
        return redeem_input(customer, points, key, **extra)

    hold = reserve_input(customer, 0, "fresh-hold-001")
    no_total = {"customerId": customer, "points": 10, "idempotencyKey": "no-total-00001"}
    cases = [
        (POINTS_REDEEM, spend(0, "zero-points-001"), "INVALID_POINTS", "points"),
        (POINTS_REDEEM, spend(-5, "minus-points-01"), "INVALID_POINTS", "points"),
        (POINTS_RESERVE, hold, "INVALID_POINTS", "points"),
        (POINTS_ADJUST, {"customerId": customer, "points": 0, "reason": "no", "idempotencyKey": "adjust-zero-01"}, "INVALID_POINTS", "points"),
        (POINTS_REDEEM, spend(501, "share-exceeded1", total=100_000), "SHARE_EXCEEDED", "points"),
        (POINTS_RESERVE, hold | {"points": 501}, "SHARE_EXCEEDED", "points"),
        (POINTS_REDEEM, spend(901, "insufficient-01"), "INSUFFICIENT_POINTS", "points"),
        (POINTS_RESERVE, hold | {"points": 901, "orderTotalMinor": 10**6}, "INSUFFICIENT_POINTS", "points"),
        (POINTS_REDEEM, spend(200, "reused-key-0001"), "IDEMPOTENCY_KEY_REUSED", "idempotencyKey"),
        (POINTS_REDEEM, spend(10, "short"), "INVALID_INPUT", "idempotencyKey"),
        (POINTS_REDEEM, spend(10, "in-euros-001", currency="EUR"), "CURRENCY_MISMATCH", "currency"),
        (POINTS_REDEEM, no_total, "INVALID_INPUT", "orderTotalMinor"),
        (POINTS_COMMIT, {"customerId": customer, "reservationId": unknown}, "RESERVATION_NOT_FOUND", "reservationId"),
        (POINTS_CANCEL, {"customerId": customer, "reservationId": theirs["reservation"]["id"]}, "RESERVATION_NOT_FOUND", "reservationId"),
        (POINTS_COMMIT, {"customerId": other, "reservationId": expired}, "RESERVATION_EXPIRED", "reservationId"),
        (POINTS_REDEEM, redeem_input(nobody, 10, "nobody-key-001"), "CUSTOMER_NOT_FOUND", "customerId"),
    ]  # fmt: skip
    before = (
        await _account(gql, customer),
        await _account(gql, other),
        await _row_counts(sessions),
    )
    for operation, input, code, field in cases:
        payload = await _payload(gql, operation, input)
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, ["input", field])]
        assert all(value in (None, False) for key, value in payload.items() if key != "errors")
        after = (
            await _account(gql, customer),
            await _account(gql, other),
            await _row_counts(sessions),
        )
        assert after == before, code
    await _assert_ledger_verifies(sessions)


# --- 4. concurrency ------------------------------------------------------------------------


async def test_fifty_concurrent_redemptions_spend_exactly_the_balance(gql, loyalty, sessions):
    customer = await _member(gql, "+79165550030")
    await _give(gql, customer, 1000)

    redemptions = [
        gql.call(POINTS_REDEEM, {"input": redeem_input(customer, 100, f"concurrent-{n:04d}")})
        for n in range(50)
    ]
    probes = [gql.call(BALANCE, {"id": customer}) for _ in range(10)]
    results = await asyncio.gather(*redemptions, *probes)

    assert [body["errors"] for body in results if "errors" in body] == []
    payloads = [body["data"]["pointsRedeem"] for body in results[:50]]
    assert sum(1 for payload in payloads if payload["errors"] == []) == 10
    assert {e["code"] for p in payloads for e in p["errors"]} == {"INSUFFICIENT_POINTS"}
    seen = [body["data"]["customer"]["loyalty"]["balance"] for body in results[50:]]
    seen += [payload["account"]["balance"] for payload in payloads if payload["account"]]
    assert min(seen) >= 0, seen
    account = await _account(gql, customer)
    assert (account["balance"], _kinds(account).count("REDEEM")) == (0, 10)
    await _assert_ledger_verifies(sessions)

    await _give(gql, customer, 1000)
    retry = {"input": redeem_input(customer, 100, "one-key-for-all")}
    same = await asyncio.gather(*(gql.call(POINTS_REDEEM, retry) for _ in range(50)))
    assert [body["errors"] for body in same if "errors" in body] == []
    payloads = [body["data"]["pointsRedeem"] for body in same]
    assert all(payload["errors"] == [] for payload in payloads), payloads
    assert sorted(payload["replayed"] for payload in payloads) == [False] + [True] * 49
    assert len({payload["entry"]["id"] for payload in payloads}) == 1
    account = await _account(gql, customer)
    assert (account["balance"], _kinds(account).count("REDEEM")) == (900, 11)
    await _assert_ledger_verifies(sessions)


# --- 5. access -----------------------------------------------------------------------------


async def test_who_may_move_and_read_points(gql, loyalty):
    me = await _member(gql, "+79165550040")
    other = await _member(gql, "+79165550041")
    await _give(gql, me, 500)
    await _give(gql, other, 500)

    for_other = await gql.call(
        POINTS_REDEEM, {"input": redeem_input(other, 10, "not-mine-01")}, **_as(me)
    )
    assert (_codes(for_other), for_other["data"]) == ({"FORBIDDEN"}, None)
    quote = {"input": {"customerId": other, "channel": "WEB", "lines": []}}
    assert _codes(await gql.call(POINTS_QUOTE, quote, **_as(me))) == {"FORBIDDEN"}
    assert (await _account(gql, other))["balance"] == 500

    own = await _payload(gql, POINTS_REDEEM, redeem_input(me, 10, "my-own-points-1"), **_as(me))
    assert (own["errors"], own["account"]["balance"]) == ([], 490)
    by_app = await _payload(gql, POINTS_REDEEM, redeem_input(me, 10, "app-spends-0001"), as_="app")
    assert by_app["errors"] == []
    by_analyst = await gql.call(
        POINTS_REDEEM, {"input": redeem_input(me, 10, "analyst-01")}, as_="analyst"
    )
    assert _codes(by_analyst) == {"FORBIDDEN"}

    correction = {
        "input": {
            "customerId": me,
            "points": 5,
            "reason": "late delivery",
            "idempotencyKey": "late-delivery-01",
        }
    }
    for caller in ({"as_": "app"}, _as(me), {"as_": "analyst"}):
        assert _codes(await gql.call(POINTS_ADJUST, correction, **caller)) == {"FORBIDDEN"}
    by_staff = await _payload(gql, POINTS_ADJUST, correction["input"])
    assert by_staff["entry"]["actor"] == "staff:operator-dev"
    assert by_staff["entry"]["reason"] == "late delivery"
    assert _codes(await gql.call(LEDGER_FIELD % "actor", {"id": me}, **_as(me))) == {"FORBIDDEN"}
    reason = await gql.call(LEDGER_FIELD % "reason", {"id": me}, as_="analyst")
    assert _codes(reason) == {"FORBIDDEN"}
    analyst_actor = await gql.data(LEDGER_FIELD % "actor", {"id": me}, as_="analyst")
    assert analyst_actor["customer"]["loyalty"]["ledger"]["edges"][0]["node"]["actor"]
    mine = await gql.data(LOYALTY_ACCOUNT, {"id": me}, **_as(me))
    assert mine["customer"]["loyalty"]["balance"] == 485  # 500 - 10 - 10 + 5


# --- 6. the program and quotes --------------------------------------------------------------


async def test_the_program_is_readable_by_every_principal(gql, loyalty):
    rules = read_program_file(DEMO_PROGRAM)
    await loyalty.load(rules)
    customer = await _member(gql, "+79165550050")

    for caller in ({"as_": "app"}, _as(customer), {"as_": "analyst"}):
        data = (await gql.data(LOYALTY_PROGRAM, **caller))["loyaltyProgram"]
        shown = (data["code"], data["version"], data["name"], data["currency"])
        assert shown == (rules.code, 1, rules.name, rules.currency)
    assert (data["pendingDays"], data["returns"]) == (rules.pending_days, rules.returns.name)
    assert data["earn"] == {"points": rules.earn.points, "perMinor": rules.earn.per_minor}
    assert [rule["code"] for rule in data["rules"]] == [rule.code for rule in rules.earn.rules]
    for shown_rule, rule in zip(data["rules"], rules.earn.rules, strict=True):
        assert Decimal(shown_rule["multiplier"]) == rule.multiplier
        assert (shown_rule["priority"], shown_rule["stop"]) == (rule.priority, rule.stop)
        assert shown_rule["categories"] == rule.when.categories
        assert shown_rule["channels"] == [str(channel) for channel in rule.when.channels]
        assert (shown_rule["validFrom"] is None) == (rule.valid_from is None)
    assert [(b["code"], b["event"], b["points"], b["pending"]) for b in data["bonuses"]] == [
        (b.code, b.event.name, b.points, b.pending) for b in rules.earn.bonuses
    ]
    caps = rules.earn.caps
    assert data["caps"] == {"perDay": caps.per_day, "perMonth": caps.per_month}
    assert data["expiry"]["policy"] == rules.expiry.policy.name
    assert data["redemption"] == {
        "pointValueMinor": rules.redemption.point_value_minor,
        "maxSharePercent": rules.redemption.max_share_percent,
        "minBalance": rules.redemption.min_balance,
        "holdMinutes": rules.redemption.hold_minutes,
    }
    assert data["tiers"]["metric"] == rules.tiers.metric.name
    levels = [
        (t["code"], t["threshold"], Decimal(t["multiplier"])) for t in data["tiers"]["levels"]
    ]
    assert levels == [(t.code, t.threshold, t.multiplier) for t in rules.tiers.levels]
    assert data["referral"]["referrerPoints"] == rules.referral.referrer_points
    assert (await _account(gql, customer))["tier"]["code"] == rules.tiers.levels[0].code


async def test_a_quote_follows_the_program_and_writes_nothing(gql, loyalty, sessions):
    earn_rules = [
        {"code": "app-double", "priority": 50, "when": {"channels": ["MOBILE_APP"]}, "multiplier": "2"},
        {"code": "books", "priority": 10, "when": {"categories": ["books"]}, "multiplier": "1.5"},
    ]  # fmt: skip
    earn = {"points": 1, "per_minor": 100, "rules": earn_rules}
    await loyalty.load(program(earn=earn, redemption=SPEND | {"max_share_percent": 30}))
    customer = await _member(gql, "+79165550060")
    await _give(gql, customer, 1000)
    before = (await _account(gql, customer), await _row_counts(sessions))

    cart = {"customerId": customer, "channel": "MOBILE_APP", "lines": BOOKS_AND_MILK}
    in_app = await _payload(gql, POINTS_QUOTE, cart, as_="app")
    # books: 1000 points x2 (app) x1.5 (books); milk: 200 x2; 30% of 1,200.00 is 360 points
    assert in_app == {
        "earnPoints": 3400,
        "appliedRules": ["app-double", "books"],
        "maxRedeemPoints": 360,
        "pointValueMinor": 100,
        "currency": "RUB",
        "balance": 1000,
    }
    at_pos = await _payload(gql, POINTS_QUOTE, cart | {"channel": "POS", "currency": "rub"})
    assert (at_pos["earnPoints"], at_pos["appliedRules"]) == (1700, ["books"])
    tv = [{"sku": "TV-1", "category": "electronics", "quantity": 1, "unitPriceMinor": 10**7}]
    big = {"customerId": customer, "channel": "WEB", "lines": tv}
    own = await _payload(gql, POINTS_QUOTE, big, **_as(customer))
    assert (own["earnPoints"], own["maxRedeemPoints"]) == (100_000, 1000)  # the balance limits
    euros = await gql.call(POINTS_QUOTE, {"input": big | {"currency": "EUR"}})
    assert _codes(euros) == {"CURRENCY_MISMATCH"}
    assert (await _account(gql, customer), await _row_counts(sessions)) == before


# --- balances and quotes that do not wait for the scheduled job --------------------------


async def test_an_expired_hold_gives_its_points_back_at_once(gql, loyalty, sessions, provider):
    customer = await _member(gql, "+79165550070")
    await _expired_hold(sessions, provider, customer)  # 400 points, 150 held an hour ago
    async with sessions() as session:
        balance = await balance_of(session, customer_uuid(customer), utcnow())
    assert (balance.available, balance.held) == (400, 0)  # the lapsed hold counts as spendable


async def test_a_quote_refuses_negative_lines(gql, loyalty):
    customer = await _member(gql, "+79165550071")
    lines = [{"sku": "X", "category": "grocery", "quantity": -3, "unitPriceMinor": 10_000}]
    cart = {"input": {"customerId": customer, "channel": "WEB", "lines": lines}}
    body = await gql.call(POINTS_QUOTE, cart)
    assert body["data"] is None or body["data"].get("pointsQuote") is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["INVALID_INPUT"]


NODE_ENTRY = "query($id: ID!) { node(id: $id) { id ... on LedgerEntry { kind points } } }"


async def test_a_ledger_entry_is_a_node_readable_only_by_whoever_may_read_its_owner(gql, loyalty):
    owner = await _member(gql, "+79165550080")
    stranger = await _member(gql, "+79165550081")
    await _give(gql, owner, 70)
    [edge] = (await gql.data(LEDGER_FIELD % "id", {"id": owner}))["customer"]["loyalty"]["ledger"][
        "edges"
    ]

    by_owner = await gql.data(NODE_ENTRY, {"id": edge["node"]["id"]}, **_as(owner))
    by_stranger = await gql.call(NODE_ENTRY, {"id": edge["node"]["id"]}, **_as(stranger))

    assert by_owner["node"] == {"id": edge["node"]["id"], "kind": "ADJUST", "points": 70}
    assert {error["extensions"]["code"] for error in by_stranger["errors"]} == {"FORBIDDEN"}
