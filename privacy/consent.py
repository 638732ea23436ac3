"""Consent services: grant and withdraw one consent at a time, with evidence, and read them.

Each call concerns exactly one purpose (and, for marketing, one channel): consents are never
bundled, so accepting the loyalty terms says nothing about SMS, and an SMS consent says nothing
about calls. Every change updates the current `Consent` row, appends a `ConsentChange` (the
history, never updated) and a hash-chained audit entry, all in the caller's transaction.

Rules, each answered with a typed `ConsentErrorCode` that changes nothing:

- the document must exist, be for the same purpose, and be in force when the consent was given
  (`evidence.occurred_at` inside its validity window);
- marketing needs a channel, other purposes take none; dissemination needs its per-category
  allow-list, other purposes take none;
- only a granted consent can be withdrawn;
- evidence must be plausible: not in the future, an IP address that parses, a bounded user agent;
- a change older than (or as old as) the consent's latest recorded change is OUT_OF_ORDER: a
  paper form signed yesterday does not overturn a withdrawal made by SMS today.

Re-granting what is already granted (the same document version and the same categories) is
idempotent: the current consent is returned and no history row or audit entry is added. A grant
under a newer document version, or with other categories, is a new change (re-consent).

The IP address and user agent are personal data: they are stored only as ciphertext under the
subject's data key (`consent_change.ip_ct`, `user_agent_ct`), so erasing the subject erases them,
and the audit entry carries only digests of those ciphertexts.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from privacy import audit
from privacy.consent_documents import in_force
from privacy.consent_models import Consent, ConsentChange, ConsentDocument
from privacy.fields import FieldCipher
from privacy.purposes import (
    CollectionChannel,
    CollectionMethod,
    ConsentErrorCode,
    ConsentStatus,
    DataCategory,
    MarketingChannel,
    Purpose,
    channel_key,
    consent_error,
)

CLOCK_SKEW = timedelta(minutes=5)  # evidence from a device whose clock runs a little ahead
MAX_USER_AGENT = 512
MAX_ACTOR = 100
HISTORY_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Evidence:
    """How, when, where and by whom a consent was given or withdrawn.

    `actor` is a pseudonymous label of whoever recorded it (`customer:<id>`, `staff:<sub>`,
    `app:<name>`), never a name. `ip` and `user_agent` are stored encrypted.
    """

    occurred_at: datetime
    collected_channel: CollectionChannel
    method: CollectionMethod
    actor: str
    ip: str | None = None
    user_agent: str | None = None


def _checked_evidence(evidence: Evidence) -> datetime:
    """The evidence's instant in UTC, after checking the evidence is plausible."""
    at = as_utc(evidence.occurred_at)
    if at > utcnow() + CLOCK_SKEW:
        raise consent_error(
            ConsentErrorCode.INVALID_EVIDENCE,
            "the consent cannot have been given in the future",
            "evidence",
            "occurredAt",
        )
    CollectionChannel(evidence.collected_channel)
    CollectionMethod(evidence.method)
    if not evidence.actor or len(evidence.actor) > MAX_ACTOR:
        raise consent_error(
            ConsentErrorCode.INVALID_EVIDENCE, "the actor label is missing or too long", "evidence"
        )
    if evidence.ip is not None:
        try:
            ipaddress.ip_address(evidence.ip)
        except ValueError:
            raise consent_error(
                ConsentErrorCode.INVALID_EVIDENCE, "not an IP address", "evidence", "ip"
            ) from None
    if evidence.user_agent is not None and not 1 <= len(evidence.user_agent) <= MAX_USER_AGENT:
        raise consent_error(
            ConsentErrorCode.INVALID_EVIDENCE,
            f"a user agent has 1-{MAX_USER_AGENT} characters",
            "evidence",
            "userAgent",
        )
    return at


def _channel(purpose: Purpose, channel: MarketingChannel | None) -> str:
    if purpose is Purpose.MARKETING and channel is None:
        raise consent_error(
            ConsentErrorCode.CHANNEL_REQUIRED, "a marketing consent is given per channel", "channel"
        )
    if purpose is not Purpose.MARKETING and channel is not None:
        raise consent_error(
            ConsentErrorCode.CHANNEL_NOT_ALLOWED,
            "only marketing consents have a channel",
            "channel",
        )
    return channel_key(purpose, channel)


