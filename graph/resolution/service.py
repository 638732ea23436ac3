"""Candidate pairs, blocking keys and the merge policy. Services flush, never commit.

Policy: a pending pair at or above the automatic threshold merges through the ordinary merge
(recorded as automatic, with its score and evidence, undone by `customerUnmerge`); a pair
between the review threshold and the automatic one waits for an operator; a `DISTINCT`
decision is remembered and the pair is never proposed again, nor merged through a third
customer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from graph import hooks
from graph.enums import CustomerStatus
from graph.errors import GraphErrorCode, graph_error
from graph.merge import merge_customers
from graph.models import Customer, MergeRecord
from graph.resolution.features import Record
from graph.resolution.model import ScoredPair, blocking_values
from graph.resolution.models import BlockingKey, CandidateStatus, DuplicateCandidate
from privacy import audit
from privacy.audit import pseudonym
from privacy.fields import FieldCipher

AUTOMATIC_ACTOR = "identity-resolution"
AUTOMATIC_DEFAULT = 0.999
REVIEW_DEFAULT = 0.5


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Match probabilities. The automatic default holds precision ≥ 0.999 on the demo and on
    the second benchmark set (benchmarks/identity_quality.py)."""

    automatic: float = AUTOMATIC_DEFAULT
    review: float = REVIEW_DEFAULT

    def __post_init__(self) -> None:
        if not 0.0 < self.review <= self.automatic <= 1.0:
            raise graph_error(
                GraphErrorCode.INVALID_INPUT, "thresholds need 0 < review <= automatic <= 1"
            )


def key_hashes(cipher: FieldCipher, record: Record) -> dict[str, str]:
    """rule → keyed hash of the record's blocking values (the only form that is stored)."""
    return {
        rule: cipher.blind_index(kind=f"block:{rule}", value=value)
        for rule, value in blocking_values(record).items()
    }


async def store_block_keys(
    session: AsyncSession, cipher: FieldCipher, records: Sequence[Record]
) -> int:
    """Replace the blocking keys of these customers with the ones their records give now."""
    ids = [uuid.UUID(record["unique_id"]) for record in records]
    await session.execute(delete(BlockingKey).where(col(BlockingKey.customer_id).in_(ids)))
    rows = [
        BlockingKey(customer_id=uuid.UUID(record["unique_id"]), rule=rule, key_hash=digest)
        for record in records
        for rule, digest in key_hashes(cipher, record).items()
    ]
    session.add_all(rows)
    await session.flush()
    return len(rows)


