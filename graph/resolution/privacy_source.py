"""Identity resolution's personal data, registered with privacy.

Candidate pairs and blocking keys are derived from a customer's personal data, so destruction
removes every pair the subject is part of and every blocking key of the subject (items of the
destruction certificate). Access lists the subject's own candidate pairs: status, score and
evidence labels; never the other customer's id or data.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from graph.resolution.models import BlockingKey, DuplicateCandidate
from privacy import sources
from privacy.fields import FieldCipher
from privacy.sources import ErasedItem, FieldChange, Section


def _pairs_of(ids: Sequence[uuid.UUID]) -> Any:
    return or_(col(DuplicateCandidate.left_id).in_(ids), col(DuplicateCandidate.right_id).in_(ids))


async def _delete(session: AsyncSession, model: Any, where: Any) -> int:
    count = (await session.execute(select(func.count()).select_from(model).where(where))).scalar()
    await session.execute(delete(model).where(where).execution_options(synchronize_session=False))
    return int(count or 0)


class ResolutionSource:
    name = "identity_resolution"
    editable: frozenset[str] = frozenset()

    async def export(
        self, session: AsyncSession, cipher: FieldCipher, subject_ids: Sequence[uuid.UUID]
    ) -> list[Section]:
        rows = (
            (await session.execute(select(DuplicateCandidate).where(_pairs_of(subject_ids))))
            .scalars()
            .all()
        )
        return [
            Section(
                name="duplicateCandidates",
                title="Possible duplicate registrations found by the matcher",
                source_system="loyalgraph identity resolution",
                purposes=("loyalty_participation",),
                legal_basis="contract (one loyalty account per person)",
                recipients=("operators",),
                retention="until decided; destroyed with the customer",
                records=[
                    {
                        "status": row.status,
                        "score": row.probability,
                        "evidence": [
                            {"field": item["field"], "agreement": item["agreement"]}
                            for item in row.evidence
                        ],
                        "createdAt": row.created_at.isoformat(),
                    }
                    for row in rows
                ],
            )
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
        return [
            ErasedItem(
                "duplicate_candidate",
                rows_deleted=await _delete(session, DuplicateCandidate, _pairs_of(ids)),
            ),
            ErasedItem(
                "blocking_key",
                rows_deleted=await _delete(
                    session, BlockingKey, col(BlockingKey.customer_id).in_(ids)
                ),
            ),
        ]


_source = ResolutionSource()


def install() -> None:
    """Register with privacy (idempotent)."""
    sources.register(_source)
