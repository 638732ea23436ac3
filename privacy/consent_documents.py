"""Versioned consent documents: the exact text a subject agreed to, by purpose and language.

A new wording is published as a new version; the version in force before it is closed at the
moment the new one takes effect, and stays (consents given under it keep pointing at it). Each
document carries the SHA-256 of its UTF-8 text, so a compliance officer can show which words a
consent referred to, and that they were not changed afterwards.

The default texts (Russian and English, one per purpose) live in `privacy/documents/` as
`<purpose>.<language>.md`, the first line being `# <title>`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from privacy import audit
from privacy.consent_models import ConsentDocument
from privacy.keys import KeyProvider
from privacy.purposes import ConsentErrorCode, Purpose, consent_error

DOCUMENTS_DIR = Path(__file__).resolve().parent / "documents"
DEFAULT_LANGUAGES = ("ru", "en")
# The default documents are in force from a date before any history the demo generates.
DEFAULTS_IN_FORCE_FROM = datetime(2020, 1, 1, tzinfo=UTC)
MAX_TEXT = 100_000
LIST_LIMIT = 100
_LANGUAGE = re.compile(r"^[a-z]{2}$")


def text_hash(text: str) -> str:
    """The SHA-256 (hex) of a document's UTF-8 text: what a consent is bound to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def in_force(document: ConsentDocument, at: datetime) -> bool:
    """True when `at` is inside the document's validity window [valid_from, valid_to)."""
    moment = as_utc(at)
    if moment < as_utc(document.valid_from):
        return False
    return document.valid_to is None or moment < as_utc(document.valid_to)


def _validated(
    language: str, title: str, text: str, valid_from: datetime, valid_to: datetime | None
) -> tuple[str, str, str]:
    if not _LANGUAGE.match(language):
        raise consent_error(
            ConsentErrorCode.INVALID_INPUT, "a language is two lowercase letters", "language"
        )
    clean_title = title.strip()
    if not 1 <= len(clean_title) <= 200:
        raise consent_error(ConsentErrorCode.INVALID_INPUT, "a title has 1-200 characters", "title")
    if not text.strip() or len(text) > MAX_TEXT:
        raise consent_error(
            ConsentErrorCode.INVALID_INPUT, f"a text has 1-{MAX_TEXT} characters", "text"
        )
    if valid_to is not None and as_utc(valid_to) <= as_utc(valid_from):
        raise consent_error(
            ConsentErrorCode.INVALID_INPUT, "validTo must be after validFrom", "validTo"
        )
    return language, clean_title, text  # the text is kept exactly as published


async def _versions(
    session: AsyncSession, purpose: Purpose, language: str
) -> list[ConsentDocument]:
    rows = await session.execute(
        select(ConsentDocument)
        .where(col(ConsentDocument.purpose) == purpose.value)
        .where(col(ConsentDocument.language) == language)
        .order_by(col(ConsentDocument.version))
        .with_for_update()
    )
    return list(rows.scalars().all())


async def publish_document(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    purpose: Purpose,
    language: str,
    title: str,
    text: str,
    actor: str,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
) -> ConsentDocument:
    """Publish the next version for a purpose and language, in force from `valid_from`
    (default now). Versions still in force at that moment are closed then. A version cannot
    take effect before the newest existing one (that would rewrite history): INVALID_INPUT."""
    start = as_utc(valid_from) if valid_from is not None else utcnow()
    language, title, text = _validated(language, title, text, start, valid_to)
    existing = await _versions(session, purpose, language)
    if existing and as_utc(existing[-1].valid_from) >= start:
        raise consent_error(
            ConsentErrorCode.INVALID_INPUT,
            "a new version must take effect after the newest existing one",
            "validFrom",
        )
    for older in existing:
        if older.valid_to is None or as_utc(older.valid_to) > start:
            older.valid_to = start
    document = ConsentDocument(
        purpose=purpose.value,
        language=language,
        version=(existing[-1].version + 1) if existing else 1,
        title=title,
        text=text,
        text_hash=text_hash(text),
        valid_from=start,
        valid_to=as_utc(valid_to) if valid_to is not None else None,
    )
    session.add(document)
    await session.flush()
    await audit.record(
        session,
        keys,
        action="consent.document_published",
        actor=actor,
        details={
            "document_id": str(document.id),
            "purpose": document.purpose,
            "language": document.language,
            "version": document.version,
            "text_hash": document.text_hash,
        },
    )
    return document


def default_text(purpose: Purpose, language: str) -> tuple[str, str]:
    """(title, text) of the shipped default document."""
    path = DOCUMENTS_DIR / f"{purpose.value.lower()}.{language}.md"
    first, _, rest = path.read_text(encoding="utf-8").partition("\n")
    return first.removeprefix("#").strip(), rest.strip() + "\n"


async def ensure_default_documents(
    session: AsyncSession, *, valid_from: datetime = DEFAULTS_IN_FORCE_FROM
) -> list[ConsentDocument]:
    """Version 1 of the default document for every purpose in Russian and English, created
    where that purpose and language has no document yet (running it again adds nothing).
    Returns the documents now in force for those purposes and languages."""
    present = set(
        (
            await session.execute(
                select(col(ConsentDocument.purpose), col(ConsentDocument.language)).distinct()
            )
        ).all()
    )
    for purpose in Purpose:
        for language in DEFAULT_LANGUAGES:
            if (purpose.value, language) in present:
                continue
            title, text = default_text(purpose, language)
            session.add(
                ConsentDocument(
                    purpose=purpose.value,
                    language=language,
                    version=1,
                    title=title,
                    text=text,
                    text_hash=text_hash(text),
                    valid_from=valid_from,
                )
            )
    await session.flush()
    return await list_documents(session, current_at=utcnow(), languages=DEFAULT_LANGUAGES)


async def get_document(session: AsyncSession, document_id: uuid.UUID) -> ConsentDocument | None:
    return await session.get(ConsentDocument, document_id)


async def list_documents(
    session: AsyncSession,
    *,
    purpose: Purpose | None = None,
    language: str | None = None,
    languages: Sequence[str] = (),
    current_at: datetime | None = None,
    limit: int = LIST_LIMIT,
) -> list[ConsentDocument]:
    """Documents by purpose, language and newest version first. With `current_at`, only the
    versions in force at that instant (the ones a consent can be given under)."""
    query = select(ConsentDocument)
    if purpose is not None:
        query = query.where(col(ConsentDocument.purpose) == purpose.value)
    if language is not None:
        query = query.where(col(ConsentDocument.language) == language)
    if languages:
        query = query.where(col(ConsentDocument.language).in_(list(languages)))
    if current_at is not None:
        moment = as_utc(current_at)
        query = query.where(col(ConsentDocument.valid_from) <= moment).where(
            or_(col(ConsentDocument.valid_to).is_(None), col(ConsentDocument.valid_to) > moment)
        )
    query = query.order_by(
        col(ConsentDocument.purpose),
        col(ConsentDocument.language),
        col(ConsentDocument.version).desc(),
    ).limit(limit)
    return list((await session.execute(query)).scalars().all())
