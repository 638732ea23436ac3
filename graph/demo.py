"""`loyalgraph seed-demo`: a believable retailer, generated straight into the database.

Two years of a home-and-lifestyle chain with twenty stores in Russian cities: customers from
every channel, purchases with seasonality (December, the days before 8 March, a quiet summer)
and churners, partial returns, visits, contact-centre calls, campaign responses, reviews with
helpful votes, referral chains, social profiles with a few big bloggers, and about 5% of people
registered twice through another channel (left unmerged, for staff to find and merge).

The shape is deterministic for a seed (`graph.demo_world`, `graph.demo_activity`); ids, data
keys and nonces are fresh. For speed the rows are bulk inserted in one transaction instead of
going through the per-row services, but personal data is sealed exactly as the services seal
it: one wrapped data key per customer, AES-GCM bound to `table|column|row id|version`, and
keyed blind indexes of normalised identifiers.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph.demo_activity import (
    Batch,
    Bought,
    Life,
    ReviewSeed,
    Shop,
    build_reviews,
    build_votes,
    referral_rows,
)
from graph.demo_consent import seed_consents
from graph.demo_data import CITIES
from graph.demo_world import Person, World
from graph.enums import CustomerStatus, EventType, ReferralStatus
from graph.identity import normalise
from graph.influence import normalise_handle
from graph.models import (
    Customer,
    Event,
    EventLine,
    FollowerCount,
    Identity,
    Referral,
    Review,
    ReviewVote,
    SocialProfile,
    Store,
)
from privacy.crypto import DataKeyMaterial, blind_index, encrypt_field
from privacy.fields import new_data_key_row
from privacy.keys import KeyProvider
from privacy.models import DataKey

CHUNK = 2_000  # rows per INSERT statement
BLOCK = 500  # people whose events are generated and written together


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def today_midnight() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class _Sealer:
    """Per-customer data keys and field encryption, the way `FieldCipher` does it."""

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider
        self.secret = provider.secret("blind_index")
        self.materials: dict[int, DataKeyMaterial] = {}

    def key_row(self, person: Person) -> dict[str, Any]:
        row, plaintext = new_data_key_row(self.provider, person.customer_id)
        self.materials[person.index] = DataKeyMaterial(
            key_id=row.id, version=row.version, key=plaintext
        )
        return {
            "id": row.id,
            "subject_id": row.subject_id,
            "version": row.version,
            "root_key_id": row.root_key_id,
            "wrapped_key": row.wrapped_key,
            "created_at": person.registered_at,
            "destroyed_at": None,
        }

    def seal(
        self, owner: int, table: str, column: str, row_id: object, value: str | None
    ) -> bytes | None:
        if value is None:
            return None
        material = self.materials[owner]
        return encrypt_field(material, table=table, column=column, row_id=row_id, plaintext=value)

    def index(self, kind: str, value: str) -> str:
        return blind_index(self.secret, kind=kind, value=value)


Rows = list[dict[str, Any]]


def customer_rows(
    sealer: _Sealer, person: Person, start: datetime, end: datetime
) -> tuple[dict[str, Any], Rows, Rows, Rows]:
    """The customer row, its identities, its social profiles and their follower counts over
    time, personal data sealed."""
    cid, at, owner = person.customer_id, person.registered_at, person.index
    birth = person.birth_date.isoformat() if person.birth_date else None
    customer = {
        "id": cid,
        "status": CustomerStatus.ACTIVE.value,
        "survivor_id": None,
        "registered_channel": person.channel.value,
        "created_at": at,
        "registered_at": at,
        "updated_at": at,
        "first_name_ct": sealer.seal(owner, "customer", "first_name_ct", cid, person.first_name),
        "last_name_ct": sealer.seal(owner, "customer", "last_name_ct", cid, person.last_name),
        "birth_date_ct": sealer.seal(owner, "customer", "birth_date_ct", cid, birth),
        "address_ct": sealer.seal(owner, "customer", "address_ct", cid, person.address),
    }
    identities: list[dict[str, Any]] = []
    for item in person.identities:
        value = normalise(item.kind, item.value, source_system=item.source_system)
        identity_id = uuid.uuid4()
        identities.append(
            {
                "id": identity_id,
                "customer_id": cid,
                "kind": item.kind.value,
                "source_system": item.source_system,
                "value_index": sealer.index(item.kind.value, value),
                "value_ct": sealer.seal(owner, "identity", "value_ct", identity_id, value),
                "verified": item.verified,
                "channel": person.channel.value,
                "first_seen": at,
                "last_seen": at,
            }
        )
    socials: Rows = []
    counts: Rows = []
    for social in person.socials:
        handle = normalise_handle(social.handle)
        profile_id = uuid.uuid4()
        day = timedelta(days=social.linked_day, hours=12)
        linked = max(at + timedelta(hours=1), start + day)
        observed = follower_counts(profile_id, social.followers, linked, end)
        counts.extend(observed)
        socials.append(
            {
                "id": profile_id,
                "customer_id": cid,
                "platform": social.platform.value,
                "handle_index": sealer.index(f"SOCIAL_{social.platform.value}", handle),
                "handle_ct": sealer.seal(owner, "social_profile", "handle_ct", profile_id, handle),
                "followers": social.followers,
                "linked_at": linked,
                "updated_at": observed[-1]["observed_at"],
            }
        )
    return customer, identities, socials, counts


def follower_counts(profile_id: uuid.UUID, followers: int, linked: datetime, end: datetime) -> Rows:
    """Quarterly counts from the link on, growing from 60% of today's count to all of it at
    `end`: an audience grows, and a feature at a past cutoff must see the one it had then."""
    if linked >= end:
        return [{"id": uuid.uuid4(), "profile_id": profile_id, "followers": followers,
                 "observed_at": linked}]  # fmt: skip
    moments, quarter = [linked], timedelta(days=91)
    while moments[-1] + quarter < end:
        moments.append(moments[-1] + quarter)
    moments.append(end)
    span = (end - linked).total_seconds()
    return [
        {
            "id": uuid.uuid4(),
            "profile_id": profile_id,
            "followers": round(followers * (0.6 + 0.4 * (moment - linked).total_seconds() / span)),
            "observed_at": moment,
        }
        for moment in moments
    ]


class _Seeder:
    def __init__(self, session: AsyncSession, sealer: _Sealer, world: World, progress: Progress):
        self.session = session
        self.sealer = sealer
        self.world = world
        self.progress = progress
        self.counts: Counter[str] = Counter()

    async def insert(self, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
        table = _table(model)
        for start in range(0, len(rows), CHUNK):
            await self.session.execute(insert(table), rows[start : start + CHUNK])
        self.counts[table.name] += len(rows)

    async def stores(self) -> None:
        """The chain's stores; stores that already exist (by code) are used as they are."""
        rows = await self.session.execute(select(col(Store.code), col(Store.id)))
        existing = {code: store_id for code, store_id in rows.all()}
        stores = self.world.stores
        stores[:] = [replace(store, id=existing.get(store.code, store.id)) for store in stores]
        await self.insert(
            Store,
            [
                {
                    "id": store.id,
                    "code": store.code,
                    "name": store.name,
                    "city": CITIES[store.city].name,
                    "channel": "POS",
                    "created_at": self.world.calendar.start,
                }
                for store in stores
                if store.code not in existing
            ],
        )

    async def customers(self) -> None:
        people, day_zero = self.world.people, self.world.calendar.start
        task = self.progress.add_task("customers and identities", total=len(people))
        for start in range(0, len(people), CHUNK):
            keys, customers, identities, socials, counts = [], [], [], [], []
            for person in people[start : start + CHUNK]:
                keys.append(self.sealer.key_row(person))
                customer, held, linked, observed = customer_rows(
                    self.sealer, person, day_zero, self.world.calendar.anchor
                )
                customers.append(customer)
                identities.extend(held)
                socials.extend(linked)
                counts.extend(observed)
            await self.insert(DataKey, keys)
            await self.insert(Customer, customers)
            await self.insert(Identity, identities)
            await self.insert(SocialProfile, socials)
            await self.insert(FollowerCount, counts)
            self.progress.advance(task, len(customers))

    async def events(self) -> tuple[dict[int, datetime], dict[int, list[Bought]]]:
        people, shop = self.world.people, Shop(self.world)
        first_purchase: dict[int, datetime] = {}
        bought: dict[int, list[Bought]] = {}
        task = self.progress.add_task("purchases and other events", total=len(people))
        for start in range(0, len(people), BLOCK):
            batch = Batch()
            for person in people[start : start + BLOCK]:
                outcome = Life(shop, person, batch).live()
                if outcome.first_purchase_at is not None:
                    first_purchase[person.index] = outcome.first_purchase_at
                if outcome.bought:
                    bought[person.index] = outcome.bought
            await self.insert(Event, batch.events)
            await self.insert(Event, batch.returns)
            await self.insert(EventLine, batch.lines)
            self.counts.update(batch.counts)
            self.progress.advance(task, min(BLOCK, len(people) - start))
        return first_purchase, bought

    async def influence(
        self, first_purchase: dict[int, datetime], bought: dict[int, list[Bought]]
    ) -> None:
        task = self.progress.add_task("reviews, votes and referrals", total=3)
        referrals, statuses = referral_rows(self.world, first_purchase)
        await self.insert(Referral, referrals)
        self.counts.update({f"referral_{status}": n for status, n in statuses.items()})
        self.progress.advance(task)
        reviews = build_reviews(self.world, bought)
        await self.insert(Review, [self.review_row(review) for review in reviews])
        self.progress.advance(task)
        await self.insert(ReviewVote, build_votes(self.world, reviews))
        self.progress.advance(task)

    def review_row(self, review: ReviewSeed) -> dict[str, Any]:
        person = self.world.people[review.author]
        return {
            "id": review.id,
            "customer_id": person.customer_id,
            "product_sku": review.sku,
            "rating": review.rating,
            "text_ct": self.sealer.seal(review.author, "review", "text_ct", review.id, review.text),
            "created_at": review.created_at,
        }


