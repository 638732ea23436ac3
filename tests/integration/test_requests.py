"""Data subject requests (152-FZ art. 20-21) through the privacy services, on a real database:
legal due dates in Moscow working days, the state machine (every transition, and bad ones that
change nothing), extension rules, the history and audit trail, the compliance list with a moved
clock, and each kind executed end to end."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import transaction
from core.errors import DomainError
from graph.customers import register_customer
from graph.enums import Channel
from graph.models import Customer
from privacy.audit import verify_chain
from privacy.calendar import MOSCOW, WorkCalendar
from privacy.consent import Evidence, grant_consent
from privacy.consent_documents import publish_document
from privacy.enforcement import may_process
from privacy.erasure_models import DestructionCertificate
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider
from privacy.models import AuditEntry
from privacy.purposes import CollectionChannel, CollectionMethod, MarketingChannel, Purpose
from privacy.request_errors import RequestErrorCode
from privacy.request_models import (
    DataSubjectRequest,
    DataSubjectRequestStep,
    RequestKind,
    RequestStatus,
)
from privacy.request_queries import (
    RequestFilter,
    due_requests,
    list_requests,
    read_access_package,
    read_changes,
    read_step_reason,
    steps_of,
)
from privacy.requests import RequestAction, process_request, submit_request

FIRST_NAME, PHONE = "Zinaida", "+7 916 700-11-22"
# Friday 26 December 2025, 15:30 in Moscow: the last working Friday before the New Year holidays.
RECEIVED = datetime(2025, 12, 26, 15, 30, tzinfo=MOSCOW).astimezone(UTC)
STAFF = "staff:compliance-1"


def end_of(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 23, 59, 59, 999999, tzinfo=MOSCOW).astimezone(UTC)


class Requests:
    """The request services in one transaction each, as the API runs them."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], provider: KeyProvider) -> None:
        self.sessions = sessions
        self.provider = provider
        self.calendar = WorkCalendar()

    async def submit(self, subject: uuid.UUID, kind: RequestKind, **extra: Any) -> uuid.UUID:
        extra.setdefault("at", RECEIVED)
        async with transaction(self.sessions) as session:
            request = await submit_request(
                session,
                FieldCipher(session, self.provider),
                subject_id=subject,
                kind=kind,
                actor=extra.pop("actor", STAFF),
                calendar=self.calendar,
                **extra,
            )
            return request.id

    async def act(
        self,
        request_id: uuid.UUID,
        action: RequestAction,
        *,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> DataSubjectRequest:
        async with transaction(self.sessions) as session:
            return await process_request(
                session,
                FieldCipher(session, self.provider),
                request_id=request_id,
                action=action,
                actor=STAFF,
                reason=reason,
                at=at or RECEIVED + timedelta(hours=2),
                calendar=self.calendar,
            )

    async def get(self, request_id: uuid.UUID) -> DataSubjectRequest:
        async with self.sessions() as session:
            found = await session.get(DataSubjectRequest, request_id)
            assert found is not None
            return found

    async def counts(self) -> tuple[int, int, int]:
        async with self.sessions() as session:
            found = [
                (await session.execute(select(func.count()).select_from(table))).scalar_one()
                for table in (DataSubjectRequest, DataSubjectRequestStep, AuditEntry)
            ]
            return found[0], found[1], found[2]

    async def steps(self, request_id: uuid.UUID) -> list[DataSubjectRequestStep]:
        async with self.sessions() as session:
            return (await steps_of(session, [request_id]))[request_id]


@pytest.fixture
async def requests(sessions, provider) -> AsyncIterator[Requests]:
    yield Requests(sessions, provider)


@pytest.fixture
async def subject(sessions, provider) -> uuid.UUID:
    async with transaction(sessions) as session:
        registered = await register_customer(
            session,
            FieldCipher(session, provider),
            channel=Channel.WEB,
            phone=PHONE,
            phone_verified=True,
            first_name=FIRST_NAME,
            now=RECEIVED - timedelta(days=60),
        )
        return registered.customer.id


async def _fails(code: RequestErrorCode, work: Awaitable[Any]) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await work
    assert caught.value.code == code, caught.value
    return caught.value


# --- due dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "due"),
    [
        # 29, 30 Dec; 31 Dec and 1-11 Jan off; 12-16, 19-21 Jan
        (RequestKind.ACCESS, end_of(2026, 1, 21)),
        # 29, 30 Dec; 12-16 Jan
        (RequestKind.RECTIFICATION, end_of(2026, 1, 16)),
        # blocked from the moment of the request (art. 21 part 1)
        (RequestKind.BLOCKING, RECEIVED),
        # 30 calendar days, weekends and holidays included, not moved off a Sunday
        (RequestKind.DESTRUCTION, end_of(2026, 1, 25)),
        (RequestKind.CONSENT_WITHDRAWAL, end_of(2026, 1, 25)),
    ],
)
async def test_each_kind_gets_its_legal_due_date(requests, subject, kind, due):
    extra: dict[str, Any] = {}
    if kind is RequestKind.RECTIFICATION:
        extra["changes"] = {"first_name": "Zina"}
    if kind is RequestKind.CONSENT_WITHDRAWAL:
        extra["purpose"] = Purpose.PROFILING
    request_id = await requests.submit(subject, kind, **extra)
    request = await requests.get(request_id)
    assert request.due_at == due
    assert request.status == RequestStatus.RECEIVED
    assert request.received_at == RECEIVED