async def block_of(
    session: AsyncSession, cipher: FieldCipher, record: Record, *, limit: int = 500
) -> list[uuid.UUID]:
    """Active customers sharing a blocking key with this record (itself excluded)."""
    hashes = key_hashes(cipher, record)
    if not hashes:
        return []
    me = uuid.UUID(record["unique_id"])
    query = (
        select(col(BlockingKey.customer_id))
        .join(Customer, col(Customer.id) == col(BlockingKey.customer_id))
        .where(
            or_(
                *(
                    and_(col(BlockingKey.rule) == rule, col(BlockingKey.key_hash) == digest)
                    for rule, digest in hashes.items()
                )
            ),
            col(BlockingKey.customer_id) != me,
            col(Customer.status) == CustomerStatus.ACTIVE,
        )
        .distinct()
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


def _ordered(a: str | uuid.UUID, b: str | uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    left, right = sorted((str(a), str(b)))
    return uuid.UUID(left), uuid.UUID(right)


async def upsert_candidates(
    session: AsyncSession, pairs: Iterable[ScoredPair], *, now: datetime | None = None
) -> list[DuplicateCandidate]:
    """Record scored pairs. A decided pair (DISTINCT, MERGED, AUTO_MERGED) is never reopened;
    a pending one takes the new score and evidence."""
    now = now or utcnow()
    wanted = {_ordered(pair.left, pair.right): pair for pair in pairs if pair.left != pair.right}
    if not wanted:
        return []
    lefts = {left for left, _ in wanted}
    existing = {
        (row.left_id, row.right_id): row
        for row in (
            await session.execute(
                select(DuplicateCandidate).where(col(DuplicateCandidate.left_id).in_(lefts))
            )
        ).scalars()
    }
    touched: list[DuplicateCandidate] = []
    for key, pair in wanted.items():
        evidence = [asdict(item) for item in pair.evidence]
        row = existing.get(key)
        if row is None:
            row = DuplicateCandidate(
                left_id=key[0],
                right_id=key[1],
                probability=pair.probability,
                match_weight=pair.weight,
                evidence=evidence,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
        elif row.status == CandidateStatus.PENDING:
            row.probability, row.match_weight = pair.probability, pair.weight
            row.evidence, row.updated_at = evidence, now
        else:
            continue
        touched.append(row)
    await session.flush()
    return touched


async def _members(session: AsyncSession, owner: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(
        select(col(Customer.id)).where(
            or_(col(Customer.id) == owner, col(Customer.survivor_id) == owner)
        )
    )
    return list(rows.scalars())


async def _owners(session: AsyncSession, row: DuplicateCandidate) -> tuple[Customer, Customer]:
    found = []
    for customer_id in (row.left_id, row.right_id):
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        if customer.survivor_id is not None:
            survivor = await session.get(Customer, customer.survivor_id)
            assert survivor is not None
            customer = survivor
        found.append(customer)
    return found[0], found[1]


async def _kept_apart(session: AsyncSession, first: uuid.UUID, second: uuid.UUID) -> bool:
    """Whether a DISTINCT decision separates anyone of one group from anyone of the other."""
    one, two = await _members(session, first), await _members(session, second)
    found = await session.execute(
        select(col(DuplicateCandidate.id))
        .where(
            col(DuplicateCandidate.status) == CandidateStatus.DISTINCT,
            or_(
                col(DuplicateCandidate.left_id).in_(one)
                & col(DuplicateCandidate.right_id).in_(two),
                col(DuplicateCandidate.left_id).in_(two)
                & col(DuplicateCandidate.right_id).in_(one),
            ),
        )
        .limit(1)
    )
    return found.first() is not None


async def _merge(
    session: AsyncSession,
    cipher: FieldCipher,
    row: DuplicateCandidate,
    *,
    actor: str,
    automatic: bool,
    now: datetime,
) -> MergeRecord | None:
    first, second = await _owners(session, row)
    if first.id == second.id:
        return None  # already one customer through other pairs
    if first.status != CustomerStatus.ACTIVE or second.status != CustomerStatus.ACTIVE:
        return None
    result = await merge_customers(
        session,
        cipher,
        customer_ids=[first.id, second.id],
        survivor_id=None,
        actor=actor,
        reason=None,
        now=now,
    )
    if automatic:
        result.record.details = {
            **result.record.details,
            "automatic": {
                "candidate": str(row.id),
                "score": row.probability,
                "evidence": row.evidence,
            },
        }
    row.merge_record_id = result.record.id
    await session.flush()
    return result.record


async def apply_policy(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    thresholds: Thresholds,
    candidate_ids: Sequence[uuid.UUID] | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> int:
    """Merge pending pairs at or above the automatic threshold, best first. Returns merges."""
    now = now or utcnow()
    query = select(DuplicateCandidate).where(
        col(DuplicateCandidate.status) == CandidateStatus.PENDING,
        col(DuplicateCandidate.probability) >= thresholds.automatic,
    )
    if candidate_ids is not None:
        query = query.where(col(DuplicateCandidate.id).in_(candidate_ids))
    query = query.order_by(col(DuplicateCandidate.probability).desc(), col(DuplicateCandidate.id))
    if limit is not None:
        query = query.limit(limit)
    merges = 0
    for row in list((await session.execute(query)).scalars()):
        first, second = await _owners(session, row)
        if first.id != second.id and await _kept_apart(session, first.id, second.id):
            continue
        record = await _merge(session, cipher, row, actor=AUTOMATIC_ACTOR, automatic=True, now=now)
        row.status = CandidateStatus.AUTO_MERGED
        row.decided_by, row.decided_at, row.updated_at = AUTOMATIC_ACTOR, now, now
        merges += record is not None
    await session.flush()
    return merges


async def decide(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    candidate_id: uuid.UUID,
    decision: CandidateStatus,
    actor: str,
    now: datetime | None = None,
) -> DuplicateCandidate:
    """An operator's decision on a pending pair: MERGE (through the ordinary merge) or
    DISTINCT (remembered). Audited either way."""
    now = now or utcnow()
    if decision not in (CandidateStatus.MERGED, CandidateStatus.DISTINCT):
        raise graph_error(GraphErrorCode.INVALID_INPUT, "decide MERGE or DISTINCT", "decision")
    row = await session.get(DuplicateCandidate, candidate_id)
    if row is None:
        raise graph_error(
            GraphErrorCode.CANDIDATE_NOT_FOUND, "no such duplicate candidate", "candidateId"
        )
    if row.status != CandidateStatus.PENDING:
        raise graph_error(
            GraphErrorCode.CANDIDATE_DECIDED, "this candidate was decided already", "candidateId"
        )
    if decision is CandidateStatus.MERGED:
        first, second = await _owners(session, row)
        if first.id != second.id and await _kept_apart(session, first.id, second.id):
            raise graph_error(
                GraphErrorCode.CANDIDATE_DECIDED,
                "a DISTINCT decision keeps these customers apart",
                "candidateId",
            )
        await _merge(session, cipher, row, actor=actor, automatic=False, now=now)
    row.status = decision
    row.decided_by, row.decided_at, row.updated_at = actor, now, now
    await session.flush()
    await audit.record(
        session,
        cipher.keys,
        action="identity.candidate_decided",
        actor=actor,
        subject_id=row.left_id,
        details={
            "candidate": str(row.id),
            "decision": str(decision),
            "other": pseudonym(cipher.keys, row.right_id),
            "score": row.probability,
        },
        at=now,
    )
    return row


async def _on_unmerge(session: AsyncSession, fact: hooks.GraphFact) -> None:
    """Undoing a merge the matcher or an operator made marks its pair DISTINCT: the person who
    undid it said these are two people, so the pair is not proposed (or merged) again."""
    if not isinstance(fact, hooks.CustomerUnmerged):
        return
    rows = (
        await session.execute(
            select(DuplicateCandidate)
            .join(MergeRecord, col(MergeRecord.id) == col(DuplicateCandidate.merge_record_id))
            .where(
                col(MergeRecord.merged_id) == fact.restored_id,
                col(MergeRecord.undone_at).is_not(None),
                col(DuplicateCandidate.status).in_(
                    [CandidateStatus.AUTO_MERGED, CandidateStatus.MERGED]
                ),
            )
        )
    ).scalars()
    for row in rows:
        row.status = CandidateStatus.DISTINCT
        row.decided_by, row.decided_at, row.updated_at = "customerUnmerge", fact.at, fact.at


def install() -> None:
    hooks.subscribe(_on_unmerge, facts=(hooks.CustomerUnmerged,))
