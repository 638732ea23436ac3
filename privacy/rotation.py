"""Key rotation without downtime.

* Root rotation (`rewrap_data_keys`): the provider gets a new active root key; every data key
  wrapped by an older root is unwrapped and wrapped again, in short batches. No field is
  touched, and readers keep working throughout because the old root stays in the keyring until
  `retire_unused_roots` removes the roots no data key uses any more.
* Data-key rotation (`reencrypt`): each live subject gets a new data-key version, then every
  ciphertext column (`*_ct`, found in the table metadata, so privacy needs no list of the
  domains' tables) is rewritten under the newest version in keyset-paged batches, each in its
  own transaction that also saves the job's cursor. An interrupted run resumes where it stopped.
  A version is retired (its wrapped key dropped) only after a full pass finds nothing left
  under it, and a second pass catches what requests in flight wrote meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core.clock import utcnow
from core.db import metadata, transaction
from privacy import audit
from privacy.breach_models import KeyJob
from privacy.crypto import (
    DataKeyMaterial,
    DecryptionError,
    decrypt_field,
    encrypt_field,
    generate_data_key,
    parse_envelope,
    wrap_aad,
)
from privacy.keys import KeyProvider
from privacy.models import DataKey

Progress = Callable[[str, int], None]
MAX_PASSES = 3


def _noop(_phase: str, _count: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class RewrapReport:
    root_key_id: str
    rewrapped: int


async def rewrap_data_keys(
    sessions: async_sessionmaker[AsyncSession],
    keys: KeyProvider,
    *,
    actor: str,
    batch: int = 500,
    progress: Progress = _noop,
) -> RewrapReport:
    """Wrap every live data key under the provider's active root (call after `rotate_root`).

    Each batch is one transaction, so the database is never locked for long and a crash loses
    at most one batch of work, which the next run redoes (it selects by root id).
    """
    active = keys.active_root_key_id()
    done = 0
    while True:
        async with transaction(sessions) as session:
            rows = list(
                (
                    await session.execute(
                        select(DataKey)
                        .where(
                            col(DataKey.root_key_id) != active,
                            col(DataKey.wrapped_key).is_not(None),
                        )
                        .order_by(col(DataKey.id))
                        .limit(batch)
                        .with_for_update()
                    )
                )
                .scalars()
                .all()
            )
            for row in rows:
                assert row.wrapped_key is not None
                aad = wrap_aad(row.id, row.subject_id, row.version)
                plaintext = keys.unwrap(row.root_key_id, row.wrapped_key, aad)
                row.root_key_id, row.wrapped_key = keys.wrap(plaintext, aad)
            if not rows:
                await audit.record(
                    session,
                    keys,
                    action="keys.root_rotated",
                    actor=actor,
                    details={"root_key_id": active, "rewrapped": done},
                )
                return RewrapReport(active, done)
        done += len(rows)
        progress("rewrap", len(rows))


async def roots_in_use(session: AsyncSession) -> set[str]:
    rows = await session.execute(
        select(col(DataKey.root_key_id)).where(col(DataKey.wrapped_key).is_not(None)).distinct()
    )
    return {str(value) for value in rows.scalars().all()}


async def retire_unused_roots(
    sessions: async_sessionmaker[AsyncSession], keys: KeyProvider
) -> list[str]:
    """Drop from the provider the root keys no live data key is wrapped by."""
    async with sessions() as session:
        used = await roots_in_use(session)
    return keys.retire_roots(used)


@dataclass(frozen=True, slots=True)
class ReencryptReport:
    job_id: uuid.UUID
    resumed: bool
    keys_created: int
    rows_rewritten: int
    keys_retired: int
    passes: int


def ciphertext_tables() -> list[tuple[Table, list[str]]]:
    """Every table with ciphertext columns (`*_ct`) and a single primary key, by name."""
    found: list[tuple[Table, list[str]]] = []
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        columns = [column.name for column in table.columns if column.name.endswith("_ct")]
        if columns and len(table.primary_key.columns) == 1:
            found.append((table, columns))
    return found


async def _open_job(
    sessions: async_sessionmaker[AsyncSession], actor: str
) -> tuple[uuid.UUID, bool]:
    async with transaction(sessions) as session:
        job = (
            await session.execute(
                select(KeyJob).where(
                    col(KeyJob.kind) == "reencrypt", col(KeyJob.status) == "RUNNING"
                )
            )
        ).scalar_one_or_none()
        if job is not None:
            return job.id, True
        job = KeyJob(kind="reencrypt", status="RUNNING", phase="new_versions", started_by=actor)
        session.add(job)
        await session.flush()
        return job.id, False


async def _load_job(session: AsyncSession, job_id: uuid.UUID, *, lock: bool = True) -> KeyJob:
    query = select(KeyJob).where(col(KeyJob.id) == job_id)
    job = (await session.execute(query.with_for_update() if lock else query)).scalar_one()
    return job


async def _new_versions(
    sessions: async_sessionmaker[AsyncSession],
    keys: KeyProvider,
    job_id: uuid.UUID,
    batch: int,
    progress: Progress,
) -> None:
    """Give every subject whose newest live key predates the job a new version."""
    while True:
        async with transaction(sessions) as session:
            job = await _load_job(session, job_id)
            newest = (
                select(
                    col(DataKey.subject_id),
                    func.max(col(DataKey.version)).label("version"),
                    func.max(col(DataKey.created_at)).label("created"),
                )
                .where(col(DataKey.destroyed_at).is_(None), col(DataKey.wrapped_key).is_not(None))
                .group_by(col(DataKey.subject_id))
                .subquery()
            )
            due = (
                await session.execute(
                    select(newest.c.subject_id, newest.c.version)
                    .where(newest.c.created < job.started_at)
                    .order_by(newest.c.subject_id)
                    .limit(batch)
                )
            ).all()
            for subject_id, version in due:
                key_id = uuid.uuid4()
                root_id, wrapped = keys.wrap(
                    generate_data_key(), wrap_aad(key_id, subject_id, version + 1)
                )
                session.add(
                    DataKey(
                        id=key_id,
                        subject_id=subject_id,
                        version=version + 1,
                        root_key_id=root_id,
                        wrapped_key=wrapped,
                    )
                )
            job.keys_created += len(due)
            job.updated_at = utcnow()
            if not due:
                job.phase = "rewrite"
                job.passes = 1
                return
        progress("new_versions", len(due))


class _Keys:
    """Unwrapped keys by id, and each subject's newest live version, loaded as needed."""

    def __init__(self, session: AsyncSession, keys: KeyProvider) -> None:
        self.session = session
        self.keys = keys
        self.by_id: dict[uuid.UUID, DataKeyMaterial | None] = {}
        self.subject_of: dict[uuid.UUID, uuid.UUID] = {}
        self.newest: dict[uuid.UUID, DataKeyMaterial] = {}

    async def load(self, key_ids: set[uuid.UUID]) -> None:
        missing = key_ids - self.by_id.keys()
        if not missing:
            return
        rows = (
            (await self.session.execute(select(DataKey).where(col(DataKey.id).in_(missing))))
            .scalars()
            .all()
        )
        subjects = {row.subject_id for row in rows} - self.newest.keys()
        for row in rows:
            self.subject_of[row.id] = row.subject_id
            self.by_id[row.id] = self._material(row)
        if subjects:
            live = (
                (
                    await self.session.execute(
                        select(DataKey)
                        .where(
                            col(DataKey.subject_id).in_(subjects),
                            col(DataKey.wrapped_key).is_not(None),
                            col(DataKey.destroyed_at).is_(None),
                        )
                        .order_by(col(DataKey.subject_id), col(DataKey.version))
                    )
                )
                .scalars()
                .all()
            )
            for row in live:  # ascending versions: the last one per subject wins
                material = self._material(row)
                if material is not None:
                    self.newest[row.subject_id] = material

    def _material(self, row: DataKey) -> DataKeyMaterial | None:
        if row.wrapped_key is None or row.destroyed_at is not None:
            return None
        key = self.keys.unwrap(
            row.root_key_id, row.wrapped_key, wrap_aad(row.id, row.subject_id, row.version)
        )
        return DataKeyMaterial(key_id=row.id, version=row.version, key=key)


