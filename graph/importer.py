"""`loyalgraph import customers|events`: CSV or JSONL files through the real services.

Every row goes through the same service function an API call would use (`register_customer`,
`record_purchase`, `record_return`, `record_event`), under its own savepoint and with a fresh
`FieldCipher`, so a bad row writes nothing and the rows around it still import. Bad rows are
reported by line number with a reason that never repeats a value from the file: a misplaced
column could put a phone number where a channel belongs. Columns: docs/import.md.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core.clock import as_utc, utcnow
from core.db import create_engine, session_factory, transaction
from core.errors import DomainError
from core.settings import Settings
from graph.customers import clean_profile
from graph.enums import CampaignAction, Channel, EventType, IdentityKind
from graph.errors import GraphErrorCode, graph_error
from graph.events import (
    CustomerRef,
    record_event,
    record_purchase,
    record_return,
    stored_idempotency_key,
)
from graph.identity import normalise
from graph.lines import LineInput
from graph.models import Event, Identity
from graph.resolution.registration import register_and_match
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider

CUSTOMER_COLUMNS = frozenset(
    {
        "channel", "phone", "email", "first_name", "last_name", "birth_date", "address",
        "external_id", "external_system", "loyalty_card", "phone_verified", "email_verified",
        "registered_at",
    }
)  # fmt: skip
EVENT_COLUMNS = frozenset(
    {
        "type", "idempotency_key", "customer_id", "identifier_kind", "identifier_value",
        "identifier_source_system", "channel", "occurred_at", "store_code", "currency",
        "external_ref", "lines", "sku", "category", "quantity", "unit_price_minor", "total_minor",
        "purchase_id",
        "purchase_idempotency_key", "topic", "satisfaction", "campaign", "campaign_channel",
        "action",
    }
)  # fmt: skip
ROWS_PER_TRANSACTION = 200
PROGRESS_FROM_LINES = 200
LISTED_FAILURES = 50
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
E = TypeVar("E", bound=StrEnum)


class OnBadField(StrEnum):
    """What a customer row with one invalid optional field (a birth date, a name) becomes."""

    SKIP_FIELD = "skip-field"  # the customer is imported without it; the line is reported
    SKIP_ROW = "skip-row"  # the whole row fails, as any other bad row


class ImportFileError(ValueError):
    """The file as a whole cannot be imported: its type, encoding or header is wrong."""


class RowError(ValueError):
    """A row that cannot be read; the message names columns, never values."""


@dataclass
class ImportReport:
    """Every line of the file lands in exactly one count: imported, skipped (already there),
    failed, or empty (nothing but delimiters or whitespace); `partial` lines were imported
    without a field that was invalid (`--on-bad-field skip-field`)."""

    imported: int = 0
    skipped: int = 0
    empty: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    partial: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lines(self) -> int:
        return self.imported + self.skipped + self.empty + len(self.failed)

    def summary(self) -> str:
        """Counts, then the failed lines (the first few dozen), with reasons free of values."""
        text = (
            f"{self.lines} lines: {self.imported} imported, {self.skipped} skipped "
            f"(already there), {len(self.failed)} failed, {self.empty} empty"
        )
        if self.partial:
            text += f"; {len(self.partial)} imported without an invalid field"
        notes = [(line, reason) for line, reason in self.failed] + [
            (line, f"imported without {reason}") for line, reason in self.partial
        ]
        if not notes:
            return text + "."
        notes.sort()
        lines = [f"  line {line}: {reason}" for line, reason in notes[:LISTED_FAILURES]]
        if len(notes) > LISTED_FAILURES:
            lines.append(f"  ... and {len(notes) - LISTED_FAILURES} more")
        return "\n".join([text + ":", *lines])


# line, values, why unreadable; (line, None, None) is a line with nothing in it
Record = tuple[int, dict[str, Any] | None, str | None]


@dataclass(frozen=True, slots=True)
class Source:
    path: Path
    kind: str  # "csv" or "jsonl"
    lines: int

    def records(self) -> Iterator[Record]:
        return _csv_records(self.path) if self.kind == "csv" else _jsonl_records(self.path)


def _count_lines(path: Path) -> int:
    """Lines in the file, checking on the way that it is UTF-8 text."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                raise ImportFileError(
                    f"{path.name} is not UTF-8 text after line {lines + 1}; save it as UTF-8"
                ) from None
            lines += chunk.count(b"\n")
    return lines


