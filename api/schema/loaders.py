"""Per-request DataLoaders: every relation is fetched in one statement per batch."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col
from strawberry.dataloader import DataLoader

from api.schema.identity.loaders import IdentityLoaders
from api.schema.loyalty.loaders import LoyaltyLoaders
from api.schema.scoring.loaders import ScoringLoaders
from graph import queries
from graph.customers import PROFILE_FIELDS, Profile, decrypt_profile
from graph.models import (
    Customer,
    Event,
    EventLine,
    Identity,
    Referral,
    Review,
    SocialProfile,
    Store,
)
from privacy.fields import FieldCipher

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)


@dataclass(frozen=True, slots=True)
class EventsKey:
    owner: uuid.UUID
    first: int
    after: tuple[datetime, uuid.UUID] | None
    filter: queries.EventFilter


@dataclass(frozen=True, slots=True)
class Sealed:
    """One ciphertext to open, with the place it was sealed for."""

    table: str
    column: str
    row_id: uuid.UUID
    blob: bytes | None


@dataclass(frozen=True, slots=True)
class ReviewsKey:
    owner: uuid.UUID
    limit: int


def _grouped(keys: Sequence[K], group_of: dict[K, G]) -> dict[G, list[K]]:
    """Keys that share query arguments (page size, cursor, filter) go in one statement."""
    groups: dict[G, list[K]] = defaultdict(list)
    for key in keys:
        groups[group_of[key]].append(key)
    return groups


class Loaders:
    """Created per request (and again after each mutation), never shared between requests."""

    def __init__(self, session: AsyncSession, cipher: FieldCipher, currency: str) -> None:
        self.session = session
        self.cipher = cipher
        self.currency = currency
        self.customer = DataLoader[uuid.UUID, Customer | None](self._customers)
        self.identities = DataLoader[uuid.UUID, list[Identity]](self._identities)
        self.events = DataLoader[EventsKey, list[Event]](self._events)
        self.event = DataLoader[uuid.UUID, Event | None](self._events_by_id)
        self.lines = DataLoader[uuid.UUID, list[EventLine]](self._lines)
        self.reviews = DataLoader[ReviewsKey, list[Review]](self._reviews)
        self.votes = DataLoader[uuid.UUID, queries.VoteCount](self._votes)
        self.referrals_made = DataLoader[uuid.UUID, list[Referral]](self._referrals_made)
        self.referred_by = DataLoader[uuid.UUID, Referral | None](self._referred_by)
        self.social = DataLoader[uuid.UUID, list[SocialProfile]](self._social)
        self.rfm = DataLoader[uuid.UUID, queries.RfmFacts | None](self._rfm)
        self.store = DataLoader[uuid.UUID, Store | None](self._stores)
        self.plaintext = DataLoader[Sealed, str | None](self._open)
        self.profile = DataLoader[Customer, Profile](self._profiles, cache_key_fn=lambda c: c.id)
        self.row = DataLoader[tuple[type[SQLModel], uuid.UUID], SQLModel | None](self._rows)
        self.loyalty = LoyaltyLoaders(session)
        self.scoring = ScoringLoaders(session)
        self.identity = IdentityLoaders(session)

    async def _rows(self, keys: list[tuple[type[SQLModel], uuid.UUID]]) -> list[SQLModel | None]:
        """Rows of any table by id (for `node`), one statement per table."""
        found: dict[tuple[type[SQLModel], uuid.UUID], SQLModel] = {}
        for table, group in _grouped(keys, {k: k[0] for k in keys}).items():
            ids = [row_id for _, row_id in group]
            rows = await self.session.execute(select(table).where(col(table.id).in_(ids)))  # type: ignore[attr-defined]
            found.update({(table, row.id): row for row in rows.scalars()})  # type: ignore[attr-defined]
        return [found.get(key) for key in keys]

    async def _customers(self, ids: list[uuid.UUID]) -> list[Customer | None]:
        found = await queries.customers_by_ids(self.session, ids)
        return [found.get(key) for key in ids]

    async def _identities(self, owners: list[uuid.UUID]) -> list[list[Identity]]:
        found = await queries.identities_for(self.session, owners)
        return [found.get(key, []) for key in owners]

    async def _events(self, keys: list[EventsKey]) -> list[list[Event]]:
        found: dict[EventsKey, list[Event]] = {}
        groups = _grouped(keys, {k: (k.first, k.after, k.filter) for k in keys})
        for (first, after, filt), group in groups.items():
            rows = await queries.events_for(
                self.session, [k.owner for k in group], first=first, after=after, filter=filt
            )
            found.update({k: rows.get(k.owner, []) for k in group})
        return [found[key] for key in keys]

    async def _events_by_id(self, ids: list[uuid.UUID]) -> list[Event | None]:
        rows = await self.session.execute(select(Event).where(col(Event.id).in_(ids)))
        found = {row.id: row for row in rows.scalars()}
        return [found.get(key) for key in ids]

    async def _lines(self, ids: list[uuid.UUID]) -> list[list[EventLine]]:
        found = await queries.lines_for(self.session, ids)
        return [found.get(key, []) for key in ids]

    async def _reviews(self, keys: list[ReviewsKey]) -> list[list[Review]]:
        found: dict[ReviewsKey, list[Review]] = {}
        for limit, group in _grouped(keys, {k: k.limit for k in keys}).items():
            rows = await queries.reviews_for(self.session, [k.owner for k in group], limit=limit)
            found.update({k: rows.get(k.owner, []) for k in group})
        return [found[key] for key in keys]

    async def _votes(self, ids: list[uuid.UUID]) -> list[queries.VoteCount]:
        found = await queries.votes_for(self.session, ids)
        return [found.get(key, queries.VoteCount()) for key in ids]

    async def _referrals_made(self, owners: list[uuid.UUID]) -> list[list[Referral]]:
        found = await queries.referrals_made_for(self.session, owners)
        return [found.get(key, []) for key in owners]

    async def _referred_by(self, owners: list[uuid.UUID]) -> list[Referral | None]:
        found = await queries.referred_by_for(self.session, owners)
        return [found.get(key) for key in owners]

    async def _social(self, owners: list[uuid.UUID]) -> list[list[SocialProfile]]:
        found = await queries.social_for(self.session, owners)
        return [found.get(key, []) for key in owners]

    async def _rfm(self, owners: list[uuid.UUID]) -> list[queries.RfmFacts | None]:
        found = await queries.rfm_for(self.session, owners, currency=self.currency)
        return [found.get(key) for key in owners]

    async def _stores(self, ids: list[uuid.UUID]) -> list[Store | None]:
        rows = await self.session.execute(select(Store).where(col(Store.id).in_(ids)))
        found = {row.id: row for row in rows.scalars()}
        return [found.get(key) for key in ids]

    async def _open(self, items: list[Sealed]) -> list[str | None]:
        await self.cipher.preload(item.blob for item in items)
        return [
            await self.cipher.decrypt(
                table=item.table, column=item.column, row_id=item.row_id, blob=item.blob
            )
            for item in items
        ]

    async def _profiles(self, rows: list[Customer]) -> list[Profile]:
        await self.cipher.preload(
            getattr(row, column) for row in rows for column in PROFILE_FIELDS.values()
        )
        return [await decrypt_profile(self.cipher, row) for row in rows]
