"""The data subject's rights carried out across every registered source (152-FZ art. 14, 20, 21):
access (a package of everything held, in JSON and HTML), rectification, and destruction.

Destruction is crypto-shredding plus deletion. The subject's data keys are destroyed, so every
ciphertext of theirs, in the database and in any backup or copy, becomes unreadable; each
source deletes identifiers and blind-index rows and clears its ciphertext columns; the books
(events, ledger entries) stay, pointing to an anonymous customer row, so totals still add up.
A `DestructionCertificate` records what, when, how and by whom, and the audit log gets a
`subject.destroyed` entry.

Privacy knows no domain table: the sources and the subject directory are registered by the
domains (`privacy.sources`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from core.errors import DomainError
from privacy import audit, sources
from privacy.access_html import render
from privacy.consent_models import Consent, ConsentChange
from privacy.crypto import DecryptionError
from privacy.erasure_models import DestructionCertificate
from privacy.fields import FieldCipher
from privacy.models import DataKey
from privacy.purposes import CollectionChannel, CollectionMethod, ConsentStatus
from privacy.request_models import DataSubjectRequest
from privacy.sources import ErasedItem, FieldChange, Section, SubjectScope

METHOD = (
    "crypto-shredding: the subject's data keys destroyed; identifiers and blind-index rows "
    "deleted; ciphertext columns cleared; books kept under an anonymous customer"
)
PRIVACY_SOURCE = "privacy layer (loyalgraph)"
CONSENT_BASIS = "the consents themselves, kept as proof (152-FZ art. 9 part 3)"
CONSENT_RETENTION = (
    "while the processing they allow lasts and for the limitation period after it; evidence "
    "that identifies the subject (IP address, user agent) is destroyed with the subject"
)


class SubjectRightsErrorCode(StrEnum):
    """Expected failures of access, rectification and destruction."""

    SUBJECT_NOT_FOUND = "SUBJECT_NOT_FOUND"
    SUBJECT_ERASED = "SUBJECT_ERASED"
    ALREADY_ERASED = "ALREADY_ERASED"
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    NOTHING_TO_CHANGE = "NOTHING_TO_CHANGE"


def _error(code: SubjectRightsErrorCode, message: str, *field: str) -> DomainError:
    return DomainError(code, message, list(field) if field else None)


@dataclass(frozen=True, slots=True)
class AccessPackage:
    """Everything the database holds about one data subject, and why."""

    subject_id: uuid.UUID
    generated_at: datetime
    sections: list[Section] = field(default_factory=list)

    def section(self, name: str) -> Section:
        return next(section for section in self.sections if section.name == name)

    def as_json(self) -> dict[str, Any]:
        return {
            "subjectId": str(self.subject_id),
            "generatedAt": self.generated_at.isoformat(),
            "sections": [section.as_json() for section in self.sections],
        }

    def as_html(self) -> str:
        return render(self)


async def _scope(session: AsyncSession, subject_id: uuid.UUID) -> SubjectScope:
    scope = await sources.resolve_subject(session, subject_id)
    if scope is None:
        raise _error(SubjectRightsErrorCode.SUBJECT_NOT_FOUND, "no such data subject", "subjectId")
    return scope


async def _decrypt(
    cipher: FieldCipher, table: str, column: str, row_id: object, blob: bytes | None
) -> str | None:
    try:
        return await cipher.decrypt(table=table, column=column, row_id=row_id, blob=blob)
    except DecryptionError:
        return None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def _consent_sections(
    session: AsyncSession, cipher: FieldCipher, ids: list[uuid.UUID]
) -> list[Section]:
    consents = (
        (
            await session.execute(
                select(Consent)
                .where(col(Consent.subject_id).in_(ids))
                .order_by(col(Consent.purpose), col(Consent.channel))
            )
        )
        .scalars()
        .all()
    )
    changes = (
        (
            await session.execute(
                select(ConsentChange)
                .where(col(ConsentChange.subject_id).in_(ids))
                .order_by(col(ConsentChange.occurred_at), col(ConsentChange.id))
            )
        )
        .scalars()
        .all()
    )
    await cipher.preload(blob for row in changes for blob in (row.ip_ct, row.user_agent_ct))
    history = [
        {
            "purpose": row.purpose,
            "channel": row.channel,
            "status": row.status,
            "documentId": str(row.document_id),
            "allowedCategories": list(row.allowed_categories),
            "occurredAt": _iso(row.occurred_at),
            "collectedChannel": row.collected_channel,
            "method": row.method,
            "ipAddress": await _decrypt(cipher, "consent_change", "ip_ct", row.id, row.ip_ct),
            "userAgent": await _decrypt(
                cipher, "consent_change", "user_agent_ct", row.id, row.user_agent_ct
            ),
        }
        for row in changes
    ]
    requests = (
        (
            await session.execute(
                select(DataSubjectRequest)
                .where(col(DataSubjectRequest.subject_id).in_(ids))
                .order_by(col(DataSubjectRequest.received_at))
            )
        )
        .scalars()
        .all()
    )
    common: dict[str, Any] = {
        "source_system": PRIVACY_SOURCE,
        "recipients": ("the operator's compliance officers",),
    }
    return [
        Section(
            name="consents",
            title="Consents to processing",
            purposes=("proving the consents given and withdrawn",),
            legal_basis=CONSENT_BASIS,
            retention=CONSENT_RETENTION,
            records=[
                {
                    "purpose": row.purpose,
                    "channel": row.channel,
                    "status": row.status,
                    "documentId": str(row.document_id),
                    "allowedCategories": list(row.allowed_categories),
                    "grantedAt": _iso(row.granted_at),
                    "withdrawnAt": _iso(row.withdrawn_at),
                }
                for row in consents
            ],
            **common,
        ),
        Section(
            name="consent_history",
            title="History of consent changes, with evidence",
            purposes=("proving the consents given and withdrawn",),
            legal_basis=CONSENT_BASIS,
            retention=CONSENT_RETENTION,
            records=history,
            **common,
        ),
        Section(
            name="data_subject_requests",
            title="Requests about your personal data",
            purposes=("answering data subject requests (152-FZ art. 14, 20, 21)",),
            legal_basis="legal obligation of the operator (152-FZ art. 6 part 1 item 2)",
            retention="3 years after the request is closed",
            records=[
                {
                    "id": str(row.id),
                    "kind": row.kind,
                    "status": row.status,
                    "receivedAt": _iso(row.received_at),
                    "dueAt": _iso(row.due_at),
                    "closedAt": _iso(row.closed_at),
                }
                for row in requests
            ],
            **common,
        ),
    ]


async def access_package(
    session: AsyncSession, cipher: FieldCipher, *, subject_id: uuid.UUID
) -> AccessPackage:
    """Everything held about the subject (and every record merged into theirs), decrypted,
    with the source, purposes, legal basis, recipients and retention of each kind of data."""
    scope = await _scope(session, subject_id)
    if scope.erased:
        raise _error(
            SubjectRightsErrorCode.SUBJECT_ERASED, "this subject's data was destroyed", "subjectId"
        )
    ids = list(scope.members)
    found: list[Section] = []
    for source in sources.registered():
        found.extend(await source.export(session, cipher, ids))
    found.extend(await _consent_sections(session, cipher, ids))
    return AccessPackage(subject_id=scope.primary, generated_at=utcnow(), sections=found)


async def rectify_subject(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    subject_id: uuid.UUID,
    changes: Mapping[str, str | None],
    actor: str,
) -> list[FieldChange]:
    """Correct the subject's data through each owning domain's services.

    An unknown field is refused before anything changes. The audit log gets one
    `subject.rectified` entry with, per field, digests of the ciphertext before and after.
    """
    if not changes:
        raise _error(SubjectRightsErrorCode.NOTHING_TO_CHANGE, "no field to change", "changes")
    registered = sources.registered()
    editable = {name for source in registered for name in source.editable}
    unknown = sorted(set(changes) - editable)
    if unknown:
        raise _error(
            SubjectRightsErrorCode.UNKNOWN_FIELD,
            f"fields that cannot be rectified: {', '.join(unknown)}",
            "changes",
            unknown[0],
        )
    scope = await _scope(session, subject_id)
    if scope.erased:
        raise _error(
            SubjectRightsErrorCode.SUBJECT_ERASED, "this subject's data was destroyed", "subjectId"
        )
    result: list[FieldChange] = []
    for source in registered:
        own = {name: value for name, value in changes.items() if name in source.editable}
        if own:
            result.extend(await source.rectify(session, cipher, scope.primary, own, actor))
    await audit.record(
        session,
        cipher.keys,
        action="subject.rectified",
        actor=actor,
        subject_id=scope.primary,
        details={
            change.field: {"table": change.table, "before": change.before, "after": change.after}
            for change in result
        },
    )
    return result


async def _erase_consent_evidence(
    session: AsyncSession, ids: list[uuid.UUID], *, actor: str, request_id: uuid.UUID, now: datetime
) -> list[ErasedItem]:
    changes = (
        (await session.execute(select(ConsentChange).where(col(ConsentChange.subject_id).in_(ids))))
        .scalars()
        .all()
    )
    cleared = 0
    for change in changes:
        if change.ip_ct is not None or change.user_agent_ct is not None:
            change.ip_ct = change.user_agent_ct = None
            cleared += 1
    granted = (
        (
            await session.execute(
                select(Consent).where(
                    col(Consent.subject_id).in_(ids), col(Consent.status) == ConsentStatus.GRANTED
                )
            )
        )
        .scalars()
        .all()
    )
    for consent in granted:
        # Nobody may process an erased subject's data any more: every consent ends here,
        # and the history says why.
        consent.status = ConsentStatus.WITHDRAWN
        consent.withdrawn_at = consent.updated_at = now
        session.add(
            ConsentChange(
                consent_id=consent.id,
                subject_id=consent.subject_id,
                purpose=consent.purpose,
                channel=consent.channel,
                status=ConsentStatus.WITHDRAWN,
                document_id=consent.document_id,
                allowed_categories=[],
                occurred_at=now,
                collected_channel=CollectionChannel.CONTACT_CENTER,
                method=CollectionMethod.WRITTEN_REQUEST,
                actor=actor[:100],
                details={"reason": "DESTRUCTION", "request_id": str(request_id)},
            )
        )
    return [
        ErasedItem(
            "consent_change",
            rows_anonymised=cleared,
            columns_cleared=("ip_ct", "user_agent_ct"),
            rows_retained=len(changes) - cleared + len(granted),
        ),
        ErasedItem("consent", rows_anonymised=len(granted), rows_retained=0),
    ]


async def _shred_keys(session: AsyncSession, ids: list[uuid.UUID], now: datetime) -> list[str]:
    keys = (
        (
            await session.execute(
                select(DataKey)
                .where(col(DataKey.subject_id).in_(ids))
                .order_by(col(DataKey.subject_id), col(DataKey.version))
            )
        )
        .scalars()
        .all()
    )
    for key in keys:
        key.wrapped_key = None
        key.destroyed_at = key.destroyed_at or now
    return [str(key.id) for key in keys]


async def destroy_subject(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    subject_id: uuid.UUID,
    actor: str,
    request_id: uuid.UUID,
) -> DestructionCertificate:
    """Destroy the subject's personal data everywhere and return the certificate that says so.

    Unknown subject: SUBJECT_NOT_FOUND; already destroyed: ALREADY_ERASED (nothing changes).
    """
    scope = await _scope(session, subject_id)
    done = (
        await session.execute(
            select(col(DestructionCertificate.id)).where(
                col(DestructionCertificate.subject_id) == scope.primary
            )
        )
    ).scalar_one_or_none()
    if scope.erased or done is not None:
        raise _error(
            SubjectRightsErrorCode.ALREADY_ERASED,
            "this subject's data was destroyed already",
            "subjectId",
        )
    now = utcnow()
    ids = list(scope.members)
    items: list[ErasedItem] = []
    for source in sources.registered():
        items.extend(await source.erase(session, cipher, ids))
    items.extend(
        await _erase_consent_evidence(session, ids, actor=actor, request_id=request_id, now=now)
    )
    key_ids = await _shred_keys(session, ids, now)
    cipher.forget(ids)
    items.append(
        ErasedItem("data_key", rows_anonymised=len(key_ids), columns_cleared=("wrapped_key",))
    )
    certificate = DestructionCertificate(
        subject_id=scope.primary,
        request_id=request_id,
        actor=actor[:100],
        destroyed_at=now,
        method=METHOD,
        subject_ids=[str(member) for member in ids],
        key_ids=key_ids,
        items=[item.as_json() for item in items],
        digest="",
    )
    certificate.digest = certificate.contents_digest()
    session.add(certificate)
    await session.flush()
    await audit.record(
        session,
        cipher.keys,
        action="subject.destroyed",
        actor=actor,
        subject_id=scope.primary,
        details={
            "request_id": str(request_id),
            "certificate_id": str(certificate.id),
            "certificate_digest": certificate.digest,
            "keys_destroyed": len(key_ids),
        },
        at=now,
    )
    return certificate


async def scrub_storage(session: AsyncSession) -> bool:
    """After an erasure has committed: leave no old page image behind in SQLite's write-ahead log.

    `PRAGMA secure_delete` (core.db) zeroes freed space in the database file, but the WAL still
    holds the pages as they were before the erasure until it is checkpointed and truncated.
    Returns True when the checkpoint completed (False: a reader was busy; run it again later).
    On PostgreSQL there is nothing to do here: dumps never show dead rows, and autovacuum
    reclaims their space.
    """
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return True
    if session.in_transaction():
        await session.commit()
    row = (await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))).one()
    await session.commit()
    return bool(row[0] == 0)
