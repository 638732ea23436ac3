"""Scores and influence as personal data, registered with privacy (`install()`).

They are derived from the customer's behaviour and exist only under a profiling consent: an
access request lists them with the model that produced them and the reasons it gave; destruction
deletes them (they are not books anyone must keep); nothing in them can be rectified by hand
(a wrong score is fixed by rectifying its inputs and scoring again).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from privacy import sources
from privacy.fields import FieldCipher
from privacy.sources import ErasedItem, FieldChange, Section
from scoring.models import CustomerInfluence, CustomerScore

SOURCE = "scoring (loyalgraph)"
PURPOSES = ("profiling and automated scoring: churn risk, expected value, influence",)
BASIS = "the subject's consent to profiling (152-FZ art. 6 part 1 item 1, art. 9)"
RECIPIENTS = ("the operator's marketing and customer service staff",)
RETENTION = (
    "until the next scoring run replaces them, and no longer than the profiling consent: "
    "withdrawn consent or a restriction hides them at once and the next run deletes them"
)


_section = functools.partial(
    Section,
    source_system=SOURCE,
    purposes=PURPOSES,
    legal_basis=BASIS,
    recipients=RECIPIENTS,
    retention=RETENTION,
)


class ScoringSource:
    name = "scoring"
    editable: frozenset[str] = frozenset()

    async def export(
        self, session: AsyncSession, cipher: FieldCipher, subject_ids: Sequence[uuid.UUID]
    ) -> list[Section]:
        ids = list(subject_ids)
        scores = (
            await session.execute(
                select(CustomerScore)
                .where(col(CustomerScore.customer_id).in_(ids))
                .order_by(col(CustomerScore.kind))
            )
        ).scalars()
        influence = (
            await session.execute(
                select(CustomerInfluence).where(col(CustomerInfluence.customer_id).in_(ids))
            )
        ).scalars()
        score_records = [
            {
                "kind": row.kind,
                "model": f"{row.model_name} v{row.model_version}",
                "cutoff": row.cutoff.isoformat(),
                "horizonDays": row.horizon_days,
                "scoredAt": row.scored_at.isoformat(),
                "score": row.score,
                "band": row.band,
                "percentile": row.percentile,
                "currency": row.currency,
                "networkValueMinor": row.network_value_minor,
                "reasons": row.reasons,
            }
            for row in scores
        ]
        influence_records = [
            {
                "cutoff": row.cutoff.isoformat(),
                "score": row.score,
                "percentile": row.percentile,
                "reach": row.reach,
                "reviewCount": row.review_count,
                "helpfulVotes": row.helpful_votes,
                "referralsMade": row.referrals_made,
                "referralsConverted": row.referrals_converted,
                "referredSpendMinor": row.referred_spend_minor,
                "ownSpendMinor": row.own_spend_minor,
                "currency": row.currency,
            }
            for row in influence
        ]
        return [
            _section(name="scores", title="Churn and value scores", records=score_records),
            _section(
                name="influence",
                title="Influence through referrals and reviews",
                records=influence_records,
            ),
        ]

    async def rectify(
        self,
        session: AsyncSession,
        cipher: FieldCipher,
        subject_id: uuid.UUID,
        changes: Mapping[str, str | None],
        actor: str,
    ) -> list[FieldChange]:
        return []

    async def erase(
        self, session: AsyncSession, cipher: FieldCipher, subject_ids: Sequence[uuid.UUID]
    ) -> list[ErasedItem]:
        ids = list(subject_ids)
        scores = await session.execute(
            delete(CustomerScore).where(col(CustomerScore.customer_id).in_(ids))
        )
        influence = await session.execute(
            delete(CustomerInfluence).where(col(CustomerInfluence.customer_id).in_(ids))
        )
        return [
            ErasedItem(table="customer_score", rows_deleted=_rows(scores)),
            ErasedItem(table="customer_influence", rows_deleted=_rows(influence)),
        ]


def _rows(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


_source = ScoringSource()


def install() -> None:
    """Register scoring's personal data with privacy (idempotent)."""
    sources.register(_source)