_DUPLICATE_KINDS = {
    "phone_again": "same phone again (unverified)",
    "email_typo": "e-mail with a typo",
    "card_online": "loyalty card used online",
}


def _summary(world: World, counts: Counter[str], seconds: float) -> str:
    kinds = Counter(person.duplicate_kind for person in world.people if person.duplicate_kind)
    duplicates = sum(kinds.values())
    how = ", ".join(f"{kinds[kind]:,} {label}" for kind, label in _DUPLICATE_KINDS.items())
    events = sum(counts[kind.value] for kind in EventType)
    converted = counts[f"referral_{ReferralStatus.CONVERTED}"]
    return (
        f"Seeded the demo retailer in {seconds:.1f} s: {world.originals:,} people as "
        f"{counts['customer']:,} customers with {counts['identity']:,} identities; "
        f"{duplicates:,} people registered a second time ({how}), left unmerged for staff. "
        f"{len(world.stores)} stores, {events:,} events ({counts['PURCHASE']:,} purchases with "
        f"{counts['event_line']:,} lines, {counts['RETURN']:,} returns, {counts['VISIT']:,} "
        f"visits, {counts['CONTACT']:,} contact-centre calls, {counts['CAMPAIGN_RESPONSE']:,} "
        f"campaign responses), {counts['review']:,} reviews with {counts['review_vote']:,} "
        f"votes, {counts['referral']:,} referrals ({converted:,} converted) and "
        f"{counts['social_profile']:,} social profiles."
    )


