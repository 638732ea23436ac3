"""GraphQL: consentGrant, consentWithdraw, consentDocumentPublish, consentDocuments,
marketingAudience, and `Customer.consents`.

A customer grants and withdraws their own consents; apps (web, app, POS) and operators record
them on a customer's behalf. Evidence is required (where and how it was collected); the IP
address and user agent default to the HTTP request's. Business failures come back as
`ConsentUserError`s in the payload and change nothing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
import weakref
from collections.abc import Sequence

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from api.auth import STAFF_ROLES, Role
from api.context import Info
from api.schema.access import is_self, require_acting_for, require_roles
from api.schema.common import (
    DEFAULT_PAGE,
    customer_uuid,
    from_global_id,
    page_size,
    require,
    to_global_id,
)
from api.schema.customer.types import Customer
from api.schema.loaders import Loaders
from api.schema.node import Connection, connection
from api.schema.transaction import as_graphql_error, in_transaction
from core.clock import utcnow
from core.errors import DomainError
from graph.customers import get_active_customer
from loyalty.audience import marketing_audience
from privacy import consent as service
from privacy import consent_documents as documents
from privacy import consent_models as models
from privacy.consent import ConsentRecord, Evidence
from privacy.purposes import (
    CollectionChannel,
    CollectionMethod,
    ConsentErrorCode,
    ConsentStatus,
    DataCategory,
    MarketingChannel,
    Purpose,
)

for _enum in (
    Purpose,
    MarketingChannel,
    ConsentStatus,
    CollectionChannel,
    CollectionMethod,
    DataCategory,
    ConsentErrorCode,
):
    strawberry.enum(_enum)

# Who may record a consent for a customer other than themself.
RECORDERS = (Role.APP, Role.OPERATOR, Role.ADMIN)
PUBLISHERS = (Role.COMPLIANCE, Role.ADMIN)
AUDIENCE_READERS = (Role.OPERATOR, Role.ANALYST, Role.ADMIN)


@strawberry.type(description="An expected failure of a consent operation: nothing was changed.")
class ConsentUserError:
    code: ConsentErrorCode
    message: str
    field: list[str] | None = strawberry.field(description="Path of the input field at fault.")


def consent_user_error(error: DomainError) -> ConsentUserError:
    """Consent codes, and the graph's codes a consent mutation can meet under the same names
    (a code without a counterpart is a bug and fails loudly)."""
    field = ["input", *error.field] if error.field else None
    return ConsentUserError(
        code=ConsentErrorCode(str(error.code)), message=error.message, field=field
    )


@strawberry.type(name="ConsentDocument", description="One version of a consent text.")
class ConsentDocumentType:
    id: strawberry.ID
    purpose: Purpose
    language: str
    version: int
    title: str
    text: str
    text_hash: str = strawberry.field(description="SHA-256 (hex) of the UTF-8 text.")
    valid_from: dt.datetime
    valid_to: dt.datetime | None

    @classmethod
    def from_row(cls, row: models.ConsentDocument) -> ConsentDocumentType:
        return cls(
            id=to_global_id("ConsentDocument", row.id),
            purpose=Purpose(row.purpose),
            language=row.language,
            version=row.version,
            title=row.title,
            text=row.text,
            text_hash=row.text_hash,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
        )


@strawberry.type(name="Consent", description="A customer's current consent for one purpose.")
class ConsentType:
    id: strawberry.ID
    purpose: Purpose
    channel: MarketingChannel | None = strawberry.field(description="Marketing only.")
    status: ConsentStatus
    document: ConsentDocumentType = strawberry.field(description="The version agreed to.")
    allowed_categories: list[DataCategory] = strawberry.field(
        description="Dissemination only: what may be made public."
    )
    granted_at: dt.datetime
    withdrawn_at: dt.datetime | None

    @classmethod
    def from_rows(cls, consent: models.Consent, document: models.ConsentDocument) -> ConsentType:
        return cls(
            id=to_global_id("Consent", consent.id),
            purpose=Purpose(consent.purpose),
            channel=(
                MarketingChannel(consent.channel) if consent.purpose == Purpose.MARKETING else None
            ),
            status=ConsentStatus(consent.status),
            document=ConsentDocumentType.from_row(document),
            allowed_categories=[DataCategory(value) for value in consent.allowed_categories],
            granted_at=consent.granted_at,
            withdrawn_at=consent.withdrawn_at,
        )


@strawberry.input
class ConsentEvidenceInput:
    collected_channel: CollectionChannel
    method: CollectionMethod
    occurred_at: dt.datetime | None = strawberry.field(
        default=None, description="When the customer gave or withdrew it; default now."
    )
    ip: str | None = strawberry.field(default=None, description="Default: the HTTP client's.")
    user_agent: str | None = strawberry.field(
        default=None, description="Default: the HTTP request's User-Agent."
    )


@strawberry.input
class ConsentGrantInput:
    customer_id: strawberry.ID
    purpose: Purpose
    document_id: strawberry.ID = strawberry.field(description="The version shown to them.")
    evidence: ConsentEvidenceInput
    channel: MarketingChannel | None = strawberry.field(
        default=None, description="Required for marketing, not allowed otherwise."
    )
    allowed_categories: list[DataCategory] = strawberry.field(
        default_factory=list, description="Required for dissemination, not allowed otherwise."
    )


@strawberry.input
class ConsentWithdrawInput:
    customer_id: strawberry.ID
    purpose: Purpose
    evidence: ConsentEvidenceInput
    channel: MarketingChannel | None = None


@strawberry.input
class ConsentDocumentPublishInput:
    purpose: Purpose
    language: str = strawberry.field(description="Two lowercase letters: ru, en, ...")
    title: str
    text: str
    valid_from: dt.datetime | None = strawberry.field(default=None, description="Default now.")
    valid_to: dt.datetime | None = None


@strawberry.type
class ConsentPayload:
    consent: ConsentType | None = None
    errors: list[ConsentUserError] = strawberry.field(default_factory=list)


@strawberry.type
class ConsentDocumentPublishPayload:
    document: ConsentDocumentType | None = None
    errors: list[ConsentUserError] = strawberry.field(default_factory=list)


def _request_ip(info: Info) -> str | None:
    client = info.context.request.client
    if client is None:
        return None
    try:
        return str(ipaddress.ip_address(client.host))
    except ValueError:
        return None


def evidence_of(info: Info, given: ConsentEvidenceInput) -> Evidence:
    agent = given.user_agent or info.context.request.headers.get("user-agent")
    return Evidence(
        occurred_at=given.occurred_at or utcnow(),
        collected_channel=given.collected_channel,
        method=given.method,
        actor=info.context.principal.actor,
        ip=given.ip if given.ip is not None else _request_ip(info),
        user_agent=agent[: service.MAX_USER_AGENT] if agent else None,
    )


async def _payload(info: Info, consent: models.Consent | None) -> ConsentPayload:
    if consent is None:
        return ConsentPayload()
    document = await documents.get_document(info.context.session, consent.document_id)
    assert document is not None
    return ConsentPayload(consent=ConsentType.from_rows(consent, document))


def _document_uuid(value: strawberry.ID) -> uuid.UUID:
    return from_global_id(value, expected="ConsentDocument")[1]


# --- Customer.consents, batched per request -----------------------------------------------

_consent_loaders: weakref.WeakKeyDictionary[Loaders, DataLoader[uuid.UUID, list[ConsentRecord]]]
_consent_loaders = weakref.WeakKeyDictionary()


def _consents_loader(info: Info) -> DataLoader[uuid.UUID, list[ConsentRecord]]:
    """One loader per request's `Loaders` (renewed after a mutation, like the others)."""
    loaders = info.context.loaders
    loader = _consent_loaders.get(loaders)
    if loader is None:

        async def load(ids: Sequence[uuid.UUID]) -> list[list[ConsentRecord]]:
            found = await service.consents_of(loaders.session, ids)
            return [found.get(subject, []) for subject in ids]

        loader = _consent_loaders[loaders] = DataLoader(load)
    return loader


