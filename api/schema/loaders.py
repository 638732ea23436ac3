"""Per-request DataLoaders: every relation is fetched in one statement per batch."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from graph import queries
from graph.customers import PROFILE_FIELDS, Profile, decrypt_profile
from graph.models import Customer, Event, EventLine, Identity, Referral, Review, SocialProfile, Store
from privacy.fields import FieldCipher

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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


def _by_key(
    fetch: Callable[[list[K]], Awaitable[dict[K, V]]], default: Callable[[], V]
) -> Callable[[list[K]], Awaitable[list[V]]]:
    async def load(keys: list[K]) -> list[V]:
        found = await fetch(keys)
        return [found[key] if key in found else default() for key in keys]

    return load


def _grouped(
    keys: Sequence[Any], group_of: Callable[[Any], Hashable]
) -> dict[Hashable, list[Any]]:
    groups: dict[Hashable, list[Any]] = defaultdict(list)
    for key in keys:
        groups[group_of(key)].append(key)
    return groups


class Loaders:
    def __init__(self, session: AsyncSession, cipher: FieldCipher, currency: str) -> None:
        self.session = session
        s = session

        async def customers(ids: list[uuid.UUID]) -> dict[uuid.UUID, Customer]:
            return await queries.customers_by_ids(s, ids)

        async def events(keys: list[EventsKey]) -> dict[EventsKey, list[Event]]:
            found: dict[EventsKey, list[Event]] = {}
            for (first, after, filt), group in _grouped(
                keys, lambda k: (k.first, k.after, k.filter)
            ).items():
                rows = await queries.events_for(
                    s, [k.owner for k in group], first=first, after=after, filter=filt
                )
                found.update({k: rows.get(k.owner, []) for k in group})
            return found

        async def reviews(keys: list[ReviewsKey]) -> dict[ReviewsKey, list[Review]]:
            found: dict[ReviewsKey, list[Review]] = {}
            for limit, group in _grouped(keys, lambda k: k.limit).items():
                rows = await queries.reviews_for(s, [k.owner for k in group], limit=int(limit))  # type: ignore[call-overload]
                found.update({k: rows.get(k.owner, []) for k in group})
            return found

        async def stores(ids: list[uuid.UUID]) -> dict[uuid.UUID, Store]:
            rows = (await s.execute(select(Store).where(Store.id.in_(ids)))).scalars()  # type: ignore[attr-defined]
            return {row.id: row for row in rows}

        async def events_by_id(ids: list[uuid.UUID]) -> dict[uuid.UUID, Event]:
            rows = (await s.execute(select(Event).where(Event.id.in_(ids)))).scalars()  # type: ignore[attr-defined]
            return {row.id: row for row in rows}

        async def profiles(rows: list[Customer]) -> list[Profile | None]:
            await cipher.preload(
                getattr(row, column) for row in rows for column in PROFILE_FIELDS.values()
            )
            return [await decrypt_profile(cipher, row) for row in rows]

        async def opened(items: list[Sealed]) -> list[str | None]:
            await cipher.preload(item.blob for item in items)
            return [
                await cipher.decrypt(
                    table=item.table, column=item.column, row_id=item.row_id, blob=item.blob
                )
                for item in items
            ]

        async def rfm(owners: list[uuid.UUID]) -> dict[uuid.UUID, queries.RfmFacts]:
            return await queries.rfm_for(s, owners, currency=currency)

        async def identities(owners: list[uuid.UUID]) -> dict[uuid.UUID, list[Identity]]:
            return await queries.identities_for(s, owners)

        async def lines(ids: list[uuid.UUID]) -> dict[uuid.UUID, list[EventLine]]:
            return await queries.lines_for(s, ids)

        async def votes(ids: list[uuid.UUID]) -> dict[uuid.UUID, queries.VoteCount]:
            return await queries.votes_for(s, ids)

        async def referrals_made(owners: list[uuid.UUID]) -> dict[uuid.UUID, list[Referral]]:
            return await queries.referrals_made_for(s, owners)

        async def referred_by(owners: list[uuid.UUID]) -> dict[uuid.UUID, Referral]:
            return await queries.referred_by_for(s, owners)

        async def social(owners: list[uuid.UUID]) -> dict[uuid.UUID, list[SocialProfile]]:
            return await queries.social_for(s, owners)

        def none() -> None:
            return None

        self.customer = DataLoader[uuid.UUID, Customer | None](_by_key(customers, none))
        self.identities = DataLoader[uuid.UUID, list[Identity]](_by_key(identities, list))
        self.events = DataLoader[EventsKey, list[Event]](_by_key(events, list))
        self.event = DataLoader[uuid.UUID, Event | None](_by_key(events_by_id, none))
        self.lines = DataLoader[uuid.UUID, list[EventLine]](_by_key(lines, list))
        self.reviews = DataLoader[ReviewsKey, list[Review]](_by_key(reviews, list))
        self.votes = DataLoader[uuid.UUID, queries.VoteCount](_by_key(votes, queries.VoteCount))
        self.referrals_made = DataLoader[uuid.UUID, list[Referral]](_by_key(referrals_made, list))
        self.referred_by = DataLoader[uuid.UUID, Referral | None](_by_key(referred_by, none))
        self.social = DataLoader[uuid.UUID, list[SocialProfile]](_by_key(social, list))
        self.rfm = DataLoader[uuid.UUID, queries.RfmFacts | None](_by_key(rfm, none))
        self.store = DataLoader[uuid.UUID, Store | None](_by_key(stores, none))
        self.plaintext = DataLoader[Sealed, str | None](opened)
        self.profile = DataLoader[Customer, Profile | None](
            profiles, cache_key_fn=lambda row: row.id
        )
