"""Per-unit-of-work access to data keys: create, batch-load, encrypt and decrypt fields.

A `FieldCipher` lives for one request or one batch job. It caches unwrapped data keys only for
that lifetime (never module-wide), and loads the keys of many rows in one query so that
decrypting a page of customers costs one statement, not one per customer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from privacy.crypto import (
    DataKeyMaterial,
    DecryptionError,
    blind_index,
    decrypt_field,
    encrypt_field,
    generate_data_key,
    parse_envelope,
    wrap_aad,
)
from privacy.keys import KeyProvider
from privacy.models import DataKey


def new_data_key_values(
    provider: KeyProvider, subject_id: uuid.UUID
) -> tuple[dict[str, Any], bytes]:
    """Every column of a wrapped key row for a new subject, plus its plaintext."""
    key_id = uuid.uuid4()
    plaintext = generate_data_key()
    root_id, wrapped = provider.wrap(plaintext, wrap_aad(key_id, subject_id, 1))
    values: dict[str, Any] = {
        "id": key_id,
        "subject_id": subject_id,
        "version": 1,
        "root_key_id": root_id,
        "wrapped_key": wrapped,
        "created_at": utcnow(),
        "destroyed_at": None,
        "retired_at": None,
    }
    return values, plaintext


def new_data_key_row(provider: KeyProvider, subject_id: uuid.UUID) -> tuple[DataKey, bytes]:
    """A wrapped key row for a new subject, plus its plaintext for immediate use."""
    values, plaintext = new_data_key_values(provider, subject_id)
    return DataKey(**values), plaintext


class SubjectErased(RuntimeError):
    """Encryption was asked for a subject whose keys were destroyed (a bug in the caller:
    domains refuse erased customers before they get here)."""


class FieldCipher:
    def __init__(self, session: AsyncSession, provider: KeyProvider) -> None:
        self._session = session
        self._provider = provider
        self._by_id: dict[uuid.UUID, DataKeyMaterial | None] = {}
        self._active: dict[uuid.UUID, DataKeyMaterial] = {}
        self._subject_of: dict[uuid.UUID, uuid.UUID] = {}  # key id -> subject id
        # Two batches (say identities and review texts) may ask for one key at the same time.
        self._loading = asyncio.Lock()

    @property
    def keys(self) -> KeyProvider:
        """The key provider behind this cipher (for audit pseudonyms and signatures)."""
        return self._provider

    def blind_index(self, *, kind: str, value: str) -> str:
        return blind_index(self._provider.secret("blind_index"), kind=kind, value=value)

    def _unwrap(self, row: DataKey) -> DataKeyMaterial | None:
        self._subject_of[row.id] = row.subject_id
        if row.destroyed_at is not None or row.wrapped_key is None:
            return None
        key = self._provider.unwrap(
            row.root_key_id, row.wrapped_key, wrap_aad(row.id, row.subject_id, row.version)
        )
        return DataKeyMaterial(key_id=row.id, version=row.version, key=key)

    async def active_key(self, subject_id: uuid.UUID) -> DataKeyMaterial:
        """The subject's current data key, created (and flushed) on first use."""
        cached = self._active.get(subject_id)
        if cached is not None:
            return cached
        row = (
            await self._session.execute(
                select(DataKey)
                .where(col(DataKey.subject_id) == subject_id, col(DataKey.destroyed_at).is_(None))
                .order_by(col(DataKey.version).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if row is None:
            erased = (
                await self._session.execute(
                    select(col(DataKey.id)).where(col(DataKey.subject_id) == subject_id).limit(1)
                )
            ).first()
            if erased is not None:
                # Every key of this subject was destroyed: writing under a fresh key would
                # bring personal data of an erased subject back.
                raise SubjectErased("this data subject was erased")
            row, plaintext = new_data_key_row(self._provider, subject_id)
            self._session.add(row)
            await self._session.flush()
            material = DataKeyMaterial(key_id=row.id, version=1, key=plaintext)
            self._subject_of[row.id] = subject_id
        else:
            unwrapped = self._unwrap(row)
            assert unwrapped is not None
            material = unwrapped
        self._active[subject_id] = material
        self._by_id[material.key_id] = material
        return material

    def new_subject(self, subject_id: uuid.UUID) -> dict[str, Any]:
        """A data key for a subject created in this unit of work, made without a query (a new
        subject has none): the bulk path writes the returned rows itself, in one statement."""
        values, plaintext = new_data_key_values(self._provider, subject_id)
        material = DataKeyMaterial(key_id=values["id"], version=1, key=plaintext)
        self._active[subject_id] = material
        self._by_id[values["id"]] = material
        self._subject_of[values["id"]] = subject_id
        return values

    def forget(self, subject_ids: Iterable[uuid.UUID]) -> None:
        """Drop the cached keys of these subjects (after their keys are destroyed), so this
        cipher can no more decrypt their data than a fresh one could."""
        gone = set(subject_ids)
        for subject_id in gone:
            self._active.pop(subject_id, None)
        for key_id, subject_id in self._subject_of.items():
            if subject_id in gone:
                self._by_id[key_id] = None

    async def preload(self, blobs: Iterable[bytes | None]) -> None:
        """Load, in one query, every data key the given ciphertexts need."""
        wanted: set[uuid.UUID] = set()
        for blob in blobs:
            if blob:
                try:
                    wanted.add(parse_envelope(blob).key_id)
                except DecryptionError:
                    continue
        # Iterate over the few wanted ids, not the many cached ones (`set - keys()` walks the
        # whole cache, which made decrypting thousands of rows with one cipher quadratic).
        if all(key in self._by_id for key in wanted):
            return
        async with self._loading:
            missing = {key for key in wanted if key not in self._by_id}
            if missing:
                await self._load(missing)

    async def _load(self, missing: set[uuid.UUID]) -> None:
        rows = (
            (await self._session.execute(select(DataKey).where(col(DataKey.id).in_(missing))))
            .scalars()
            .all()
        )
        for row in rows:
            self._by_id[row.id] = self._unwrap(row)
        for key_id in missing - {row.id for row in rows}:
            self._by_id[key_id] = None

    async def encrypt(
        self, subject_id: uuid.UUID, *, table: str, column: str, row_id: object, value: str | None
    ) -> bytes | None:
        if value is None:
            return None
        material = await self.active_key(subject_id)
        return encrypt_field(material, table=table, column=column, row_id=row_id, plaintext=value)

    async def decrypt(
        self, *, table: str, column: str, row_id: object, blob: bytes | None
    ) -> str | None:
        """The plaintext, or None when there is no value or its key was destroyed (erased)."""
        if blob is None:
            return None
        await self.preload([blob])
        material = self._by_id.get(parse_envelope(blob).key_id)
        if material is None:
            return None
        return decrypt_field(material, table=table, column=column, row_id=row_id, blob=blob)
