"""Training and serving compute the same features: the training path loads the whole history
up to the scoring cutoff and computes features at a past cutoff; the serving path loads one
customer (and the people they referred) up to that cutoff. The rows must be identical."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph.enums import Channel, CustomerStatus, SocialPlatform
from graph.events import CustomerRef, record_purchase
from graph.influence import link_social_profile
from graph.lines import LineInput
from graph.merge import merge_customers
from graph.models import Customer
from ml.training import TrainRequest, prepare
from privacy.enforcement import restrict_processing
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from scoring.features import FEATURE_NAMES, compute_features
from scoring.history import load_history
from scoring.kinds import ModelKind
from tests.scoring_fixtures import ANCHOR

HOLDOUT = ANCHOR - timedelta(days=90)


@pytest.fixture
async def sessions(seeded_settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(seeded_settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


async def _serving_row(session: AsyncSession, owner: uuid.UUID, currency: str) -> pd.Series:
    history = await load_history(session, until=HOLDOUT, currency=currency, owners=[owner])
    return compute_features(history, HOLDOUT).iloc[history.index[owner]]


async def _an_old_customer(session: AsyncSession) -> Customer:
    """An active survivor registered well before the holdout cutoff."""
    return (
        await session.execute(
            select(Customer).where(col(Customer.survivor_id).is_(None))
            .where(col(Customer.status) == CustomerStatus.ACTIVE)
            .where(col(Customer.created_at) < HOLDOUT - timedelta(days=60)).limit(1)
        )
    ).scalar_one()  # fmt: skip


async def _link_over_time(
    sessions: async_sessionmaker[AsyncSession],
    provider: LocalKeyring,
    customer_id: uuid.UUID,
    handle: str,
    counts: list[tuple[int, datetime]],
) -> None:
    """Link a profile, then refresh its follower count, each at its own moment."""
    for followers, moment in counts:
        async with transaction(sessions) as session:
            await link_social_profile(
                session, FieldCipher(session, provider), customer_id=customer_id,
                platform=SocialPlatform.VK, handle=handle, followers=followers, now=moment,
            )  # fmt: skip


def _pick(frame: pd.DataFrame, owners: list[uuid.UUID]) -> list[uuid.UUID]:
    """Customers whose features exercise every part: referrers, reviewers, tiers, returns,
    contacts, campaigns, social profiles, and some ordinary ones."""
    picked: list[int] = []
    for column in ("referred_spend", "referred_spend_2", "helpful_votes", "tier_rank",
                   "returns_count", "low_satisfaction_180", "campaign_converted_365",
                   "social_followers", "points_redeemed_365"):  # fmt: skip
        picked += list(np.flatnonzero(frame[column].to_numpy() > 0)[:4])
    picked += list(range(0, len(frame), max(1, len(frame) // 12)))
    return [owners[i] for i in dict.fromkeys(picked)]


async def test_training_and_serving_compute_identical_features(seeded_settings, sessions):
    settings = seeded_settings
    provider = LocalKeyring(settings.keyring_path)
    # A merged pair first: the survivor's features gather both customers' rows on both paths.
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Customer).where(col(Customer.created_at) < HOLDOUT - timedelta(days=200))
                .where(col(Customer.status) == CustomerStatus.ACTIVE)
                .order_by(col(Customer.created_at)).limit(2)
            )
        ).scalars().all()  # fmt: skip
    # The merged-away customer's social profile (counted before and after the holdout cutoff)
    # stays theirs in the table and counts for the survivor on both paths.
    await _link_over_time(
        sessions, provider, rows[1].id, "merged_blogger",
        [(300, HOLDOUT - timedelta(days=50)), (900, HOLDOUT + timedelta(days=1))],
    )  # fmt: skip
    async with transaction(sessions) as session:
        merged = await merge_customers(
            session, FieldCipher(session, provider), customer_ids=[r.id for r in rows],
            survivor_id=rows[0].id, actor="staff:test",
        )  # fmt: skip
    survivor = merged.survivor.id

    async with sessions() as session:
        prepared = await prepare(
            session, request=TrainRequest(kind=ModelKind.CHURN, cutoff=ANCHOR),
            currency=settings.currency,
        )  # fmt: skip
        holdout = prepared.data.holdout
        assert holdout.cutoff == HOLDOUT
        owners = [prepared.history.owners[i] for i in holdout.cids]
        chosen = _pick(holdout.features, owners)
        if survivor in owners:
            chosen.append(survivor)
        assert len(chosen) > 30
        # The survivor on both paths, whether or not the holdout holds them.
        everyone = compute_features(prepared.history, HOLDOUT)
        whole = everyone.iloc[prepared.history.index[survivor]]
        alone = await _serving_row(session, survivor, settings.currency)
        assert whole["social_followers"] >= 300 and whole["social_profiles"] >= 1
        pd.testing.assert_series_equal(whole, alone, check_names=False, rtol=0, atol=0)
        for owner in chosen:
            training = holdout.features.iloc[owners.index(owner)]
            serving = await _serving_row(session, owner, settings.currency)
            pd.testing.assert_series_equal(
                training[list(FEATURE_NAMES)], serving[list(FEATURE_NAMES)],
                check_names=False, rtol=0, atol=0,
            )  # fmt: skip


async def test_features_ignore_what_happened_after_the_cutoff(seeded_settings, sessions):
    settings = seeded_settings
    provider = LocalKeyring(settings.keyring_path)
    async with sessions() as session:
        customer = await _an_old_customer(session)
        before = await _serving_row(session, customer.id, settings.currency)
    async with transaction(sessions) as session:
        await record_purchase(
            session, FieldCipher(session, provider), customer=CustomerRef(customer_id=customer.id),
            channel=Channel.WEB, lines=[LineInput("LATE-1", 1, "decor", 990_000)],
            idempotency_key="after-the-cutoff", currency=settings.currency,
            occurred_at=HOLDOUT + timedelta(days=1),
        )  # fmt: skip
    async with sessions() as session:
        after = await _serving_row(session, customer.id, settings.currency)
        later = await load_history(
            session, until=ANCHOR, currency=settings.currency, owners=[customer.id]
        )
        moved = compute_features(later, HOLDOUT + timedelta(days=2)).iloc[later.index[customer.id]]
    pd.testing.assert_series_equal(before, after)
    assert moved["frequency"] == before["frequency"] + 1
    assert moved["recency_days"] < 2


async def test_a_restricted_referee_drops_out_of_the_referrers_features(seeded_settings, sessions):
    """The referee's purchases stop counting for their referrer once the referee may no longer
    be profiled, on the serving path and the training path alike."""
    settings = seeded_settings
    async with sessions() as session:
        everyone = await load_history(session, until=HOLDOUT, currency=settings.currency)
        frame = compute_features(everyone, HOLDOUT)
        spend = frame["monetary"].to_numpy()
        joined = np.flatnonzero(
            (everyone.ref_referee >= 0) & everyone.profiled[everyone.ref_referee]
            & (everyone.ref_registered_at < everyone.until) & (spend[everyone.ref_referee] > 0)
        )  # fmt: skip
        assert joined.size > 0
        referrer = everyone.owners[everyone.ref_referrer[joined[0]]]
        referee = everyone.owners[everyone.ref_referee[joined[0]]]
        lost = spend[everyone.index[referee]]
        before = await _serving_row(session, referrer, settings.currency)
    async with transaction(sessions) as session:
        await restrict_processing(
            session, LocalKeyring(settings.keyring_path), subject_id=referee,
            request_id=None, actor="staff:test",
        )  # fmt: skip
    async with sessions() as session:
        after = await _serving_row(session, referrer, settings.currency)
        trained = await load_history(session, until=HOLDOUT, currency=settings.currency)
        training = compute_features(trained, HOLDOUT).iloc[trained.index[referrer]]
    assert not trained.profiled[trained.index[referee]]
    assert after["referred_spend"] == pytest.approx(before["referred_spend"] - lost)
    assert after["referrals_made"] == before["referrals_made"]
    pd.testing.assert_series_equal(
        training[list(FEATURE_NAMES)], after[list(FEATURE_NAMES)], check_names=False, rtol=0, atol=0
    )


async def test_a_follower_count_is_the_one_known_at_the_cutoff(seeded_settings, sessions):
    settings = seeded_settings
    provider = LocalKeyring(settings.keyring_path)
    async with sessions() as session:
        customer = await _an_old_customer(session)
        before = await _serving_row(session, customer.id, settings.currency)
    await _link_over_time(
        sessions, provider, customer.id, "@pit_blogger",
        [(100, HOLDOUT - timedelta(days=30)), (5000, HOLDOUT + timedelta(days=1))],
    )  # fmt: skip
    async with sessions() as session:
        at_holdout = await _serving_row(session, customer.id, settings.currency)
        later = await load_history(
            session, until=ANCHOR, currency=settings.currency, owners=[customer.id]
        )
        after = compute_features(later, HOLDOUT + timedelta(days=2)).iloc[later.index[customer.id]]
    assert at_holdout["social_followers"] == before["social_followers"] + 100
    assert after["social_followers"] == before["social_followers"] + 5000
    assert (
        after["social_profiles"] == at_holdout["social_profiles"] == before["social_profiles"] + 1
    )