# --- the state machine ----------------------------------------------------------------------


async def test_an_access_request_goes_through_every_step_with_history_and_audit(
    requests, subject, sessions, provider
):
    # given an access request with the subject's own words
    request_id = await requests.submit(subject, RequestKind.ACCESS, reason="What do you hold?")

    # when compliance verifies identity, starts, extends with a reason and executes
    day = timedelta(days=1)
    await requests.act(request_id, RequestAction.VERIFY_IDENTITY, reason="passport seen")
    await requests.act(request_id, RequestAction.START, at=RECEIVED + 3 * day)
    extended = await requests.act(
        request_id, RequestAction.EXTEND, reason="archive in storage", at=RECEIVED + 20 * day
    )
    assert extended.status == RequestStatus.EXTENDED
    # then the deadline moved by five working days: 22, 23, 26, 27, 28 January
    assert extended.extended is True
    assert extended.due_at == end_of(2026, 1, 28)
    done = await requests.act(request_id, RequestAction.EXECUTE, at=RECEIVED + 30 * day)

    # then it is completed, every step is a row and an audit entry
    assert done.status == RequestStatus.COMPLETED
    assert done.closed_at == RECEIVED + 30 * day
    steps = await requests.steps(request_id)
    assert [(s.action, s.from_status, s.to_status) for s in steps] == [
        ("RECEIVED", None, "RECEIVED"),
        ("IDENTITY_VERIFIED", "RECEIVED", "IDENTITY_VERIFIED"),
        ("STARTED", "IDENTITY_VERIFIED", "IN_PROGRESS"),
        ("EXTENDED", "IN_PROGRESS", "EXTENDED"),
        ("COMPLETED", "EXTENDED", "COMPLETED"),
    ]
    assert [s.seq for s in steps] == [1, 2, 3, 4, 5]
    assert all(s.actor == STAFF for s in steps)
    async with sessions() as session:
        cipher = FieldCipher(session, provider)
        assert await read_step_reason(cipher, steps[3]) == "archive in storage"
        assert await read_step_reason(cipher, steps[1]) == "passport seen"
        entries = (
            (
                await session.execute(
                    select(AuditEntry)
                    .where(AuditEntry.action.like("request.%"))  # type: ignore[attr-defined]
                    .order_by(AuditEntry.seq)  # type: ignore[arg-type]
                )
            )
            .scalars()
            .all()
        )
        assert [e.action for e in entries] == [
            "request.received",
            "request.identity_verified",
            "request.started",
            "request.extended",
            "request.completed",
        ]
        assert all(e.details["request_id"] == str(request_id) for e in entries)
        assert entries[-1].details["on_time"] is True
        assert str(subject) not in json.dumps([e.details for e in entries])
        assert all(e.subject != str(subject) for e in entries)
        assert (await verify_chain(session)).ok

        # and the access package is stored encrypted, readable with the subject's key
        stored = await session.get(DataSubjectRequest, request_id)
        assert stored is not None
        assert FIRST_NAME.encode() not in (stored.package_json_ct or b"")
        assert FIRST_NAME.encode() not in (stored.package_html_ct or b"")
        package = await read_access_package(cipher, stored)
        assert package is not None
        as_json, as_html = package
        assert FIRST_NAME in as_json
        assert json.loads(as_json)["subjectId"] == str(subject)
        assert FIRST_NAME in as_html and "<html" in as_html.lower()


