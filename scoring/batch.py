"""Scoring customers with loaded models: compute (reads only), then store (one short write).

Who is scored: active customers registered before the cutoff, with a purchase before it, whose
data may be processed for profiling now (a granted consent and no restriction: the same rule
as `privacy.enforcement`). Influence is computed for every permitted active customer, buyer or
not, but only in a batch over everyone, since the PageRank needs the whole graph.

A batch over everyone replaces every stored score; scores of customers who are no longer
permitted (or were merged away, or erased) disappear with it. A batch for some customers
replaces theirs, ranks them against the stored scores of everyone else and takes the value
their referees bring from the referees' stored scores.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from core.db import take_turns
from graph.enums import CustomerStatus
from graph.models import Customer
from privacy.enforcement import allowed_subjects, permitted
from privacy.purposes import Purpose
from scoring.errors import ScoringErrorCode, scoring_error
from scoring.features import compute_features, eligible
from scoring.history import STATUSES, Bools, Floats, History, days, load_history
from scoring.influence import influence, network_value, percentiles
from scoring.kinds import ModelKind, risk_band, value_segment
from scoring.model import ScoringModel
from scoring.models import CustomerInfluence, CustomerScore, ScoringRun

TOP_REASONS = 5
CHUNK = 1_000


class Scope(StrEnum):
    ALL = "ALL"
    CUSTOMERS = "CUSTOMERS"
    ONLINE = "ONLINE"


@dataclass(frozen=True, slots=True)
class Models:
    churn: ScoringModel | None = None
    value: ScoringModel | None = None

    def of(self, kind: ModelKind) -> ScoringModel | None:
        return self.churn if kind is ModelKind.CHURN else self.value

    def label(self, kind: ModelKind) -> str | None:
        model = self.of(kind)
        return None if model is None else f"{model.name}:{model.version}"


@dataclass(slots=True)
class ScoreSet:
    """What a computation decided, ready to store."""

    cutoff: datetime
    scope: Scope
    models: Models
    owners: list[uuid.UUID]  # whose earlier rows this set replaces (empty: everyone's)
    scores: list[dict[str, Any]] = field(default_factory=list)
    influence: list[dict[str, Any]] = field(default_factory=list)
    not_permitted: int = 0
    not_scorable: int = 0

    @property
    def scored(self) -> int:
        return len({row["customer_id"] for row in self.scores})


async def resolve_owners(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, field: str = "customer"
) -> list[uuid.UUID]:
    """Requested customers as survivors; CUSTOMER_NOT_FOUND (on `field`) for an unknown id."""
    rows = (
        await session.execute(
            select(
                col(Customer.id), func.coalesce(col(Customer.survivor_id), col(Customer.id))
            ).where(col(Customer.id).in_(list(ids)))
        )
    ).all()
    found = dict(rows)
    missing = [key for key in ids if key not in found]
    if missing:
        raise scoring_error(ScoringErrorCode.CUSTOMER_NOT_FOUND, "no such customer", field)
    return list(dict.fromkeys(found[key] for key in ids))


async def compute_scores(
    session: AsyncSession,
    *,
    models: Models,
    cutoff: datetime,
    currency: str,
    owners: Sequence[uuid.UUID] | None = None,
    scope: Scope | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ScoreSet:
    """Scores of everyone (owners None) or of the given survivors, as of `cutoff`.
    `progress(what, done, total)` hears of each step (a CLI's progress bar)."""
    if models.churn is None and models.value is None:
        raise scoring_error(ScoringErrorCode.MODEL_NOT_AVAILABLE, "no model to score with")
    kinds = [kind for kind in ModelKind if models.of(kind) is not None]
    steps = 2 + len(kinds) + (1 if owners is None else 0)

    def step(what: str, done: int) -> None:
        if progress is not None:
            progress(what, done, steps)

    step("loading the history", 0)
    history = await load_history(session, until=cutoff, currency=currency, owners=owners)
    targets = _targets(history, owners)
    permitted = history.profiled
    active = (
        targets
        & (history.status == STATUSES.index(CustomerStatus.ACTIVE))
        & (history.registered_at < days(cutoff))
    )
    scorable = active & permitted & eligible(history, cutoff)
    result = ScoreSet(
        cutoff=cutoff,
        scope=scope or (Scope.ALL if owners is None else Scope.CUSTOMERS),
        models=models,
        owners=[] if owners is None else list(owners),
        not_permitted=int((active & ~permitted).sum()),
        not_scorable=int((active & permitted & ~scorable).sum()) + int((targets & ~active).sum()),
    )
    # The arithmetic runs in a worker thread: a server scoring online keeps its event loop free.
    step("computing the features", 1)
    features = await asyncio.to_thread(compute_features, history, cutoff)
    rows = np.flatnonzero(scorable)
    predicted_value = np.zeros(history.size)
    for done, kind in enumerate(kinds, start=2):
        model = models.of(kind)
        if model is None or rows.size == 0:
            continue
        step(f"scoring {kind.value} and its reasons for {rows.size:,} customers", done)
        explained = await asyncio.to_thread(model.explain, features.iloc[rows], top=TOP_REASONS)
        values = explained.predictions
        if kind is ModelKind.VALUE:
            predicted_value[rows] = values
        percentile = await _percentiles(session, kind, values, rows, history, owners, currency)
        network = (
            await _network(session, history, cutoff, predicted_value, rows, owners)
            if kind is ModelKind.VALUE
            else None
        )
        for position, row in enumerate(rows):
            result.scores.append(
                _score_row(
                    model,
                    history.owners[row],
                    cutoff,
                    float(values[position]),
                    float(percentile[position]),
                    explained.reasons[position],
                    currency,
                    None if network is None else float(network[position]),
                )
            )
    if owners is None:
        step("computing influence", steps - 1)
        population = active & permitted
        result.influence = _influence_rows(history, cutoff, features, population, currency)
    return result


def _targets(history: History, owners: Sequence[uuid.UUID] | None) -> Bools:
    if owners is None:
        return np.ones(history.size, dtype=np.bool_)
    mask = np.zeros(history.size, dtype=np.bool_)
    for owner in owners:
        if owner in history.index:
            mask[history.index[owner]] = True
    return mask


def _score_row(
    model: ScoringModel,
    owner: uuid.UUID,
    cutoff: datetime,
    value: float,
    percentile: float,
    reasons: Sequence[Any],
    currency: str,
    network: float | None,
) -> dict[str, Any]:
    churn = model.kind is ModelKind.CHURN
    return {
        "customer_id": owner,
        "kind": model.kind.value,
        "model_name": model.name,
        "model_version": model.version,
        "cutoff": cutoff,
        "horizon_days": model.horizon_days,
        "score": value if churn else round(value * 100),
        "band": (risk_band(value) if churn else value_segment(percentile)).value,
        "percentile": percentile,
        "currency": currency,
        "network_value_minor": None if network is None else round(network * 100),
        "reasons": [
            {"feature": r.feature, "contribution": r.contribution, "value": r.value}
            for r in reasons
        ],
    }


async def _percentiles(
    session: AsyncSession,
    kind: ModelKind,
    values: Floats,
    rows: np.ndarray,
    history: History,
    owners: Sequence[uuid.UUID] | None,
    currency: str,
) -> Floats:
    """Among the batch (everyone), or against everyone else's stored scores (some)."""
    if owners is None:
        return percentiles(values, np.ones(values.size, dtype=np.bool_))
    stored = values if kind is ModelKind.CHURN else np.round(values * 100)
    others = col(CustomerScore.customer_id).not_in(list(owners))
    out = np.empty(values.size)
    for position, value in enumerate(stored):
        below, same, total = (
            await session.execute(
                select(
                    func.count().filter(col(CustomerScore.score) < float(value)),
                    func.count().filter(col(CustomerScore.score) == float(value)),
                    func.count(),
                ).where(col(CustomerScore.kind) == kind.value, others)
            )
        ).one()
        out[position] = 100.0 * (below + 0.5 * (same + 1)) / (total + 1)
    return out


async def _network(
    session: AsyncSession,
    history: History,
    cutoff: datetime,
    predicted: Floats,
    rows: np.ndarray,
    owners: Sequence[uuid.UUID] | None,
) -> Floats:
    if owners is None:
        everyone: Floats = network_value(history, cutoff, predicted)[rows]
        return everyone
    # Referees' own value and what they bring in turn, as their stored scores say.
    stored = (
        await session.execute(
            select(
                col(CustomerScore.customer_id),
                col(CustomerScore.score),
                col(CustomerScore.network_value_minor),
            ).where(
                col(CustomerScore.kind) == ModelKind.VALUE.value,
                col(CustomerScore.customer_id).in_(history.owners),
                permitted(col(CustomerScore.customer_id), purpose=Purpose.PROFILING),
            )
        )
    ).all()
    known = np.zeros(history.size)
    for owner, score, network in stored:
        known[history.index[owner]] = (score + (network or 0)) / 100
    for row in rows:
        known[row] = predicted[row]  # the fresh prediction, not the stored one
    mine: Floats = network_value(history, cutoff, known, rounds=1)[rows]
    return mine


def _influence_rows(
    history: History, cutoff: datetime, features: Any, population: Bools, currency: str
) -> list[dict[str, Any]]:
    result = influence(history, cutoff, features, population)
    spend = np.maximum(features["spend_365"].to_numpy(dtype=np.float64), 0.0)
    spend_percentile = percentiles(spend, population)
    column = {name: features[name].to_numpy(dtype=np.float64) for name in features.columns}
    return [
        {
            "customer_id": history.owners[row],
            "cutoff": cutoff,
            "score": float(result.score[row]),
            "percentile": float(result.percentile[row]),
            "reach": int(result.reach[row]),
            "review_count": int(column["reviews_written"][row]),
            "helpful_votes": int(column["helpful_votes"][row]),
            "referrals_made": int(column["referrals_made"][row]),
            "referrals_converted": int(column["referrals_converted"][row]),
            "referred_spend_minor": round(column["referred_spend"][row] * 100),
            "own_spend_minor": round(spend[row] * 100),
            "own_spend_percentile": float(spend_percentile[row]),
            "currency": currency,
        }
        for row in np.flatnonzero(population)
    ]


async def store_scores(
    session: AsyncSession, scores: ScoreSet, *, actor: str, now: datetime | None = None
) -> ScoringRun:
    """Write a computed set (flush only): replace the rows it covers, drop what is no longer
    permitted. Consent is checked again here, inside the writing transaction. Two runs that
    store at once take turns: the second replaces what the first wrote (without the turn, on
    PostgreSQL the second would insert next to rows its delete never saw)."""
    await take_turns(session, "scoring.store")
    now = now or utcnow()
    subjects = {row["customer_id"] for row in [*scores.scores, *scores.influence]}
    allowed = await allowed_subjects(session, subjects, purpose=Purpose.PROFILING)
    keep = [row for row in scores.scores if row["customer_id"] in allowed]
    keep_influence = [row for row in scores.influence if row["customer_id"] in allowed]
    run = ScoringRun(
        cutoff=scores.cutoff,
        started_at=now,
        scope=scores.scope.value,
        churn_model=scores.models.label(ModelKind.CHURN),
        value_model=scores.models.label(ModelKind.VALUE),
        actor=actor,
    )
    session.add(run)
    await session.flush()
    before = await _clear(session, scores)
    for table, rows in ((CustomerScore, keep), (CustomerInfluence, keep_influence)):
        stamped = [
            {
                **row,
                "run_id": run.id,
                ("scored_at" if table is CustomerScore else "computed_at"): now,
            }
            for row in rows
        ]
        for start in range(0, len(stamped), CHUNK):
            await session.execute(insert(table), stamped[start : start + CHUNK])
    kept = {row["customer_id"] for row in keep}
    run.scored = len(kept)
    run.not_permitted = scores.not_permitted + (scores.scored - run.scored)
    run.not_scorable = scores.not_scorable
    run.removed = len(before - kept)
    run.finished_at = utcnow()
    await session.flush()
    return run


async def _clear(session: AsyncSession, scores: ScoreSet) -> set[uuid.UUID]:
    """Delete the rows the set replaces; returns the customers that had scores before."""
    kinds = [kind.value for kind in ModelKind if scores.models.of(kind) is not None]
    replaced: list[ColumnElement[bool]] = [col(CustomerScore.kind).in_(kinds)]
    if scores.scope is Scope.ALL:
        await session.execute(delete(CustomerInfluence))  # recomputed for everyone
    else:
        members = select(col(Customer.id)).where(
            or_(col(Customer.id).in_(scores.owners), col(Customer.survivor_id).in_(scores.owners))
        )
        replaced.append(col(CustomerScore.customer_id).in_(members))
        # Influence is not recomputed for some customers, but nothing is kept of those who may
        # no longer be profiled.
        await session.execute(
            delete(CustomerInfluence).where(
                col(CustomerInfluence.customer_id).in_(members),
                ~permitted(col(CustomerInfluence.customer_id), purpose=Purpose.PROFILING),
            )
        )
    before = set(
        (await session.execute(select(col(CustomerScore.customer_id)).where(*replaced))).scalars()
    )
    await session.execute(delete(CustomerScore).where(*replaced))
    return before
