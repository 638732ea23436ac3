"""Day counts are whole days as of a stated instant (`asOf`), not floats that move per call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from graph.queries import whole_days
from tests.api.operations import PURCHASE, purchase_input
from tests.api.test_events import _customer

RFM = "query($id: ID!) { customer(id: $id) { rfm { asOf recencyDays lifetimeDays } } }"


def test_whole_days_floor_and_never_go_negative() -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert whole_days(start, start + timedelta(days=50, hours=13, seconds=7)) == 50
    assert whole_days(start, start + timedelta(hours=23, minutes=59)) == 0
    assert whole_days(start, start - timedelta(hours=1)) == 0


async def test_recency_and_lifetime_are_integers_as_of_a_stated_instant(gql) -> None:
    customer = await _customer(gql)
    for n, day in enumerate(["2026-01-01T09:30:00Z", "2026-02-15T18:45:10Z"]):
        order = purchase_input(customer, f"days-order-{n:04d}") | {"occurredAt": day}
        await gql.data(PURCHASE, {"input": order}, as_="app")
    first = (await gql.data(RFM, {"id": customer}))["customer"]["rfm"]
    second = (await gql.data(RFM, {"id": customer}))["customer"]["rfm"]
    for rfm in (first, second):
        assert isinstance(rfm["recencyDays"], int) and isinstance(rfm["lifetimeDays"], int)
        as_of = datetime.fromisoformat(rfm["asOf"])
        last = datetime(2026, 2, 15, 18, 45, 10, tzinfo=UTC)
        assert rfm["recencyDays"] == (as_of - last) // timedelta(days=1)
        assert rfm["lifetimeDays"] - rfm["recencyDays"] in (45, 46)
    if first["asOf"][:10] == second["asOf"][:10]:
        assert first["recencyDays"] == second["recencyDays"]
