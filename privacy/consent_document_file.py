"""`loyalgraph consent-documents load FILE`: publish consent documents kept as files.

The file is YAML (or JSON) with a list under `documents`, each with `purpose`, `language`,
`title`, and the wording as `text` or as `text_file` (a path relative to the file), and
optionally `valid_from` / `valid_to` (ISO 8601). Each goes through `publish_document`, so it is
validated, versioned and audited as `consentDocumentPublish`. A document whose wording is the
newest version's for its purpose and language already is left alone, so loading the same file
again publishes nothing. The whole file is one transaction: one bad document publishes none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc
from privacy.consent_documents import publish_document, text_hash
from privacy.consent_models import ConsentDocument
from privacy.keys import KeyProvider
from privacy.purposes import Purpose


class DocumentFileError(ValueError):
    """The documents file cannot be read; the message names the entry and the field."""


@dataclass(frozen=True, slots=True)
class Loaded:
    purpose: str
    language: str
    version: int
    published: bool


def _moment(entry: dict[str, Any], name: str, where: str) -> datetime | None:
    value = entry.get(name)
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        return as_utc(datetime.fromisoformat(str(value)))
    except ValueError:
        raise DocumentFileError(f"{where}: {name} must be an ISO 8601 date-time") from None


def read_documents(path: Path) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DocumentFileError(f"{path.name} is not a readable YAML or JSON file") from error
    entries = data.get("documents") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise DocumentFileError(f"{path.name} must hold a non-empty list under `documents`")
    documents: list[dict[str, Any]] = []
    for number, entry in enumerate(entries, start=1):
        where = f"document {number}"
        if not isinstance(entry, dict):
            raise DocumentFileError(f"{where} must be a mapping")
        unknown = set(entry) - {
            "purpose", "language", "title", "text", "text_file", "valid_from", "valid_to",
        }  # fmt: skip
        if unknown:
            raise DocumentFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        try:
            purpose = Purpose(str(entry.get("purpose", "")).upper())
        except ValueError:
            allowed = ", ".join(item.value for item in Purpose)
            raise DocumentFileError(f"{where}: purpose must be one of {allowed}") from None
        text = entry.get("text")
        if entry.get("text_file") is not None:
            if text is not None:
                raise DocumentFileError(f"{where}: give text or text_file, not both")
            try:
                text = (path.parent / str(entry["text_file"])).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                raise DocumentFileError(f"{where}: text_file cannot be read as UTF-8") from None
        if not isinstance(text, str):
            raise DocumentFileError(f"{where}: text (or text_file) is required")
        documents.append(
            {
                "purpose": purpose,
                "language": str(entry.get("language", "")),
                "title": str(entry.get("title", "")),
                "text": text,
                "valid_from": _moment(entry, "valid_from", where),
                "valid_to": _moment(entry, "valid_to", where),
            }
        )
    return documents


async def load_documents(
    session: AsyncSession, keys: KeyProvider, path: Path, *, actor: str
) -> list[Loaded]:
    """Publish every document of the file that is not already the newest version."""
    loaded: list[Loaded] = []
    for document in read_documents(path):
        purpose: Purpose = document["purpose"]
        newest = (
            await session.execute(
                select(ConsentDocument)
                .where(
                    col(ConsentDocument.purpose) == purpose.value,
                    col(ConsentDocument.language) == document["language"],
                )
                .order_by(col(ConsentDocument.version).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if newest is not None and newest.text_hash == text_hash(document["text"]):
            loaded.append(Loaded(purpose.value, newest.language, newest.version, False))
            continue
        published = await publish_document(session, keys, actor=actor, **document)
        loaded.append(Loaded(purpose.value, published.language, published.version, True))
    return loaded
