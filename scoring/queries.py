"""Reads of stored scores for the API: batched, and never of a customer who may not be profiled.

Every read joins the profiling rule of `privacy.enforcement` in SQL, so a score stored before a
consent was withdrawn (or a restriction began) is not shown, even before the next batch
deletes it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from privacy.enforcement import permitted
from privacy.purposes import Purpose
from scoring.kinds import INFLUENCER_PERCENTILE, RISK_BANDS, ModelKind, RiskBand, ValueSegment
from scoring.models import CustomerInfluence, CustomerScore

# An influencer "far exceeds their own spend" when their influence percentile is this many
# points above the percentile of what they spent themselves.
INFLUENCE_OVER_SPEND = 25.0


def _profiling(column: Any) -> ColumnElement[bool]:
    return permitted(column, purpose=Purpose.PROFILING)


async def scores_stored(session: AsyncSession) -> bool:
    found = (await session.execute(select(col(CustomerScore.customer_id)).limit(1))).first()
    return found is not None


async def scores_for(
    session: AsyncSession, owners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[ModelKind, CustomerScore]]:
    rows = await session.execute(
        select(CustomerScore).where(
            col(CustomerScore.customer_id).in_(owners), _profiling(col(CustomerScore.customer_id))
        )
    )
    found: dict[uuid.UUID, dict[ModelKind, CustomerScore]] = defaultdict(dict)
    for row in rows.scalars():
        found[row.customer_id][ModelKind(row.kind)] = row
    return found


async def influence_for(
    session: AsyncSession, owners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerInfluence]:
    rows = await session.execute(
        select(CustomerInfluence).where(
            col(CustomerInfluence.customer_id).in_(owners),
            _profiling(col(CustomerInfluence.customer_id)),
        )
    )
    return {row.customer_id: row for row in rows.scalars()}


def score_conditions(
    customer: Any,
    *,
    churn_risk_at_least: RiskBand | None = None,
    value_segment: ValueSegment | None = None,
    influencer: bool | None = None,
) -> list[ColumnElement[bool]]:
    """SQL conditions on a customer-id column for the `customers` filter (empty: no filter)."""
    conditions: list[ColumnElement[bool]] = []
    if churn_risk_at_least is not None:
        bands = [band.value for band, _ in RISK_BANDS if band.rank >= churn_risk_at_least.rank]
        conditions.append(
            exists().where(
                col(CustomerScore.customer_id) == customer,
                col(CustomerScore.kind) == ModelKind.CHURN.value,
                col(CustomerScore.band).in_(bands),
            )
        )
    if value_segment is not None:
        conditions.append(
            exists().where(
                col(CustomerScore.customer_id) == customer,
                col(CustomerScore.kind) == ModelKind.VALUE.value,
                col(CustomerScore.band) == value_segment.value,
            )
        )
    if influencer is not None:
        is_influencer = exists().where(
            col(CustomerInfluence.customer_id) == customer,
            col(CustomerInfluence.percentile) >= INFLUENCER_PERCENTILE,
        )
        conditions.append(is_influencer if influencer else ~is_influencer)
    if conditions:
        conditions.append(_profiling(customer))
    return conditions


async def top_influencers(
    session: AsyncSession, *, first: int, after: tuple[float, uuid.UUID] | None = None
) -> list[CustomerInfluence]:
    """Up to `first + 1` influencers whose influence far exceeds their own spend, the most
    influential first (keyset: score descending, then customer id)."""
    gap = col(CustomerInfluence.percentile) - col(CustomerInfluence.own_spend_percentile)
    score, customer = col(CustomerInfluence.score), col(CustomerInfluence.customer_id)
    conditions = [
        col(CustomerInfluence.percentile) >= INFLUENCER_PERCENTILE,
        gap >= INFLUENCE_OVER_SPEND,
        _profiling(customer),
    ]
    if after is not None:
        last_score, last_id = after
        conditions.append(or_(score < last_score, and_(score == last_score, customer > last_id)))
    rows = await session.execute(
        select(CustomerInfluence)
        .where(*conditions)
        .order_by(score.desc(), customer)
        .limit(first + 1)
    )
    return list(rows.scalars().all())
