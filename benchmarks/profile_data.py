"""Data for benchmarks/graphql_profile.py: a scratch database seeded through the services.

`seed` registers customers (phone, e-mail, loyalty card, encrypted profile), records about
`events_per_customer` events each (60% purchases with 1-3 lines, then visits, contacts and
campaign responses, over the last two years), and adds 0-3 reviews per customer with 0-4 votes
from other customers, all with the real service functions inside `core.db` transactions and a
`FieldCipher` over the given key provider. Same `rng` seed, same data.

`scratch_database` yields SQLite under a directory, or a PostgreSQL database created through
asyncpg on the server of an admin URL and dropped (WITH (FORCE)) afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from core.clock import utcnow
from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph.customers import register_customer
from graph.enums import CampaignAction, Channel, EventType
from graph.events import CustomerRef, record_event, record_purchase
from graph.influence import submit_review, vote_review
from graph.lines import LineInput
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider

CURRENCY = "RUB"
IDENTITIES_PER_CUSTOMER = 3  # phone, e-mail, loyalty card


@dataclass
class Seeded:
    customer_ids: list[uuid.UUID]
    events: dict[uuid.UUID, int] = field(default_factory=dict)
    reviews: dict[uuid.UUID, int] = field(default_factory=dict)
    helpful_votes: dict[uuid.UUID, int] = field(default_factory=dict)
    seconds: float = 0.0


SKUS = [f"SKU-{n:04d}" for n in range(60)]
CATEGORIES = ["shoes", "outerwear", "accessories", "kids", "sport", "home"]
REVIEW_TEXTS = [
    "Good quality, true to size.",
    "Arrived quickly; the colour is slightly darker than in the photo.",
    "Comfortable for everyday wear, would buy again.",
    "Average. The stitching came loose after a month.",
    "Excellent value for the price. Отличное качество!",
]


async def seed(
    settings: Settings,
    provider: KeyProvider,
    *,
    customers: int,
    events_per_customer: int,
    rng: random.Random,
) -> Seeded:
    started = time.perf_counter()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    now = utcnow()
    result = Seeded(customer_ids=[])
    try:
        batch = 25
        for start in range(0, customers, batch):
            async with transaction(sessions) as session:
                cipher = FieldCipher(session, provider)
                for n in range(start, min(start + batch, customers)):
                    registered = await register_customer(
                        session,
                        cipher,
                        channel=rng.choice(list(Channel)),
                        phone=f"+7916{n:07d}",
                        email=f"customer{n}@loyalgraph-bench.ru",
                        loyalty_card=f"LG{n:08d}",
                        first_name=rng.choice(["Anna", "Ivan", "Olga", "Pavel", "Maria"]),
                        last_name=rng.choice(["Ivanova", "Petrov", "Sidorova", "Smirnov"]),
                        birth_date=date(1960, 1, 1) + timedelta(days=rng.randrange(16_000)),
                        address=f"Moscow, Tverskaya st. {rng.randrange(1, 200)}",
                        now=now - timedelta(days=800),
                    )
                    customer_id = registered.customer.id
                    result.customer_ids.append(customer_id)
                    count = max(1, events_per_customer + rng.randint(-3, 3))
                    for j in range(count):
                        await _seed_event(session, cipher, customer_id, f"bench-{n}-{j}", rng)
                    result.events[customer_id] = count
        # Reviews and votes, once every customer exists.
        async with transaction(sessions) as session:
            cipher = FieldCipher(session, provider)
            for n, customer_id in enumerate(result.customer_ids):
                for sku in rng.sample(SKUS, rng.choice([0, 0, 1, 1, 2, 3])):
                    review = await submit_review(
                        session,
                        cipher,
                        customer_id=customer_id,
                        product_sku=sku,
                        rating=rng.randint(1, 5),
                        text=rng.choice(REVIEW_TEXTS),
                        now=now - timedelta(days=rng.randrange(1, 700)),
                    )
                    result.reviews[customer_id] = result.reviews.get(customer_id, 0) + 1
                    others = result.customer_ids[:n] + result.customer_ids[n + 1 :]
                    for voter in rng.sample(others, min(len(others), rng.randint(0, 4))):
                        helpful = rng.random() < 0.7
                        await vote_review(
                            session, review_id=review.id, voter_id=voter, helpful=helpful
                        )
                        if helpful:
                            result.helpful_votes[customer_id] = (
                                result.helpful_votes.get(customer_id, 0) + 1
                            )
    finally:
        await engine.dispose()
    result.seconds = time.perf_counter() - started
    return result


async def _seed_event(
    session: Any, cipher: FieldCipher, customer_id: uuid.UUID, key: str, rng: random.Random
) -> None:
    """One event: 60% purchases (1-3 lines), then visits, contacts, campaign responses."""
    common: dict[str, Any] = {
        "customer": CustomerRef(customer_id=customer_id),
        "channel": rng.choice(list(Channel)),
        "idempotency_key": key,
        "occurred_at": utcnow() - timedelta(days=rng.uniform(1, 730)),
    }
    roll = rng.random()
    if roll < 0.6:
        lines = [
            LineInput(
                sku=rng.choice(SKUS),
                quantity=rng.randint(1, 3),
                category=rng.choice(CATEGORIES),
                unit_price_minor=rng.randrange(19_900, 1_500_000, 100),
            )
            for _ in range(rng.randint(1, 3))
        ]
        await record_purchase(session, cipher, lines=lines, currency=CURRENCY, **common)
    elif roll < 0.8:
        await record_event(session, cipher, type=EventType.VISIT, **common)
    elif roll < 0.9:
        topic = rng.choice(["delivery", "refund", "points_balance", "size_exchange"])
        common |= {"channel": Channel.CONTACT_CENTER, "topic": topic}
        await record_event(
            session, cipher, type=EventType.CONTACT, satisfaction=rng.randint(1, 5), **common
        )
    else:
        await record_event(
            session,
            cipher,
            type=EventType.CAMPAIGN_RESPONSE,
            campaign=rng.choice(["spring-sale", "birthday", "winback-90"]),
            campaign_channel=rng.choice([Channel.WEB, Channel.MOBILE_APP]),
            action=rng.choice(list(CampaignAction)),
            **common,
        )


def _pg_connect_args(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    return {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "password": parsed.password,
        "database": parsed.database or "postgres",
    }


async def _pg_admin(url: str, *statements: str) -> str:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(**_pg_connect_args(url))
    try:
        for statement in statements:
            await connection.execute(statement)
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def _pg_database_url(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def scratch_database(admin_url: str | None, home: Path) -> Iterator[tuple[str, str, str]]:
    """(database URL, backend, server version): SQLite under `home`, or a PostgreSQL database
    created on the server of `admin_url` and dropped afterwards."""
    if admin_url is None:
        yield f"sqlite:///{home / 'loyalgraph.db'}", "sqlite", sqlite3.sqlite_version
        return
    if not admin_url.startswith(("postgresql", "postgres")):
        raise SystemExit("--database-url must be postgresql://... (SQLite is the default)")
    name = f"lg_bench_{uuid.uuid4().hex[:12]}"
    version = asyncio.run(_pg_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_database_url(admin_url, name), "postgresql", version
    finally:
        asyncio.run(_pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