class DemoRefused(ValueError):
    """The demo was not generated (the database is not empty, or nothing was asked for)."""


async def seed_demo(
    settings: Settings,
    provider: KeyProvider,
    *,
    customers: int,
    seed: int,
    if_empty: bool,
    console: Console,
    anchor: datetime | None = None,
) -> str:
    """Seed `customers` people (plus their duplicates) into an empty database.

    `anchor` is the end of the two generated years (default: today, midnight UTC). A database
    that already has customers is left alone: with `if_empty` that is the expected outcome,
    without it `DemoRefused` says why nothing was seeded.
    """
    if customers < 1:
        raise DemoRefused("nothing seeded: ask for at least one customer")
    started = time.perf_counter()
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            existing = (
                await session.execute(select(func.count()).select_from(_table(Customer)))
            ).scalar_one()
        if existing:
            if if_empty:
                return f"Demo data not seeded: the database already has {existing:,} customers."
            raise DemoRefused(
                f"demo data not seeded: the database already has {existing:,} customers. "
                "The demo is generated into an empty database; point LOYALGRAPH_HOME or "
                "LOYALGRAPH_DATABASE_URL at a fresh one"
            )
        world = World(seed, customers, anchor or today_midnight())
        columns = (
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=False) as progress:
            async with transaction(sessions) as session:
                seeder = _Seeder(session, _Sealer(provider), world, progress)
                await seeder.stores()
                await seeder.customers()
                first_purchase, bought = await seeder.events()
                await seeder.influence(first_purchase, bought)
                await seed_consents(session, seeder.sealer, world, seeder.insert)
    finally:
        await engine.dispose()
    return _summary(world, seeder.counts, time.perf_counter() - started)
