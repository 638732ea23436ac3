"""Data subject requests under 152-FZ: submission, the state machine, due dates, history.

Kinds and their legal periods (counted by `privacy.calendar`: from the day after receipt, in
Moscow working days or calendar days; deadlines are the end of the Moscow day, in UTC):

- ACCESS: 10 working days (art. 20 part 1, as amended by 266-FZ of 14.07.2022), extendable once
  by 5 working days with a reasoned notice to the subject; here an extension needs a recorded
  reason and must be made before the original deadline passes.
- RECTIFICATION: 7 working days from the submission of the corrected data (art. 20 part 3,
  art. 21 part 2).
- BLOCKING: "from the moment of the request" for the period of the check (art. 21 part 1). Its
  due date is the moment of receipt: until it is executed the request is listed as overdue,
  which is what the law asks of it. It may be executed before identity is verified (blocking
  only restricts processing, it discloses and destroys nothing).
- DESTRUCTION: 30 calendar days from the withdrawal or the purpose being reached (art. 21
  part 4); the request is the withdrawal, so from its receipt.
- CONSENT_WITHDRAWAL: stop processing and destroy within 30 calendar days of receiving the
  withdrawal (art. 21 part 5).

States: RECEIVED -> IDENTITY_VERIFIED -> IN_PROGRESS -> COMPLETED | REFUSED, and EXTENDED (an
access request being worked on whose deadline moved; it may be executed or refused next).
Every step is a `DataSubjectRequestStep` row and an audit entry `request.<step>`; a transition
that is not allowed raises a typed error and changes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import as_utc, utcnow
from privacy import audit, sources
from privacy.calendar import WorkCalendar, work_calendar
from privacy.fields import FieldCipher
from privacy.purposes import CollectionChannel, MarketingChannel, Purpose
from privacy.request_errors import RequestErrorCode, request_error
from privacy.request_execution import execute
from privacy.request_models import (
    OPEN_STATUSES,
    REQUEST_TABLE,
    STEP_TABLE,
    DataSubjectRequest,
    DataSubjectRequestStep,
    RequestKind,
    RequestStatus,
)

ACCESS_WORKING_DAYS = 10
ACCESS_EXTENSION_WORKING_DAYS = 5
RECTIFICATION_WORKING_DAYS = 7
DESTRUCTION_DAYS = 30
WITHDRAWAL_DAYS = 30
MAX_REASON = 2000
MAX_CHANGES = 20
MAX_CHANGE_VALUE = 1000


class RequestAction(StrEnum):
    VERIFY_IDENTITY = "VERIFY_IDENTITY"
    START = "START"
    EXECUTE = "EXECUTE"
    EXTEND = "EXTEND"
    REFUSE = "REFUSE"


class StepAction(StrEnum):
    """What a history row records (the audit action is `request.<value in lower case>`)."""

    RECEIVED = "RECEIVED"
    IDENTITY_VERIFIED = "IDENTITY_VERIFIED"
    STARTED = "STARTED"
    EXTENDED = "EXTENDED"
    COMPLETED = "COMPLETED"
    REFUSED = "REFUSED"


S = RequestStatus
# The statuses each action may start from (EXECUTE and REFUSE add per-kind rules below).
ALLOWED_FROM: dict[RequestAction, frozenset[RequestStatus]] = {
    RequestAction.VERIFY_IDENTITY: frozenset({S.RECEIVED}),
    RequestAction.START: frozenset({S.IDENTITY_VERIFIED}),
    RequestAction.EXTEND: frozenset({S.IDENTITY_VERIFIED, S.IN_PROGRESS}),
    RequestAction.EXECUTE: frozenset({S.IDENTITY_VERIFIED, S.IN_PROGRESS, S.EXTENDED}),
    RequestAction.REFUSE: OPEN_STATUSES,
}


def allowed_from(action: RequestAction, kind: RequestKind) -> frozenset[RequestStatus]:
    if action is RequestAction.EXECUTE and kind is RequestKind.BLOCKING:
        return ALLOWED_FROM[action] | {S.RECEIVED}  # art. 21 part 1: block at once
    return ALLOWED_FROM[action]


# --- deadlines ------------------------------------------------------------------------------


def due_at(kind: RequestKind, received_at: datetime, *, calendar: WorkCalendar) -> datetime:
    """The legal deadline of a request of `kind` received at `received_at` (see the module)."""
    if kind is RequestKind.ACCESS:
        return calendar.add_working_days(received_at, ACCESS_WORKING_DAYS)
    if kind is RequestKind.RECTIFICATION:
        return calendar.add_working_days(received_at, RECTIFICATION_WORKING_DAYS)
    if kind is RequestKind.BLOCKING:
        return as_utc(received_at)
    if kind is RequestKind.DESTRUCTION:
        return calendar.add_calendar_days(received_at, DESTRUCTION_DAYS)
    return calendar.add_calendar_days(received_at, WITHDRAWAL_DAYS)


def extended_due_at(current: datetime, *, calendar: WorkCalendar) -> datetime:
    """An access deadline moved by 5 working days (art. 20 part 1)."""
    return calendar.add_working_days(current, ACCESS_EXTENSION_WORKING_DAYS)


# --- input checks ---------------------------------------------------------------------------


def _reason(reason: str | None, *, required: bool, field: str = "reason") -> str | None:
    text = (reason or "").strip()
    if not text:
        if required:
            raise request_error(RequestErrorCode.REASON_REQUIRED, "a reason is required", field)
        return None
    if len(text) > MAX_REASON:
        raise request_error(
            RequestErrorCode.INVALID_INPUT, f"a reason is at most {MAX_REASON} characters", field
        )
    return text


def _changes(kind: RequestKind, changes: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """A rectification's changes, checked against the fields the registered personal-data
    sources can correct (`privacy.sources`); other kinds carry none."""
    if kind is not RequestKind.RECTIFICATION:
        if changes:
            raise request_error(
                RequestErrorCode.CHANGES_NOT_ALLOWED,
                "only a rectification request carries changes",
                "changes",
            )
        return {}
    if not changes:
        raise request_error(
            RequestErrorCode.CHANGES_REQUIRED, "name the data to correct", "changes"
        )
    if len(changes) > MAX_CHANGES:
        raise request_error(
            RequestErrorCode.INVALID_INPUT, f"at most {MAX_CHANGES} changes", "changes"
        )
    editable = {name for source in sources.registered() for name in source.editable}
    unknown = sorted(set(changes) - editable)
    if unknown:
        raise request_error(
            RequestErrorCode.UNKNOWN_FIELD,
            f"fields that cannot be rectified: {', '.join(unknown)}",
            "changes",
        )
    for value in changes.values():
        if value is not None and len(value) > MAX_CHANGE_VALUE:
            raise request_error(
                RequestErrorCode.INVALID_INPUT,
                f"a value is at most {MAX_CHANGE_VALUE} characters",
                "changes",
            )
    return dict(changes)


def _purpose(
    kind: RequestKind, purpose: Purpose | None, channel: MarketingChannel | None
) -> tuple[str | None, str | None]:
    """The consent withdrawn (a marketing consent is per channel, the others have none)."""
    if kind is not RequestKind.CONSENT_WITHDRAWAL:
        if purpose is not None or channel is not None:
            raise request_error(
                RequestErrorCode.PURPOSE_NOT_ALLOWED,
                "only a consent withdrawal names a purpose and channel",
                "purpose",
            )
        return None, None
    if purpose is None:
        raise request_error(
            RequestErrorCode.PURPOSE_REQUIRED, "name the purpose withdrawn", "purpose"
        )
    if purpose is Purpose.MARKETING and channel is None:
        raise request_error(
            RequestErrorCode.CHANNEL_REQUIRED, "marketing consents are per channel", "channel"
        )
    if purpose is not Purpose.MARKETING and channel is not None:
        raise request_error(
            RequestErrorCode.CHANNEL_NOT_ALLOWED,
            "only marketing consents have a channel",
            "channel",
        )
    return purpose.value, None if channel is None else channel.value


# --- writing steps --------------------------------------------------------------------------


async def _encrypt(
    cipher: FieldCipher,
    subject_id: uuid.UUID,
    table: str,
    column: str,
    row_id: uuid.UUID,
    value: str | None,
) -> bytes | None:
    return await cipher.encrypt(subject_id, table=table, column=column, row_id=row_id, value=value)


async def _next_seq(session: AsyncSession, request_id: uuid.UUID) -> int:
    found = await session.execute(
        select(func.max(col(DataSubjectRequestStep.seq))).where(
            col(DataSubjectRequestStep.request_id) == request_id
        )
    )
    return int(found.scalar_one() or 0) + 1


@dataclass(frozen=True, slots=True)
class _Sealed:
    """A step's id and its reason, encrypted ahead of the step (destruction shreds the key)."""

    step_id: uuid.UUID
    reason_ct: bytes | None


