"""Recording business events: purchases, returns, visits, contacts, campaign responses.

Events are append-only. Every recording function takes an idempotency key: a retry with the
same key and the same request returns the first event; the same key with another request is
an error. The key is unique in the database, so two concurrent retries cannot both insert.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from graph import hooks
from graph.customers import find_by_identifier, get_active_customer, note_activity
from graph.enums import CampaignAction, Channel, EventType, IdentityKind, ReferralStatus
from graph.errors import GraphErrorCode, graph_error
from graph.identity import normalise
from graph.lines import (
    LineInput,
    PricedLine,
    check_lines,
    refund_share,
)
from graph.models import Customer, Event, EventLine, Referral, Store
from privacy.fields import FieldCipher

CLOCK_SKEW = timedelta(minutes=5)
# Topics are codes, not free text: a caller's words could carry personal data into plaintext.
TOPIC_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class CustomerRef:
    """Who an event is for: a customer id, or an identifier that resolves to one."""

    customer_id: uuid.UUID | None = None
    kind: IdentityKind | None = None
    value: str | None = None
    source_system: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    event: Event
    replayed: bool


def request_hash(cipher: FieldCipher, payload: dict[str, object]) -> str:
    """A keyed fingerprint of a request, to tell a retry from a different request under the
    same key. Keyed (HMAC), so that nothing in it can be recovered by guessing a phone."""
    canonical = json.dumps(payload, sort_keys=True, default=str)
    return cipher.blind_index(kind="REQUEST", value=canonical)


def ref_fingerprint(cipher: FieldCipher, ref: CustomerRef) -> str:
    """The customer a request is for, independent of how the identifier was spelled."""
    if ref.customer_id is not None:
        return str(ref.customer_id)
    if ref.kind is None or ref.value is None:
        return ""
    normalised = normalise(
        ref.kind, ref.value, source_system=ref.source_system, field=("identifier", "value")
    )
    return f"{ref.kind}:{cipher.blind_index(kind=ref.kind, value=normalised)}"


async def resolve_ref(session: AsyncSession, cipher: FieldCipher, ref: CustomerRef) -> Customer:
    if ref.customer_id is not None:
        return await get_active_customer(session, ref.customer_id)
    if ref.kind is None or ref.value is None:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, "give a customerId or an identifier", "customerId"
        )
    customer = await find_by_identifier(
        session,
        cipher,
        kind=ref.kind,
        value=ref.value,
        source_system=ref.source_system,
        field=("identifier", "value"),
        verified_only=True,
    )
    if customer is None:
        raise graph_error(
            GraphErrorCode.CUSTOMER_NOT_FOUND,
            "no customer holds this identifier as verified",
            "identifier",
        )
    return await get_active_customer(session, customer.id, "identifier")


async def _replay(session: AsyncSession, key: str, digest: str) -> Event | None:
    existing = (
        await session.execute(select(Event).where(col(Event.idempotency_key) == key))
    ).scalar_one_or_none()
    if existing is None:
        return None
    if existing.request_hash != digest:
        raise graph_error(
            GraphErrorCode.IDEMPOTENCY_KEY_REUSED,
            "this idempotency key was used for a different request",
            "idempotencyKey",
        )
    return existing


async def _insert(
    session: AsyncSession, event: Event, lines: list[EventLine], key: str, digest: str
) -> Recorded:
    """Insert under a savepoint; a concurrent insert with the same key becomes a replay."""
    try:
        async with session.begin_nested():
            session.add(event)
            await session.flush()
            for line in lines:
                line.event_id = event.id
            session.add_all(lines)
            await session.flush()
    except IntegrityError:
        replay = await _replay(session, key, digest)
        if replay is None:
            raise
        return Recorded(replay, replayed=True)
    return Recorded(event, replayed=False)


def stored_idempotency_key(cipher: FieldCipher, key: str) -> str:
    """The stored form of a client's idempotency key: a keyed HMAC, so a key that carries
    personal data (a receipt with a phone in it) never lands in the database, not even as a
    hash that could be reversed by trying every phone number."""
    key = key.strip()
    if not 8 <= len(key) <= 200:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT,
            "an idempotency key has 8-200 characters",
            "idempotencyKey",
        )
    return cipher.blind_index(kind="IDEMPOTENCY_KEY", value=key)


def _check_time(occurred_at: datetime | None, now: datetime) -> datetime:
    when = as_utc(occurred_at) if occurred_at else now
    if when > now + CLOCK_SKEW:
        raise graph_error(GraphErrorCode.INVALID_INPUT, "the event is in the future", "occurredAt")
    return when


def _check_currency(currency: str) -> str:
    code = currency.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise graph_error(GraphErrorCode.INVALID_INPUT, "currency is an ISO 4217 code", "currency")
    return code


async def _store_id(session: AsyncSession, code: str | None) -> uuid.UUID | None:
    if code is None:
        return None
    store = (
        await session.execute(select(col(Store.id)).where(col(Store.code) == code))
    ).scalar_one_or_none()
    if store is None:
        raise graph_error(GraphErrorCode.STORE_NOT_FOUND, "no store with this code", "storeCode")
    return store


async def _first_purchase(session: AsyncSession, customer: Customer, event: Event) -> bool:
    members = select(col(Customer.id)).where(
        or_(col(Customer.id) == customer.id, col(Customer.survivor_id) == customer.id)
    )
    earlier = (
        await session.execute(
            select(col(Event.id))
            .where(
                col(Event.customer_id).in_(members),
                col(Event.type) == EventType.PURCHASE,
                col(Event.id) != event.id,
            )
            .limit(1)
        )
    ).scalar_one_or_none()
    return earlier is None


async def _open_referrals(session: AsyncSession, customer_id: uuid.UUID) -> list[Referral]:
    """The referrals that brought this customer (or a customer merged into it), unconverted."""
    members = select(col(Customer.id)).where(
        or_(col(Customer.id) == customer_id, col(Customer.survivor_id) == customer_id)
    )
    rows = await session.execute(
        select(Referral)
        .where(
            col(Referral.referee_id).in_(members),
            col(Referral.status) == ReferralStatus.REGISTERED,
        )
        .order_by(col(Referral.registered_at))
        .with_for_update()
    )
    return list(rows.scalars().all())


async def record_purchase(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer: CustomerRef,
    channel: Channel,
    lines: list[LineInput],
    idempotency_key: str,
    currency: str,
    occurred_at: datetime | None = None,
    store_code: str | None = None,
    external_ref: str | None = None,
    now: datetime | None = None,
) -> Recorded:
    now = now or utcnow()
    key, digest = purchase_request(
        cipher,
        customer=customer,
        channel=channel,
        lines=lines,
        idempotency_key=idempotency_key,
        currency=currency,
        occurred_at=occurred_at,
        store_code=store_code,
        external_ref=external_ref,
    )
    replay = await _replay(session, key, digest)
    if replay is not None:
        return Recorded(replay, replayed=True)
    priced, when, code = check_purchase(lines, occurred_at=occurred_at, currency=currency, now=now)
    buyer = await resolve_ref(session, cipher, customer)
    values, line_values = purchase_values(
        buyer_id=buyer.id,
        channel=channel,
        store_id=await _store_id(session, store_code),
        when=when,
        now=now,
        key=key,
        digest=digest,
        external_ref=external_ref,
        currency=code,
        priced=priced,
    )
    event = Event(**values)
    rows = [EventLine(**line) for line in line_values]
    recorded = await _insert(session, event, rows, key, digest)
    if recorded.replayed:
        return recorded
    note_activity(buyer, when)
    first = await _first_purchase(session, buyer, event)
    await hooks.publish(session, hooks.PurchaseRecorded(cipher, event, buyer, first))
    if first:
        await convert_referrals(session, buyer.id, event)
    return recorded


async def convert_referrals(session: AsyncSession, buyer_id: uuid.UUID, event: Event) -> None:
    """The referee's first purchase converts the referral that brought them."""
    for referral in await _open_referrals(session, buyer_id):
        referral.status = ReferralStatus.CONVERTED
        referral.converted_at = event.occurred_at
        await session.flush()
        await hooks.publish(session, hooks.ReferralConverted(referral, event))


