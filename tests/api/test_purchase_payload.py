"""The till learns everything from purchaseRecord's own answer: the customer, the points the
purchase earned, until when they wait, and the balance after it; Purchase.customer exists."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.clock import utcnow
from tests.api.operations import purchase_input
from tests.api.test_loyalty_api import _member, loyalty  # noqa: F401 - the fixture

TILL_PURCHASE = """
mutation Till($input: PurchaseRecordInput!) {
  purchaseRecord(input: $input) {
    replayed
    purchase { id customer { id } }
    customer { id }
    points { earned pendingUntil account { balance pendingBalance } }
    errors { code }
  }
}
"""


async def test_the_payload_says_what_the_purchase_earned_and_the_new_balance(gql, loyalty):  # noqa: F811
    customer = await _member(gql, "+79165550101")
    first = purchase_input(customer, "till-0001", price=12_345, quantity=2)
    data = (await gql.data(TILL_PURCHASE, {"input": first}, as_="app"))["purchaseRecord"]
    assert data["errors"] == []
    assert data["customer"]["id"] == customer
    assert data["purchase"]["customer"]["id"] == customer
    points = data["points"]
    assert points["earned"] == 246  # 246.90 at 1 point per 1.00, floored
    pending_until = datetime.fromisoformat(points["pendingUntil"])
    # The test program's return window is 10 days.
    assert utcnow() + timedelta(days=9) < pending_until <= utcnow() + timedelta(days=10, hours=1)
    assert points["account"] == {"balance": 0, "pendingBalance": 246}

    second = purchase_input(customer, "till-0002", price=10_000, quantity=1)
    data = (await gql.data(TILL_PURCHASE, {"input": second}, as_="app"))["purchaseRecord"]
    assert data["points"]["earned"] == 100
    assert data["points"]["account"] == {"balance": 0, "pendingBalance": 346}

    replay = (await gql.data(TILL_PURCHASE, {"input": second}, as_="app"))["purchaseRecord"]
    assert replay["replayed"] is True
    assert replay["points"]["earned"] == 100  # the same effect, not a second one
    assert replay["points"]["account"]["pendingBalance"] == 346


async def test_without_a_program_there_is_no_points_effect(gql):
    customer = await _member(gql, "+79165550102")
    data = (
        await gql.data(TILL_PURCHASE, {"input": purchase_input(customer, "till-0003")}, as_="app")
    )["purchaseRecord"]
    assert data["errors"] == [] and data["customer"]["id"] == customer
    assert data["points"] is None
