"""Compliance exports: the consent audit, streamed to CSV, JSON or XLSX and signed.

The consent audit is the history of every consent change (`ConsentChange`) with the document it
referred to: who (the subject id), what (purpose, channel, status, document version and text
hash), when, and the evidence of how (collection channel, method, actor). Evidence that is
itself personal data (IP address, user agent) stays encrypted in the database and is never
exported.

Rows are read in keyset pages ordered by (occurred_at, id), so memory stays constant however
long the history is, and written by the streaming writers of `privacy.export_writers`. A file
is written under a temporary name and renamed when complete, then signed (`privacy.signing`);
the signature's metadata carries the filters, the row count and the audit log's head, so a
later `audit verify` can also be checked against what the log looked like at export time.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jwt
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from core.errors import DomainError
from privacy import audit
from privacy.consent_models import NO_CHANNEL, ConsentChange, ConsentDocument
from privacy.export_models import ExportFile
from privacy.export_writers import MEDIA_TYPES, ExportFormat, RowWriter, open_writer
from privacy.keys import KeyProvider
from privacy.models import AuditEntry
from privacy.purposes import ConsentStatus, MarketingChannel, Purpose
from privacy.signing import file_sha256, sign_file, signature_path

__all__ = [
    "COLUMNS",
    "MEDIA_TYPES",
    "ConsentAuditFilter",
    "ExportErrorCode",
    "ExportFormat",
    "ExportKind",
    "LinkError",
    "WrittenExport",
    "count_consent_audit",
    "create_consent_audit_export",
    "download_token",
    "read_download_token",
    "write_consent_audit",
]

PAGE = 2000
PERIOD_ZONE = ZoneInfo("Europe/Moscow")  # a period's dates are the operator's calendar days
FILE_TTL = timedelta(hours=24)  # how long /exports/{id} serves a file
LINK_TTL = timedelta(minutes=15)  # how long one download link works
LINK_AUDIENCE = "loyalgraph:export-download"

COLUMNS = (
    "change_id",
    "occurred_at",
    "subject_id",
    "purpose",
    "channel",
    "status",
    "allowed_categories",
    "document_id",
    "document_purpose",
    "document_language",
    "document_version",
    "document_hash",
    "evidence_channel",
    "evidence_method",
    "actor",
)


class ExportKind(StrEnum):
    CONSENT_AUDIT = "consent_audit"


class ExportErrorCode(StrEnum):
    INVALID_PERIOD = "INVALID_PERIOD"
    INVALID_FILTER = "INVALID_FILTER"
    CONFLICT = "CONFLICT"  # a concurrent request changed the same data; retry


class LinkError(ValueError):
    """A download link's token is forged, expired, or made for another export."""


Progress = Callable[[int], None]


def _code(name: str, value: str | None, known: set[str]) -> str | None:
    if value is None:
        return None
    normalised = value.strip().upper()
    if normalised not in known:
        raise DomainError(
            ExportErrorCode.INVALID_FILTER,
            f"{name} must be one of {', '.join(sorted(known))}",
            field=[name],
        )
    return normalised


