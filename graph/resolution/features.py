"""Matching records of customers: decrypted and normalised in the job's memory, nothing more.

`matching_record` is the one rule that turns a customer's profile and identifiers into what the
matcher compares; the whole-base run, a registration and an imported row all call it. The
loader reads ciphertext page by page and decrypts with a `FieldCipher` (keys live only for the
job); records are plain dicts handed to DuckDB in memory.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from graph.customers import PROFILE_FIELDS
from graph.enums import CustomerStatus, IdentityKind
from graph.models import Customer, Identity
from graph.resolution.normalise import (
    address_key,
    birth_key,
    email_key,
    first_name_key,
    phone_key,
    surname_key,
)
from privacy.fields import FieldCipher

COLUMNS = (
    "unique_id",
    "first_key",
    "patronymic",
    "surname_key",
    "surname_stem",
    "surname_gender",
    "dob",
    "email_key",
    "phone_key",
    "card_key",
    "address_key",
)
PAGE = 2000
Record = dict[str, Any]


def matching_record(
    customer_id: uuid.UUID | str,
    *,
    first_name: str | None,
    last_name: str | None,
    birth_date: str | None,
    address: str | None,
    phones: Iterable[str] = (),
    emails: Iterable[str] = (),
    cards: Iterable[str] = (),
) -> Record:
    """The comparable form of one customer. Several identifiers of a kind: the smallest wins,
    so the same customer always yields the same record."""
    first, patronymic = first_name_key(first_name)
    surname = surname_key(last_name)
    phone_keys = sorted(filter(None, (phone_key(p) for p in phones)))
    email_keys = sorted(filter(None, (email_key(e) for e in emails)))
    card_keys = sorted(c.upper() for c in cards if c)
    return {
        "unique_id": str(customer_id),
        "first_key": first,
        "patronymic": patronymic,
        "surname_key": surname.key,
        "surname_stem": surname.stem,
        "surname_gender": surname.gender,
        "dob": birth_key(birth_date),
        "email_key": email_keys[0] if email_keys else None,
        "phone_key": phone_keys[0] if phone_keys else None,
        "card_key": card_keys[0] if card_keys else None,
        "address_key": address_key(address),
    }


async def _identities(
    session: AsyncSession, cipher: FieldCipher, owners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, list[str]]]:
    owner = func.coalesce(col(Customer.survivor_id), col(Customer.id))
    rows = (
        await session.execute(
            select(Identity, owner)
            .join(Customer, col(Customer.id) == col(Identity.customer_id))
            .where(
                owner.in_(owners),
                col(Identity.kind).in_(
                    [IdentityKind.PHONE, IdentityKind.EMAIL, IdentityKind.LOYALTY_CARD]
                ),
            )
        )
    ).all()
    await cipher.preload(identity.value_ct for identity, _ in rows)
    found: dict[uuid.UUID, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for identity, holder in rows:
        value = await cipher.decrypt(
            table="identity", column="value_ct", row_id=identity.id, blob=identity.value_ct
        )
        if value is not None:
            found[holder][identity.kind].append(value)
    return found


async def records_for(
    session: AsyncSession, cipher: FieldCipher, customers: Sequence[Customer]
) -> list[Record]:
    """Matching records of these (active) customers, decrypted in memory."""
    await cipher.preload(
        getattr(customer, column) for customer in customers for column in PROFILE_FIELDS.values()
    )
    held = await _identities(session, cipher, [customer.id for customer in customers])
    records: list[Record] = []
    for customer in customers:
        plain: dict[str, str | None] = {}
        for name, column in PROFILE_FIELDS.items():
            plain[name] = await cipher.decrypt(
                table="customer", column=column, row_id=customer.id, blob=getattr(customer, column)
            )
        ids = held.get(customer.id, {})
        records.append(
            matching_record(
                customer.id,
                first_name=plain["first_name"],
                last_name=plain["last_name"],
                birth_date=plain["birth_date"],
                address=plain["address"],
                phones=ids.get(IdentityKind.PHONE, ()),
                emails=ids.get(IdentityKind.EMAIL, ()),
                cards=ids.get(IdentityKind.LOYALTY_CARD, ()),
            )
        )
    return records


async def iter_active_records(
    session: AsyncSession, cipher: FieldCipher, *, page: int = PAGE
) -> AsyncIterator[list[Record]]:
    """Every active customer's matching record, a page at a time (keyset on id)."""
    after: uuid.UUID | None = None
    while True:
        query = select(Customer).where(col(Customer.status) == CustomerStatus.ACTIVE)
        if after is not None:
            query = query.where(col(Customer.id) > after)
        customers = list(
            (await session.execute(query.order_by(col(Customer.id)).limit(page))).scalars()
        )
        if not customers:
            return
        yield await records_for(session, cipher, customers)
        after = customers[-1].id
