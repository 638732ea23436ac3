"""GraphQL: dataSubjectRequestSubmit, dataSubjectRequestProcess, dataSubjectRequests and
myDataSubjectRequests.

A customer files requests about themself (about anyone else: a `NOT_YOUR_DATA` payload error,
nothing written); operators, compliance officers and admins file on a customer's behalf.
Compliance officers (and admins) process them and see the list with its deadlines. What the
subject wrote, the requested changes and the access package are readable by compliance and by
the subject only; a staff read of them is audited like any read of personal data.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from strawberry.dataloader import DataLoader

import api.schema.privacy.consent  # noqa: F401  (registers Purpose, MarketingChannel...)
from api.auth import Role
from api.context import Info
from api.schema.access import require_roles
from api.schema.common import (
    DEFAULT_PAGE,
    ApiErrorCode,
    api_error,
    customer_uuid,
    from_global_id,
    page_size,
    to_global_id,
)
from api.schema.loaders import Loaders
from api.schema.node import Connection, connection
from api.schema.transaction import in_transaction
from core.clock import utcnow
from core.errors import DomainError
from privacy import request_queries as queries
from privacy import requests as service
from privacy.erasure_models import DestructionCertificate as CertificateRow
from privacy.purposes import CollectionChannel, MarketingChannel, Purpose
from privacy.request_errors import RequestErrorCode, request_error
from privacy.request_models import (
    OPEN_STATUSES,
    RequestKind,
    RequestStatus,
)
from privacy.request_models import (
    DataSubjectRequest as RequestRow,
)
from privacy.request_models import (
    DataSubjectRequestStep as StepRow,
)
from privacy.requests import RequestAction
from privacy.subject_rights import scrub_storage

strawberry.enum(RequestKind, name="DataSubjectRequestKind")
strawberry.enum(RequestStatus, name="DataSubjectRequestStatus")
strawberry.enum(RequestAction, name="DataSubjectRequestAction")
strawberry.enum(RequestErrorCode, name="RequestErrorCode")

SUBMITTERS = (Role.OPERATOR, Role.COMPLIANCE, Role.ADMIN)
PROCESSORS = (Role.COMPLIANCE, Role.ADMIN)
CURSOR_KIND = "dsr"


@strawberry.type(description="An expected failure of a data subject request: nothing changed.")
class RequestUserError:
    code: RequestErrorCode
    message: str
    field: list[str] | None = strawberry.field(description="Path of the input field at fault.")


def request_user_error(error: DomainError) -> RequestUserError:
    """Any domain error met on the way (the graph's CONFLICT, a service's own code) under the
    request codes: the same name when there is one, else EXECUTION_FAILED."""
    try:
        code = RequestErrorCode(str(error.code))
    except ValueError:
        code = RequestErrorCode.EXECUTION_FAILED
    field = ["input", *error.field] if error.field else None
    return RequestUserError(code=code, message=error.message, field=field)


# --- reading the subject's parts ------------------------------------------------------------


def _may_read(info: Info, subject_id: uuid.UUID) -> bool:
    """Compliance, admins and the subject read what the subject wrote and the package; a staff
    read is noted for the audit log (api/http.py writes it)."""
    principal = info.context.principal
    if principal.has(Role.CUSTOMER):
        return info.context.owner_id == subject_id
    if principal.has(*PROCESSORS):
        info.context.personal_reads.add(subject_id)
        return True
    return False


_step_loaders: weakref.WeakKeyDictionary[Loaders, DataLoader[uuid.UUID, list[StepRow]]]
_step_loaders = weakref.WeakKeyDictionary()
_certificate_loaders: weakref.WeakKeyDictionary[
    Loaders, DataLoader[uuid.UUID, CertificateRow | None]
]
_certificate_loaders = weakref.WeakKeyDictionary()


def _steps_loader(info: Info) -> DataLoader[uuid.UUID, list[StepRow]]:
    """One loader per request's `Loaders` (renewed after a mutation, like the others)."""
    loaders = info.context.loaders
    loader = _step_loaders.get(loaders)
    if loader is None:
        session = info.context.session

        async def load(ids: Sequence[uuid.UUID]) -> list[list[StepRow]]:
            found = await queries.steps_of(session, ids)
            return [found[key] for key in ids]

        loader = _step_loaders[loaders] = DataLoader(load)
    return loader


