"""Customers in set-based batches (see graph.bulk): the same checks as `customerRegister`.

A row whose identifiers belong to nobody yet becomes a new customer written with the batch; a
row that shares an identifier with an existing customer, or with an earlier row of the batch
that needs the service, goes through `register_customer` itself (it attaches, fills empty
profile fields, or conflicts), in file order after the batch's new customers are written.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.bulk import write_rows
from core.clock import utcnow
from core.errors import DomainError
from core.settings import Settings
from graph import hooks
from graph.bulk import BATCH_ROWS, run_bulk
from graph.customers import (
    IN_CHUNK,
    PROFILE_FIELDS,
    prepare_registration,
    stored_source_system,
    verified_holders,
)
from graph.enums import Channel, CustomerStatus, IdentityKind
from graph.importer import (
    CUSTOMER_COLUMNS,
    ImportReport,
    OnBadField,
    Record,
    Row,
    RowError,
    customer_row,
    describe,
    profile_fields,
    run_row,
)
from graph.models import Customer, Identity
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider
from privacy.models import DataKey

Key = tuple[str, str]  # (identity kind, blind index)


@dataclass
class _Prepared:
    record: Record
    channel: Channel
    names: dict[str, str | None]
    since: datetime
    # (kind, normalised value, source system, verified, blind index)
    identifiers: list[tuple[IdentityKind, str, str | None, bool, str]]
    notes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> set[Key]:
        return {(kind.value, index) for kind, _, _, _, index in self.identifiers}

    @property
    def verified_keys(self) -> set[Key]:
        return {(kind.value, index) for kind, _, _, ok, index in self.identifiers if ok}


def _prepare(cipher: FieldCipher, record: Record, mode: OnBadField, now: datetime) -> _Prepared:
    """The row through `prepare_registration`, as `customer_row` passes it to the service."""
    _, values, _ = record
    assert values is not None
    row = Row(values, CUSTOMER_COLUMNS)
    channel = row.choice("channel", Channel, required=True)
    assert channel is not None
    notes: list[str] = []
    registered_at = row.moment("registered_at")
    profile = profile_fields(row, mode, notes)
    registration = prepare_registration(
        channel=channel,
        phone=row.text("phone"),
        email=row.text("email"),
        **profile,
        external_id=row.text("external_id"),
        external_system=row.text("external_system"),
        loyalty_card=row.text("loyalty_card"),
        phone_verified=row.flag("phone_verified", default=True),
        email_verified=row.flag("email_verified", default=True),
        registered_at=registered_at,
        now=now,
    )
    identifiers = [
        (
            item.kind,
            value,
            item.source_system,
            item.verified,
            cipher.blind_index(kind=item.kind, value=value),
        )
        for item, value in registration.identifiers
    ]
    return _Prepared(record, channel, registration.names, registration.since, identifiers, notes)


async def _holders_of(session: AsyncSession, keys: set[Key]) -> dict[Key, set[uuid.UUID]]:
    """Every customer holding each (kind, index), verified or not: one query per chunk."""
    found: dict[Key, set[uuid.UUID]] = defaultdict(set)
    values = sorted({index for _, index in keys})
    for start in range(0, len(values), IN_CHUNK):
        rows = await session.execute(
            select(col(Identity.kind), col(Identity.value_index), col(Identity.customer_id)).where(
                col(Identity.value_index).in_(values[start : start + IN_CHUNK])
            )
        )
        for kind, index, customer_id in rows.all():
            if (kind, index) in keys:
                found[(kind, index)].add(customer_id)
    return found


def _columns(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    return {column.name: values.get(column.name) for column in table.columns}


async def _write_new(
    session: AsyncSession, cipher: FieldCipher, rows: list[_Prepared], now: datetime
) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = []
    customers: list[dict[str, Any]] = []
    identities: list[dict[str, Any]] = []
    for item in rows:
        customer_id = uuid.uuid4()
        keys.append(cipher.new_subject(customer_id))
        values: dict[str, Any] = {
            "id": customer_id,
            "status": CustomerStatus.ACTIVE.value,
            "survivor_id": None,
            "registered_channel": item.channel.value,
            "created_at": now,
            "registered_at": item.since,
            "updated_at": now,
        }
        for name, column in PROFILE_FIELDS.items():
            values[column] = await cipher.encrypt(
                customer_id,
                table="customer",
                column=column,
                row_id=customer_id,
                value=item.names[name],
            )
        customers.append(values)
        for kind, value, system, verified, index in item.identifiers:
            identity_id = uuid.uuid4()
            identities.append(
                {
                    "id": identity_id,
                    "customer_id": customer_id,
                    "kind": kind.value,
                    "source_system": stored_source_system(system),
                    "value_index": index,
                    "value_ct": await cipher.encrypt(
                        customer_id,
                        table="identity",
                        column="value_ct",
                        row_id=identity_id,
                        value=value,
                    ),
                    "verified": verified,
                    "channel": item.channel.value,
                    "first_seen": now,
                    "last_seen": now,
                }
            )
    await write_rows(session, DataKey.__table__, keys)  # type: ignore[attr-defined]
    await write_rows(session, Customer.__table__, customers)  # type: ignore[attr-defined]
    await write_rows(session, Identity.__table__, identities)  # type: ignore[attr-defined]
    return customers


async def load_customers(
    session: AsyncSession,
    records: list[Record],
    report: ImportReport,
    *,
    provider: KeyProvider,
    settings: Settings,
    mode: OnBadField,
) -> None:
    """One batch of customer records, in the caller's transaction."""
    now = utcnow()
    cipher = FieldCipher(session, provider)
    prepared: list[_Prepared] = []
    for record in records:
        line, values, unreadable = record
        if values is None:
            if unreadable is None:
                report.empty += 1
            else:
                report.failed.append((line, unreadable))
            continue
        try:
            prepared.append(_prepare(cipher, record, mode, now))
        except RowError as error:
            report.failed.append((line, str(error)))
        except DomainError as error:
            report.failed.append((line, describe(error)))
    every = set().union(*(item.keys for item in prepared)) if prepared else set()
    held = await _holders_of(session, every)
    verified = await verified_holders(
        session, [key for item in prepared for key in item.verified_keys]
    )
    fresh: list[_Prepared] = []
    slow: list[_Prepared] = []
    taken: dict[Key, int] = {}  # keys of earlier rows of this batch
    for item in prepared:
        if item.keys & taken.keys() or any(key in verified for key in item.verified_keys):
            slow.append(item)
        elif (
            not item.verified_keys
            and all(held.get(key) for key in item.keys)
            and set.intersection(*(held[key] for key in item.keys))
        ):
            report.skipped += 1  # nothing verified and all held by one customer: seen before
            continue
        else:
            fresh.append(item)
        for key in item.keys:
            taken.setdefault(key, item.record[0])
    created = await _write_new(session, cipher, fresh, now)  # rows, not ORM objects
    report.imported += len(fresh)
    for item in fresh:
        report.partial.extend((item.record[0], note) for note in item.notes)
    if created and await hooks.anyone_listening(session, hooks.CustomerRegistered):
        for values in created:
            await hooks.publish(session, hooks.CustomerRegistered(Customer(**values)))
    handler = partial(customer_row, mode=mode)
    for item in slow:
        await run_row(session, provider, settings, item.record, CUSTOMER_COLUMNS, handler, report)


def customers_loader(mode: OnBadField) -> Any:
    def make(provider: KeyProvider, settings: Settings) -> Any:
        return partial(load_customers, provider=provider, settings=settings, mode=mode)

    return make


async def bulk_import_customers(
    settings: Settings,
    provider: KeyProvider,
    path: Path,
    *,
    console: Console,
    on_bad_field: OnBadField = OnBadField.SKIP_FIELD,
    resume: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> ImportReport:
    """`import customers FILE`: the file in set-based batches (see graph.bulk)."""
    return await run_bulk(
        settings,
        provider,
        path,
        console,
        what="customers",
        columns=CUSTOMER_COLUMNS,
        required=("channel",),
        loader=customers_loader(on_bad_field),
        resume=resume,
        batch_rows=batch_rows,
    )
