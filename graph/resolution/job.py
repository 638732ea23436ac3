"""Whole-base resolution and matching one new customer against its block.

The whole-base run: (1) decrypt and normalise every active customer page by page, replacing
their blocking keys (one transaction per page); (2) train the model and score the blocked pairs
in memory; (3) store the model and the candidate pairs; (4) merge what is above the automatic
threshold, a batch per transaction. Every stage is idempotent (keys are replaced, decided pairs
are kept, merged pairs are marked), so a run that stopped half-way is resumed by running it
again: it continues with what is still pending.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core.db import transaction
from graph.enums import CustomerStatus
from graph.models import Customer
from graph.resolution import model as matcher
from graph.resolution.features import Record, records_for
from graph.resolution.models import CandidateStatus, DuplicateCandidate, MatchModel
from graph.resolution.service import (
    Thresholds,
    apply_policy,
    block_of,
    store_block_keys,
    upsert_candidates,
)
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider

PAGE = 2000
MERGE_BATCH = 200
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class ResolveReport:
    customers: int
    pairs: int
    pending: int
    automatic_merges: int
    model_id: uuid.UUID | None


def _quiet_splink() -> None:
    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)


async def _page(session: AsyncSession, after: uuid.UUID | None, size: int) -> list[Customer]:
    query = select(Customer).where(col(Customer.status) == CustomerStatus.ACTIVE)
    if after is not None:
        query = query.where(col(Customer.id) > after)
    return list((await session.execute(query.order_by(col(Customer.id)).limit(size))).scalars())


async def load_records(
    sessions: async_sessionmaker[AsyncSession],
    keys: KeyProvider,
    *,
    progress: Progress | None = None,
    page: int = PAGE,
) -> list[Record]:
    """Every active customer's matching record, storing blocking keys on the way."""
    async with sessions() as session:
        total = int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(Customer)
                    .where(col(Customer.status) == CustomerStatus.ACTIVE)
                )
            ).scalar_one()
        )
    records: list[Record] = []
    after: uuid.UUID | None = None
    while True:
        async with transaction(sessions) as session:
            customers = await _page(session, after, page)
            if not customers:
                break
            cipher = FieldCipher(session, keys)
            batch = await records_for(session, cipher, customers)
            await store_block_keys(session, cipher, batch)
            records.extend(batch)
            after = customers[-1].id
        if progress:
            progress("decrypt", len(records), total)
    return records


async def resolve_base(
    sessions: async_sessionmaker[AsyncSession],
    keys: KeyProvider,
    *,
    thresholds: Thresholds | None = None,
    progress: Progress | None = None,
    db_api: Any = None,
    max_pairs: float = 3e5,
    merge: bool = True,
) -> ResolveReport:
    thresholds = thresholds or Thresholds()
    _quiet_splink()
    records = await load_records(sessions, keys, progress=progress)
    if len(records) < 2:
        return ResolveReport(len(records), 0, 0, 0, None)
    linker = matcher.new_linker(records, db_api=db_api)
    matcher.train(linker, max_pairs=max_pairs)
    if progress:
        progress("train", 1, 1)
    pairs = matcher.predict(linker, threshold=thresholds.review)
    params = matcher.model_json(linker)
    customers = len(records)
    del records, linker
    async with transaction(sessions) as session:
        stored = MatchModel(records=customers, params=params)
        session.add(stored)
        await upsert_candidates(session, pairs)
        model_id = stored.id
    if progress:
        progress("score", len(pairs), len(pairs))
    merges = 0
    while merge:
        async with transaction(sessions) as session:
            cipher = FieldCipher(session, keys)
            before = await _pending_above(session, thresholds.automatic)
            if before == 0:
                break
            merges += await apply_policy(session, cipher, thresholds=thresholds, limit=MERGE_BATCH)
        if progress:
            progress("merge", merges, merges + max(0, before - MERGE_BATCH))
    async with sessions() as session:
        pending = await _pending_above(session, thresholds.review)
    return ResolveReport(customers, len(pairs), pending, merges, model_id)


async def _pending_above(session: AsyncSession, threshold: float) -> int:
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(DuplicateCandidate)
                .where(
                    col(DuplicateCandidate.status) == CandidateStatus.PENDING,
                    col(DuplicateCandidate.probability) >= threshold,
                )
            )
        ).scalar_one()
    )


async def latest_model(session: AsyncSession) -> MatchModel | None:
    return (
        await session.execute(
            select(MatchModel).order_by(col(MatchModel.created_at).desc()).limit(1)
        )
    ).scalar_one_or_none()


async def match_new(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer_id: uuid.UUID,
    thresholds: Thresholds | None = None,
) -> list[DuplicateCandidate]:
    """Match one newly arrived customer against its block: store its blocking keys, score it
    against the customers sharing one with the latest trained model, record the pairs above
    the review threshold as pending (staff see them; the next resolve run merges the ones
    above the automatic threshold). The registration and the importer both call this."""
    thresholds = thresholds or Thresholds()
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.status != CustomerStatus.ACTIVE:
        return []
    [record] = await records_for(session, cipher, [customer])
    await store_block_keys(session, cipher, [record])
    stored = await latest_model(session)
    if stored is None:
        return []
    block_ids = await block_of(session, cipher, record)
    if not block_ids:
        return []
    block = list(
        (await session.execute(select(Customer).where(col(Customer.id).in_(block_ids)))).scalars()
    )
    _quiet_splink()
    pairs = matcher.score_against(
        stored.params,
        await records_for(session, cipher, block),
        record,
        threshold=thresholds.review,
    )
    return await upsert_candidates(session, pairs)