def _certificates_loader(info: Info) -> DataLoader[uuid.UUID, CertificateRow | None]:
    loaders = info.context.loaders
    loader = _certificate_loaders.get(loaders)
    if loader is None:
        session = info.context.session

        async def load(ids: Sequence[uuid.UUID]) -> list[CertificateRow | None]:
            rows = await session.execute(
                select(CertificateRow).where(col(CertificateRow.request_id).in_(list(ids)))
            )
            found = {row.request_id: row for row in rows.scalars()}
            return [found.get(key) for key in ids]

        loader = _certificate_loaders[loaders] = DataLoader(load)
    return loader


# --- types ----------------------------------------------------------------------------------


@strawberry.type(description="One step of a request's history, as it happened.")
class DataSubjectRequestStep:
    at: datetime
    actor: str = strawberry.field(description="A pseudonymous label of who took the step.")
    action: str = strawberry.field(
        description="RECEIVED, IDENTITY_VERIFIED, STARTED, EXTENDED, COMPLETED or REFUSED."
    )
    from_status: RequestStatus | None
    to_status: RequestStatus
    row: strawberry.Private[StepRow]
    subject_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Why (compliance and the subject only; null once erased).")
    async def reason(self, info: Info) -> str | None:
        if not _may_read(info, self.subject_id):
            return None
        return await queries.read_step_reason(info.context.cipher, self.row)


@strawberry.type(description="What the operator holds about the subject, as of its making.")
class AccessPackage:
    json: str = strawberry.field(description="The machine-readable package (a JSON document).")
    html: str = strawberry.field(description="The same as a human-readable HTML page.")


@strawberry.type(description="A correction the subject asked for.")
class RectificationChange:
    field: str
    value: str | None


@strawberry.type(description="What destruction did to one table.")
class DestroyedTable:
    table: str
    rows_deleted: int
    rows_anonymised: int
    rows_retained: int
    columns_cleared: list[str]


@strawberry.type(description="Proof that the subject's personal data was destroyed.")
class DestructionCertificate:
    id: strawberry.ID
    destroyed_at: datetime
    actor: str
    method: str
    keys_destroyed: int
    tables: list[DestroyedTable]
    digest: str = strawberry.field(description="SHA-256 over the certificate's contents.")

    @classmethod
    def from_row(cls, row: CertificateRow) -> DestructionCertificate:
        return cls(
            id=strawberry.ID(str(row.id)),
            destroyed_at=row.destroyed_at,
            actor=row.actor,
            method=row.method,
            keys_destroyed=len(row.key_ids),
            tables=[
                DestroyedTable(
                    table=str(item.get("table")),
                    rows_deleted=int(item.get("rowsDeleted", 0)),
                    rows_anonymised=int(item.get("rowsAnonymised", 0)),
                    rows_retained=int(item.get("rowsRetained", 0)),
                    columns_cleared=list(item.get("columnsCleared", [])),
                )
                for item in row.items
            ],
            digest=row.digest,
        )