async def customer_consents(info: Info, customer_id: uuid.UUID) -> list[ConsentType]:
    """`Customer.consents`: the customer themself and staff only."""
    principal = info.context.principal
    require(
        principal.has(*STAFF_ROLES) or is_self(info, customer_id),
        "only the customer and staff may read consents",
    )
    records = await _consents_loader(info).load(customer_id)
    return [ConsentType.from_rows(record.consent, record.document) for record in records]


@strawberry.type
class ConsentQuery:
    @strawberry.field(description="Consent documents, newest version first (any caller).")
    async def consent_documents(
        self,
        info: Info,
        purpose: Purpose | None = None,
        language: str | None = None,
        current_only: bool = True,
    ) -> list[ConsentDocumentType]:
        require(bool(info.context.principal.roles), "sign in to read consent documents")
        rows = await documents.list_documents(
            info.context.session,
            purpose=purpose,
            language=language,
            current_at=utcnow() if current_only else None,
        )
        return [ConsentDocumentType.from_row(row) for row in rows]

    @strawberry.field(description="Active customers who may be contacted on a channel.")
    async def marketing_audience(
        self,
        info: Info,
        channel: MarketingChannel,
        segment: str | None = None,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
    ) -> Connection[Customer]:
        require_roles(info, *AUDIENCE_READERS)
        size, cursors = page_size(first), info.context.cursors
        try:
            rows = await marketing_audience(
                info.context.session,
                channel=channel,
                segment=segment,
                first=size,
                after=cursors.decode("audience", after),
            )
        except DomainError as error:
            raise as_graphql_error(error) from None
        page = rows[:size]
        return connection(
            [Customer.from_row(row) for row in page],
            [cursors.encode("audience", row.created_at, row.id) for row in page],
            more=len(rows) > size,
        )


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(description="Record one consent, with its evidence.")
    async def consent_grant(self, info: Info, input: ConsentGrantInput) -> ConsentPayload:
        raw = customer_uuid(input.customer_id)
        await require_acting_for(info, raw, *RECORDERS)
        evidence, document_id = evidence_of(info, input.evidence), _document_uuid(input.document_id)

        async def work(session: AsyncSession) -> models.Consent:
            customer = await get_active_customer(session, raw)
            return await service.grant_consent(
                session,
                info.context.cipher,
                subject_id=customer.id,
                purpose=input.purpose,
                channel=input.channel,
                document_id=document_id,
                evidence=evidence,
                allowed_categories=input.allowed_categories,
            )

        consent, errors = await in_transaction(info, work, as_error=consent_user_error)
        return ConsentPayload(errors=errors) if errors else await _payload(info, consent)

    @strawberry.mutation(description="Record the withdrawal of one consent.")
    async def consent_withdraw(self, info: Info, input: ConsentWithdrawInput) -> ConsentPayload:
        raw = customer_uuid(input.customer_id)
        await require_acting_for(info, raw, *RECORDERS)
        evidence = evidence_of(info, input.evidence)

        async def work(session: AsyncSession) -> models.Consent:
            customer = await get_active_customer(session, raw)
            return await service.withdraw_consent(
                session,
                info.context.cipher,
                subject_id=customer.id,
                purpose=input.purpose,
                channel=input.channel,
                evidence=evidence,
            )

        consent, errors = await in_transaction(info, work, as_error=consent_user_error)
        return ConsentPayload(errors=errors) if errors else await _payload(info, consent)

    @strawberry.mutation(description="Publish a new version of a consent document.")
    async def consent_document_publish(
        self, info: Info, input: ConsentDocumentPublishInput
    ) -> ConsentDocumentPublishPayload:
        require_roles(info, *PUBLISHERS)
        ctx = info.context
        document, errors = await in_transaction(
            info,
            lambda session: documents.publish_document(
                session,
                ctx.provider,
                purpose=input.purpose,
                language=input.language,
                title=input.title,
                text=input.text,
                actor=ctx.principal.actor,
                valid_from=input.valid_from,
                valid_to=input.valid_to,
            ),
            as_error=consent_user_error,
        )
        row = None if document is None else ConsentDocumentType.from_row(document)
        return ConsentDocumentPublishPayload(document=row, errors=errors)