def purchase_request(
    cipher: FieldCipher,
    *,
    customer: CustomerRef,
    channel: Channel,
    lines: list[LineInput],
    idempotency_key: str,
    currency: str,
    occurred_at: datetime | None,
    store_code: str | None,
    external_ref: str | None,
    fingerprint: str | None = None,
) -> tuple[str, str]:
    """The stored idempotency key and request hash of a purchase (live and bulk paths);
    `fingerprint` is `ref_fingerprint(cipher, customer)` when the caller has it already."""
    key = stored_idempotency_key(cipher, idempotency_key)
    digest = request_hash(
        cipher,
        {
            "op": "purchase",
            "customer": fingerprint or ref_fingerprint(cipher, customer),
            "channel": channel,
            "currency": currency,
            "lines": [line.fingerprint() for line in lines],
            "occurred_at": occurred_at,
            "store": store_code,
            "ref": external_ref,
        },
    )
    return key, digest


def check_purchase(
    lines: list[LineInput], *, occurred_at: datetime | None, currency: str, now: datetime
) -> tuple[list[PricedLine], datetime, str]:
    """A purchase's checks that need no database: lines priced, time, currency."""
    priced = check_lines(lines, priced=True)
    return priced, _check_time(occurred_at, now), _check_currency(currency)


