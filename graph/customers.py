"""Customers and their identifiers: registration, lookup, linking, profile encryption.

Service functions take keyword-only arguments and an explicit session; they flush, never commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from graph import hooks
from graph.enums import Channel, CustomerStatus, IdentityKind
from graph.errors import GraphErrorCode, graph_error
from graph.identity import normalise
from graph.models import Customer, Identity
from privacy.fields import FieldCipher

LOOKUP_LIMIT = 20
IN_CHUNK = 500  # values per IN list: well below SQLite's and asyncpg's parameter limits
REGISTRATION_SKEW = timedelta(minutes=5)
REGISTER_ATTEMPTS = 3

PROFILE_FIELDS = {
    "first_name": "first_name_ct",
    "last_name": "last_name_ct",
    "birth_date": "birth_date_ct",
    "address": "address_ct",
}


@dataclass(frozen=True, slots=True)
class Profile:
    first_name: str | None
    last_name: str | None
    birth_date: date | None
    address: str | None


@dataclass(frozen=True, slots=True)
class IdentifierInput:
    kind: IdentityKind
    value: str
    source_system: str | None = None
    verified: bool = False
    field: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegisterResult:
    customer: Customer
    created: bool


def note_activity(customer: Customer, when: datetime) -> None:
    """A customer's registration date is never later than their first recorded activity: an
    imported purchase from last year makes the customer a member since then."""
    if when < customer.registered_at:
        customer.registered_at = when


def check_registered_at(registered_at: datetime | None, now: datetime) -> datetime:
    """The registration instant: given (an import or staff), else now; never in the future."""
    if registered_at is None:
        return now
    when = as_utc(registered_at)
    if when > now + REGISTRATION_SKEW or when.year < 1900:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, "registration date out of range", "registeredAt"
        )
    return when


def owner_of(customer: Customer) -> uuid.UUID:
    """The id that represents this customer in the graph: itself, or its survivor."""
    return customer.survivor_id or customer.id


async def get_customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer:
    """The customer by id, resolved to its survivor when it was merged (old ids keep working)."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise graph_error(GraphErrorCode.CUSTOMER_NOT_FOUND, "no such customer", "customerId")
    if customer.survivor_id is not None:
        survivor = await session.get(Customer, customer.survivor_id)
        assert survivor is not None
        return survivor
    return customer


async def get_active_customer(
    session: AsyncSession, customer_id: uuid.UUID, *field: str
) -> Customer:
    customer = await get_customer(session, customer_id)
    if customer.status != CustomerStatus.ACTIVE:
        raise graph_error(
            GraphErrorCode.CUSTOMER_NOT_ACTIVE,
            "the customer is not active",
            *(field or ("customerId",)),
        )
    return customer


async def find_by_identifier(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    kind: IdentityKind,
    value: str,
    source_system: str | None = None,
    field: tuple[str, ...] = ("value",),
    verified_only: bool = False,
) -> Customer | None:
    """Resolve an identifier in any spelling to the (surviving) customer that holds it.

    A verified holder wins. Without `verified_only` (a staff or app lookup) a sole unverified
    holder comes next, and several are IDENTIFIER_AMBIGUOUS; anything that attaches data to a
    customer passes `verified_only`, so an identifier someone merely typed in never decides
    whose data it is.
    """
    normalised = normalise(kind, value, source_system=source_system, field=field)
    index = cipher.blind_index(kind=kind, value=normalised)
    query = select(Identity).where(col(Identity.kind) == kind, col(Identity.value_index) == index)
    if verified_only:
        query = query.where(col(Identity.verified).is_(True))
    holders = (
        (await session.execute(query.order_by(col(Identity.verified).desc()).limit(LOOKUP_LIMIT)))
        .scalars()
        .all()
    )
    if not holders:
        return None
    if holders[0].verified:
        return await get_customer(session, holders[0].customer_id)
    owners = {(await get_customer(session, row.customer_id)).id for row in holders}
    if len(owners) > 1:
        # Typed in for several people and confirmed by none: naming one would let anyone who
        # links a stranger's phone to themself receive the stranger's lookups.
        raise graph_error(
            GraphErrorCode.IDENTIFIER_AMBIGUOUS,
            "several customers hold this identifier and none has verified it",
            *field,
        )
    return await get_customer(session, holders[0].customer_id)


