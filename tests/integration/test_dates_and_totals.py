"""Dates that stay true (`registered_at`) and purchase lines given by their total."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from sqlalchemy import select

from core.db import create_engine, session_factory
from core.settings import Settings
from graph.importer import import_customers, import_events
from graph.models import Customer, Event, EventLine
from privacy.keys import LocalKeyring
from scoring.features import eligible
from scoring.history import load_history

CUSTOMERS = """\
channel,phone,registered_at,phone_verified
POS,+79165550001,2023-03-01T10:00:00Z,true
POS,+79165550002,,true
POS,+79165550003,2024-06-01,true
"""


def _jsonl(*rows: dict[str, object]) -> str:
    return "\n".join(json.dumps(row) for row in rows) + "\n"


def _purchase(key: str, phone: str, when: str, **line: object) -> dict[str, object]:
    return {
        "type": "PURCHASE", "idempotency_key": key, "identifier_kind": "PHONE",
        "identifier_value": phone, "channel": "POS", "occurred_at": when, "sku": "SKU-1",
        "category": "food", **line,
    }  # fmt: skip


EVENTS = _jsonl(
    _purchase("p-0001-xx", "+79165550001", "2023-05-01T10:00:00Z", unit_price_minor=100),
    _purchase("p-0002-xx", "+79165550002", "2023-07-01T10:00:00Z", unit_price_minor=100),
    _purchase("p-0003-xx", "+79165550003", "2024-01-01T10:00:00Z", quantity=3, total_minor=1000),
    {
        "type": "RETURN", "idempotency_key": "r-0001-xx", "channel": "POS",
        "purchase_idempotency_key": "p-0003-xx", "sku": "SKU-1", "quantity": 1,
        "occurred_at": "2024-01-02T10:00:00Z",
    },
    {
        "type": "RETURN", "idempotency_key": "r-0002-xx", "channel": "POS",
        "purchase_idempotency_key": "p-0003-xx", "sku": "SKU-1", "quantity": 2,
        "occurred_at": "2024-01-03T10:00:00Z",
    },
)  # fmt: skip


def _console() -> Console:
    return Console(file=io.StringIO(), width=120)


async def _load(settings: Settings, provider: LocalKeyring, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "e.jsonl").write_text(EVENTS, encoding="utf-8")
    report = await import_customers(settings, provider, tmp_path / "c.csv", console=_console())
    assert (report.imported, report.failed) == (3, [])
    report = await import_events(settings, provider, tmp_path / "e.jsonl", console=_console())
    assert (report.imported, report.failed) == (5, [])


async def test_registration_date_comes_from_the_file_or_the_earliest_event(
    settings, provider, tmp_path
):
    # given customers imported with and without a registration date, then their purchases
    await _load(settings, provider, tmp_path)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            rows = (await session.execute(select(Customer))).scalars().all()
            dates = sorted(row.registered_at for row in rows)
            # then the file's date stands, a missing one is the first purchase, and a purchase
            # before the file's date moves it back
            assert dates == [
                datetime(2023, 3, 1, 10, tzinfo=UTC),
                datetime(2023, 7, 1, 10, tzinfo=UTC),
                datetime(2024, 1, 1, 10, tzinfo=UTC),
            ]
            # and a past cutoff finds them eligible although their rows were written today
            cutoff = datetime(2024, 2, 1, tzinfo=UTC)
            history = await load_history(session, until=cutoff, currency=settings.currency)
            assert int(eligible(history, cutoff).sum()) == 3
    finally:
        await engine.dispose()


async def test_a_line_given_by_its_total_keeps_its_quantity_and_refunds_exactly(
    settings, provider, tmp_path
):
    # given a purchase of 3 units for 1000 (not divisible), returned in two steps
    await _load(settings, provider, tmp_path)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            events = (await session.execute(select(Event).order_by(Event.occurred_at))).scalars()
            by_type: dict[str, list[int]] = {}
            for event in events:
                by_type.setdefault(event.type, []).append(event.amount_minor or 0)
            lines = (
                (await session.execute(select(EventLine).where(EventLine.total_minor == 1000)))
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    # then the line keeps quantity 3 at a floor unit price, and the total is what was paid
    assert [(line.quantity, line.unit_price_minor, line.total_minor) for line in lines] == [
        (3, 333, 1000)
    ]
    assert by_type["PURCHASE"] == [100, 100, 1000]
    # and the two returns refund 333 + 667, exactly the line's total
    assert by_type["RETURN"] == [333, 667]


REGISTER = """
mutation Register($input: CustomerRegisterInput!) {
  customerRegister(input: $input) {
    customer { id registeredAt }
    errors { code field }
  }
}
"""
PURCHASE = """
mutation Purchase($input: PurchaseRecordInput!) {
  purchaseRecord(input: $input) {
    purchase { total { amountMinor } lines { quantity unitPrice { amountMinor } total { amountMinor } } }
    errors { code field }
  }
}
"""


async def test_the_api_takes_a_registration_date_from_staff_and_line_totals(gql):
    given = {"channel": "POS", "phone": "+79165550009", "phoneVerified": True}
    # an app may not backdate a membership
    body = await gql.call(
        REGISTER, {"input": {**given, "registeredAt": "2022-01-01T00:00:00Z"}}, as_="app"
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # staff may
    data = await gql.data(
        REGISTER, {"input": {**given, "registeredAt": "2022-01-01T00:00:00Z"}}, as_="admin"
    )
    customer = data["customerRegister"]["customer"]
    assert customer["registeredAt"].startswith("2022-01-01T00:00:00")
    line = {"sku": "A-1", "category": "food", "quantity": 3}
    purchase = {"channel": "POS", "customerId": customer["id"], "idempotencyKey": "api-total-1"}
    # a line by its total keeps its quantity
    data = await gql.data(
        PURCHASE, {"input": {**purchase, "lines": [{**line, "totalMinor": 1000}]}}, as_="app"
    )
    recorded = data["purchaseRecord"]["purchase"]
    assert recorded["total"]["amountMinor"] == 1000
    assert recorded["lines"] == [
        {"quantity": 3, "unitPrice": {"amountMinor": 333}, "total": {"amountMinor": 1000}}
    ]
    # a line without a price, or with a price and a total that disagree, is an input error
    for bad, field in (
        ({}, "unitPriceMinor"),
        ({"unitPriceMinor": 300, "totalMinor": 1000}, "totalMinor"),
    ):
        data = await gql.data(
            PURCHASE,
            {
                "input": {
                    **purchase,
                    "idempotencyKey": f"api-bad-{field}",
                    "lines": [{**line, **bad}],
                }
            },
            as_="app",
        )
        assert data["purchaseRecord"]["errors"] == [
            {"code": "INVALID_INPUT", "field": ["input", "lines", "0", field]}
        ]