def _categories(purpose: Purpose, categories: Iterable[DataCategory | str]) -> list[str]:
    given = list(categories)
    if purpose is Purpose.DISSEMINATION and not given:
        raise consent_error(
            ConsentErrorCode.CATEGORIES_REQUIRED,
            "a dissemination consent lists the categories that may be made public",
            "allowedCategories",
        )
    if purpose is not Purpose.DISSEMINATION and given:
        raise consent_error(
            ConsentErrorCode.CATEGORIES_NOT_ALLOWED,
            "only a dissemination consent has categories",
            "allowedCategories",
        )
    try:
        return sorted({DataCategory(value).value for value in given})
    except ValueError:
        raise consent_error(
            ConsentErrorCode.INVALID_INPUT, "unknown data category", "allowedCategories"
        ) from None


async def _document(
    session: AsyncSession, document_id: uuid.UUID, purpose: Purpose, at: datetime
) -> ConsentDocument:
    document = await session.get(ConsentDocument, document_id)
    if document is None:
        raise consent_error(
            ConsentErrorCode.DOCUMENT_NOT_FOUND, "no such consent document version", "documentId"
        )
    if document.purpose != purpose.value:
        raise consent_error(
            ConsentErrorCode.DOCUMENT_PURPOSE_MISMATCH,
            "the document is for another purpose",
            "documentId",
        )
    if not in_force(document, at):
        raise consent_error(
            ConsentErrorCode.DOCUMENT_NOT_IN_FORCE,
            "the document version was not in force when the consent was given",
            "documentId",
        )
    return document