def purchase_values(
    *,
    buyer_id: uuid.UUID,
    channel: Channel,
    store_id: uuid.UUID | None,
    when: datetime,
    now: datetime,
    key: str,
    digest: str,
    external_ref: str | None,
    currency: str,
    priced: list[PricedLine],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every column of the rows a purchase writes: the live path makes them ORM objects, the
    bulk path writes them in sets."""
    event_id = uuid.uuid4()
    event: dict[str, Any] = {
        "id": event_id,
        "customer_id": buyer_id,
        "type": EventType.PURCHASE.value,
        "channel": channel.value,
        "store_id": store_id,
        "occurred_at": when,
        "recorded_at": now,
        "idempotency_key": key,
        "request_hash": digest,
        "external_ref": external_ref,
        "currency": currency,
        "amount_minor": sum(line.total_minor for line in priced),
        "purchase_id": None,
        "topic": None,
        "satisfaction": None,
        "campaign": None,
        "campaign_channel": None,
        "action": None,
    }
    lines: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "event_id": event_id,
            "line_no": number,
            "sku": line.sku,
            "category": line.category,
            "quantity": line.quantity,
            "unit_price_minor": line.unit_price_minor,
            "total_minor": line.total_minor,
        }
        for number, line in enumerate(priced, start=1)
    ]
    return event, lines


async def record_return(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    purchase_id: uuid.UUID,
    channel: Channel,
    lines: list[LineInput],
    idempotency_key: str,
    occurred_at: datetime | None = None,
    store_code: str | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Return part of a purchase. Quantities are checked against what was bought minus what
    was already returned; refunds are priced at the purchase's own prices."""
    now = now or utcnow()
    key = stored_idempotency_key(cipher, idempotency_key)
    digest = request_hash(
        cipher,
        {
            "op": "return",
            "purchase": purchase_id,
            "channel": channel,
            "lines": [(line.sku, line.quantity) for line in lines],
            "occurred_at": occurred_at,
            "store": store_code,
        },
    )
    replay = await _replay(session, key, digest)
    if replay is not None:
        return Recorded(replay, replayed=True)
    check_lines(lines, priced=False)
    when = _check_time(occurred_at, now)
    purchase = (
        await session.execute(select(Event).where(col(Event.id) == purchase_id).with_for_update())
    ).scalar_one_or_none()
    if purchase is None or purchase.type != EventType.PURCHASE:
        raise graph_error(GraphErrorCode.PURCHASE_NOT_FOUND, "no such purchase", "purchaseId")
    if when < purchase.occurred_at:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, "a return cannot precede its purchase", "occurredAt"
        )
    bought = (
        (
            await session.execute(
                select(EventLine)
                .where(col(EventLine.event_id) == purchase.id)
                .order_by(col(EventLine.line_no))
            )
        )
        .scalars()
        .all()
    )
    returned_rows = await session.execute(
        select(col(EventLine.sku), func.sum(col(EventLine.quantity)))
        .join(Event, col(Event.id) == col(EventLine.event_id))
        .where(col(Event.purchase_id) == purchase.id)
        .group_by(col(EventLine.sku))
    )
    returned: dict[str, int] = defaultdict(int, {sku: int(qty) for sku, qty in returned_rows.all()})
    available: dict[str, int] = defaultdict(int)
    for line in bought:
        available[line.sku] += line.quantity
    rows: list[EventLine] = []
    amount = 0
    for position, wanted in enumerate(lines):
        sku = wanted.sku.strip()
        left = available[sku] - returned[sku]
        if wanted.quantity > left:
            raise graph_error(
                GraphErrorCode.RETURN_EXCEEDS_PURCHASE,
                f"only {max(left, 0)} of this sku can still be returned",
                "lines",
                str(position),
                "quantity",
            )
        # Price the returned units line by line, skipping units returned earlier.
        skip, need = returned[sku], wanted.quantity
        for source in bought:
            if source.sku != sku or need == 0:
                continue
            before = min(skip, source.quantity)
            usable = source.quantity - before
            skip = max(0, skip - source.quantity)
            take = min(usable, need)
            if take:
                refund = refund_share(source.total_minor, source.quantity, before=before, take=take)
                rows.append(
                    EventLine(
                        event_id=purchase.id,
                        line_no=len(rows) + 1,
                        sku=sku,
                        category=source.category,
                        quantity=take,
                        unit_price_minor=source.unit_price_minor,
                        total_minor=refund,
                    )
                )
                amount += refund
                need -= take
        returned[sku] += wanted.quantity
    event = Event(
        customer_id=purchase.customer_id,
        type=EventType.RETURN,
        channel=channel,
        store_id=await _store_id(session, store_code),
        occurred_at=when,
        recorded_at=now,
        idempotency_key=key,
        request_hash=digest,
        currency=purchase.currency,
        amount_minor=amount,
        purchase_id=purchase.id,
    )
    recorded = await _insert(session, event, rows, key, digest)
    if not recorded.replayed:
        await hooks.publish(session, hooks.ReturnRecorded(recorded.event, purchase))
    return recorded


