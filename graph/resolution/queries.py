"""Reads of the review queue (no plaintext: scores, evidence labels, customer ids)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from graph.models import Customer
from graph.resolution.models import CandidateStatus, DuplicateCandidate

PER_CUSTOMER = 20


async def candidates_page(
    session: AsyncSession,
    *,
    first: int,
    after: tuple[float, uuid.UUID] | None = None,
    min_score: float = 0.0,
    status: CandidateStatus = CandidateStatus.PENDING,
) -> list[DuplicateCandidate]:
    """Up to `first + 1` candidates, best score first (keyset on score and id)."""
    score, row_id = col(DuplicateCandidate.probability), col(DuplicateCandidate.id)
    query = select(DuplicateCandidate).where(
        col(DuplicateCandidate.status) == status, score >= min_score
    )
    if after is not None:
        query = query.where(or_(score < after[0], and_(score == after[0], row_id > after[1])))
    query = query.order_by(score.desc(), row_id).limit(first + 1)
    return list((await session.execute(query)).scalars())


async def pending_for(
    session: AsyncSession, owners: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DuplicateCandidate]]:
    """Pending candidates of each (surviving) customer and of the customers merged into it."""
    members = await session.execute(
        select(col(Customer.id), col(Customer.survivor_id)).where(
            or_(col(Customer.id).in_(owners), col(Customer.survivor_id).in_(owners))
        )
    )
    owner_of = {row_id: survivor or row_id for row_id, survivor in members.all()}
    if not owner_of:
        return {}
    ids = list(owner_of)
    rows = await session.execute(
        select(DuplicateCandidate)
        .where(
            col(DuplicateCandidate.status) == CandidateStatus.PENDING,
            or_(
                col(DuplicateCandidate.left_id).in_(ids), col(DuplicateCandidate.right_id).in_(ids)
            ),
        )
        .order_by(col(DuplicateCandidate.probability).desc(), col(DuplicateCandidate.id))
    )
    found: dict[uuid.UUID, list[DuplicateCandidate]] = defaultdict(list)
    for row in rows.scalars():
        for side in {row.left_id, row.right_id}:
            owner = owner_of.get(side)
            if owner is not None and len(found[owner]) < PER_CUSTOMER:
                found[owner].append(row)
    return found