async def test_execute_from_identity_verified_records_the_start(requests, subject):
    request_id = await requests.submit(subject, RequestKind.ACCESS)
    await requests.act(request_id, RequestAction.VERIFY_IDENTITY)
    await requests.act(request_id, RequestAction.EXECUTE)
    actions = [s.action for s in await requests.steps(request_id)]
    assert actions == ["RECEIVED", "IDENTITY_VERIFIED", "STARTED", "COMPLETED"]


async def test_a_refusal_needs_a_reason_and_closes_the_request(requests, subject):
    request_id = await requests.submit(subject, RequestKind.DESTRUCTION)
    before = await requests.counts()
    await _fails(RequestErrorCode.REASON_REQUIRED, requests.act(request_id, RequestAction.REFUSE))
    await _fails(
        RequestErrorCode.REASON_REQUIRED,
        requests.act(request_id, RequestAction.REFUSE, reason="   "),
    )
    assert await requests.counts() == before
    refused = await requests.act(
        request_id, RequestAction.REFUSE, reason="identity could not be confirmed"
    )
    assert refused.status == RequestStatus.REFUSED
    assert refused.closed_at is not None


# Every (status, action) pair the machine refuses, reached by the steps before it.
PATHS: dict[RequestStatus, list[tuple[RequestAction, str | None]]] = {
    RequestStatus.RECEIVED: [],
    RequestStatus.IDENTITY_VERIFIED: [(RequestAction.VERIFY_IDENTITY, None)],
    RequestStatus.IN_PROGRESS: [(RequestAction.VERIFY_IDENTITY, None), (RequestAction.START, None)],
    RequestStatus.EXTENDED: [(RequestAction.VERIFY_IDENTITY, None), (RequestAction.EXTEND, "why")],
    RequestStatus.COMPLETED: [(RequestAction.VERIFY_IDENTITY, None), (RequestAction.EXECUTE, None)],
    RequestStatus.REFUSED: [(RequestAction.REFUSE, "no")],
}
BAD = [
    (RequestStatus.RECEIVED, RequestAction.START),
    (RequestStatus.RECEIVED, RequestAction.EXECUTE),
    (RequestStatus.RECEIVED, RequestAction.EXTEND),
    (RequestStatus.IDENTITY_VERIFIED, RequestAction.VERIFY_IDENTITY),
    (RequestStatus.IN_PROGRESS, RequestAction.VERIFY_IDENTITY),
    (RequestStatus.IN_PROGRESS, RequestAction.START),
    (RequestStatus.EXTENDED, RequestAction.VERIFY_IDENTITY),
    (RequestStatus.EXTENDED, RequestAction.START),
    *((RequestStatus.COMPLETED, action) for action in RequestAction),
    *((RequestStatus.REFUSED, action) for action in RequestAction),
]