async def verified_holders(
    session: AsyncSession, indexes: list[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    """(kind, blind index) → owner id, for the verified identities among the given ones
    (any number: a bulk batch asks for thousands, in chunks of `IN` lists)."""
    wanted = set(indexes)
    if not wanted:
        return {}
    owner = func.coalesce(col(Customer.survivor_id), col(Customer.id))
    found: dict[tuple[str, str], uuid.UUID] = {}
    values = sorted({index for _, index in wanted})
    for start in range(0, len(values), IN_CHUNK):
        rows = await session.execute(
            select(col(Identity.kind), col(Identity.value_index), owner)
            .join(Customer, col(Customer.id) == col(Identity.customer_id))
            .where(
                col(Identity.verified).is_(True),
                col(Identity.value_index).in_(values[start : start + IN_CHUNK]),
            )
        )
        for kind, index, holder in rows.all():
            if (kind, index) in wanted:
                found[(kind, index)] = holder
    return found


async def _add_identity(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer: Customer,
    kind: IdentityKind,
    normalised: str,
    source_system: str | None,
    verified: bool,
    channel: Channel,
    now: datetime,
) -> Identity:
    index = cipher.blind_index(kind=kind, value=normalised)
    existing = (
        await session.execute(
            select(Identity)
            .join(Customer, col(Customer.id) == col(Identity.customer_id))
            .where(
                col(Identity.kind) == kind,
                col(Identity.value_index) == index,
                or_(col(Customer.id) == customer.id, col(Customer.survivor_id) == customer.id),
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        existing.last_seen = now
        existing.verified = existing.verified or verified
        return existing
    identity = Identity(
        customer_id=customer.id,
        kind=kind,
        source_system=stored_source_system(source_system),
        value_index=index,
        verified=verified,
        channel=channel,
        first_seen=now,
        last_seen=now,
    )
    identity.value_ct = await cipher.encrypt(
        customer.id, table="identity", column="value_ct", row_id=identity.id, value=normalised
    )
    session.add(identity)
    return identity


async def set_profile_field(
    cipher: FieldCipher, customer: Customer, name: str, value: str | None
) -> None:
    column = PROFILE_FIELDS[name]
    blob = await cipher.encrypt(
        customer.id, table="customer", column=column, row_id=customer.id, value=value
    )
    setattr(customer, column, blob)


async def decrypt_profile(cipher: FieldCipher, customer: Customer) -> Profile:
    values: dict[str, str | None] = {}
    await cipher.preload(getattr(customer, column) for column in PROFILE_FIELDS.values())
    for name, column in PROFILE_FIELDS.items():
        values[name] = await cipher.decrypt(
            table="customer", column=column, row_id=customer.id, blob=getattr(customer, column)
        )
    birth = values["birth_date"]
    return Profile(
        first_name=values["first_name"],
        last_name=values["last_name"],
        birth_date=date.fromisoformat(birth) if birth else None,
        address=values["address"],
    )


def _clean_name(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    cleaned = " ".join(value.split())
    if not cleaned:
        return None
    if len(cleaned) > 100:
        raise graph_error(GraphErrorCode.INVALID_INPUT, "at most 100 characters", field)
    return cleaned


def clean_profile(
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    birth_date: date | None = None,
    address: str | None = None,
    now: datetime,
) -> dict[str, str | None]:
    """Profile fields as stored (whitespace folded, dates as ISO text), or INVALID_INPUT naming
    the field. Pure: the API, the importer and the bulk path all call it."""
    if birth_date is not None and not (date(1900, 1, 1) <= birth_date <= now.date()):
        raise graph_error(GraphErrorCode.INVALID_INPUT, "birth date out of range", "birthDate")
    return {
        "first_name": _clean_name(first_name, "firstName"),
        "last_name": _clean_name(last_name, "lastName"),
        "address": _clean_name(address, "address"),
        "birth_date": birth_date.isoformat() if birth_date else None,
    }


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration validated and normalised, before anything is looked up or written."""

    identifiers: list[tuple[IdentifierInput, str]]  # with the normalised value
    names: dict[str, str | None]
    since: datetime


def prepare_registration(
    *,
    channel: Channel,
    phone: str | None = None,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    birth_date: date | None = None,
    address: str | None = None,
    external_id: str | None = None,
    external_system: str | None = None,
    loyalty_card: str | None = None,
    phone_verified: bool = False,
    email_verified: bool = False,
    registered_at: datetime | None = None,
    now: datetime,
) -> Registration:
    """Every check `register_customer` makes before touching the database. Pure: the bulk
    path calls it for a whole batch."""
    since = check_registered_at(registered_at, now)
    wanted: list[IdentifierInput] = []
    if phone is not None:
        wanted.append(IdentifierInput(IdentityKind.PHONE, phone, None, phone_verified, ("phone",)))
    if email is not None:
        wanted.append(IdentifierInput(IdentityKind.EMAIL, email, None, email_verified, ("email",)))
    if loyalty_card is not None:
        wanted.append(
            IdentifierInput(IdentityKind.LOYALTY_CARD, loyalty_card, None, True, ("loyaltyCard",))
        )
    if external_id is not None:
        wanted.append(
            IdentifierInput(
                IdentityKind.EXTERNAL_ID,
                external_id,
                external_system or channel.lower(),
                True,
                ("externalId",),
            )
        )
    if not wanted:
        raise graph_error(
            GraphErrorCode.INVALID_INPUT, "a customer needs a phone, e-mail, card or external id"
        )
    names = clean_profile(
        first_name=first_name,
        last_name=last_name,
        birth_date=birth_date,
        address=address,
        now=now,
    )
    normalised = [
        (item, normalise(item.kind, item.value, source_system=item.source_system, field=item.field))
        for item in wanted
    ]
    return Registration(identifiers=normalised, names=names, since=since)


def stored_source_system(source_system: str | None) -> str | None:
    return source_system.strip().lower() if source_system else None


async def _attach_or_create(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    channel: Channel,
    names: dict[str, str | None],
    indexed: list[tuple[IdentifierInput, str, str]],
    since: datetime,
    now: datetime,
) -> tuple[Customer, bool]:
    """The customer holding these verified identifiers (profile filled where empty, membership
    dated back to `since` if earlier), or a new one; with the identifiers added."""
    holders = await verified_holders(
        session, [(item.kind.value, index) for item, _, index in indexed if item.verified]
    )
    owners = set(holders.values())
    if len(owners) > 1:
        raise graph_error(
            GraphErrorCode.IDENTIFIER_CONFLICT,
            "these identifiers belong to different customers; ask staff to merge them",
        )
    created = not owners
    if owners:
        customer = await get_active_customer(session, owners.pop())
        note_activity(customer, since)
    else:
        customer = Customer(
            registered_channel=channel, created_at=now, registered_at=since, updated_at=now
        )
        session.add(customer)
        await session.flush()
    for name, value in names.items():
        if value is not None and getattr(customer, PROFILE_FIELDS[name]) is None:
            await set_profile_field(cipher, customer, name, value)
    for item, value, index in indexed:
        holder = holders.get((item.kind.value, index))
        verified = item.verified and (holder is None or holder == customer.id)
        await _add_identity(
            session,
            cipher,
            customer=customer,
            kind=item.kind,
            normalised=value,
            source_system=item.source_system,
            verified=verified,
            channel=channel,
            now=now,
        )
    customer.updated_at = now
    await session.flush()
    return customer, created


async def register_customer(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    channel: Channel,
    phone: str | None = None,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    birth_date: date | None = None,
    address: str | None = None,
    external_id: str | None = None,
    external_system: str | None = None,
    loyalty_card: str | None = None,
    phone_verified: bool = False,
    email_verified: bool = False,
    registered_at: datetime | None = None,
    now: datetime | None = None,
) -> RegisterResult:
    """Register a customer, or attach to the one that already holds a verified identifier.

    Identifiers are normalised first, so `8 (916) 123-45-67` and `+79161234567` are the same
    phone. An identifier that is only unverified on an existing customer never attaches.
    Profile fields of an existing customer are filled where empty, never overwritten.
    `registered_at` (an import, staff) dates the membership; an earlier one moves an existing
    customer's date back, a later one leaves it.
    """
    now = now or utcnow()
    prepared = prepare_registration(
        channel=channel,
        phone=phone,
        email=email,
        first_name=first_name,
        last_name=last_name,
        birth_date=birth_date,
        address=address,
        external_id=external_id,
        external_system=external_system,
        loyalty_card=loyalty_card,
        phone_verified=phone_verified,
        email_verified=email_verified,
        registered_at=registered_at,
        now=now,
    )
    names, normalised, since = prepared.names, prepared.identifiers, prepared.since
    indexed = [
        (item, value, cipher.blind_index(kind=item.kind, value=value)) for item, value in normalised
    ]
    # Two registrations of one verified identifier may race (PostgreSQL): the loser's insert
    # meets the unique index, its savepoint rolls back, and it attaches to the winner instead.
    for attempt in range(REGISTER_ATTEMPTS):
        try:
            async with session.begin_nested():
                customer, created = await _attach_or_create(
                    session,
                    cipher,
                    channel=channel,
                    names=names,
                    indexed=indexed,
                    since=since,
                    now=now,
                )
            break
        except IntegrityError:
            if attempt + 1 == REGISTER_ATTEMPTS:
                raise
    if created:
        await hooks.publish(session, hooks.CustomerRegistered(customer))
    return RegisterResult(customer=customer, created=created)


async def link_identity(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer_id: uuid.UUID,
    kind: IdentityKind,
    value: str,
    channel: Channel,
    source_system: str | None = None,
    verified: bool = False,
    now: datetime | None = None,
) -> Identity:
    """Attach an identifier to a customer. A verified identifier held by another customer is a
    conflict (staff merge the two instead); an unverified one is simply recorded."""
    now = now or utcnow()
    customer = await get_active_customer(session, customer_id)
    normalised = normalise(kind, value, source_system=source_system, field=("value",))
    if verified:
        index = cipher.blind_index(kind=kind, value=normalised)
        holder = (await verified_holders(session, [(kind.value, index)])).get((kind.value, index))
        if holder is not None and holder != customer.id:
            raise graph_error(
                GraphErrorCode.IDENTIFIER_CONFLICT,
                "this verified identifier belongs to another customer",
                "value",
            )
    identity = await _add_identity(
        session,
        cipher,
        customer=customer,
        kind=kind,
        normalised=normalised,
        source_system=source_system,
        verified=verified,
        channel=channel,
        now=now,
    )
    await session.flush()
    return identity