async def record_event(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer: CustomerRef,
    type: EventType,
    channel: Channel,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    store_code: str | None = None,
    topic: str | None = None,
    satisfaction: int | None = None,
    campaign: str | None = None,
    campaign_channel: Channel | None = None,
    action: CampaignAction | None = None,
    now: datetime | None = None,
) -> Recorded:
    """Visits, contact-centre interactions and campaign responses."""
    now = now or utcnow()
    key, digest = event_request(
        cipher,
        customer=customer,
        type=type,
        channel=channel,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at,
        store_code=store_code,
        topic=topic,
        satisfaction=satisfaction,
        campaign=campaign,
        campaign_channel=campaign_channel,
        action=action,
    )
    replay = await _replay(session, key, digest)
    if replay is not None:
        return Recorded(replay, replayed=True)
    when = check_event(
        type=type,
        topic=topic,
        satisfaction=satisfaction,
        campaign=campaign,
        action=action,
        occurred_at=occurred_at,
        now=now,
    )
    who = await resolve_ref(session, cipher, customer)
    event = Event(
        customer_id=who.id,
        type=type,
        channel=channel,
        store_id=await _store_id(session, store_code),
        occurred_at=when,
        recorded_at=now,
        idempotency_key=key,
        request_hash=digest,
        topic=topic,
        satisfaction=satisfaction,
        campaign=campaign,
        campaign_channel=campaign_channel,
        action=action,
    )
    recorded = await _insert(session, event, [], key, digest)
    if not recorded.replayed:
        note_activity(who, when)
    return recorded


def check_event(
    *,
    type: EventType,
    topic: str | None,
    satisfaction: int | None,
    campaign: str | None,
    action: CampaignAction | None,
    occurred_at: datetime | None,
    now: datetime,
) -> datetime:
    """A visit's, contact's or campaign response's checks that need no database."""
    if type in {EventType.PURCHASE, EventType.RETURN}:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, "use purchaseRecord or returnRecord for this type", "type"
        )
    if type is EventType.CONTACT:
        if not topic or not TOPIC_CODE.match(topic):
            raise graph_error(
                GraphErrorCode.INVALID_INPUT,
                "a topic is a code such as delivery or return_refund (a-z, 0-9, _), not free text",
                "topic",
            )
        if satisfaction is not None and not 1 <= satisfaction <= 5:
            raise graph_error(
                GraphErrorCode.INVALID_INPUT, "satisfaction is 1 to 5", "satisfaction"
            )
    if type is EventType.CAMPAIGN_RESPONSE and (
        not campaign or action is None or len(campaign) > 100
    ):
        raise graph_error(
            GraphErrorCode.INVALID_INPUT,
            "a campaign response needs a campaign and an action",
            "campaign",
        )
    return _check_time(occurred_at, now)


def event_request(
    cipher: FieldCipher,
    *,
    customer: CustomerRef,
    type: EventType,
    channel: Channel,
    idempotency_key: str,
    occurred_at: datetime | None,
    store_code: str | None,
    topic: str | None,
    satisfaction: int | None,
    campaign: str | None,
    campaign_channel: Channel | None,
    action: CampaignAction | None,
    fingerprint: str | None = None,
) -> tuple[str, str]:
    """The stored idempotency key and request hash of a non-purchase event."""
    key = stored_idempotency_key(cipher, idempotency_key)
    digest = request_hash(
        cipher,
        {
            "op": "event",
            "customer": fingerprint or ref_fingerprint(cipher, customer),
            "type": type,
            "channel": channel,
            "occurred_at": occurred_at,
            "store": store_code,
            "topic": topic,
            "satisfaction": satisfaction,
            "campaign": campaign,
            "campaign_channel": campaign_channel,
            "action": action,
        },
    )
    return key, digest