async def current_consent(
    session: AsyncSession,
    *,
    subject_id: uuid.UUID,
    purpose: Purpose,
    channel: MarketingChannel | None = None,
    lock: bool = False,
) -> Consent | None:
    query = select(Consent).where(
        col(Consent.subject_id) == subject_id,
        col(Consent.purpose) == purpose.value,
        col(Consent.channel) == channel_key(purpose, channel),
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


def _last_change_at(consent: Consent) -> datetime:
    if consent.status == ConsentStatus.WITHDRAWN and consent.withdrawn_at is not None:
        return as_utc(consent.withdrawn_at)
    return as_utc(consent.granted_at)


def _check_order(consent: Consent, at: datetime) -> None:
    if at <= _last_change_at(consent):
        raise consent_error(
            ConsentErrorCode.OUT_OF_ORDER,
            "a later change of this consent is already recorded",
            "evidence",
            "occurredAt",
        )


async def _record_change(
    session: AsyncSession,
    cipher: FieldCipher,
    consent: Consent,
    evidence: Evidence,
    at: datetime,
    previous: tuple[str, uuid.UUID] | None,
) -> ConsentChange:
    change_id = uuid.uuid4()

    async def seal(column: str, value: str | None) -> bytes | None:
        return await cipher.encrypt(
            consent.subject_id, table="consent_change", column=column, row_id=change_id, value=value
        )

    change = ConsentChange(
        id=change_id,
        consent_id=consent.id,
        subject_id=consent.subject_id,
        purpose=consent.purpose,
        channel=consent.channel,
        status=consent.status,
        document_id=consent.document_id,
        allowed_categories=list(consent.allowed_categories),
        occurred_at=at,
        collected_channel=CollectionChannel(evidence.collected_channel).value,
        method=CollectionMethod(evidence.method).value,
        actor=evidence.actor,
        ip_ct=await seal("ip_ct", evidence.ip),
        user_agent_ct=await seal("user_agent_ct", evidence.user_agent),
        details=(
            {}
            if previous is None
            else {"previous_status": previous[0], "previous_document_id": str(previous[1])}
        ),
    )
    session.add(change)
    await session.flush()
    await audit.record(
        session,
        cipher.keys,
        action=f"consent.{consent.status.lower()}",
        actor=evidence.actor,
        subject_id=consent.subject_id,
        details={
            "occurred_at": at.isoformat(),
            "consent_id": str(consent.id),
            "change_id": str(change.id),
            "purpose": consent.purpose,
            "channel": consent.channel,
            "document_id": str(consent.document_id),
            "categories": list(consent.allowed_categories),
            "collected_channel": change.collected_channel,
            "method": change.method,
            "ip_digest": audit.ciphertext_digest(change.ip_ct),
            "user_agent_digest": audit.ciphertext_digest(change.user_agent_ct),
        },
    )
    return change


async def grant_consent(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    subject_id: uuid.UUID,
    purpose: Purpose,
    channel: MarketingChannel | None,
    document_id: uuid.UUID,
    evidence: Evidence,
    allowed_categories: Sequence[DataCategory | str] = (),
) -> Consent:
    """Record that the subject gave one consent under one document version.

    The caller has checked that the subject (customer) exists and is active. Returns the
    current consent; see the module docstring for the rules and for idempotent re-grants.
    """
    key = _channel(purpose, channel)
    categories = _categories(purpose, allowed_categories)
    at = _checked_evidence(evidence)
    document = await _document(session, document_id, purpose, at)
    consent = await current_consent(
        session, subject_id=subject_id, purpose=purpose, channel=channel, lock=True
    )
    previous: tuple[str, uuid.UUID] | None = None
    if consent is None:
        consent = Consent(
            subject_id=subject_id,
            purpose=purpose.value,
            channel=key,
            status=ConsentStatus.GRANTED.value,
            document_id=document.id,
            allowed_categories=categories,
            granted_at=at,
        )
        session.add(consent)
    else:
        if (
            consent.status == ConsentStatus.GRANTED
            and consent.document_id == document.id
            and sorted(consent.allowed_categories) == categories
        ):
            return consent  # already given exactly so: nothing to record
        _check_order(consent, at)
        previous = (consent.status, consent.document_id)
        consent.status = ConsentStatus.GRANTED.value
        consent.document_id = document.id
        consent.allowed_categories = categories
        consent.granted_at = at
        consent.withdrawn_at = None
        consent.updated_at = utcnow()
    await session.flush()
    await _record_change(session, cipher, consent, evidence, at, previous)
    return consent


async def withdraw_consent(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    subject_id: uuid.UUID,
    purpose: Purpose,
    channel: MarketingChannel | None,
    evidence: Evidence,
) -> Consent:
    """Record that the subject withdrew one consent. CONSENT_NOT_GRANTED when it was never
    given or is already withdrawn. Processing for that purpose stops at `occurred_at`."""
    _channel(purpose, channel)
    at = _checked_evidence(evidence)
    consent = await current_consent(
        session, subject_id=subject_id, purpose=purpose, channel=channel, lock=True
    )
    if consent is None or consent.status != ConsentStatus.GRANTED:
        raise consent_error(
            ConsentErrorCode.CONSENT_NOT_GRANTED,
            "this consent was never given or is already withdrawn",
            *(("channel",) if purpose is Purpose.MARKETING else ("purpose",)),
        )
    _check_order(consent, at)
    previous = (consent.status, consent.document_id)
    consent.status = ConsentStatus.WITHDRAWN.value
    consent.withdrawn_at = at
    consent.updated_at = utcnow()
    await session.flush()
    await _record_change(session, cipher, consent, evidence, at, previous)
    return consent


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A current consent with the document version it refers to."""

    consent: Consent
    document: ConsentDocument


async def consents_of(
    session: AsyncSession, subject_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ConsentRecord]]:
    """Every current consent (granted or withdrawn) of each subject, in one statement, ordered
    by purpose and channel."""
    found: dict[uuid.UUID, list[ConsentRecord]] = defaultdict(list)
    if not subject_ids:
        return found
    rows = await session.execute(
        select(Consent, ConsentDocument)
        .join(ConsentDocument, col(ConsentDocument.id) == col(Consent.document_id))
        .where(col(Consent.subject_id).in_(list(set(subject_ids))))
        .order_by(col(Consent.subject_id), col(Consent.purpose), col(Consent.channel))
    )
    for consent, document in rows.all():
        found[consent.subject_id].append(ConsentRecord(consent, document))
    return found


async def consent_history(
    session: AsyncSession, *, subject_id: uuid.UUID, limit: int = HISTORY_LIMIT
) -> list[ConsentChange]:
    """The subject's consent changes, newest first (at most `limit`)."""
    rows = await session.execute(
        select(ConsentChange)
        .where(col(ConsentChange.subject_id) == subject_id)
        .order_by(col(ConsentChange.occurred_at).desc(), col(ConsentChange.id))
        .limit(limit)
    )
    return list(rows.scalars().all())


@dataclass(frozen=True, slots=True)
class OpenedEvidence:
    ip: str | None
    user_agent: str | None


async def open_evidence(cipher: FieldCipher, change: ConsentChange) -> OpenedEvidence:
    """The decrypted IP address and user agent of one change (None once the subject is
    erased). Callers that show them to staff record a `personal_data.read` audit entry."""
    await cipher.preload([change.ip_ct, change.user_agent_ct])
    ip = await cipher.decrypt(
        table="consent_change", column="ip_ct", row_id=change.id, blob=change.ip_ct
    )
    agent = await cipher.decrypt(
        table="consent_change", column="user_agent_ct", row_id=change.id, blob=change.user_agent_ct
    )
    return OpenedEvidence(ip=ip, user_agent=agent)