@strawberry.type(
    name="DataSubjectRequest", description="A data subject request under 152-FZ art. 14, 20, 21."
)
class DataSubjectRequestType:
    row: strawberry.Private[RequestRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return to_global_id("DataSubjectRequest", self.row.id)

    @strawberry.field(description="The data subject (a Customer id).")
    def customer_id(self) -> strawberry.ID:
        return to_global_id("Customer", self.row.subject_id)

    @strawberry.field
    def kind(self) -> RequestKind:
        return RequestKind(self.row.kind)

    @strawberry.field
    def status(self) -> RequestStatus:
        return RequestStatus(self.row.status)

    @strawberry.field
    def received_at(self) -> datetime:
        return self.row.received_at

    @strawberry.field(
        description="The legal deadline: the end of a Moscow day (the moment of receipt for "
        "blocking, which is due at once)."
    )
    def due_at(self) -> datetime:
        return self.row.due_at

    @strawberry.field(description="True once the deadline was moved by 5 working days.")
    def extended(self) -> bool:
        return self.row.extended

    @strawberry.field(description="Open and past its deadline.")
    def overdue(self) -> bool:
        return self.row.status in OPEN_STATUSES and self.row.due_at < utcnow()

    @strawberry.field
    def closed_at(self) -> datetime | None:
        return self.row.closed_at

    @strawberry.field(description="Consent withdrawal: the purpose withdrawn.")
    def purpose(self) -> Purpose | None:
        return None if self.row.purpose is None else Purpose(self.row.purpose)

    @strawberry.field(description="Consent withdrawal: the marketing channel withdrawn.")
    def channel(self) -> MarketingChannel | None:
        return None if self.row.channel is None else MarketingChannel(self.row.channel)

    @strawberry.field
    def received_via(self) -> CollectionChannel:
        return CollectionChannel(self.row.received_via)

    @strawberry.field(description="The subject's own words (compliance and the subject only).")
    async def reason(self, info: Info) -> str | None:
        if not _may_read(info, self.row.subject_id):
            return None
        return await queries.read_reason(info.context.cipher, self.row)

    @strawberry.field(description="Rectification: the corrections asked for.")
    async def changes(self, info: Info) -> list[RectificationChange] | None:
        if not _may_read(info, self.row.subject_id):
            return None
        found = await queries.read_changes(info.context.cipher, self.row)
        if found is None:
            return None
        return [RectificationChange(field=name, value=value) for name, value in found.items()]

    @strawberry.field(description="The history, oldest first.")
    async def steps(self, info: Info) -> list[DataSubjectRequestStep]:
        rows = await _steps_loader(info).load(self.row.id)
        return [
            DataSubjectRequestStep(
                at=step.at,
                actor=step.actor,
                action=step.action,
                from_status=None if step.from_status is None else RequestStatus(step.from_status),
                to_status=RequestStatus(step.to_status),
                row=step,
                subject_id=self.row.subject_id,
            )
            for step in rows
        ]

    @strawberry.field(
        description="Access: the package produced (compliance and the subject only; null before "
        "execution and once the subject's data is destroyed)."
    )
    async def access_package(self, info: Info) -> AccessPackage | None:
        if self.row.package_json_ct is None or not _may_read(info, self.row.subject_id):
            return None
        found = await queries.read_access_package(info.context.cipher, self.row)
        return None if found is None else AccessPackage(json=found[0], html=found[1])

    @strawberry.field(description="Destruction: the certificate, once executed.")
    async def certificate(self, info: Info) -> DestructionCertificate | None:
        if self.row.kind != RequestKind.DESTRUCTION:
            return None
        row = await _certificates_loader(info).load(self.row.id)
        return None if row is None else DestructionCertificate.from_row(row)


# --- inputs and payloads --------------------------------------------------------------------


@strawberry.input
class RectificationChangeInput:
    field: str = strawberry.field(description="first_name, last_name, birth_date, address...")
    value: str | None = strawberry.field(description="The correct value; null to remove it.")


@strawberry.input
class DataSubjectRequestSubmitInput:
    customer_id: strawberry.ID
    kind: RequestKind
    reason: str | None = None
    changes: list[RectificationChangeInput] | None = strawberry.field(
        default=None, description="Rectification only: the corrections."
    )
    purpose: Purpose | None = strawberry.field(
        default=None, description="Consent withdrawal only: the purpose withdrawn."
    )
    channel: MarketingChannel | None = strawberry.field(
        default=None, description="Consent withdrawal of a marketing consent: its channel."
    )
    received_via: CollectionChannel | None = strawberry.field(
        default=None,
        description="Where the request came in (default WEB for a customer, else CONTACT_CENTER).",
    )


@strawberry.input
class DataSubjectRequestProcessInput:
    request_id: strawberry.ID
    action: RequestAction
    reason: str | None = strawberry.field(
        default=None, description="Required to EXTEND and to REFUSE."
    )


@strawberry.input
class DataSubjectRequestFilter:
    statuses: list[RequestStatus] | None = None
    kinds: list[RequestKind] | None = None
    customer_id: strawberry.ID | None = None
    overdue: bool | None = strawberry.field(
        default=None, description="True: open and past the deadline; false: all the others."
    )
    due_within_working_days: int | None = strawberry.field(
        default=None,
        description="Open requests due by the end of the N-th Moscow working day from today "
        "(0: today), overdue ones included.",
    )

    def criteria(self) -> queries.RequestFilter:
        days = self.due_within_working_days
        if days is not None and not 0 <= days <= queries.MAX_DUE_WITHIN:
            raise api_error(
                ApiErrorCode.BAD_USER_INPUT,
                f"`dueWithinWorkingDays` must be 0-{queries.MAX_DUE_WITHIN}",
            )
        return queries.RequestFilter(
            statuses=frozenset(self.statuses) if self.statuses else None,
            kinds=frozenset(self.kinds) if self.kinds else None,
            subject_id=None if self.customer_id is None else customer_uuid(self.customer_id),
            overdue=self.overdue,
            due_within_working_days=days,
        )


@strawberry.type
class DataSubjectRequestPayload:
    request: DataSubjectRequestType | None = None
    errors: list[RequestUserError] = strawberry.field(default_factory=list)


def _payload(row: RequestRow | None, errors: list[RequestUserError]) -> DataSubjectRequestPayload:
    return DataSubjectRequestPayload(
        request=None if row is None else DataSubjectRequestType(row=row), errors=errors
    )


async def _submit(info: Info, input: DataSubjectRequestSubmitInput) -> DataSubjectRequestPayload:
    """Resolve the customer (its survivor), then file the request in one transaction."""
    ctx = info.context
    raw = customer_uuid(input.customer_id)
    customer = await ctx.loaders.customer.load(raw)
    found = None if customer is None else customer.id  # read now: the transaction expires it
    is_customer = ctx.principal.has(Role.CUSTOMER)
    via = input.received_via or (
        CollectionChannel.WEB if is_customer else CollectionChannel.CONTACT_CENTER
    )
    changes = None if input.changes is None else {c.field: c.value for c in input.changes}

    async def work(session: AsyncSession) -> RequestRow:
        # A customer speaks only for themself (their survivor id, or no one at all).
        requester = (ctx.owner_id or uuid.uuid4()) if is_customer else None
        if found is None and requester is None:
            raise request_error(
                RequestErrorCode.CUSTOMER_NOT_FOUND, "no such customer", "customerId"
            )
        return await service.submit_request(
            session,
            ctx.cipher,
            subject_id=found or raw,
            kind=input.kind,
            actor=ctx.principal.actor,
            requester_subject_id=requester,
            reason=input.reason,
            changes=changes,
            purpose=input.purpose,
            channel=input.channel,
            received_via=via,
        )

    row, errors = await in_transaction(info, work, as_error=request_user_error)
    return _payload(row, errors)


def _page(info: Info, rows: list[RequestRow], size: int) -> Connection[DataSubjectRequestType]:
    cursors = info.context.cursors
    page = rows[:size]
    return connection(
        [DataSubjectRequestType(row=row) for row in page],
        [cursors.encode(CURSOR_KIND, row.due_at, row.id) for row in page],
        more=len(rows) > size,
    )


@strawberry.type
class RequestQuery:
    @strawberry.field(
        description="Data subject requests, soonest deadline first (compliance and admins)."
    )
    async def data_subject_requests(
        self,
        info: Info,
        filter: DataSubjectRequestFilter | None = None,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
    ) -> Connection[DataSubjectRequestType]:
        require_roles(info, *PROCESSORS)
        size = page_size(first)
        criteria = (filter or DataSubjectRequestFilter()).criteria()
        rows = await queries.list_requests(
            info.context.session,
            filter=criteria,
            limit=size + 1,
            after=info.context.cursors.decode(CURSOR_KIND, after),
        )
        return _page(info, rows, size)

    @strawberry.field(description="The calling customer's own requests, soonest deadline first.")
    async def my_data_subject_requests(
        self, info: Info, first: int | None = DEFAULT_PAGE, after: str | None = None
    ) -> Connection[DataSubjectRequestType]:
        require_roles(info, Role.CUSTOMER)
        size = page_size(first)
        owner = info.context.owner_id
        if owner is None:
            return _page(info, [], size)
        rows = await queries.list_requests(
            info.context.session,
            filter=queries.RequestFilter(subject_id=owner),
            limit=size + 1,
            after=info.context.cursors.decode(CURSOR_KIND, after),
        )
        return _page(info, rows, size)


@strawberry.type
class RequestMutation:
    @strawberry.mutation(
        description="File a data subject request: a customer for themself, or staff on a "
        "customer's behalf. The due date follows 152-FZ in Moscow working days."
    )
    async def data_subject_request_submit(
        self, info: Info, input: DataSubjectRequestSubmitInput
    ) -> DataSubjectRequestPayload:
        require_roles(info, Role.CUSTOMER, *SUBMITTERS)
        return await _submit(info, input)

    @strawberry.mutation(
        description="Take one step on a request: verify identity, execute, extend (access, "
        "once, with a reason) or refuse (with a reason). Compliance and admins."
    )
    async def data_subject_request_process(
        self, info: Info, input: DataSubjectRequestProcessInput
    ) -> DataSubjectRequestPayload:
        require_roles(info, *PROCESSORS)
        request_id = from_global_id(input.request_id, expected="DataSubjectRequest")[1]
        ctx = info.context
        row, errors = await in_transaction(
            info,
            lambda session: service.process_request(
                session,
                ctx.cipher,
                request_id=request_id,
                action=input.action,
                actor=ctx.principal.actor,
                reason=input.reason,
            ),
            as_error=request_user_error,
        )
        if row is not None and row.kind == RequestKind.DESTRUCTION and row.closed_at is not None:
            # A destruction has committed: leave no old page image in SQLite's log either.
            await scrub_storage(ctx.session)
        return _payload(row, errors)
