"""Probabilistic identity resolution on the demo: real database, real keys, real Splink."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

import graph.demo
from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph import privacy_sources as graph_privacy
from graph.demo_world import World
from graph.enums import CustomerStatus
from graph.merge import unmerge_customer
from graph.models import Customer, MergeRecord
from graph.resolution import service as resolution_service
from graph.resolution.job import resolve_base
from graph.resolution.models import BlockingKey, CandidateStatus, DuplicateCandidate
from graph.resolution.service import Thresholds, decide
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from privacy.subject_rights import destroy_subject
from tests.dumps import raw_database

PEOPLE = 160
SEED = 11
ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)


async def _seed(settings: Settings, provider: LocalKeyring, monkeypatch: Any) -> World:
    captured: list[World] = []

    class Capturing(World):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            captured.append(self)

    monkeypatch.setattr(graph.demo, "World", Capturing)
    await graph.demo.seed_demo(
        settings,
        provider,
        customers=PEOPLE,
        seed=SEED,
        if_empty=False,
        console=Console(file=io.StringIO()),
        anchor=ANCHOR,
    )
    return captured[0]


def _truth(world: World) -> tuple[set[frozenset[uuid.UUID]], set[frozenset[uuid.UUID]]]:
    """(pairs of one person registered twice, hard-negative pairs of two people)."""
    ids = {person.index: person.customer_id for person in world.people}
    same = {
        frozenset((person.customer_id, ids[person.duplicate_of]))
        for person in world.people
        if person.duplicate_of is not None
    }
    apart = {
        frozenset((ids[a], ids[b])) for a, b, _ in getattr(world, "hard_negatives", [])
    }
    return same, apart


async def _pairs(session: AsyncSession) -> dict[frozenset[uuid.UUID], DuplicateCandidate]:
    rows = (await session.execute(select(DuplicateCandidate))).scalars().all()
    return {frozenset((row.left_id, row.right_id)): row for row in rows}


@pytest.fixture
async def world(settings: Settings, provider: LocalKeyring, monkeypatch: Any) -> World:
    return await _seed(settings, provider, monkeypatch)


@pytest.fixture
async def db(settings: Settings) -> Any:
    graph_privacy.install()
    resolution_service.install()
    engine = create_engine(settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


async def test_demo_duplicates_are_proposed_and_hard_negatives_are_not(
    world: World, db: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    report = await resolve_base(db, provider, merge=False, max_pairs=2e4)
    same, apart = _truth(world)
    assert same, "the demo has people registered twice"
    async with db() as session:
        pairs = await _pairs(session)
    proposed = {key for key, row in pairs.items() if row.probability >= Thresholds().review}
    automatic = {key for key, row in pairs.items() if row.probability >= Thresholds().automatic}
    found = len(same & proposed) / len(same)
    assert found >= 0.95, f"only {found:.0%} of the demo's duplicates were proposed"
    assert not (apart & proposed), "a hard negative was proposed as one person"
    assert automatic <= same, "an automatic merge would join two different people"
    assert report.customers == len(world.people)


async def test_resolve_merges_automatically_and_unmerge_makes_the_pair_distinct(
    world: World, db: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    report = await resolve_base(db, provider, max_pairs=2e4)
    assert report.automatic_merges > 0
    async with db() as session:
        row = (
            await session.execute(
                select(DuplicateCandidate)
                .where(col(DuplicateCandidate.status) == CandidateStatus.AUTO_MERGED)
                .limit(1)
            )
        ).scalar_one()
        record = await session.get(MergeRecord, row.merge_record_id)
        assert record is not None
        assert record.actor == "identity-resolution"
        assert record.details["automatic"]["score"] >= Thresholds().automatic
        merged_id = record.merged_id
    async with transaction(db) as session:
        await unmerge_customer(session, provider, customer_id=merged_id, actor="test")
    async with db() as session:
        again = await session.get(DuplicateCandidate, row.id)
        assert again is not None and again.status == CandidateStatus.DISTINCT
        restored = await session.get(Customer, merged_id)
        assert restored is not None and restored.status == CustomerStatus.ACTIVE
    # A second run neither proposes nor merges the pair again.
    await resolve_base(db, provider, max_pairs=2e4)
    async with db() as session:
        again = await session.get(DuplicateCandidate, row.id)
        assert again is not None and again.status == CandidateStatus.DISTINCT
        restored = await session.get(Customer, merged_id)
        assert restored is not None and restored.status == CustomerStatus.ACTIVE


async def test_distinct_decision_stays_distinct_across_runs(
    world: World, db: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    await resolve_base(db, provider, merge=False, max_pairs=2e4)
    async with db() as session:
        best = (
            await session.execute(
                select(DuplicateCandidate)
                .order_by(col(DuplicateCandidate.probability).desc())
                .limit(1)
            )
        ).scalar_one()
    async with transaction(db) as session:
        await decide(
            session,
            FieldCipher(session, provider),
            candidate_id=best.id,
            decision=CandidateStatus.DISTINCT,
            actor="operator-1",
        )
    await resolve_base(db, provider, max_pairs=2e4)
    async with db() as session:
        row = await session.get(DuplicateCandidate, best.id)
        assert row is not None and row.status == CandidateStatus.DISTINCT
        for customer_id in (best.left_id, best.right_id):
            customer = await session.get(Customer, customer_id)
            assert customer is not None
            other = best.right_id if customer_id == best.left_id else best.left_id
            assert customer.survivor_id != other


async def test_raw_database_has_no_plaintext_name_after_resolve(
    world: World, db: async_sessionmaker[AsyncSession], provider: LocalKeyring, settings: Settings
) -> None:
    await resolve_base(db, provider, max_pairs=2e4)
    raw = raw_database(settings.database_url)
    surnames = {person.last_name for person in world.people}
    for name in surnames:
        assert name.encode() not in raw
        assert name.lower().encode() not in raw
    async with db() as session:
        keys = (await session.execute(select(func.count()).select_from(BlockingKey))).scalar()
    assert keys


async def test_destruction_leaves_no_pair_or_blocking_key(
    world: World, db: async_sessionmaker[AsyncSession], provider: LocalKeyring
) -> None:
    await resolve_base(db, provider, merge=False, max_pairs=2e4)
    async with db() as session:
        row = (
            await session.execute(
                select(DuplicateCandidate)
                .order_by(col(DuplicateCandidate.probability).desc())
                .limit(1)
            )
        ).scalar_one()
    subject = row.left_id
    async with transaction(db) as session:
        await destroy_subject(
            session,
            FieldCipher(session, provider),
            subject_id=subject,
            actor="staff:compliance",
            request_id=uuid.uuid4(),
        )
    async with db() as session:
        left = await session.execute(
            select(func.count())
            .select_from(DuplicateCandidate)
            .where(
                or_(
                    col(DuplicateCandidate.left_id) == subject,
                    col(DuplicateCandidate.right_id) == subject,
                )
            )
        )
        assert left.scalar() == 0
        keys = await session.execute(
            select(func.count())
            .select_from(BlockingKey)
            .where(col(BlockingKey.customer_id) == subject)
        )
        assert keys.scalar() == 0