def _rewrite(
    cache: _Keys, table: str, column: str, row_id: object, blob: bytes | None
) -> bytes | None:
    """The blob under its subject's newest key, or None when it is already there (or erased)."""
    if blob is None:
        return None
    try:
        envelope = parse_envelope(blob)
    except DecryptionError:
        return None
    old = cache.by_id.get(envelope.key_id)
    subject = cache.subject_of.get(envelope.key_id)
    newest = cache.newest.get(subject) if subject is not None else None
    if old is None or newest is None or newest.key_id == old.key_id:
        return None
    plaintext = decrypt_field(old, table=table, column=column, row_id=row_id, blob=blob)
    return encrypt_field(newest, table=table, column=column, row_id=row_id, plaintext=plaintext)


async def _rewrite_page(
    session: AsyncSession,
    keys: KeyProvider,
    table: Table,
    columns: Sequence[str],
    after: str | None,
    batch: int,
) -> tuple[int, str | None]:
    """Rewrite one page of `table`; returns (rows changed, last primary key or None at the end)."""
    pk = next(iter(table.primary_key.columns))
    query = select(pk, *(table.c[name] for name in columns)).order_by(pk).limit(batch)
    if after is not None:
        query = query.where(pk > pk.type.python_type(after))
    rows = (await session.execute(query.with_for_update())).all()
    if not rows:
        return 0, None
    cache = _Keys(session, keys)
    wanted: set[uuid.UUID] = set()
    for row in rows:
        for blob in row[1:]:
            if blob:
                try:
                    wanted.add(parse_envelope(blob).key_id)
                except DecryptionError:
                    continue
    await cache.load(wanted)
    changed = 0
    for row in rows:
        values: dict[str, Any] = {}
        for name, blob in zip(columns, row[1:], strict=True):
            new = _rewrite(cache, table.name, name, row[0], blob)
            if new is not None:
                values[name] = new
        if values:
            await session.execute(update(table).where(pk == row[0]).values(**values))
            changed += 1
    return changed, str(rows[-1][0])