@pytest.mark.parametrize(("status", "action"), BAD, ids=lambda v: str(v))
async def test_an_invalid_transition_is_a_typed_error_that_changes_nothing(
    requests, subject, status, action
):
    # given an access request in `status`
    request_id = await requests.submit(subject, RequestKind.ACCESS)
    for step, reason in PATHS[status]:
        await requests.act(request_id, step, reason=reason)
    before, stored = await requests.counts(), await requests.get(request_id)
    assert stored.status == status

    # when a step it cannot take is asked for (with a reason, so only the state is at fault)
    error = await _fails(
        RequestErrorCode.ALREADY_EXTENDED
        if status is RequestStatus.EXTENDED and action is RequestAction.EXTEND
        else RequestErrorCode.INVALID_TRANSITION,
        requests.act(request_id, action, reason="a reason"),
    )

    # then nothing changed
    assert error.field == ["action"]
    assert await requests.counts() == before
    after = await requests.get(request_id)
    assert (after.status, after.due_at, after.updated_at) == (
        stored.status,
        stored.due_at,
        stored.updated_at,
    )


async def test_an_unknown_request_is_a_typed_error(requests):
    await _fails(
        RequestErrorCode.REQUEST_NOT_FOUND,
        requests.act(uuid.uuid4(), RequestAction.VERIFY_IDENTITY),
    )


# --- extension rules ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [k for k in RequestKind if k is not RequestKind.ACCESS])
async def test_only_access_requests_may_be_extended(requests, subject, kind):
    extra: dict[str, Any] = {}
    if kind is RequestKind.RECTIFICATION:
        extra["changes"] = {"first_name": "Zina"}
    if kind is RequestKind.CONSENT_WITHDRAWAL:
        extra["purpose"] = Purpose.PROFILING
    request_id = await requests.submit(subject, kind, **extra)
    await requests.act(request_id, RequestAction.VERIFY_IDENTITY)
    before = await requests.counts()
    await _fails(
        RequestErrorCode.EXTENSION_NOT_ALLOWED,
        requests.act(request_id, RequestAction.EXTEND, reason="busy"),
    )
    assert await requests.counts() == before


async def test_an_extension_needs_a_reason_happens_once_and_before_the_deadline(requests, subject):
    request_id = await requests.submit(subject, RequestKind.ACCESS)
    await requests.act(request_id, RequestAction.VERIFY_IDENTITY)
    await _fails(RequestErrorCode.REASON_REQUIRED, requests.act(request_id, RequestAction.EXTEND))
    # one microsecond after the end of 21 January (Moscow) is too late
    too_late = end_of(2026, 1, 21) + timedelta(microseconds=1)
    await _fails(
        RequestErrorCode.EXTENSION_TOO_LATE,
        requests.act(request_id, RequestAction.EXTEND, reason="busy", at=too_late),
    )
    assert (await requests.get(request_id)).extended is False
    # at the very last instant it is still allowed
    extended = await requests.act(
        request_id, RequestAction.EXTEND, reason="busy", at=end_of(2026, 1, 21)
    )
    assert extended.due_at == end_of(2026, 1, 28)
    await _fails(
        RequestErrorCode.ALREADY_EXTENDED,
        requests.act(request_id, RequestAction.EXTEND, reason="again"),
    )


# --- submission checks ----------------------------------------------------------------------


async def test_a_customer_filing_about_another_customer_writes_nothing(
    requests, subject, sessions, provider
):
    before = await requests.counts()
    other = uuid.uuid4()
    await _fails(
        RequestErrorCode.NOT_YOUR_DATA,
        requests.submit(
            subject, RequestKind.ACCESS, actor=f"customer:{other}", requester_subject_id=other
        ),
    )
    assert await requests.counts() == before
    # the same customer about themself is fine
    await requests.submit(
        subject, RequestKind.ACCESS, actor=f"customer:{subject}", requester_subject_id=subject
    )


