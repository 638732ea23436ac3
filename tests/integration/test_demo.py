"""`seed-demo`: deterministic shape, believable and consistent data, personal data sealed."""

from __future__ import annotations

import io
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.db import create_engine, session_factory
from core.settings import Settings
from graph.customers import decrypt_profile, find_by_identifier
from graph.demo import DemoRefused, seed_demo
from graph.demo_data import EMAIL_TYPOS
from graph.demo_world import World
from graph.enums import EventType, IdentityKind, ReferralStatus
from graph.identity import normalise
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
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from privacy.models import DataKey
from tests.dumps import raw_database

PEOPLE = 200
TYPO_DOMAINS = {typo for typos in EMAIL_TYPOS.values() for typo in typos}
SEED = 7
ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)
TABLES = (
    ReviewVote, Review, Referral, FollowerCount, SocialProfile, EventLine, Event, Identity, DataKey,
)  # fmt: skip
CHILDREN = 6  # the tables before Event: rows that refer to events or to nothing


def _console() -> Console:
    return Console(file=io.StringIO(), width=100)


async def _seed(settings: Settings, provider: LocalKeyring, *, if_empty: bool = False) -> str:
    return await seed_demo(
        settings,
        provider,
        customers=PEOPLE,
        seed=SEED,
        if_empty=if_empty,
        console=_console(),
        anchor=ANCHOR,
    )


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def _shape(session: AsyncSession) -> dict[str, Any]:
    """Everything about the data that does not depend on fresh ids, keys and nonces."""
    counts = {
        model.__name__: (await session.execute(select(func.count()).select_from(model))).scalar()
        for model in (*TABLES, Customer, Store)
    }
    events = await session.execute(
        select(
            Event.type,
            Event.channel,
            Event.occurred_at,
            Event.amount_minor,
            Event.topic,
            Event.satisfaction,
            Event.campaign,
            Event.action,
        )
    )
    identities = await session.execute(
        select(Identity.kind, Identity.value_index, Identity.verified)
    )
    social = await session.execute(
        select(SocialProfile.platform, SocialProfile.handle_index, SocialProfile.followers)
    )
    referrals = await session.execute(
        select(Referral.code, Referral.status, Referral.created_at, Referral.converted_at)
    )
    followers = await session.execute(
        select(SocialProfile.handle_index, FollowerCount.followers, FollowerCount.observed_at).join(
            SocialProfile, col(SocialProfile.id) == col(FollowerCount.profile_id)
        )
    )
    return {
        "counts": counts,
        "events": sorted(map(tuple, events.all()), key=repr),
        "identities": sorted(map(tuple, identities.all())),
        "social": sorted(map(tuple, social.all())),
        "referrals": sorted(map(tuple, referrals.all()), key=repr),
        "followers": sorted(map(tuple, followers.all()), key=repr),
    }


async def _wipe(session: AsyncSession) -> None:
    for model in TABLES[:CHILDREN]:
        await session.execute(delete(model))
    await session.execute(delete(Event).where(col(Event.purchase_id).is_not(None)))
    for model in (*TABLES[CHILDREN:], Customer, Store):
        await session.execute(delete(model))
    await session.commit()


async def test_same_seed_gives_the_same_retailer(settings, provider):
    # given a demo seeded into an empty database
    await _seed(settings, provider)
    async with _session(settings) as session:
        first = await _shape(session)
        await _wipe(session)
    # when the same seed is generated again into the emptied database
    summary = await _seed(settings, provider)
    async with _session(settings) as session:
        second = await _shape(session)
    # then the data has the same shape down to every event, blind index and referral
    assert first == second
    counts = first["counts"]
    assert counts["Customer"] == len(World(SEED, PEOPLE, ANCHOR).people) > PEOPLE
    assert counts["Store"] == 20
    assert counts["Event"] > PEOPLE * 5
    assert counts["Review"] > 0 and counts["ReviewVote"] > 0 and counts["Referral"] > 0
    assert f"{PEOPLE} people" in summary
    # Follower counts grow over time, and the last one observed is the profile's count.
    assert counts["FollowerCount"] > counts["SocialProfile"] > 0
    latest: dict[str, int] = {}
    for handle, followers, _ in sorted(first["followers"], key=lambda row: row[2]):
        latest[handle] = followers
    assert latest == {handle: followers for _, handle, followers in first["social"]}


