"""Events in set-based batches (see graph.bulk): the same checks as the event mutations.

Purchases, visits, contacts and campaign responses of a batch are checked by the services' own
pure functions (`purchase_request`, `check_purchase`, `event_request`, `check_event`), their
idempotency keys, customers and stores looked up for the whole batch at once, and written with
one `COPY`/`executemany` per table. A return, a repeated key within the batch, or a row whose
customer or store the batch lookup cannot settle goes through its service in file order, so its
outcome and error are exactly the live path's.

With a loyalty program active, points depend on the order of purchases (caps, tiers, first
purchase), so rows then go through the services one by one (the live engine, in the batch's
transaction): set-based earning is not built yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.bulk import write_rows
from core.clock import utcnow
from core.errors import DomainError
from core.settings import Settings
from graph import hooks
from graph.bulk import BATCH_ROWS, run_bulk
from graph.customers import verified_holders
from graph.enums import CampaignAction, Channel, CustomerStatus, EventType, ReferralStatus
from graph.events import (
    CustomerRef,
    check_event,
    check_purchase,
    convert_referrals,
    event_request,
    purchase_request,
    purchase_values,
    ref_fingerprint,
)
from graph.importer import (
    EVENT_COLUMNS,
    ImportReport,
    Record,
    Row,
    RowError,
    describe,
    event_row,
    row_customer_ref,
    row_lines,
    run_row,
)
from graph.models import Customer, Event, EventLine, Referral, Store
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider


@dataclass
class _Draft:
    record: Record
    ref: CustomerRef
    store_code: str | None
    key: str
    digest: str
    fingerprint: str  # ref_fingerprint: the customer id, or "KIND:blind index"
    event: dict[str, Any] | None  # None when a check failed after the key: see `error`
    lines: list[dict[str, Any]]
    error: DomainError | None = None


def _type_of(record: Record) -> EventType | None:
    _, values, _ = record
    if values is None:
        return None
    try:
        return Row(values, EVENT_COLUMNS).choice("type", EventType)
    except RowError:
        return None


def _draft(
    cipher: FieldCipher,
    record: Record,
    settings: Settings,
    now: datetime,
    fingerprints: dict[CustomerRef, str],
) -> _Draft:
    """The row checked in the order the service checks it, as an unsaved event."""
    _, values, _ = record
    assert values is not None
    row = Row(values, EVENT_COLUMNS)
    kind = row.choice("type", EventType, required=True)
    channel = row.choice("channel", Channel, required=True)
    assert kind is not None and channel is not None
    idempotency_key = row.required("idempotency_key")
    occurred_at = row.moment("occurred_at")
    store_code = row.text("store_code")
    ref = row_customer_ref(row)
    fingerprint = fingerprints.get(ref) or ref_fingerprint(cipher, ref)
    fingerprints[ref] = fingerprint  # one customer's many receipts: normalised once a batch
    if kind is EventType.PURCHASE:
        lines = row_lines(row, priced=True)
        currency = row.text("currency") or settings.currency
        external_ref = row.text("external_ref")
        key, digest = purchase_request(
            cipher,
            customer=ref,
            channel=channel,
            lines=lines,
            idempotency_key=idempotency_key,
            currency=currency,
            occurred_at=occurred_at,
            store_code=store_code,
            external_ref=external_ref,
            fingerprint=fingerprint,
        )
        try:
            priced, when, code = check_purchase(
                lines, occurred_at=occurred_at, currency=currency, now=now
            )
        except DomainError as error:  # after the replay check, as in the service
            return _Draft(record, ref, store_code, key, digest, fingerprint, None, [], error)
        event, rows = purchase_values(
            buyer_id=uuid.UUID(int=0),  # set once the batch has resolved its customers
            channel=channel,
            store_id=None,
            when=when,
            now=now,
            key=key,
            digest=digest,
            external_ref=external_ref,
            currency=code,
            priced=priced,
        )
        return _Draft(record, ref, store_code, key, digest, fingerprint, event, rows)
    topic, satisfaction = row.text("topic"), row.integer("satisfaction")
    campaign, action = row.text("campaign"), row.choice("action", CampaignAction)
    campaign_channel = row.choice("campaign_channel", Channel)
    key, digest = event_request(
        cipher,
        customer=ref,
        type=kind,
        channel=channel,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        store_code=store_code,
        topic=topic,
        satisfaction=satisfaction,
        campaign=campaign,
        campaign_channel=campaign_channel,
        action=action,
        fingerprint=fingerprint,
    )
    try:
        when = check_event(
            type=kind,
            topic=topic,
            satisfaction=satisfaction,
            campaign=campaign,
            action=action,
            occurred_at=occurred_at,
            now=now,
        )
    except DomainError as error:  # after the replay check, as in the service
        return _Draft(record, ref, store_code, key, digest, fingerprint, None, [], error)
    event = {
        "id": uuid.uuid4(),
        "customer_id": None,
        "type": kind.value,
        "channel": channel.value,
        "store_id": None,
        "occurred_at": when,
        "recorded_at": now,
        "idempotency_key": key,
        "request_hash": digest,
        "external_ref": None,
        "currency": None,
        "amount_minor": None,
        "purchase_id": None,
        "topic": topic,
        "satisfaction": satisfaction,
        "campaign": campaign,
        "campaign_channel": campaign_channel.value if campaign_channel else None,
        "action": action.value if action else None,
    }
    return _Draft(record, ref, store_code, key, digest, fingerprint, event, [])


async def _owners(
    session: AsyncSession, cipher: FieldCipher, drafts: list[_Draft]
) -> dict[int, uuid.UUID]:
    """Line → the active owner its reference resolves to; unresolved lines are left out."""
    by_id = {draft.ref.customer_id for draft in drafts if draft.ref.customer_id is not None}
    owner_of: dict[uuid.UUID, uuid.UUID] = {}
    if by_id:
        rows = await session.execute(
            select(col(Customer.id), col(Customer.survivor_id)).where(
                col(Customer.id).in_(list(by_id))
            )
        )
        owner_of = {found: survivor or found for found, survivor in rows.all()}
    indexed: dict[int, tuple[str, str]] = {}
    for draft in drafts:
        if draft.ref.customer_id is None and ":" in draft.fingerprint:
            kind, _, index = draft.fingerprint.partition(":")
            indexed[draft.record[0]] = (kind, index)
    holders = await verified_holders(session, list(set(indexed.values())))
    wanted = set(owner_of.values()) | set(holders.values())
    active: set[uuid.UUID] = set()
    if wanted:
        rows = await session.execute(
            select(col(Customer.id)).where(
                col(Customer.id).in_(list(wanted)),
                col(Customer.status) == CustomerStatus.ACTIVE.value,
            )
        )
        active = set(rows.scalars().all())
    found: dict[int, uuid.UUID] = {}
    for draft in drafts:
        line = draft.record[0]
        owner = (
            owner_of.get(draft.ref.customer_id)
            if draft.ref.customer_id is not None
            else holders.get(indexed[line])
            if line in indexed
            else None
        )
        if owner is not None and owner in active:
            found[line] = owner
    return found


def _columns(model: Any, row: Any) -> dict[str, Any]:
    return {column.name: getattr(row, column.name) for column in model.__table__.columns}


async def _write(session: AsyncSession, drafts: list[_Draft]) -> None:
    """Write resolved drafts, then what a purchase does after its insert: the buyer's
    registration date and (with no loyalty listener) the referrals a first purchase converts."""
    events = [draft.event for draft in drafts if draft.event is not None]
    await write_rows(session, Event.__table__, events)  # type: ignore[attr-defined]
    await write_rows(
        session,
        EventLine.__table__,  # type: ignore[attr-defined]
        [line for draft in drafts for line in draft.lines],
    )
    earliest: dict[uuid.UUID, datetime] = {}
    for event in events:
        owner, when = event["customer_id"], event["occurred_at"]
        if owner not in earliest or when < earliest[owner]:
            earliest[owner] = when
    if earliest:
        table: Any = Customer.__table__  # type: ignore[attr-defined]
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("owner"), table.c.registered_at > bindparam("when"))
            .values(registered_at=bindparam("when")),
            [{"owner": owner, "when": when} for owner, when in earliest.items()],
        )
    purchases = [event for event in events if event["type"] == EventType.PURCHASE.value]
    if not purchases:
        return
    buyers = list({event["customer_id"] for event in purchases})
    owner = func.coalesce(col(Customer.survivor_id), col(Customer.id))
    referred = await session.execute(
        select(owner)
        .join(Referral, col(Referral.referee_id) == col(Customer.id))
        .where(
            col(Referral.status) == ReferralStatus.REGISTERED.value,
            owner.in_(buyers),
        )
        .distinct()
    )
    waiting = set(referred.scalars().all())
    if not waiting:
        return  # no open referral among this batch's buyers: nothing converts
    new_ids = [event["id"] for event in purchases]
    earlier = await session.execute(
        select(owner)
        .join(Event, col(Event.customer_id) == col(Customer.id))
        .where(
            owner.in_(list(waiting)),
            col(Event.type) == EventType.PURCHASE.value,
            col(Event.id).not_in(new_ids),
        )
        .distinct()
    )
    bought_before = set(earlier.scalars().all())
    for event in purchases:  # file order: a buyer's first purchase converts
        buyer = event["customer_id"]
        if buyer in waiting and buyer not in bought_before:
            waiting.discard(buyer)
            await convert_referrals(session, buyer, Event(**event))


async def _flush(
    session: AsyncSession,
    cipher: FieldCipher,
    provider: KeyProvider,
    settings: Settings,
    records: list[Record],
    report: ImportReport,
    now: datetime,
) -> None:
    drafts: list[_Draft] = []
    fingerprints: dict[CustomerRef, str] = {}
    for record in records:
        line = record[0]
        try:
            drafts.append(_draft(cipher, record, settings, now, fingerprints))
        except RowError as error:
            report.failed.append((line, str(error)))
        except DomainError as error:
            report.failed.append((line, describe(error)))
    # Replays: the same key and request is skipped, another request under it is an error;
    # the service says which, so those rows go to it.
    existing: set[str | None] = set()
    keys = [draft.key for draft in drafts]
    for start in range(0, len(keys), 1000):
        rows = await session.execute(
            select(col(Event.idempotency_key)).where(
                col(Event.idempotency_key).in_(keys[start : start + 1000])
            )
        )
        existing.update(rows.scalars().all())
    codes = {draft.store_code for draft in drafts if draft.store_code}
    stores: dict[str, uuid.UUID] = {}
    if codes:
        found_stores = await session.execute(
            select(col(Store.code), col(Store.id)).where(col(Store.code).in_(list(codes)))
        )
        stores = {str(code): found for code, found in found_stores.all()}
    owners = await _owners(session, cipher, drafts)
    ready: list[_Draft] = []
    slow: list[_Draft] = []
    for draft in drafts:
        line = draft.record[0]
        known_store = draft.store_code is None or draft.store_code in stores
        if draft.key in existing:
            slow.append(draft)  # a replay, or a key reused for another request
            continue
        if draft.error is not None:
            report.failed.append((line, describe(draft.error)))
            continue
        if line not in owners or not known_store:
            slow.append(draft)
            continue
        assert draft.event is not None
        draft.event["customer_id"] = owners[line]
        draft.event["store_id"] = stores.get(draft.store_code) if draft.store_code else None
        ready.append(draft)
    await _write(session, ready)
    report.imported += len(ready)
    handler = event_row
    for draft in slow:  # after the batch's own rows, as the file had them before these
        await run_row(session, provider, settings, draft.record, EVENT_COLUMNS, handler, report)


async def load_events(
    session: AsyncSession,
    records: list[Record],
    report: ImportReport,
    *,
    provider: KeyProvider,
    settings: Settings,
) -> None:
    """One batch of event records, in the caller's transaction."""
    if await hooks.anyone_listening(
        session, hooks.PurchaseRecorded, hooks.ReturnRecorded, hooks.ReferralConverted
    ):
        for record in records:  # the live engine, row by row (see the module docstring)
            await run_row(session, provider, settings, record, EVENT_COLUMNS, event_row, report)
        return
    now = utcnow()
    cipher = FieldCipher(session, provider)
    pending: list[Record] = []
    keys: set[str] = set()

    async def flush() -> None:
        if pending:
            await _flush(session, cipher, provider, settings, list(pending), report, now)
            pending.clear()
            keys.clear()

    for record in records:
        line, values, unreadable = record
        if values is None:
            if unreadable is None:
                report.empty += 1
            else:
                report.failed.append((line, unreadable))
            continue
        if _type_of(record) is EventType.RETURN:
            await flush()
            await run_row(session, provider, settings, record, EVENT_COLUMNS, event_row, report)
            continue
        key = str(values.get("idempotency_key") or "").strip()
        if key in keys:
            await flush()  # a repeated key: the earlier row is written first, as in the file
        keys.add(key)
        pending.append(record)
    await flush()


def events_loader() -> Any:
    def make(provider: KeyProvider, settings: Settings) -> Any:
        return partial(load_events, provider=provider, settings=settings)

    return make


async def bulk_import_events(
    settings: Settings,
    provider: KeyProvider,
    path: Path,
    *,
    console: Console,
    resume: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> ImportReport:
    """`import events FILE`: the file in set-based batches (see graph.bulk)."""
    return await run_bulk(
        settings,
        provider,
        path,
        console,
        what="events",
        columns=EVENT_COLUMNS,
        required=("type", "idempotency_key"),
        loader=events_loader(),
        resume=resume,
        batch_rows=batch_rows,
    )
