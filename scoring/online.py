"""Online scoring: one customer, now, with the models a serving process holds in memory.

`score_now` only reads (outside the write transaction, so SQLite's write lock is not held
while features and contributions are computed); the caller stores the result with
`scoring.batch.store_scores` in its one transaction, which checks the consent again.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from graph.enums import CustomerStatus
from graph.models import Customer
from privacy.enforcement import may_process
from privacy.purposes import Purpose
from scoring.batch import Models, Scope, ScoreSet, compute_scores, resolve_owners
from scoring.errors import ScoringErrorCode, scoring_error
from scoring.kinds import ModelKind
from scoring.registry import Champions


async def score_now(
    session: AsyncSession,
    *,
    champions: Champions | None,
    customer_id: uuid.UUID,
    currency: str,
    now: datetime | None = None,
) -> ScoreSet:
    """A customer's scores as of now, computed with the served champions (reads only)."""
    models = Models(
        churn=champions.get(ModelKind.CHURN) if champions else None,
        value=champions.get(ModelKind.VALUE) if champions else None,
    )
    if models.churn is None and models.value is None:
        raise scoring_error(
            ScoringErrorCode.MODEL_NOT_AVAILABLE,
            "no champion model is loaded yet (train one: loyalgraph train churn|value)",
        )
    (owner,) = await resolve_owners(session, [customer_id], field="customerId")
    customer = await session.get(Customer, owner)
    if customer is None or customer.status != CustomerStatus.ACTIVE:
        raise scoring_error(
            ScoringErrorCode.NOT_SCORABLE, "this customer is not active", "customerId"
        )
    if not await may_process(session, subject_id=owner, purpose=Purpose.PROFILING):
        raise scoring_error(
            ScoringErrorCode.PROFILING_NOT_PERMITTED,
            "this customer has no profiling consent in force, or processing is restricted",
            "customerId",
        )
    scores = await compute_scores(
        session,
        models=models,
        cutoff=now or utcnow(),
        currency=currency,
        owners=[owner],
        scope=Scope.ONLINE,
    )
    if not scores.scores:
        raise scoring_error(
            ScoringErrorCode.NOT_SCORABLE,
            "this customer has no purchase yet: there is nothing to score",
            "customerId",
        )
    return scores