async def _rewrite_all(
    sessions: async_sessionmaker[AsyncSession],
    keys: KeyProvider,
    job_id: uuid.UUID,
    batch: int,
    progress: Progress,
) -> None:
    tables = ciphertext_tables()
    names = [table.name for table, _ in tables]
    while True:
        async with transaction(sessions) as session:
            job = await _load_job(session, job_id)
            if job.phase != "rewrite":
                return
            index = names.index(job.table_name) if job.table_name in names else 0
            table, columns = tables[index]
            changed, last = await _rewrite_page(session, keys, table, columns, job.after_id, batch)
            job.rows_rewritten += changed
            job.pass_rows += changed
            job.updated_at = utcnow()
            if last is not None:
                job.table_name, job.after_id = table.name, last
            elif index + 1 < len(tables):
                job.table_name, job.after_id = tables[index + 1][0].name, None
            else:
                # A full pass is over. Another one catches ciphertext written meanwhile by a
                # request that still held the previous version; a clean pass ends the phase.
                job.table_name, job.after_id = None, None
                if job.pass_rows == 0 or job.passes >= MAX_PASSES:
                    job.phase = "retire"
                else:
                    job.passes, job.pass_rows = job.passes + 1, 0
        progress("rewrite", changed)


async def _retire(
    sessions: async_sessionmaker[AsyncSession], keys: KeyProvider, job_id: uuid.UUID, actor: str
) -> None:
    async with transaction(sessions) as session:
        job = await _load_job(session, job_id)
        newest = (
            select(col(DataKey.subject_id), func.max(col(DataKey.version)).label("version"))
            .where(col(DataKey.destroyed_at).is_(None), col(DataKey.wrapped_key).is_not(None))
            .group_by(col(DataKey.subject_id))
            .subquery()
        )
        now = utcnow()
        result = await session.execute(
            update(DataKey)
            .where(
                col(DataKey.wrapped_key).is_not(None),
                col(DataKey.destroyed_at).is_(None),
                col(DataKey.created_at) < job.started_at,
                col(DataKey.version)
                < select(newest.c.version)
                .where(newest.c.subject_id == col(DataKey.subject_id))
                .scalar_subquery(),
            )
            .values(wrapped_key=None, retired_at=now)
        )
        job.keys_retired = int(getattr(result, "rowcount", 0) or 0)
        job.status, job.phase, job.finished_at, job.updated_at = "DONE", "done", now, now
        await audit.record(
            session,
            keys,
            action="keys.reencrypted",
            actor=actor,
            details={
                "job": str(job.id),
                "keys_created": job.keys_created,
                "rows_rewritten": job.rows_rewritten,
                "keys_retired": job.keys_retired,
            },
        )


async def reencrypt(
    sessions: async_sessionmaker[AsyncSession],
    keys: KeyProvider,
    *,
    actor: str,
    batch: int = 500,
    progress: Progress = _noop,
) -> ReencryptReport:
    """Move every ciphertext to a new data-key version per subject; resumes a running job."""
    job_id, resumed = await _open_job(sessions, actor)
    async with sessions() as session:
        phase = (await _load_job(session, job_id, lock=False)).phase
    if phase == "new_versions":
        await _new_versions(sessions, keys, job_id, batch, progress)
    await _rewrite_all(sessions, keys, job_id, batch, progress)
    await _retire(sessions, keys, job_id, actor)
    async with sessions() as session:
        job = await _load_job(session, job_id, lock=False)
        return ReencryptReport(
            job.id, resumed, job.keys_created, job.rows_rewritten, job.keys_retired, job.passes
        )
