"""The audit log: append-only, hash-chained, pseudonymous.

Each entry carries the hash of the one before it, so editing or deleting a row breaks the chain
at that row and `verify_chain` names it. Subjects appear only as a keyed pseudonym (HMAC of the
customer id under the keyring's `audit_pseudonym` secret): the log proves what happened to whom
without holding anyone's identity, and it stays meaningful after that person is erased.

Callers pass codes, ids of non-personal rows and ciphertext digests in `details`, never
plaintext personal data. Action names are dotted, `<area>.<verb>`: `consent.granted`,
`request.verified`, `customer.merged`, `points.adjusted`, `personal_data.read`, ...
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from privacy.keys import KeyProvider
from privacy.models import AuditEntry

GENESIS = "0" * 64
# One constant advisory lock serialises appends on PostgreSQL (SQLite serialises writers).
_PG_LOCK = 0x4C4741554449  # "LGAUDI"
PAGE = 5000


def pseudonym(keys: KeyProvider, subject_id: uuid.UUID) -> str:
    """A stable keyed pseudonym for a data subject; without the keyring it links to no one."""
    secret = keys.secret("audit_pseudonym")
    return hmac.new(secret, f"subject|{subject_id}".encode(), hashlib.sha256).hexdigest()[:32]


def ciphertext_digest(blob: bytes | None) -> str | None:
    """What the audit log keeps of a changed personal-data value: a digest of its ciphertext."""
    return None if blob is None else hashlib.sha256(blob).hexdigest()


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    payload = json.dumps(
        [seq, as_utc(at).isoformat(), actor, action, subject, details, prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _actor_label(keys: KeyProvider, actor: str) -> str:
    """Staff and apps appear by their label; a customer acting for themself by pseudonym."""
    kind, _, rest = actor.partition(":")
    if kind == "customer":
        try:
            return f"customer:{pseudonym(keys, uuid.UUID(rest))}"
        except ValueError:
            return "customer:?"
    return actor[:100]


async def _lock_tail(session: AsyncSession) -> None:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})


async def record(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    action: str,
    actor: str,
    subject_id: uuid.UUID | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits or rolls back with the work).

    On PostgreSQL the append takes a transaction-scoped advisory lock, so concurrent writers
    chain one after another instead of forking the chain.
    """
    await _lock_tail(session)
    last = (
        await session.execute(
            select(col(AuditEntry.seq), col(AuditEntry.hash))
            .order_by(col(AuditEntry.seq).desc())
            .limit(1)
        )
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last is not None else (1, GENESIS)
    when = as_utc(at) if at is not None else utcnow()
    subject = pseudonym(keys, subject_id) if subject_id is not None else None
    actor = _actor_label(keys, actor)
    body = dict(details or {})
    entry = AuditEntry(
        seq=seq,
        at=when,
        actor=actor,
        action=action,
        subject=subject,
        details=body,
        prev_hash=prev,
        hash=entry_hash(
            seq=seq,
            at=when,
            actor=actor,
            action=action,
            subject=subject,
            details=body,
            prev_hash=prev,
        ),
    )
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    first_broken: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken is None


async def _pages(session: AsyncSession) -> AsyncIterator[list[AuditEntry]]:
    after = 0
    while True:
        rows = list(
            (
                await session.execute(
                    select(AuditEntry)
                    .where(col(AuditEntry.seq) > after)
                    .order_by(col(AuditEntry.seq))
                    .limit(PAGE)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield rows
        after = rows[-1].seq
        session.expunge_all()


async def verify_chain(session: AsyncSession) -> ChainReport:
    """Recompute every hash in order; report the first entry that does not fit the chain.

    An edited entry fails its own hash; a deleted entry shows as a gap in the sequence, or as
    the next entry's `prev_hash` no longer matching. (Deleting the newest entries leaves a
    shorter but valid chain: compare the head with one recorded elsewhere, such as the last
    signed export, to catch that.)
    """
    expected_seq, prev, count = 1, GENESIS, 0
    async for page in _pages(session):
        for entry in page:
            if entry.seq != expected_seq:
                return ChainReport(count, entry.seq, f"entry {expected_seq} is missing")
            if entry.prev_hash != prev:
                return ChainReport(count, entry.seq, "does not link to the entry before it")
            actual = entry_hash(
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                subject=entry.subject,
                details=entry.details,
                prev_hash=entry.prev_hash,
            )
            if actual != entry.hash:
                return ChainReport(count, entry.seq, "its contents do not match its hash")
            prev, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    return ChainReport(count)
