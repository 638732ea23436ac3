"""`import consents FILE`: consents collected on paper and in other systems, in batches.

Each row is one GRANT or WITHDRAW of one purpose (and, for marketing, one channel) by one
customer, with its evidence. It goes through `grant_consent` / `withdraw_consent` themselves, so
the validation, the history row and the hash-chained audit entry are those of `consentGrant` and
`consentWithdraw`; the customer is resolved as for events (`customer_id`, or a verified
`identifier_kind` + `identifier_value`). Rows are committed a batch at a time (resumable, see
graph.bulk), each under its own savepoint: a bad row is reported by line and writes nothing.
Re-importing a file records nothing twice: a change already in the consent's history (same
subject, purpose, channel, outcome and instant; for a grant, the same document) counts as
skipped.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.settings import Settings
from graph.bulk import BATCH_ROWS, run_bulk
from graph.events import resolve_ref
from graph.importer import ImportReport, Record, Row, RowError, row_customer_ref, run_row
from privacy.consent import Evidence, grant_consent, withdraw_consent
from privacy.consent_models import ConsentChange, ConsentDocument
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider
from privacy.purposes import (
    CollectionChannel,
    CollectionMethod,
    ConsentStatus,
    MarketingChannel,
    Purpose,
    channel_key,
)

CONSENT_COLUMNS = frozenset(
    {
        "customer_id", "identifier_kind", "identifier_value", "identifier_source_system",
        "action", "purpose", "channel", "document_language", "document_version", "occurred_at",
        "collected_channel", "method", "ip", "user_agent", "allowed_categories",
    }
)  # fmt: skip
REQUIRED = ("action", "purpose", "occurred_at", "collected_channel", "method")
ACTOR = "import:consents"  # a pseudonymous label of who recorded it, never a person's name


class ConsentAction(StrEnum):
    GRANT = "GRANT"
    WITHDRAW = "WITHDRAW"


def _categories(row: Row) -> list[str]:
    raw = row.values.get("allowed_categories")
    if raw in (None, ""):
        return []
    if isinstance(raw, list):
        return [str(item).strip().upper() for item in raw]
    text = str(raw).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise RowError("allowed_categories must be a list of categories") from None
        return [str(item).strip().upper() for item in parsed]
    return [part.strip().upper() for part in text.replace(";", ",").split(",") if part.strip()]


async def _document_id(session: AsyncSession, purpose: Purpose, row: Row) -> Any:
    language = row.text("document_language", required=True)
    version = row.integer("document_version", required=True)
    found = (
        await session.execute(
            select(col(ConsentDocument.id)).where(
                col(ConsentDocument.purpose) == purpose.value,
                col(ConsentDocument.language) == language,
                col(ConsentDocument.version) == version,
            )
        )
    ).scalar_one_or_none()
    if found is None:
        raise RowError(
            "no consent document of this purpose, document_language and document_version "
            "(publish it first: loyalgraph consent-documents load FILE)"
        )
    return found


async def _recorded(
    session: AsyncSession,
    subject_id: Any,
    purpose: Purpose,
    channel: MarketingChannel | None,
    status: ConsentStatus,
    at: Any,
    document_id: Any = None,
) -> bool:
    """Whether this very change (subject, purpose, channel, outcome, instant) is in the
    history already: the file was imported before."""
    try:
        key = channel_key(purpose, channel)
    except ValueError:
        return False  # purpose and channel do not fit: the service answers with its error
    query = select(col(ConsentChange.id)).where(
        col(ConsentChange.subject_id) == subject_id,
        col(ConsentChange.purpose) == purpose.value,
        col(ConsentChange.channel) == key,
        col(ConsentChange.status) == status.value,
        col(ConsentChange.occurred_at) == at,
    )
    if document_id is not None:
        query = query.where(col(ConsentChange.document_id) == document_id)
    return (await session.execute(query.limit(1))).first() is not None


async def consent_row(
    session: AsyncSession, cipher: FieldCipher, row: Row, _: Settings, __: list[str]
) -> bool:
    """One consent change through the consent services; False when it was already recorded."""
    action = row.choice("action", ConsentAction, required=True)
    purpose = row.choice("purpose", Purpose, required=True)
    channel = row.choice("channel", MarketingChannel)
    occurred_at = row.moment("occurred_at")
    if occurred_at is None:
        raise RowError("occurred_at is required")
    collected = row.choice("collected_channel", CollectionChannel, required=True)
    method = row.choice("method", CollectionMethod, required=True)
    assert action is not None and purpose is not None
    assert collected is not None and method is not None
    evidence = Evidence(
        occurred_at=occurred_at,
        collected_channel=collected,
        method=method,
        actor=ACTOR,
        ip=row.text("ip"),
        user_agent=row.text("user_agent"),
    )
    customer = await resolve_ref(session, cipher, row_customer_ref(row))
    if action is ConsentAction.GRANT:
        document_id = await _document_id(session, purpose, row)
        categories = _categories(row)
        granted = ConsentStatus.GRANTED
        if await _recorded(
            session, customer.id, purpose, channel, granted, occurred_at, document_id
        ):
            return False
        await grant_consent(
            session,
            cipher,
            subject_id=customer.id,
            purpose=purpose,
            channel=channel,
            document_id=document_id,
            evidence=evidence,
            allowed_categories=categories,
        )
        return True
    withdrawn = ConsentStatus.WITHDRAWN
    if await _recorded(session, customer.id, purpose, channel, withdrawn, occurred_at):
        return False
    await withdraw_consent(
        session,
        cipher,
        subject_id=customer.id,
        purpose=purpose,
        channel=channel,
        evidence=evidence,
    )
    return True


async def load_consents(
    session: AsyncSession,
    records: list[Record],
    report: ImportReport,
    *,
    provider: KeyProvider,
    settings: Settings,
) -> None:
    for record in records:
        await run_row(session, provider, settings, record, CONSENT_COLUMNS, consent_row, report)


def consents_loader() -> Any:
    def make(provider: KeyProvider, settings: Settings) -> Any:
        return partial(load_consents, provider=provider, settings=settings)

    return make


async def bulk_import_consents(
    settings: Settings,
    provider: KeyProvider,
    path: Path,
    *,
    console: Console,
    resume: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> ImportReport:
    """`import consents FILE` (see the module docstring)."""
    return await run_bulk(
        settings,
        provider,
        path,
        console,
        what="consents",
        columns=CONSENT_COLUMNS,
        required=REQUIRED,
        loader=consents_loader(),
        resume=resume,
        batch_rows=batch_rows,
    )