@pytest.mark.parametrize(
    ("kind", "extra", "code"),
    [
        (RequestKind.RECTIFICATION, {}, RequestErrorCode.CHANGES_REQUIRED),
        (RequestKind.RECTIFICATION, {"changes": {"salary": "1"}}, RequestErrorCode.UNKNOWN_FIELD),
        (
            RequestKind.RECTIFICATION,
            {"changes": {"first_name": "x" * 1001}},
            RequestErrorCode.INVALID_INPUT,
        ),
        (
            RequestKind.ACCESS,
            {"changes": {"first_name": "A"}},
            RequestErrorCode.CHANGES_NOT_ALLOWED,
        ),
        (RequestKind.CONSENT_WITHDRAWAL, {}, RequestErrorCode.PURPOSE_REQUIRED),
        (
            RequestKind.CONSENT_WITHDRAWAL,
            {"purpose": Purpose.MARKETING},
            RequestErrorCode.CHANNEL_REQUIRED,
        ),
        (
            RequestKind.CONSENT_WITHDRAWAL,
            {"purpose": Purpose.PROFILING, "channel": MarketingChannel.SMS},
            RequestErrorCode.CHANNEL_NOT_ALLOWED,
        ),
        (
            RequestKind.BLOCKING,
            {"purpose": Purpose.PROFILING},
            RequestErrorCode.PURPOSE_NOT_ALLOWED,
        ),
        (RequestKind.ACCESS, {"reason": "r" * 2001}, RequestErrorCode.INVALID_INPUT),
    ],
)
async def test_bad_input_is_a_typed_error_that_writes_nothing(requests, subject, kind, extra, code):
    before = await requests.counts()
    await _fails(code, requests.submit(subject, kind, **extra))
    assert await requests.counts() == before


async def test_the_personal_parts_of_a_request_are_stored_only_encrypted(
    requests, subject, sessions, provider
):
    request_id = await requests.submit(
        subject,
        RequestKind.RECTIFICATION,
        changes={"first_name": "Zinochka", "last_name": None},
        reason="My name is misspelt",
    )
    stored = await requests.get(request_id)
    assert b"Zinochka" not in (stored.changes_ct or b"")
    assert b"misspelt" not in (stored.reason_ct or b"")
    async with sessions() as session:
        cipher = FieldCipher(session, provider)
        assert await read_changes(cipher, stored) == {"first_name": "Zinochka", "last_name": None}
        received = (
            (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.action == "request.received")
                )
            )
            .scalars()
            .one()
        )
        assert received.details["fields"] == ["first_name", "last_name"]
        assert "Zinochka" not in json.dumps(received.details)


# --- the compliance list --------------------------------------------------------------------