@dataclass(frozen=True, slots=True)
class ConsentAuditFilter:
    """Which consent changes to export. Dates are calendar days in Moscow, both inclusive."""

    date_from: date | None = None
    date_to: date | None = None
    purpose: str | None = None
    channel: str | None = None
    status: str | None = None
    document_version: int | None = None

    @classmethod
    def build(
        cls,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        purpose: str | None = None,
        channel: str | None = None,
        status: str | None = None,
        document_version: int | None = None,
    ) -> ConsentAuditFilter:
        """Validate and normalise (codes upper-cased); bad input is a DomainError."""
        if date_from is not None and date_to is not None and date_from > date_to:
            raise DomainError(
                ExportErrorCode.INVALID_PERIOD, "the period ends before it starts", field=["to"]
            )
        codes = {
            "purpose": _code("purpose", purpose, {p.value for p in Purpose}),
            "channel": _code(
                "channel", channel, {c.value for c in MarketingChannel} | {NO_CHANNEL}
            ),
            "status": _code("status", status, {s.value for s in ConsentStatus}),
        }
        if document_version is not None and document_version < 1:
            raise DomainError(
                ExportErrorCode.INVALID_FILTER,
                "a document version is a positive number",
                field=["documentVersion"],
            )
        return cls(
            date_from=date_from,
            date_to=date_to,
            purpose=codes["purpose"],
            channel=codes["channel"],
            status=codes["status"],
            document_version=document_version,
        )

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC: from the start of `date_from` to the end of `date_to`."""
        start = end = None
        if self.date_from is not None:
            start = as_utc(datetime.combine(self.date_from, time(), PERIOD_ZONE))
        if self.date_to is not None:
            end = as_utc(datetime.combine(self.date_to + timedelta(days=1), time(), PERIOD_ZONE))
        return start, end

    def as_dict(self) -> dict[str, Any]:
        """The filters as stored with the export and in its signature (no personal data)."""
        return {
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "timezone": str(PERIOD_ZONE),
            "purpose": self.purpose,
            "channel": self.channel,
            "status": self.status,
            "document_version": self.document_version,
        }


def _consent_audit_query(filters: ConsentAuditFilter) -> Select[Any]:
    change, document = ConsentChange, ConsentDocument
    columns: list[Any] = [
        col(change.id).label("change_id"),
        col(change.occurred_at).label("occurred_at"),
        col(change.subject_id).label("subject_id"),
        col(change.purpose).label("purpose"),
        col(change.channel).label("channel"),
        col(change.status).label("status"),
        col(change.allowed_categories).label("allowed_categories"),
        col(document.id).label("document_id"),
        col(document.purpose).label("document_purpose"),
        col(document.language).label("document_language"),
        col(document.version).label("document_version"),
        col(document.text_hash).label("document_hash"),
        col(change.collected_channel).label("evidence_channel"),
        col(change.method).label("evidence_method"),
        col(change.actor).label("actor"),
    ]
    query: Select[Any] = select(*columns).join(
        document, col(document.id) == col(change.document_id)
    )
    start, end = filters.bounds()
    if start is not None:
        query = query.where(col(change.occurred_at) >= start)
    if end is not None:
        query = query.where(col(change.occurred_at) < end)
    if filters.purpose is not None:
        query = query.where(col(change.purpose) == filters.purpose)
    if filters.channel is not None:
        query = query.where(col(change.channel) == filters.channel)
    if filters.status is not None:
        query = query.where(col(change.status) == filters.status)
    if filters.document_version is not None:
        query = query.where(col(document.version) == filters.document_version)
    return query


async def count_consent_audit(session: AsyncSession, filters: ConsentAuditFilter) -> int:
    """How many rows an export with these filters has (one COUNT, for a progress bar)."""
    inner = _consent_audit_query(filters).subquery()
    return int((await session.execute(select(func.count()).select_from(inner))).scalar_one())


async def consent_audit_pages(
    session: AsyncSession, filters: ConsentAuditFilter, *, page: int = PAGE
) -> AsyncIterator[list[dict[str, Any]]]:
    """The export's rows in (occurred_at, id) order, one keyset page at a time."""
    base = _consent_audit_query(filters).order_by(
        col(ConsentChange.occurred_at), col(ConsentChange.id)
    )
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        query = base
        if after is not None:
            at, last_id = after
            query = query.where(
                or_(
                    col(ConsentChange.occurred_at) > at,
                    and_(col(ConsentChange.occurred_at) == at, col(ConsentChange.id) > last_id),
                )
            )
        rows = [dict(row) for row in (await session.execute(query.limit(page))).mappings()]
        if not rows:
            return
        yield rows
        if len(rows) < page:
            return
        after = (rows[-1]["occurred_at"], rows[-1]["change_id"])


async def write_consent_audit(
    session: AsyncSession,
    *,
    filters: ConsentAuditFilter,
    format: ExportFormat,
    output: Path,
    progress: Progress | None = None,
    page: int = PAGE,
) -> int:
    """Stream the consent audit to `output` and return the number of rows.

    The file appears only when complete (written as `output.part`, then renamed); on any
    failure the partial file is removed. `progress` is called with the running row count
    after each page.
    """
    partial = output.with_name(output.name + ".part")
    writer = await asyncio.to_thread(open_writer, format, partial, COLUMNS, title="consent_audit")
    written = 0
    try:
        async for rows in consent_audit_pages(session, filters, page=page):
            # File work runs in a thread: the event loop keeps serving other requests.
            await asyncio.to_thread(writer.write, rows)
            written += len(rows)
            if progress is not None:
                progress(written)
        await asyncio.to_thread(writer.close)
        await asyncio.to_thread(partial.replace, output)
    except BaseException:
        await asyncio.to_thread(_discard, writer, partial)
        raise
    return written


def _discard(writer: RowWriter, partial: Path) -> None:
    with contextlib.suppress(Exception):  # the original error is the one worth reporting
        writer.close()
    partial.unlink(missing_ok=True)


def _sign(output: Path, keys: KeyProvider, metadata: Mapping[str, Any]) -> tuple[Path, str, int]:
    try:
        signature = sign_file(output, keys, metadata=metadata)
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    return signature, file_sha256(output), output.stat().st_size


async def audit_head(session: AsyncSession) -> dict[str, Any] | None:
    """The newest audit entry's sequence number and hash: what the log looked like now."""
    last = (
        await session.execute(
            select(col(AuditEntry.seq), col(AuditEntry.hash))
            .order_by(col(AuditEntry.seq).desc())
            .limit(1)
        )
    ).first()
    return None if last is None else {"seq": int(last[0]), "hash": str(last[1])}


@dataclass(frozen=True, slots=True)
class WrittenExport:
    path: Path
    signature: Path
    rows: int
    sha256: str
    size_bytes: int
    metadata: Mapping[str, Any]