async def _seal(cipher: FieldCipher, request: DataSubjectRequest, reason: str | None) -> _Sealed:
    step_id = uuid.uuid4()
    reason_ct = await _encrypt(cipher, request.subject_id, STEP_TABLE, "reason", step_id, reason)
    return _Sealed(step_id, reason_ct)


async def _step(
    session: AsyncSession,
    cipher: FieldCipher,
    request: DataSubjectRequest,
    *,
    action: StepAction,
    to_status: RequestStatus,
    actor: str,
    at: datetime,
    reason: str | None = None,
    sealed: _Sealed | None = None,
    details: Mapping[str, object] | None = None,
) -> DataSubjectRequestStep:
    """Move `request` to `to_status` and record it: a history row and an audit entry."""
    sealed = sealed or await _seal(cipher, request, reason)
    step = DataSubjectRequestStep(
        id=sealed.step_id,
        request_id=request.id,
        seq=await _next_seq(session, request.id),
        at=at,
        actor=actor,
        action=action.value,
        from_status=None if action is StepAction.RECEIVED else request.status,
        to_status=to_status.value,
        reason_ct=sealed.reason_ct,
    )
    request.status = to_status.value
    request.updated_at = at
    if to_status not in OPEN_STATUSES:
        request.closed_at = at
    session.add_all([request, step])
    await session.flush()
    await audit.record(
        session,
        cipher.keys,
        action=f"request.{action.value.lower()}",
        actor=actor,
        subject_id=request.subject_id,
        at=at,
        details={
            "request_id": str(request.id),
            "kind": request.kind,
            "from": step.from_status,
            "to": step.to_status,
            "due_at": as_utc(request.due_at).isoformat(),
            "reason_digest": audit.ciphertext_digest(sealed.reason_ct),
            **(details or {}),
        },
    )
    return step