async def test_overdue_and_near_due_requests_are_listed_as_time_moves(requests, subject, sessions):
    # given an access request due 21 January, a rectification due 16 January, a destruction
    # due 25 January, and a completed access request
    access = await requests.submit(subject, RequestKind.ACCESS)
    rectify = await requests.submit(
        subject, RequestKind.RECTIFICATION, changes={"first_name": "Zina"}
    )
    destroy = await requests.submit(subject, RequestKind.DESTRUCTION)
    done = await requests.submit(subject, RequestKind.ACCESS)
    await requests.act(done, RequestAction.VERIFY_IDENTITY)
    await requests.act(done, RequestAction.EXECUTE)

    async def listed(now: datetime, **criteria: Any) -> list[uuid.UUID]:
        async with sessions() as session:
            rows = await list_requests(
                session,
                filter=RequestFilter(**criteria),
                limit=100,
                now=now,
                calendar=requests.calendar,
            )
            return [row.id for row in rows]

    # on 12 January nothing is overdue; within 4 working days (13-16 Jan) only the
    # rectification is due, within 7 (to 21 Jan) the access request too
    monday = datetime(2026, 1, 12, 10, tzinfo=MOSCOW)
    assert await listed(monday, overdue=True) == []
    assert await listed(monday, due_within_working_days=3) == []
    assert await listed(monday, due_within_working_days=4) == [rectify]
    assert await listed(monday, due_within_working_days=7) == [rectify, access]
    assert await listed(monday, due_within_working_days=9) == [rectify, access]
    assert await listed(monday, due_within_working_days=10) == [rectify, access, destroy]

    # on 17 January the rectification is overdue (and still "due within" any horizon)
    saturday = datetime(2026, 1, 17, 10, tzinfo=MOSCOW)
    assert await listed(saturday, overdue=True) == [rectify]
    assert await listed(saturday, due_within_working_days=0) == [rectify]
    assert set(await listed(saturday, overdue=False)) == {access, destroy, done}

    # the other criteria
    assert await listed(saturday, kinds=frozenset({RequestKind.DESTRUCTION})) == [destroy]
    assert await listed(saturday, statuses=frozenset({RequestStatus.COMPLETED})) == [done]
    assert set(await listed(saturday, subject_id=subject)) == {access, rectify, destroy, done}
    assert await listed(saturday, subject_id=uuid.uuid4()) == []

    # keyset pages: soonest deadline first, no row twice
    async with sessions() as session:
        first = await list_requests(
            session, filter=RequestFilter(), limit=2, now=saturday, calendar=requests.calendar
        )
        rest = await list_requests(
            session,
            filter=RequestFilter(),
            limit=10,
            after=(first[-1].due_at, first[-1].id),
            now=saturday,
            calendar=requests.calendar,
        )
        assert [r.id for r in first + rest] == [rectify, access, done, destroy] or [
            r.id for r in first + rest
        ] == [rectify, done, access, destroy]
        assert len({r.id for r in first + rest}) == 4

        # the CLI's report: overdue first, then what is due, with working days left
        report = await due_requests(
            session, within_working_days=3, now=saturday, calendar=requests.calendar
        )
        assert [(d.request.id, d.overdue, d.working_days_left) for d in report] == [
            (rectify, True, 0),
            (access, False, 3),  # Monday 19, Tuesday 20, Wednesday 21 January
        ]


# --- execution, end to end ------------------------------------------------------------------


async def test_executing_a_blocking_request_stops_processing_at_once(requests, subject, sessions):
    # given a blocking request just received (it may be executed before identity is verified)
    request_id = await requests.submit(subject, RequestKind.BLOCKING)
    async with sessions() as session:
        assert await may_process(session, subject_id=subject, purpose=Purpose.PROFILING) is False
    # when executed
    done = await requests.act(request_id, RequestAction.EXECUTE, at=RECEIVED)
    # then the subject's data is no longer processed for any purpose
    assert done.status == RequestStatus.COMPLETED
    assert done.outcome == {"restricted": True}
    async with sessions() as session:
        for purpose in (Purpose.PROFILING, Purpose.LOYALTY_PARTICIPATION):
            assert await may_process(session, subject_id=subject, purpose=purpose) is False


