"""The registry of personal-data sources: how a data subject request reaches every table.

Privacy never imports a domain. Each domain that holds personal data registers a
`PersonalDataSource` at start-up (its `install()`), and the one that knows who a data subject is
(the customer graph) registers a `SubjectDirectory`. Access, rectification and destruction
(`privacy.subject_rights`) then walk the registered sources without knowing their tables.

A data subject may be several rows of a domain (customers merged into a survivor), so sources
take every id of the subject at once: `SubjectDirectory.resolve` names them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from privacy.fields import FieldCipher


@dataclass(frozen=True, slots=True)
class Section:
    """One kind of personal data a source holds about a subject, with why and how it is kept.

    `records` are JSON-ready dicts (strings, numbers, booleans, None, lists, dicts) holding the
    subject's own data, decrypted; never another person's.
    """

    name: str
    title: str
    source_system: str
    purposes: tuple[str, ...]
    legal_basis: str
    recipients: tuple[str, ...]
    retention: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "sourceSystem": self.source_system,
            "purposes": list(self.purposes),
            "legalBasis": self.legal_basis,
            "recipients": list(self.recipients),
            "retention": self.retention,
            "records": self.records,
        }


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One rectified value: where it lives and digests of the ciphertext before and after."""

    field: str
    table: str
    row_id: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class ErasedItem:
    """What destruction did to one table: rows deleted, rows kept but made anonymous (their
    personal columns cleared), rows kept as they were (books that must still add up)."""

    table: str
    rows_deleted: int = 0
    rows_anonymised: int = 0
    columns_cleared: tuple[str, ...] = ()
    rows_retained: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rowsDeleted": self.rows_deleted,
            "rowsAnonymised": self.rows_anonymised,
            "columnsCleared": list(self.columns_cleared),
            "rowsRetained": self.rows_retained,
        }


@dataclass(frozen=True, slots=True)
class SubjectScope:
    """Who a subject id stands for: the current row and every row merged into it."""

    primary: uuid.UUID
    members: tuple[uuid.UUID, ...]
    erased: bool = False


@runtime_checkable
class PersonalDataSource(Protocol):
    """A domain's personal data, as privacy sees it.

    `editable` names the fields `rectify` accepts (empty: the source owns no editable field).
    `rectify` receives only its own fields; it validates all of them before changing any.
    `erase` removes what identifies the subjects and keeps what the books need, anonymous.
    """

    name: str
    editable: frozenset[str]

    async def export(
        self, session: AsyncSession, cipher: FieldCipher, subject_ids: Sequence[uuid.UUID]
    ) -> list[Section]: ...

    async def rectify(
        self,
        session: AsyncSession,
        cipher: FieldCipher,
        subject_id: uuid.UUID,
        changes: Mapping[str, str | None],
        actor: str,
    ) -> list[FieldChange]: ...

    async def erase(
        self, session: AsyncSession, cipher: FieldCipher, subject_ids: Sequence[uuid.UUID]
    ) -> list[ErasedItem]: ...


class SubjectDirectory(Protocol):
    async def resolve(self, session: AsyncSession, subject_id: uuid.UUID) -> SubjectScope | None:
        """The subject's ids (None when there is no such subject)."""
        ...


_sources: dict[str, PersonalDataSource] = {}
_directory: list[SubjectDirectory] = []


def register(source: PersonalDataSource) -> None:
    """Register a source once; registering one with the same name again replaces it."""
    _sources[source.name] = source


def unregister(name: str) -> None:
    _sources.pop(name, None)


def registered() -> list[PersonalDataSource]:
    """The sources in registration order."""
    return list(_sources.values())


def register_directory(directory: SubjectDirectory) -> None:
    """Set the directory that resolves subject ids (the latest registration wins)."""
    _directory[:] = [directory]


async def resolve_subject(session: AsyncSession, subject_id: uuid.UUID) -> SubjectScope | None:
    """The subject's scope; without a registered directory, the id alone."""
    if not _directory:
        return SubjectScope(primary=subject_id, members=(subject_id,))
    return await _directory[0].resolve(session, subject_id)