async def test_seeded_data_is_consistent_and_readable_through_the_services(settings, provider):
    await _seed(settings, provider)
    world = World(SEED, PEOPLE, ANCHOR)
    async with _session(settings) as session:
        cipher = FieldCipher(session, provider)
        # identities are sealed exactly as the services seal them: lookups and decryption work
        for person in world.people[:20]:
            identifier = person.identities[0]
            found = await find_by_identifier(
                session, cipher, kind=identifier.kind, value=identifier.value,
                source_system=identifier.source_system,
            )  # fmt: skip
            assert found is not None
            profile = await decrypt_profile(cipher, found)
            assert (profile.first_name, profile.last_name) == (person.first_name, person.last_name)
            assert (profile.birth_date, profile.address) == (person.birth_date, person.address)

        # phones and e-mails are valid, already normalised, and decrypt under their own rows
        rows = (await session.execute(select(Identity))).scalars().all()
        values: dict[uuid.UUID, list[tuple[str, str, bool]]] = defaultdict(list)
        for row in rows:
            value = await cipher.decrypt(
                table="identity", column="value_ct", row_id=row.id, blob=row.value_ct
            )
            assert value is not None
            if row.kind in (IdentityKind.PHONE, IdentityKind.EMAIL):
                assert normalise(IdentityKind(row.kind), value) == value
            if row.kind == IdentityKind.PHONE:
                assert value.startswith("+79")
            values[row.customer_id].append((row.kind, value, row.verified))

        # the duplicate people are there, as separate customers that nobody merged
        shared: dict[tuple[str, str], list[Identity]] = defaultdict(list)
        for row in rows:
            shared[(row.kind, row.value_index)].append(row)
        doubles = [group for group in shared.values() if len(group) > 1]
        assert doubles, "some people registered twice with the same phone or card"
        for group in doubles:
            assert len({row.customer_id for row in group}) == len(group)
            assert sum(row.verified for row in group) <= 1
        typos = [
            value
            for held in values.values()
            for kind, value, verified in held
            if kind == IdentityKind.EMAIL and not verified and value.split("@")[1] in TYPO_DOMAINS
        ]
        duplicates = [p for p in world.people if p.duplicate_of is not None]
        assert len(duplicates) == round(PEOPLE * 0.05)
        expected_typos = sum(p.duplicate_kind == "email_typo" for p in duplicates)
        assert len(typos) == expected_typos
        merged = await session.execute(
            select(func.count()).where(col(Customer.survivor_id).is_not(None))
        )
        assert merged.scalar() == 0

        await _check_referrals(session)
        await _check_returns(session)


async def _check_referrals(session: AsyncSession) -> None:
    """Statuses follow the referee: registered when they joined, converted by a purchase."""
    first_purchase = dict(
        (
            await session.execute(
                select(Event.customer_id, func.min(Event.occurred_at))
                .where(col(Event.type) == EventType.PURCHASE)
                .group_by(col(Event.customer_id))
            )
        ).all()
    )
    referrals = (await session.execute(select(Referral))).scalars().all()
    assert {r.status for r in referrals} == set(ReferralStatus)
    referees = [r.referee_id for r in referrals if r.referee_id is not None]
    assert len(referees) == len(set(referees)), "nobody is referred twice"
    for referral in referrals:
        if referral.status == ReferralStatus.INVITED:
            assert referral.referee_id is None and referral.registered_at is None
            continue
        assert referral.referee_id is not None and referral.referee_id != referral.referrer_id
        referee = await session.get(Customer, referral.referee_id)
        assert referee is not None and referral.registered_at == referee.created_at
        assert referral.created_at <= referral.registered_at
        bought = first_purchase.get(referral.referee_id)
        if referral.status == ReferralStatus.CONVERTED:
            assert bought is not None and referral.converted_at is not None
            assert abs((referral.converted_at - bought).total_seconds()) < 1
            assert referral.registered_at <= referral.converted_at
        else:
            assert bought is None and referral.converted_at is None


async def _check_returns(session: AsyncSession) -> None:
    """Returns refer to purchases, come later, and never exceed what was bought."""
    lines: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[uuid.UUID, int] = defaultdict(int)
    for line in (await session.execute(select(EventLine))).scalars():
        lines[line.event_id][line.sku] += line.quantity
        totals[line.event_id] += line.quantity * line.unit_price_minor
    events = {e.id: e for e in (await session.execute(select(Event))).scalars()}
    returned: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    returns = [e for e in events.values() if e.type == EventType.RETURN]
    assert returns
    for event in events.values():
        if event.type in (EventType.PURCHASE, EventType.RETURN):
            assert event.amount_minor == totals[event.id] and event.currency == "RUB"
        assert event.occurred_at <= ANCHOR
    for event in returns:
        assert event.purchase_id is not None
        purchase = events[event.purchase_id]
        assert purchase.type == EventType.PURCHASE and purchase.occurred_at < event.occurred_at
        assert purchase.customer_id == event.customer_id
        for sku, quantity in lines[event.id].items():
            returned[purchase.id][sku] += quantity
    for purchase_id, skus in returned.items():
        for sku, quantity in skus.items():
            assert 0 < quantity <= lines[purchase_id][sku]


def _plaintexts(world: World) -> set[str]:
    values: set[str] = set()
    for person in world.people:
        values.update({person.first_name, person.last_name})
        for item in person.identities:
            system = f"{item.source_system}:" if item.source_system else ""
            values.add(system + item.value)  # a bare 7-digit legacy id would match by chance
            if item.kind == IdentityKind.PHONE:
                values.add(item.value[2:])  # the national number without +7
        values.update(social.handle for social in person.socials)
        if person.address:
            values.add(person.address)
        if person.birth_date:
            values.add(person.birth_date.isoformat())
    return {value for value in values if len(value) >= 5}


async def test_no_plaintext_personal_data_in_the_database(settings, provider):
    await _seed(settings, provider)
    raw = raw_database(settings.database_url)
    world = World(SEED, PEOPLE, ANCHOR)
    leaked = [value for value in _plaintexts(world) if value.encode() in raw]
    assert leaked == []
    # the check is not vacuous: non-personal strings of the demo are in the file as text
    assert b"MSK-001" in raw and "Москва".encode() in raw


async def test_if_empty_leaves_a_seeded_database_alone(settings, provider):
    await _seed(settings, provider)
    async with _session(settings) as session:
        before = await _shape(session)
    summary = await _seed(settings, provider, if_empty=True)
    assert "not seeded" in summary
    with pytest.raises(DemoRefused, match="not seeded"):
        await _seed(settings, provider)
    async with _session(settings) as session:
        assert await _shape(session) == before