async def write_signed_consent_audit(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    filters: ConsentAuditFilter,
    format: ExportFormat,
    output: Path,
    progress: Progress | None = None,
    page: int = PAGE,
    export_id: uuid.UUID | None = None,
) -> WrittenExport:
    """Write the consent audit to `output` and its detached signature to `output.sig`."""
    head = await audit_head(session)
    rows = await write_consent_audit(
        session, filters=filters, format=format, output=output, progress=progress, page=page
    )
    metadata = {
        "kind": str(ExportKind.CONSENT_AUDIT),
        "format": str(format),
        "rows": rows,
        "columns": list(COLUMNS),
        "filters": filters.as_dict(),
        "audit_head": head,
        "export_id": str(export_id) if export_id else None,
    }
    sig, sha256, size = await asyncio.to_thread(_sign, output, keys, metadata)
    return WrittenExport(
        path=output, signature=sig, rows=rows, sha256=sha256, size_bytes=size, metadata=metadata
    )


async def record_export_created(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    written: WrittenExport,
    actor: str,
    export_id: uuid.UUID | None = None,
) -> None:
    """The audit entry of an export (`export.created`): what and how much, never the data."""
    await audit.record(
        session,
        keys,
        action="export.created",
        actor=actor,
        details={
            "export_id": str(export_id) if export_id else None,
            "kind": written.metadata["kind"],
            "format": written.metadata["format"],
            "rows": written.rows,
            "sha256": written.sha256,
            "filters": written.metadata["filters"],
        },
    )


async def create_consent_audit_export(
    session: AsyncSession,
    keys: KeyProvider,
    *,
    filters: ConsentAuditFilter,
    format: ExportFormat,
    directory: Path,
    actor: str,
    now: datetime | None = None,
) -> ExportFile:
    """Write a signed consent audit into `directory`, record it (`ExportFile`) and audit it.

    Runs in the caller's transaction; if anything fails the files are removed, so a rolled
    back export leaves neither a row nor a file behind.
    """
    created = as_utc(now) if now is not None else utcnow()
    export_id = uuid.uuid4()
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    output = directory / f"{export_id}.{format.value}"
    written = await write_signed_consent_audit(
        session, keys, filters=filters, format=format, output=output, export_id=export_id
    )
    try:
        row = ExportFile(
            id=export_id,
            kind=ExportKind.CONSENT_AUDIT,
            format=format,
            filters=filters.as_dict(),
            rows=written.rows,
            size_bytes=written.size_bytes,
            sha256=written.sha256,
            file_name=output.name,
            created_by=actor,
            created_at=created,
            expires_at=created + FILE_TTL,
        )
        session.add(row)
        await session.flush()
        await record_export_created(
            session, keys, written=written, actor=actor, export_id=export_id
        )
    except BaseException:
        await asyncio.to_thread(remove_export_files, output)
        raise
    return row


def remove_export_files(path: Path) -> None:
    path.unlink(missing_ok=True)
    signature_path(path).unlink(missing_ok=True)


def download_name(row: ExportFile) -> str:
    """The file name a browser saves a download under."""
    stamp = as_utc(row.created_at).strftime("%Y%m%dT%H%M%SZ")
    return f"{row.kind.replace('_', '-')}-{stamp}-{str(row.id)[:8]}.{row.format}"


# --- short-lived download links ------------------------------------------------------------


def download_token(
    keys: KeyProvider,
    *,
    export_id: uuid.UUID,
    actor: str,
    ttl: timedelta = LINK_TTL,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A signed token for one export's download link, and when it expires.

    Protects against links that outlive their use (15 minutes by default), links guessed or
    forged (HMAC under the keyring's `jwt` secret), and a link for one export opening another
    (the export id is in the token). The audience keeps these tokens and API tokens apart: a
    download token does not authenticate GraphQL, and an API token does not open a download.
    """
    issued = as_utc(now) if now is not None else utcnow()
    expires = issued + ttl
    claims = {
        "aud": LINK_AUDIENCE,
        "sub": str(export_id),
        "act": actor,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, keys.secret("jwt"), algorithm="HS256"), expires


def read_download_token(keys: KeyProvider, token: str, *, export_id: uuid.UUID) -> str:
    """Check a download token for `export_id`; return the actor it was issued to."""
    try:
        claims = jwt.decode(
            token,
            keys.secret("jwt"),
            algorithms=["HS256"],
            audience=LINK_AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise LinkError(f"invalid download link: {exc}") from None
    if claims.get("sub") != str(export_id):
        raise LinkError("the download link is for another export")
    return str(claims.get("act") or "unknown")


async def find_servable_export(
    session: AsyncSession, export_id: uuid.UUID, *, now: datetime | None = None
) -> ExportFile | None:
    """The export if it exists and has not expired."""
    row = await session.get(ExportFile, export_id)
    if row is None or row.expires_at <= (as_utc(now) if now else utcnow()):
        return None
    return row