async def test_a_consent_withdrawal_request_withdraws_the_consent(
    requests, subject, sessions, provider
):
    # given a profiling consent given before the request
    async with transaction(sessions) as session:
        cipher = FieldCipher(session, provider)
        document = await publish_document(
            session,
            provider,
            purpose=Purpose.PROFILING,
            language="ru",
            title="Profiling",
            text="I agree to automated scoring.",
            actor=STAFF,
            valid_from=RECEIVED - timedelta(days=30),
        )
        await grant_consent(
            session,
            cipher,
            subject_id=subject,
            purpose=Purpose.PROFILING,
            channel=None,
            document_id=document.id,
            evidence=Evidence(
                occurred_at=RECEIVED - timedelta(days=20),
                collected_channel=CollectionChannel.WEB,
                method=CollectionMethod.CHECKBOX,
                actor=f"customer:{subject}",
            ),
        )
    async with sessions() as session:
        assert await may_process(session, subject_id=subject, purpose=Purpose.PROFILING)

    # when a withdrawal request is executed
    request_id = await requests.submit(
        subject,
        RequestKind.CONSENT_WITHDRAWAL,
        purpose=Purpose.PROFILING,
        received_via=CollectionChannel.PAPER,
    )
    await requests.act(request_id, RequestAction.VERIFY_IDENTITY)
    done = await requests.act(request_id, RequestAction.EXECUTE)

    # then the consent is withdrawn as of the request's receipt
    assert done.outcome == {"purpose": "PROFILING", "channel": None}
    async with sessions() as session:
        assert not await may_process(session, subject_id=subject, purpose=Purpose.PROFILING)

    # and a second withdrawal of the same consent fails with a typed error, changing nothing
    again = await requests.submit(
        subject, RequestKind.CONSENT_WITHDRAWAL, purpose=Purpose.PROFILING
    )
    await requests.act(again, RequestAction.VERIFY_IDENTITY)
    before = await requests.counts()
    await _fails(RequestErrorCode.CONSENT_NOT_GRANTED, requests.act(again, RequestAction.EXECUTE))
    assert await requests.counts() == before
    assert (await requests.get(again)).status == RequestStatus.IDENTITY_VERIFIED


async def test_a_rectification_request_corrects_the_data(requests, subject, sessions, provider):
    request_id = await requests.submit(
        subject, RequestKind.RECTIFICATION, changes={"first_name": "Zinovia"}
    )
    await requests.act(request_id, RequestAction.VERIFY_IDENTITY)
    done = await requests.act(request_id, RequestAction.EXECUTE)
    assert [change["field"] for change in done.outcome["changes"]] == ["first_name"]
    assert "Zinovia" not in json.dumps(done.outcome)
    async with sessions() as session:
        cipher = FieldCipher(session, provider)
        customer = await session.get(Customer, subject)
        assert customer is not None
        name = await cipher.decrypt(
            table="customer",
            column="first_name_ct",
            row_id=customer.id,
            blob=customer.first_name_ct,
        )
        assert name == "Zinovia"


async def test_a_destruction_request_destroys_the_subject_and_its_own_encrypted_parts(
    requests, subject, sessions, provider
):
    # given an access request answered earlier, and a destruction request
    access = await requests.submit(subject, RequestKind.ACCESS, reason="show me")
    await requests.act(access, RequestAction.VERIFY_IDENTITY)
    await requests.act(access, RequestAction.EXECUTE)
    destroy = await requests.submit(subject, RequestKind.DESTRUCTION)
    await requests.act(destroy, RequestAction.VERIFY_IDENTITY)

    # when it is executed
    done = await requests.act(destroy, RequestAction.EXECUTE, reason="as asked")

    # then a certificate exists and the request names it
    assert done.status == RequestStatus.COMPLETED
    async with sessions() as session:
        certificate = await session.get(
            DestructionCertificate, uuid.UUID(done.outcome["certificate_id"])
        )
        assert certificate is not None
        assert certificate.request_id == destroy
        assert certificate.digest == done.outcome["certificate_digest"]
        # and the earlier access package and reasons can no longer be read by anyone
        cipher = FieldCipher(session, provider)
        answered = await session.get(DataSubjectRequest, access)
        assert answered is not None
        assert answered.package_json_ct is not None
        assert await read_access_package(cipher, answered) is None
        steps = (await steps_of(session, [destroy]))[destroy]
        assert await read_step_reason(cipher, steps[-1]) is None
        # while the request's dates and statuses remain as proof, and the chain verifies
        assert answered.status == RequestStatus.COMPLETED
        assert (await verify_chain(session)).ok

    # and executing another destruction is a typed error that changes nothing
    again = await requests.submit(subject, RequestKind.DESTRUCTION)
    await requests.act(again, RequestAction.VERIFY_IDENTITY)
    await _fails(RequestErrorCode.ALREADY_ERASED, requests.act(again, RequestAction.EXECUTE))
