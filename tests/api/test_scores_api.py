"""Scores over HTTP: staff read them with their reasons, nobody reads a score of a customer who
may not be profiled, filters and topInfluencers see the same rule, and scoresRefresh scores one
customer online with the champions the process loaded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlmodel import col
from starlette.applications import Starlette

from api.apikeys import create_api_key
from api.app import create_app
from api.schema.common import to_global_id
from core.clock import utcnow
from core.db import transaction
from core.settings import Settings
from privacy.consent import Evidence, withdraw_consent
from privacy.enforcement import allowed_subjects, lift_restriction, restrict_processing
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from privacy.purposes import CollectionChannel, CollectionMethod, Purpose
from privacy.subject_rights import access_package, destroy_subject
from scoring.batch import Models, ScoreSet, compute_scores, store_scores
from scoring.kinds import ModelKind
from scoring.models import CustomerInfluence, CustomerScore, ScoringRun
from scoring.registry import load_alias
from tests.conftest import GraphQL
from tests.scoring_fixtures import ANCHOR, with_champions

SCORES = """
query Scores($id: ID!) {
  customer(id: $id) {
    scores {
      churn { probability riskBand percentile modelName modelVersion cutoff horizonDays scoredAt
              topReasons { feature description contribution value } }
      value { predicted { amountMinor currency } networkValue { amountMinor }
              totalValue { amountMinor } percentile segment modelVersion topReasons { feature } }
    }
    influence { score percentile reach reviewCount helpfulVotes referralsConverted isInfluencer
                referredSpend { amountMinor } ownSpend { amountMinor } ownSpendPercentile }
  }
}
"""
FILTERED = """
query Filtered($filter: CustomerFilter!, $first: Int!) {
  customers(first: $first, filter: $filter) {
    edges { node { id scores { churn { riskBand } value { segment } } influence { isInfluencer } } }
  }
}
"""
TOP = """
query Top($first: Int, $after: String) {
  topInfluencers(first: $first, after: $after) {
    edges { cursor node {
      customer { id }
      influence { score percentile ownSpendPercentile referredSpend { amountMinor } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
REFRESH = """
mutation Refresh($id: ID!) {
  scoresRefresh(input: {customerId: $id}) {
    scores { churn { probability cutoff scoredAt modelVersion } value { percentile } }
    errors { code message field }
  }
}
"""


@dataclass
class Scored:
    app: Starlette
    gql: GraphQL
    settings: Settings
    provider: LocalKeyring
    scores: ScoreSet

    @property
    def sessions(self) -> Any:
        return self.app.state.sessions

    def scored_ids(self) -> list[uuid.UUID]:
        return sorted({row["customer_id"] for row in self.scores.scores}, key=str)


async def _score_everyone(app: Starlette, settings: Settings) -> tuple[ScoreSet, ScoringRun]:
    models = Models(
        churn=load_alias(settings.mlflow_tracking_uri, ModelKind.CHURN),
        value=load_alias(settings.mlflow_tracking_uri, ModelKind.VALUE),
    )
    async with app.state.sessions() as session:
        scores = await compute_scores(
            session, models=models, cutoff=ANCHOR, currency=settings.currency
        )
    async with transaction(app.state.sessions) as session:
        run = await store_scores(session, scores, actor="test")
    return scores, run


@pytest.fixture
async def scored(seeded_settings, tmp_path, trained_store) -> AsyncIterator[Scored]:
    settings = with_champions(seeded_settings, trained_store, tmp_path)
    provider = LocalKeyring(settings.keyring_path)
    app = create_app(settings, provider)
    scores, _ = await _score_everyone(app, settings)
    async with transaction(app.state.sessions) as session:
        _, key = await create_api_key(session, app_name="test-web")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        gql = GraphQL(client, provider)
        gql.api_key = key
        yield Scored(app, gql, settings, provider, scores)
    await app.state.engine.dispose()


def _gid(customer_id: uuid.UUID) -> str:
    return str(to_global_id("Customer", customer_id))


async def _unscored_buyer(scored: Scored) -> uuid.UUID:
    """An active customer with purchases whom the batch did not score (no consent)."""
    from graph.models import Customer, Event

    async with scored.sessions() as session:
        buyers = (
            await session.execute(
                select(col(Customer.id)).join(Event, col(Event.customer_id) == col(Customer.id))
                .where(col(Customer.survivor_id).is_(None), col(Event.occurred_at) < ANCHOR)
                .distinct().limit(400)
            )
        ).scalars().all()  # fmt: skip
        allowed = await allowed_subjects(session, buyers, purpose=Purpose.PROFILING)
    return next(owner for owner in buyers if owner not in allowed)


async def test_staff_read_scores_with_reasons_and_influence(scored):
    owner = scored.scored_ids()[0]
    stored = {row["kind"]: row for row in scored.scores.scores if row["customer_id"] == owner}
    for role in ("operator", "analyst"):
        data = await scored.gql.data(SCORES, {"id": _gid(owner)}, as_=role)
        churn = data["customer"]["scores"]["churn"]
        value = data["customer"]["scores"]["value"]
        assert churn["probability"] == pytest.approx(stored["churn"]["score"])
        assert churn["modelName"] == "loyalgraph-churn" and churn["modelVersion"] == "1"
        assert datetime.fromisoformat(churn["cutoff"]) == ANCHOR and churn["horizonDays"] == 90
        assert len(churn["topReasons"]) == 5 and all(r["description"] for r in churn["topReasons"])
        assert value["predicted"]["amountMinor"] == stored["value"]["score"]
        total = value["predicted"]["amountMinor"] + value["networkValue"]["amountMinor"]
        assert value["totalValue"]["amountMinor"] == total
        assert data["customer"]["influence"]["score"] > 0


async def test_customers_and_apps_may_not_read_scores(scored):
    owner = scored.scored_ids()[0]
    for who in ("app", "customer"):
        body = await scored.gql.call(SCORES, {"id": _gid(owner)}, as_=who, customer=str(owner))
        codes = {error["extensions"]["code"] for error in body["errors"]}
        assert codes == {"FORBIDDEN"}, body
    me = await scored.gql.call("{ me { scores { churn { probability } } } }", as_="customer",
                               customer=str(owner))  # fmt: skip
    assert me["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_customer_without_profiling_consent_is_neither_scored_nor_shown(scored):
    owner = await _unscored_buyer(scored)
    data = await scored.gql.data(SCORES, {"id": _gid(owner)})
    assert data["customer"] == {"scores": None, "influence": None}
    async with scored.sessions() as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(CustomerScore)
            .where(col(CustomerScore.customer_id) == owner)
        )
    assert rows == 0


async def test_withdrawn_consent_hides_scores_at_once_and_the_next_batch_deletes_them(scored):
    owner = scored.scored_ids()[1]
    async with transaction(scored.sessions) as session:
        await withdraw_consent(
            session, FieldCipher(session, scored.provider), subject_id=owner,
            purpose=Purpose.PROFILING, channel=None,
            evidence=Evidence(occurred_at=utcnow(), collected_channel=CollectionChannel.WEB,
                              method=CollectionMethod.CHECKBOX, actor=f"customer:{owner}"),
        )  # fmt: skip
    data = await scored.gql.data(SCORES, {"id": _gid(owner)})
    assert data["customer"] == {"scores": None, "influence": None}
    listed = await scored.gql.data(FILTERED, {"filter": {"churnRiskAtLeast": "LOW"}, "first": 100})
    assert _gid(owner) not in {edge["node"]["id"] for edge in listed["customers"]["edges"]}

    _, run = await _score_everyone(scored.app, scored.settings)

    assert run.removed == 1
    async with scored.sessions() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(CustomerScore)
            .where(col(CustomerScore.customer_id) == owner)
        )
        influence = await session.get(CustomerInfluence, owner)
    assert left == 0 and influence is None


async def test_a_blocked_customer_shows_no_score_until_the_block_is_lifted(scored):
    owner = scored.scored_ids()[2]
    async with transaction(scored.sessions) as session:
        await restrict_processing(
            session, scored.provider, subject_id=owner, request_id=None, actor="staff:test"
        )
    assert (await scored.gql.data(SCORES, {"id": _gid(owner)}))["customer"]["scores"] is None
    async with transaction(scored.sessions) as session:
        await lift_restriction(session, scored.provider, subject_id=owner, actor="staff:test")
    assert (await scored.gql.data(SCORES, {"id": _gid(owner)}))["customer"]["scores"] is not None


@pytest.mark.parametrize(
    ("filter", "check"),
    [
        ({"churnRiskAtLeast": "HIGH"}, lambda n: n["scores"]["churn"]["riskBand"] == "HIGH"),
        ({"churnRiskAtLeast": "MEDIUM"},
         lambda n: n["scores"]["churn"]["riskBand"] in {"MEDIUM", "HIGH"}),
        ({"valueSegment": "TOP"}, lambda n: n["scores"]["value"]["segment"] == "TOP"),
        ({"influencer": True}, lambda n: n["influence"]["isInfluencer"]),
        ({"valueSegment": "LOW", "churnRiskAtLeast": "HIGH"},
         lambda n: n["scores"]["value"]["segment"] == "LOW"
         and n["scores"]["churn"]["riskBand"] == "HIGH"),
    ],
)  # fmt: skip
async def test_customers_filter_by_scores(scored, filter, check):
    data = await scored.gql.data(FILTERED, {"filter": filter, "first": 100}, as_="analyst")
    nodes = [edge["node"] for edge in data["customers"]["edges"]]
    assert nodes, filter
    assert all(check(node) for node in nodes)


async def test_top_influencers_far_exceed_their_own_spend(scored):
    first = (await scored.gql.data(TOP, {"first": 3}))["topInfluencers"]
    rest = await scored.gql.data(TOP, {"first": 100, "after": first["pageInfo"]["endCursor"]})
    found = [edge["node"] for edge in first["edges"] + rest["topInfluencers"]["edges"]]
    assert first["pageInfo"]["hasNextPage"] and len(found) > 3
    ids = [item["customer"]["id"] for item in found]
    assert len(set(ids)) == len(ids)  # the pages do not overlap
    scores = [item["influence"]["score"] for item in found]
    assert scores == sorted(scores, reverse=True)
    for item in found:
        influence = item["influence"]
        assert influence["percentile"] >= 90
        assert influence["percentile"] - influence["ownSpendPercentile"] >= 25
    too_many = await scored.gql.call(TOP, {"first": 101})
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    forged = await scored.gql.call(TOP, {"first": 3, "after": "bm90LWEtY3Vyc29y"})
    assert forged["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_scores_refresh_scores_one_customer_online(scored):
    scored.app.state.champions.refresh()  # what the lifespan's watcher does, off the request path
    served = await scored.gql.data("{ scoringModels { kind name version } }")
    assert {(m["kind"], m["version"]) for m in served["scoringModels"]} == {
        ("CHURN", "1"),
        ("VALUE", "1"),
    }
    owner = scored.scored_ids()[3]
    started = utcnow()

    data = await scored.gql.data(REFRESH, {"id": _gid(owner)}, as_="analyst")

    payload = data["scoresRefresh"]
    assert payload["errors"] == []
    churn = payload["scores"]["churn"]
    assert datetime.fromisoformat(churn["scoredAt"]) >= started
    assert datetime.fromisoformat(churn["cutoff"]) >= started - timedelta(seconds=1)
    assert 0 <= payload["scores"]["value"]["percentile"] <= 100


async def test_scores_refresh_refuses_what_it_may_not_score(scored):
    scored.app.state.champions.refresh()
    unscored = await _unscored_buyer(scored)
    cases = {
        _gid(unscored): "PROFILING_NOT_PERMITTED",
        _gid(uuid.uuid4()): "CUSTOMER_NOT_FOUND",
    }
    for customer_id, code in cases.items():
        data = await scored.gql.data(REFRESH, {"id": customer_id})
        assert data["scoresRefresh"]["scores"] is None
        assert [e["code"] for e in data["scoresRefresh"]["errors"]] == [code]
    async with scored.sessions() as session:
        assert await session.get(CustomerScore, (unscored, "churn")) is None
    body = await scored.gql.call(REFRESH, {"id": _gid(unscored)}, as_="compliance")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_scores_refresh_without_a_champion_says_so(seeded_settings):
    provider = LocalKeyring(seeded_settings.keyring_path)
    app = create_app(seeded_settings, provider)  # an empty MLflow store: nothing to load
    app.state.champions.refresh()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        gql = GraphQL(client, provider)
        data = await gql.data(REFRESH, {"id": _gid(uuid.uuid4())})
    await app.state.engine.dispose()
    assert [e["code"] for e in data["scoresRefresh"]["errors"]] == ["MODEL_NOT_AVAILABLE"]


async def test_scores_on_a_page_cost_the_same_statements_whatever_its_size(scored):
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = scored.app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        counts = []
        for first in (5, 40):
            seen.clear()
            await scored.gql.data(FILTERED, {"filter": {"churnRiskAtLeast": "LOW"}, "first": first})
            counts.append(len(seen))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert counts[0] == counts[1]


async def test_access_package_lists_scores_and_destruction_deletes_them(scored):
    owner = scored.scored_ids()[4]
    async with scored.sessions() as session:
        package = await access_package(
            session, FieldCipher(session, scored.provider), subject_id=owner
        )
    sections = {section.name: section for section in package.sections}
    assert {record["kind"] for record in sections["scores"].records} == {"churn", "value"}
    assert sections["influence"].records and sections["scores"].legal_basis
    async with transaction(scored.sessions) as session:
        certificate = await destroy_subject(
            session, FieldCipher(session, scored.provider), subject_id=owner,
            actor="staff:compliance", request_id=uuid.uuid4(),
        )  # fmt: skip
    erased = {item["table"]: item for item in certificate.items}
    assert erased["customer_score"]["rowsDeleted"] == 2
    assert erased["customer_influence"]["rowsDeleted"] == 1


async def _someone_waits_for_a_lock(scored: Scored) -> None:
    """Until another connection waits on a lock (PostgreSQL), or a moment (SQLite, where the
    second writer waits inside BEGIN IMMEDIATE and nothing shows it)."""
    if scored.settings.database_url.startswith("sqlite"):
        await asyncio.sleep(0.3)
        return
    for _ in range(600):
        async with scored.sessions() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'advisory'"
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the second run never waited for the first")


async def test_two_runs_that_store_at_once_take_turns(scored):
    stored = len(scored.scores.scores)
    second_started = asyncio.Event()

    async def second() -> ScoringRun:
        second_started.set()  # SQLite: the transaction below waits for the write lock
        async with transaction(scored.sessions) as session:
            return await store_scores(session, scored.scores, actor="test:second")

    async with transaction(scored.sessions) as session:
        first = await store_scores(session, scored.scores, actor="test:first")
        # The first run holds its transaction open while the second one tries to store.
        task = asyncio.create_task(second())
        await second_started.wait()
        await _someone_waits_for_a_lock(scored)
    later = await task
    assert first.scored == later.scored > 0
    async with scored.sessions() as session:
        rows = await session.scalar(select(func.count()).select_from(CustomerScore))
        runs = await session.scalar(
            select(func.count()).where(col(ScoringRun.actor).like("test:%"))
        )
    assert rows == stored and runs == 2