# --- services -------------------------------------------------------------------------------


async def submit_request(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    subject_id: uuid.UUID,
    kind: RequestKind,
    actor: str,
    requester_subject_id: uuid.UUID | None = None,
    reason: str | None = None,
    changes: Mapping[str, str | None] | None = None,
    purpose: Purpose | None = None,
    channel: MarketingChannel | None = None,
    received_via: CollectionChannel = CollectionChannel.WEB,
    at: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> DataSubjectRequest:
    """Record a request received at `at` (now) with its legal due date.

    `requester_subject_id` is the subject the caller is when a data subject files it
    themself: a request about anyone else is NOT_YOUR_DATA and writes nothing. Staff filing
    on someone's behalf pass None. The caller checks that the subject exists.
    """
    if requester_subject_id is not None and requester_subject_id != subject_id:
        raise request_error(
            RequestErrorCode.NOT_YOUR_DATA,
            "a customer may file requests only about themself",
            "customerId",
        )
    text = _reason(reason, required=False)
    wanted = _changes(kind, changes)
    purpose_code, channel_code = _purpose(kind, purpose, channel)
    received = as_utc(at) if at is not None else utcnow()
    request_id = uuid.uuid4()
    changes_json = json.dumps(wanted, ensure_ascii=False, sort_keys=True) if wanted else None
    request = DataSubjectRequest(
        id=request_id,
        subject_id=subject_id,
        kind=kind.value,
        status=RequestStatus.RECEIVED.value,
        received_at=received,
        due_at=due_at(kind, received, calendar=calendar or work_calendar()),
        submitted_by=actor,
        received_via=CollectionChannel(received_via).value,
        purpose=purpose_code,
        channel=channel_code,
        reason_ct=await _encrypt(cipher, subject_id, REQUEST_TABLE, "reason", request_id, text),
        changes_ct=await _encrypt(
            cipher, subject_id, REQUEST_TABLE, "changes", request_id, changes_json
        ),
        updated_at=received,
    )
    session.add(request)
    await session.flush()
    await _step(
        session,
        cipher,
        request,
        action=StepAction.RECEIVED,
        to_status=RequestStatus.RECEIVED,
        actor=actor,
        at=received,
        details={"fields": sorted(wanted)} if wanted else None,
    )
    return request


async def get_request(
    session: AsyncSession, request_id: uuid.UUID, *, for_update: bool = False
) -> DataSubjectRequest:
    query = select(DataSubjectRequest).where(col(DataSubjectRequest.id) == request_id)
    if for_update:
        query = query.with_for_update()
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise request_error(RequestErrorCode.REQUEST_NOT_FOUND, "no such request", "requestId")
    return found


def _check_transition(request: DataSubjectRequest, action: RequestAction) -> None:
    status, kind = RequestStatus(request.status), RequestKind(request.kind)
    if status not in allowed_from(action, kind):
        raise request_error(
            RequestErrorCode.INVALID_TRANSITION,
            f"a {kind.lower()} request that is {status.lower()} cannot take {action.lower()}",
            "action",
        )


async def verify_identity(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    request_id: uuid.UUID,
    actor: str,
    reason: str | None = None,
    at: datetime | None = None,
) -> DataSubjectRequest:
    """RECEIVED -> IDENTITY_VERIFIED: staff confirmed the requester is the subject (or their
    representative); `reason` may say how."""
    request = await get_request(session, request_id, for_update=True)
    _check_transition(request, RequestAction.VERIFY_IDENTITY)
    await _step(
        session,
        cipher,
        request,
        action=StepAction.IDENTITY_VERIFIED,
        to_status=RequestStatus.IDENTITY_VERIFIED,
        actor=actor,
        at=as_utc(at) if at else utcnow(),
        reason=_reason(reason, required=False),
    )
    return request


async def start_request(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    request_id: uuid.UUID,
    actor: str,
    reason: str | None = None,
    at: datetime | None = None,
) -> DataSubjectRequest:
    """IDENTITY_VERIFIED -> IN_PROGRESS: work on the answer has begun."""
    request = await get_request(session, request_id, for_update=True)
    _check_transition(request, RequestAction.START)
    await _step(
        session,
        cipher,
        request,
        action=StepAction.STARTED,
        to_status=RequestStatus.IN_PROGRESS,
        actor=actor,
        at=as_utc(at) if at else utcnow(),
        reason=_reason(reason, required=False),
    )
    return request


async def extend_request(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    request_id: uuid.UUID,
    actor: str,
    reason: str | None,
    at: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> DataSubjectRequest:
    """Move an access request's deadline by 5 working days, once, for a recorded reason, before
    the deadline passes (152-FZ art. 20 part 1)."""
    request = await get_request(session, request_id, for_update=True)
    when = as_utc(at) if at else utcnow()
    if request.kind != RequestKind.ACCESS:
        raise request_error(
            RequestErrorCode.EXTENSION_NOT_ALLOWED, "only access requests may be extended", "action"
        )
    if request.extended:
        raise request_error(
            RequestErrorCode.ALREADY_EXTENDED, "the request was already extended once", "action"
        )
    _check_transition(request, RequestAction.EXTEND)
    text = _reason(reason, required=True)
    if when > as_utc(request.due_at):
        raise request_error(
            RequestErrorCode.EXTENSION_TOO_LATE,
            "the deadline has passed; it can no longer be extended",
            "action",
        )
    previous = as_utc(request.due_at)
    request.due_at = extended_due_at(previous, calendar=calendar or work_calendar())
    request.extended = True
    await _step(
        session,
        cipher,
        request,
        action=StepAction.EXTENDED,
        to_status=RequestStatus.EXTENDED,
        actor=actor,
        at=when,
        reason=text,
        details={"previous_due_at": previous.isoformat()},
    )
    return request


async def refuse_request(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    request_id: uuid.UUID,
    actor: str,
    reason: str | None,
    at: datetime | None = None,
) -> DataSubjectRequest:
    """Close an open request without executing it; a reasoned refusal (art. 20 part 2, art. 14
    part 8) needs its reason."""
    request = await get_request(session, request_id, for_update=True)
    _check_transition(request, RequestAction.REFUSE)
    await _step(
        session,
        cipher,
        request,
        action=StepAction.REFUSED,
        to_status=RequestStatus.REFUSED,
        actor=actor,
        at=as_utc(at) if at else utcnow(),
        reason=_reason(reason, required=True),
    )
    return request


async def execute_request(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    request_id: uuid.UUID,
    actor: str,
    reason: str | None = None,
    at: datetime | None = None,
) -> DataSubjectRequest:
    """Carry out the request (see `privacy.request_execution`) and complete it, in the caller's
    transaction: if the work fails, nothing of it, nor the status change, is kept."""
    request = await get_request(session, request_id, for_update=True)
    _check_transition(request, RequestAction.EXECUTE)
    when = as_utc(at) if at else utcnow()
    text = _reason(reason, required=False)
    if request.status == RequestStatus.IDENTITY_VERIFIED:
        await _step(
            session,
            cipher,
            request,
            action=StepAction.STARTED,
            to_status=RequestStatus.IN_PROGRESS,
            actor=actor,
            at=when,
        )
    # The completion step's reason is sealed before execution: destruction shreds the key.
    sealed = await _seal(cipher, request, text)
    outcome = await execute(session, cipher, request=request, actor=actor, at=when)
    request.outcome = outcome
    await _step(
        session,
        cipher,
        request,
        action=StepAction.COMPLETED,
        to_status=RequestStatus.COMPLETED,
        actor=actor,
        at=when,
        sealed=sealed,
        details={"on_time": when <= as_utc(request.due_at), "outcome": outcome},
    )
    return request


async def process_request(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    request_id: uuid.UUID,
    action: RequestAction,
    actor: str,
    reason: str | None = None,
    at: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> DataSubjectRequest:
    """One compliance action on a request (the GraphQL `dataSubjectRequestProcess`)."""
    if action is RequestAction.VERIFY_IDENTITY:
        return await verify_identity(
            session, cipher, request_id=request_id, actor=actor, reason=reason, at=at
        )
    if action is RequestAction.START:
        return await start_request(
            session, cipher, request_id=request_id, actor=actor, reason=reason, at=at
        )
    if action is RequestAction.EXTEND:
        return await extend_request(
            session,
            cipher,
            request_id=request_id,
            actor=actor,
            reason=reason,
            at=at,
            calendar=calendar,
        )
    if action is RequestAction.REFUSE:
        return await refuse_request(
            session, cipher, request_id=request_id, actor=actor, reason=reason, at=at
        )
    return await execute_request(
        session, cipher, request_id=request_id, actor=actor, reason=reason, at=at
    )
