"""`import customers|events`: good rows import, bad rows are reported by line and write nothing,
reasons carry no personal data, and importing the same file again changes nothing."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import create_engine, session_factory
from core.settings import Settings
from graph.bulk_customers import bulk_import_customers
from graph.bulk_events import bulk_import_events
from graph.customers import decrypt_profile, find_by_identifier
from graph.enums import IdentityKind
from graph.importer import (
    ImportFileError,
    ImportReport,
    OnBadField,
    import_customers,
    import_events,
)
from graph.models import Customer, Event, EventLine, Identity
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from privacy.models import DataKey

CUSTOMERS_CSV = """\
channel,phone,email,first_name,last_name,birth_date,loyalty_card,phone_verified
POS,8 (916) 555-12-34,anna.kuznetsova@example.com,Анна,Кузнецова,1990-04-12,,
WEB,+79165551235,ivan.petrov@example.com,Иван,Петров,,,
MOBILE_APP,+7 000 111 22 33,oleg.sidorov@example.com,Олег,Сидоров,,,
TELEGRAM,+79165551236,petr.smirnov@example.com,Пётр,Смирнов,,,
POS,+79165551237,,Мария,Орлова,12.04.1990,,

POS,,,,,,2700 0000 0001 7,
WEB,+79165551238,,Ольга,Фёдорова,,,false
POS,+79165551239,maria@@example,Мария,Белова,,,
"""
# The personal data of each bad line above, none of which may appear in a reason.
BAD_CUSTOMER_LINES = {
    4: ("+7 000 111 22 33", "oleg.sidorov@example.com", "Олег", "Сидоров"),
    5: ("+79165551236", "petr.smirnov@example.com", "Пётр", "Смирнов", "TELEGRAM"),
    10: ("+79165551239", "maria@@example", "Белова"),
}


def _jsonl(*rows: dict[str, object] | str) -> str:
    return "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n"


ANNA = {"identifier_kind": "PHONE", "identifier_value": "+79165551234"}
EVENTS_JSONL = _jsonl(
    {
        "type": "PURCHASE", "idempotency_key": "jsonl-purchase-1", **ANNA, "channel": "POS",
        "occurred_at": "2025-01-10T12:00:00+03:00",
        "lines": [
            {"sku": "EL-0001", "category": "electronics", "quantity": 2, "unit_price_minor": 199000},
            {"sku": "KT-0002", "category": "kitchen", "quantity": 1, "unit_price_minor": 49000},
        ],
    },
    {
        "type": "PURCHASE", "idempotency_key": "jsonl-purchase-2", **ANNA, "channel": "WEB",
        "sku": "KT-0001", "quantity": 1, "unit_price_minor": -100,
    },
    {
        "type": "RETURN", "idempotency_key": "jsonl-return-1", "channel": "POS",
        "purchase_idempotency_key": "jsonl-purchase-1", "sku": "EL-0001", "quantity": 3,
    },
    {
        "type": "RETURN", "idempotency_key": "jsonl-return-2", "channel": "POS",
        "purchase_idempotency_key": "jsonl-purchase-1", "sku": "EL-0001", "quantity": 1,
        "occurred_at": "2025-01-12",
    },
    {
        "type": "VISIT", "idempotency_key": "jsonl-visit-1", **ANNA, "channel": "POS",
        "occurred_at": "yesterday",
    },
    {
        "type": "CONTACT", "idempotency_key": "jsonl-contact-1", "identifier_kind": "EMAIL",
        "identifier_value": "Ivan.Petrov@Example.com", "channel": "CONTACT_CENTER",
        "topic": "delivery", "satisfaction": 4, "occurred_at": "2025-02-01T09:30:00Z",
    },
    "{this is not json",
    {
        "type": "VISIT", "idempotency_key": "jsonl-visit-2", **ANNA, "channel": "FAX",
    },
    {
        "type": "CAMPAIGN_RESPONSE", "idempotency_key": "jsonl-campaign-1", **ANNA,
        "channel": "WEB", "campaign": "2025-03-march-8", "campaign_channel": "WEB",
        "action": "clicked", "occurred_at": "2025-03-05T18:00:00Z",
    },
    {
        "type": "PURCHASE", "idempotency_key": "jsonl-purchase-3", "identifier_kind": "PHONE",
        "identifier_value": "+79169990000", "channel": "POS", "sku": "BK-0001",
        "unit_price_minor": 39000,
    },
    "",
)  # fmt: skip
BAD_EVENT_LINES = {2, 3, 5, 7, 8, 10}

EVENTS_CSV = """\
type;idempotency_key;identifier_kind;identifier_value;channel;occurred_at;lines;sku;quantity;unit_price_minor;purchase_idempotency_key
PURCHASE;csv-purchase-1;PHONE;8 916 555 12 34;POS;2025-02-01T10:00:00Z;"[{""sku"": ""GD-0003"", ""category"": ""garden"", ""quantity"": 3, ""unit_price_minor"": 25000}]";;;;
PURCHASE;csv-purchase-2;PHONE;+79165551234;WEB;2025-02-02T10:00:00Z;;BT-0001;2;39900;
RETURN;csv-return-1;;;POS;2025-02-03T10:00:00Z;;GD-0003;2;;csv-purchase-1
RETURN;csv-return-2;;;POS;2025-02-04T10:00:00Z;;GD-0003;2;;csv-purchase-1
PURCHASE;csv-purchase-3;PHONE;+79165551234;POS;2025-02-05T10:00:00Z;[not json;;;;
"""


@pytest.fixture(autouse=True, params=["row-by-row", "bulk"])
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs through the per-row services and through the bulk path (in small
    batches, so rows meet across batch boundaries): both must give the same outcome."""
    if request.param == "bulk":
        module = sys.modules[__name__]
        monkeypatch.setattr(module, "import_customers", partial(bulk_import_customers, batch_rows=3))
        monkeypatch.setattr(module, "import_events", partial(bulk_import_events, batch_rows=3))
    return str(request.param)


def _console() -> Console:
    return Console(file=io.StringIO(), width=120)


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def _count(session: AsyncSession, model: type) -> int:
    return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _counts(settings: Settings) -> dict[str, int]:
    async with _session(settings) as session:
        return {
            model.__name__: await _count(session, model)
            for model in (Customer, Identity, DataKey, Event, EventLine)
        }


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


async def _import_customers(settings: Settings, provider: LocalKeyring, path: Path) -> ImportReport:
    return await import_customers(settings, provider, path, console=_console())


async def test_customers_csv_imports_good_rows_and_reports_bad_ones(settings, provider, tmp_path):
    path = _write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    # when the file is imported
    report = await _import_customers(settings, provider, path)
    # then the good rows are customers and each bad row is reported by its line
    assert (report.imported, report.skipped, report.empty) == (5, 0, 1)
    assert [line for line, _ in report.failed] == sorted(BAD_CUSTOMER_LINES)
    # and every line of the file is counted, the empty one too
    assert report.lines == len(CUSTOMERS_CSV.splitlines()) - 1
    reasons = dict(report.failed)
    assert reasons[4].startswith("INVALID_PHONE (phone)")
    assert "channel must be one of" in reasons[5]
    assert reasons[10].startswith("INVALID_EMAIL (email)")
    # and a customer with an invalid birth date is imported without it, the line reported
    assert report.partial == [(6, "birth_date (birth_date must be a date as YYYY-MM-DD)")]
    assert "line 6: imported without birth_date" in report.summary()
    assert "12.04.1990" not in report.summary()
    for line, values in BAD_CUSTOMER_LINES.items():
        for value in values:
            assert value not in reasons[line] and value not in report.summary()
    # and bad rows wrote nothing: no customer, identity or data key of theirs
    assert await _counts(settings) == {
        "Customer": 5, "Identity": 7, "DataKey": 5, "Event": 0, "EventLine": 0,
    }  # fmt: skip
    async with _session(settings) as session:
        cipher = FieldCipher(session, provider)
        anna = await find_by_identifier(
            session, cipher, kind=IdentityKind.EMAIL, value="Anna.Kuznetsova@example.com"
        )
        assert anna is not None
        profile = await decrypt_profile(cipher, anna)
        assert (profile.first_name, str(profile.birth_date)) == ("Анна", "1990-04-12")
        maria = await find_by_identifier(
            session, cipher, kind=IdentityKind.PHONE, value="+79165551237"
        )
        assert maria is not None
        assert (await decrypt_profile(cipher, maria)).birth_date is None
        for phone in ("+79165551236", "+79165551239"):
            assert await find_by_identifier(
                session, cipher, kind=IdentityKind.PHONE, value=phone
            ) is None  # fmt: skip
        card = await find_by_identifier(
            session, cipher, kind=IdentityKind.LOYALTY_CARD, value="2700000000017"
        )
        assert card is not None

    # when the same file is imported again, nothing changes (rows only count as skipped)
    again = await _import_customers(settings, provider, path)
    assert (again.imported, again.skipped) == (0, 5)
    assert again.failed == report.failed
    assert (await _counts(settings))["Customer"] == 5


async def test_skip_row_rejects_a_customer_with_an_invalid_field(settings, provider, tmp_path):
    path = _write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    report = await import_customers(
        settings, provider, path, console=_console(), on_bad_field=OnBadField.SKIP_ROW
    )
    assert (report.imported, report.partial) == (4, [])
    assert "birth_date" in dict(report.failed)[6]
    assert (await _counts(settings))["Customer"] == 4


async def test_events_jsonl_imports_good_rows_reports_bad_ones_and_replays(
    settings, provider, tmp_path
):
    # given two customers
    customers = await _import_customers(
        settings, provider, _write(tmp_path, "customers.csv", CUSTOMERS_CSV)
    )
    assert customers.imported == 5
    path = _write(tmp_path, "events.jsonl", EVENTS_JSONL)
    # when the events are imported
    report = await import_events(settings, provider, path, console=_console())
    # then good rows are recorded and bad ones reported by line, without personal data
    assert (report.imported, report.skipped) == (4, 0)
    assert {line for line, _ in report.failed} == BAD_EVENT_LINES
    reasons = dict(report.failed)
    assert "unit_price_minor" in reasons[2] and "negative" in reasons[2]
    assert reasons[3].startswith("RETURN_EXCEEDS_PURCHASE")
    assert "occurred_at" in reasons[5]
    assert reasons[7] == "not valid JSON"
    assert "channel must be one of" in reasons[8]
    assert reasons[10].startswith("CUSTOMER_NOT_FOUND")
    assert all("+7916" not in reason and "@" not in reason for reason in reasons.values())
    counts = await _counts(settings)
    assert (counts["Event"], counts["EventLine"]) == (4, 3)
    async with _session(settings) as session:
        rows = (await session.execute(select(Event.type, Event.amount_minor))).all()
    assert sorted(rows, key=repr) == sorted(
        [("PURCHASE", 2 * 199000 + 49000), ("RETURN", 199000), ("CONTACT", None),
         ("CAMPAIGN_RESPONSE", None)],
        key=repr,
    )  # fmt: skip

    # when the file is imported again, recorded rows are replays and nothing new is written
    again = await import_events(settings, provider, path, console=_console())
    assert (again.imported, again.skipped) == (0, 4)
    assert {line for line, _ in again.failed} == BAD_EVENT_LINES
    assert await _counts(settings) == counts


async def test_events_csv_with_semicolons_and_a_json_lines_column(settings, provider, tmp_path):
    await _import_customers(settings, provider, _write(tmp_path, "c.csv", CUSTOMERS_CSV))
    path = _write(tmp_path, "events.csv", EVENTS_CSV)
    report = await import_events(settings, provider, path, console=_console())
    assert (report.imported, report.skipped) == (3, 0)
    assert [line for line, _ in report.failed] == [5, 6]
    assert dict(report.failed)[5].startswith("RETURN_EXCEEDS_PURCHASE")
    assert "lines must be a JSON list" in dict(report.failed)[6]
    counts = await _counts(settings)
    assert (counts["Event"], counts["EventLine"]) == (3, 3)
    again = await import_events(settings, provider, path, console=_console())
    assert (again.imported, again.skipped, len(again.failed)) == (0, 3, 2)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("customers.xlsx", "channel\nPOS\n", "use .csv"),
        ("customers.csv", "+79161234567,Анна\nPOS,+79161234568\n", "header row"),
        ("customers.csv", "channel,phone,mobile\nPOS,+79161234567,x\n", "unknown column"),
    ],
)
async def test_a_file_that_cannot_be_imported_is_a_clear_error(
    settings, provider, tmp_path, name, content, message
):
    path = _write(tmp_path, name, content)
    with pytest.raises(ImportFileError, match=message) as caught:
        await _import_customers(settings, provider, path)
    assert "+7916" not in str(caught.value) and "Анна" not in str(caught.value)
    assert (await _counts(settings))["Customer"] == 0