def open_source(path: Path, columns: frozenset[str], required: tuple[str, ...]) -> Source:
    """Check the file type and (for CSV) the header before anything is written."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        kind = "csv"
    elif suffix in {".jsonl", ".ndjson"}:
        kind = "jsonl"
    else:
        raise ImportFileError(
            f"cannot import a '{suffix or 'no extension'}' file: use .csv (with a header row) "
            "or .jsonl/.ndjson (one JSON object per line)"
        )
    lines = _count_lines(path)
    if kind == "csv":
        header = _csv_header(path)
        missing = [name for name in required if name not in header]
        if missing:
            raise ImportFileError(
                f"the first line of {path.name} must be a header row with the column(s) "
                f"{', '.join(missing)}; see docs/import.md"
            )
        unknown = sorted(set(header) - columns)
        if unknown:
            raise ImportFileError(
                f"unknown column(s) {', '.join(unknown)} in the header; see docs/import.md"
            )
        lines -= 1
    return Source(path, kind, lines)


def _delimiter(first_line: str) -> str:
    """Comma, semicolon (Excel in a Russian locale) or tab: whichever the header uses most."""
    return max((",", ";", "\t"), key=first_line.count)


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        first = handle.readline()
    row = next(csv.reader([first], delimiter=_delimiter(first)), [])
    return [name.strip().lower() for name in row]


def _csv_records(path: Path) -> Iterator[Record]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        first = handle.readline()
        handle.seek(0)
        reader = csv.reader(handle, delimiter=_delimiter(first))
        header = [name.strip().lower() for name in next(reader)]
        last = reader.line_num
        for row in reader:
            line, last = last + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                yield line, None, None
                continue
            if len(row) > len(header):
                yield line, None, f"{len(row)} values but {len(header)} columns in the header"
                continue
            values = {name: (cell.strip() or None) for name, cell in zip(header, row, strict=False)}
            yield line, values, None


def _jsonl_records(path: Path) -> Iterator[Record]:
    with path.open(encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                yield line, None, None
                continue
            try:
                values = json.loads(text)
            except json.JSONDecodeError:
                yield line, None, "not valid JSON"
                continue
            if not isinstance(values, dict):
                yield line, None, "each line must be one JSON object"
                continue
            yield line, {str(key).strip().lower(): value for key, value in values.items()}, None


class Row:
    """Typed access to one record's values; errors name the column, never the value."""

    def __init__(self, values: dict[str, Any], columns: frozenset[str]) -> None:
        unknown = sorted(set(values) - columns)
        if unknown:
            raise RowError(f"unknown field(s) {', '.join(unknown)}")
        self.values = values

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if isinstance(value, bool) or not isinstance(value, str | int | float | type(None)):
            raise RowError(f"{name} must be text")
        text = str(value).strip() if value is not None else ""
        if not text:
            if required:
                raise RowError(f"{name} is required")
            return None
        return text

    def required(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def flag(self, name: str, *, default: bool) -> bool:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in {"true", "1", "yes", "y", "t"}:
            return True
        if lowered in {"false", "0", "no", "n", "f"}:
            return False
        raise RowError(f"{name} must be true or false")

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise RowError(f"{name} is required")
            return None
        if isinstance(value, bool):
            raise RowError(f"{name} must be a whole number")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value.strip()):
            return int(value)
        raise RowError(f"{name} must be a whole number")

    def choice(self, name: str, enum: type[E], *, required: bool = False) -> E | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            return enum(value.upper())
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise RowError(f"{name} must be one of {allowed}") from None

    def day(self, name: str) -> date | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            if not _DATE.match(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise RowError(f"{name} must be a date as YYYY-MM-DD") from None

    def moment(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return as_utc(datetime.fromisoformat(value))
        except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00:00+05:00
            raise RowError(f"{name} must be an ISO 8601 date-time") from None

    def object_id(self, name: str, type_name: str) -> uuid.UUID | None:
        """A UUID, or the API's global id of a `type_name` (as copied from GraphQL)."""
        value = self.text(name)
        if value is None:
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
        try:
            decoded = base64.urlsafe_b64decode(value.encode()).decode()
            found, _, raw = decoded.partition(":")
            if found == type_name:
                return uuid.UUID(raw)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            pass
        raise RowError(f"{name} must be a {type_name} id")


def describe(error: DomainError) -> str:
    """A domain error as a reason line; field paths use the file's column spelling."""
    where = ".".join(_CAMEL.sub("_", part).lower() for part in error.field or [])
    return f"{error.code}{f' ({where})' if where else ''}: {error.message}"


Handler = Callable[[AsyncSession, FieldCipher, Row, Settings, list[str]], Awaitable[bool]]


async def _import(
    settings: Settings,
    provider: KeyProvider,
    path: Path,
    console: Console,
    *,
    columns: frozenset[str],
    required: tuple[str, ...],
    handler: Handler,
    what: str,
) -> ImportReport:
    source = open_source(path, columns, required)
    report = ImportReport()
    engine = create_engine(settings.database_url)
    progress = Progress(
        TextColumn(f"importing {what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=source.lines < PROGRESS_FROM_LINES,
    )
    try:
        sessions = session_factory(engine)
        with progress:
            task = progress.add_task(what, total=source.lines)
            records = source.records()
            while chunk := list(islice(records, ROWS_PER_TRANSACTION)):
                await _import_chunk(sessions, provider, settings, chunk, columns, handler, report)
                progress.advance(task, len(chunk))
    finally:
        await engine.dispose()
    return report


async def _import_chunk(
    sessions: async_sessionmaker[AsyncSession],
    provider: KeyProvider,
    settings: Settings,
    chunk: list[Record],
    columns: frozenset[str],
    handler: Handler,
    report: ImportReport,
) -> None:
    async with transaction(sessions) as session:
        for record in chunk:
            await run_row(session, provider, settings, record, columns, handler, report)


async def run_row(
    session: AsyncSession,
    provider: KeyProvider,
    settings: Settings,
    record: Record,
    columns: frozenset[str],
    handler: Handler,
    report: ImportReport,
) -> None:
    """One record through its service under a savepoint: a bad row writes nothing and is
    reported by line; the rows around it are unaffected."""
    line, values, unreadable = record
    if values is None:
        if unreadable is None:
            report.empty += 1
        else:
            report.failed.append((line, unreadable))
        return
    notes: list[str] = []
    try:
        async with session.begin_nested():
            created = await handler(
                session, FieldCipher(session, provider), Row(values, columns), settings, notes
            )
    except RowError as error:
        report.failed.append((line, str(error)))
    except DomainError as error:
        report.failed.append((line, describe(error)))
    except IntegrityError:  # e.g. another import registered the same identifier
        report.failed.append((line, "the database rejected this row (a conflict)"))
    else:
        if created:
            report.imported += 1
        else:
            report.skipped += 1
        report.partial.extend((line, note) for note in notes)
    finally:
        session.expunge_all()


async def _already_held(
    session: AsyncSession,
    cipher: FieldCipher,
    identifiers: Sequence[tuple[IdentityKind, str, str | None]],
) -> bool:
    """Whether one customer already holds all these identifiers (a re-imported row)."""
    holders: set[uuid.UUID] | None = None
    for kind, value, system in identifiers:
        column = kind.value.lower()  # the file's column for a phone or e-mail
        normalised = normalise(kind, value, source_system=system, field=(column,))
        index = cipher.blind_index(kind=kind, value=normalised)
        rows = await session.execute(
            select(col(Identity.customer_id)).where(
                col(Identity.kind) == kind, col(Identity.value_index) == index
            )
        )
        found = set(rows.scalars().all())
        holders = found if holders is None else holders & found
        if not holders:
            return False
    return bool(holders)


def profile_fields(row: Row, mode: OnBadField, notes: list[str]) -> dict[str, Any]:
    """The row's optional profile fields, each checked alone by the service's own rule
    (`clean_profile`); with skip-field an invalid one is left out and noted by column."""
    now = utcnow()
    found: dict[str, Any] = {}
    for name in ("first_name", "last_name", "birth_date", "address"):
        try:
            value: Any = row.day(name) if name == "birth_date" else row.text(name)
            clean_profile(**{name: value}, now=now)
        except (RowError, DomainError) as error:
            if mode is OnBadField.SKIP_ROW:
                raise
            reason = str(error) if isinstance(error, RowError) else describe(error)
            notes.append(f"{name} ({reason})")
            value = None
        found[name] = value
    return found


async def customer_row(
    session: AsyncSession,
    cipher: FieldCipher,
    row: Row,
    _: Settings,
    notes: list[str],
    *,
    mode: OnBadField = OnBadField.SKIP_FIELD,
) -> bool:
    channel = row.choice("channel", Channel, required=True)
    assert channel is not None
    phone, email = row.text("phone"), row.text("email")
    card, external = row.text("loyalty_card"), row.text("external_id")
    system = row.text("external_system")
    phone_verified = row.flag("phone_verified", default=True)
    email_verified = row.flag("email_verified", default=True)
    registered_at = row.moment("registered_at")
    profile = profile_fields(row, mode, notes)
    verified = (phone and phone_verified) or (email and email_verified) or card or external
    if not verified:
        # Nothing verified: the service would create a new customer every time; a customer
        # that already holds all these identifiers means this row was imported before.
        wanted = [(IdentityKind.PHONE, phone, None), (IdentityKind.EMAIL, email, None)]
        present = [(kind, value, source) for kind, value, source in wanted if value]
        if present and await _already_held(session, cipher, present):
            return False
    # Matched against its block on arrival, as a registration is (graph.resolution).
    result, _possible = await register_and_match(
        session,
        cipher,
        channel=channel,
        phone=phone,
        email=email,
        **profile,
        external_id=external,
        external_system=system,
        loyalty_card=card,
        phone_verified=phone_verified,
        email_verified=email_verified,
        registered_at=registered_at,
    )
    return result.created


def row_lines(row: Row, *, priced: bool) -> list[LineInput]:
    if row.has("lines"):
        if row.has("sku"):
            raise RowError("give either lines or sku, not both")
        raw = row.values["lines"]
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raise RowError("lines must be a JSON list of objects") from None
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            raise RowError("lines must be a JSON list of objects")
        parsed: list[LineInput] = []
        for position, item in enumerate(raw):
            try:
                parsed.append(_line(Row(item, frozenset(LINE_FIELDS)), priced=priced))
            except RowError as error:
                raise RowError(f"lines[{position}]: {error}") from None
        return parsed
    return [_line(row, priced=priced)]


LINE_FIELDS = ("sku", "category", "quantity", "unit_price_minor", "total_minor")


def _line(row: Row, *, priced: bool) -> LineInput:
    quantity = row.integer("quantity")
    unit, total = row.integer("unit_price_minor"), row.integer("total_minor")
    if priced and unit is None and total is None:
        raise RowError("unit_price_minor or total_minor is required")
    return LineInput(
        sku=row.required("sku"),
        quantity=1 if quantity is None else quantity,
        category=row.text("category") or "",
        unit_price_minor=unit if priced else None,
        total_minor=total if priced else None,
    )


def row_customer_ref(row: Row) -> CustomerRef:
    customer_id = row.object_id("customer_id", "Customer")
    kind = row.choice("identifier_kind", IdentityKind)
    value = row.text("identifier_value")
    if customer_id is not None:
        return CustomerRef(customer_id=customer_id)
    if kind is None or value is None:
        raise RowError("give customer_id, or identifier_kind and identifier_value")
    return CustomerRef(kind=kind, value=value, source_system=row.text("identifier_source_system"))


async def _purchase_of(session: AsyncSession, cipher: FieldCipher, row: Row) -> uuid.UUID:
    purchase_id = row.object_id("purchase_id", "Purchase")
    if purchase_id is not None:
        return purchase_id
    key = row.text("purchase_idempotency_key")
    if key is None:
        raise RowError("a return needs purchase_id or purchase_idempotency_key")
    found = (
        await session.execute(
            select(col(Event.id)).where(
                col(Event.idempotency_key) == stored_idempotency_key(cipher, key),
                col(Event.type) == EventType.PURCHASE,
            )
        )
    ).scalar_one_or_none()
    if found is None:
        raise graph_error(
            GraphErrorCode.PURCHASE_NOT_FOUND,
            "no purchase with this idempotency key",
            "purchaseIdempotencyKey",
        )
    return found


async def event_row(
    session: AsyncSession, cipher: FieldCipher, row: Row, settings: Settings, _: list[str]
) -> bool:
    kind = row.choice("type", EventType, required=True)
    channel = row.choice("channel", Channel, required=True)
    assert kind is not None and channel is not None
    key = row.required("idempotency_key")
    occurred_at = row.moment("occurred_at")
    store_code = row.text("store_code")
    if kind is EventType.PURCHASE:
        recorded = await record_purchase(
            session,
            cipher,
            customer=row_customer_ref(row),
            channel=channel,
            lines=row_lines(row, priced=True),
            idempotency_key=key,
            currency=row.text("currency") or settings.currency,
            occurred_at=occurred_at,
            store_code=store_code,
            external_ref=row.text("external_ref"),
        )
    elif kind is EventType.RETURN:
        recorded = await record_return(
            session,
            cipher,
            purchase_id=await _purchase_of(session, cipher, row),
            channel=channel,
            lines=row_lines(row, priced=False),
            idempotency_key=key,
            occurred_at=occurred_at,
            store_code=store_code,
        )
    else:
        recorded = await record_event(
            session,
            cipher,
            customer=row_customer_ref(row),
            type=kind,
            channel=channel,
            idempotency_key=key,
            occurred_at=occurred_at,
            store_code=store_code,
            topic=row.text("topic"),
            satisfaction=row.integer("satisfaction"),
            campaign=row.text("campaign"),
            campaign_channel=row.choice("campaign_channel", Channel),
            action=row.choice("action", CampaignAction),
        )
    return not recorded.replayed


async def import_customers(
    settings: Settings,
    provider: KeyProvider,
    path: Path,
    *,
    console: Console,
    on_bad_field: OnBadField = OnBadField.SKIP_FIELD,
) -> ImportReport:
    """Register every good row as `customerRegister` would; rows that match an existing
    customer (a verified identifier, or all of its identifiers) count as skipped."""
    return await _import(
        settings,
        provider,
        path,
        console,
        columns=CUSTOMER_COLUMNS,
        required=("channel",),
        handler=partial(customer_row, mode=on_bad_field),
        what="customers",
    )


async def import_events(
    settings: Settings, provider: KeyProvider, path: Path, *, console: Console
) -> ImportReport:
    """Record every good row as the event mutations would; a row whose idempotency key was
    recorded before with the same content counts as skipped."""
    return await _import(
        settings,
        provider,
        path,
        console,
        columns=EVENT_COLUMNS,
        required=("type", "idempotency_key"),
        handler=event_row,
        what="events",
    )
