"""Consent with evidence, enforcement and restrictions, and marketing audiences, through the real
services in real transactions (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import utcnow
from core.db import transaction
from core.errors import DomainError
from graph.customers import register_customer
from graph.enums import Channel, CustomerStatus
from graph.models import Customer
from loyalty.audience import marketing_audience
from loyalty.models import Account
from privacy.audit import verify_chain
from privacy.consent import (
    Evidence,
    consent_history,
    grant_consent,
    open_evidence,
    withdraw_consent,
)
from privacy.consent_documents import ensure_default_documents, list_documents, publish_document
from privacy.consent_models import Consent, ConsentChange, ConsentDocument, ProcessingRestriction
from privacy.enforcement import (
    allowed_subjects,
    is_restricted,
    lift_restriction,
    may_process,
    restrict_processing,
)
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from privacy.models import AuditEntry
from privacy.purposes import (
    CollectionChannel,
    CollectionMethod,
    ConsentErrorCode,
    ConsentStatus,
    DataCategory,
    MarketingChannel,
    Purpose,
)
from tests.integration.loyalty_helpers import Loyalty, program

SMS, EMAIL = MarketingChannel.SMS, MarketingChannel.EMAIL
IP, AGENT = "203.0.113.77", "LoyalPOS/4.2 (till 17; Moscow-Tverskaya)"

Sessions = async_sessionmaker[AsyncSession]


def evidence(minutes_ago: float = 0, **changes: Any) -> Evidence:
    fields: dict[str, Any] = {
        "occurred_at": utcnow() - timedelta(minutes=minutes_ago),
        "collected_channel": CollectionChannel.POS,
        "method": CollectionMethod.SIGNATURE,
        "actor": "app:test-pos",
        "ip": IP,
        "user_agent": AGENT,
    }
    return Evidence(**(fields | changes))


class Consents:
    """Given-steps: customers, documents, grants and withdrawals in their own transactions."""

    def __init__(self, sessions: Sessions, provider: LocalKeyring) -> None:
        self.sessions = sessions
        self.provider = provider
        self.documents: dict[tuple[str, str], uuid.UUID] = {}
        self._phones = 0

    async def setup(self) -> None:
        async with transaction(self.sessions) as session:
            for row in await ensure_default_documents(session):
                self.documents[(row.purpose, row.language)] = row.id

    def doc(self, purpose: Purpose) -> uuid.UUID:
        return self.documents[(purpose.value, "ru")]

    async def customer(self) -> uuid.UUID:
        self._phones += 1
        async with transaction(self.sessions) as session:
            result = await register_customer(
                session,
                FieldCipher(session, self.provider),
                channel=Channel.POS,
                phone=f"+7916{4440000 + self._phones}",
                phone_verified=True,
            )
            return result.customer.id

    async def run(self, work: Callable[[AsyncSession, FieldCipher], Awaitable[Any]]) -> Any:
        async with transaction(self.sessions) as session:
            return await work(session, FieldCipher(session, self.provider))

    async def grant(
        self,
        subject: uuid.UUID,
        purpose: Purpose = Purpose.MARKETING,
        channel: MarketingChannel | None = SMS,
        *,
        document: uuid.UUID | None = None,
        categories: tuple[DataCategory, ...] = (),
        **evidence_fields: Any,
    ) -> Consent:
        return await self.run(
            lambda session, cipher: grant_consent(
                session,
                cipher,
                subject_id=subject,
                purpose=purpose,
                channel=channel,
                document_id=document or self.doc(purpose),
                evidence=evidence(**evidence_fields),
                allowed_categories=categories,
            )
        )

    async def withdraw(
        self,
        subject: uuid.UUID,
        purpose: Purpose = Purpose.MARKETING,
        channel: MarketingChannel | None = SMS,
        **evidence_fields: Any,
    ) -> Consent:
        return await self.run(
            lambda session, cipher: withdraw_consent(
                session,
                cipher,
                subject_id=subject,
                purpose=purpose,
                channel=channel,
                evidence=evidence(**evidence_fields),
            )
        )

    async def restrict(self, subject: uuid.UUID, request: uuid.UUID | None = None) -> None:
        await self.run(
            lambda session, _: restrict_processing(
                session, self.provider, subject_id=subject, request_id=request, actor="staff:dpo"
            )
        )

    async def lift(self, subject: uuid.UUID, request: uuid.UUID | None = None) -> None:
        await self.run(
            lambda session, _: lift_restriction(
                session, self.provider, subject_id=subject, request_id=request, actor="staff:dpo"
            )
        )

    async def may(
        self, subject: uuid.UUID, purpose: Purpose, channel: Any = None, **kw: Any
    ) -> bool:
        async with self.sessions() as session:
            return await may_process(
                session, subject_id=subject, purpose=purpose, channel=channel, **kw
            )

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            return {
                model.__tablename__: (
                    await session.execute(select(func.count()).select_from(model))
                ).scalar_one()
                for model in (Consent, ConsentChange, ConsentDocument, AuditEntry)
            }


@pytest.fixture
async def consents(sessions: Sessions, provider: LocalKeyring) -> Consents:
    helper = Consents(sessions, provider)
    await helper.setup()
    return helper


# --- documents ----------------------------------------------------------------------------


async def test_default_documents_exist_once_per_purpose_and_language(consents, sessions):
    async with transaction(sessions) as session:
        again = await ensure_default_documents(session)

    assert {(row.purpose, row.language) for row in again} == {
        (purpose.value, language) for purpose in Purpose for language in ("ru", "en")
    }
    assert (await consents.counts())["consent_document"] == len(Purpose) * 2
    marketing = next(row for row in again if row.purpose == "MARKETING" and row.language == "ru")
    assert marketing.version == 1 and len(marketing.text_hash) == 64


async def test_a_new_version_closes_the_one_in_force(consents, sessions, provider):
    starts = utcnow() + timedelta(days=7)
    async with transaction(sessions) as session:
        v2 = await publish_document(
            session,
            provider,
            purpose=Purpose.PROFILING,
            language="ru",
            title="Согласие на профилирование, ред. 2",
            text="Новая редакция.\n",
            actor="staff:dpo",
            valid_from=starts,
        )

    async with sessions() as session:
        now = await list_documents(
            session, purpose=Purpose.PROFILING, language="ru", current_at=utcnow()
        )
        later = await list_documents(
            session, purpose=Purpose.PROFILING, language="ru", current_at=starts
        )
        every = await list_documents(session, purpose=Purpose.PROFILING, language="ru")
    assert [row.version for row in now] == [1]
    assert [row.id for row in later] == [v2.id]
    assert [row.version for row in every] == [2, 1]
    assert every[1].valid_to is not None and every[1].valid_to == starts


async def test_a_version_cannot_take_effect_before_the_newest(consents, sessions, provider):
    before = await consents.counts()
    async with sessions() as session:
        with pytest.raises(DomainError) as raised:
            await publish_document(
                session,
                provider,
                purpose=Purpose.PROFILING,
                language="ru",
                title="Backdated",
                text="Text.",
                actor="staff:dpo",
                valid_from=utcnow() - timedelta(days=365 * 20),
            )
        await session.rollback()
    assert raised.value.code == ConsentErrorCode.INVALID_INPUT
    assert await consents.counts() == before


# --- grant and withdraw -------------------------------------------------------------------


async def test_a_grant_keeps_its_evidence_encrypted_and_is_audited(consents, sessions, provider):
    customer = await consents.customer()

    consent = await consents.grant(customer, minutes_ago=3)

    assert consent.status == ConsentStatus.GRANTED and consent.channel == "SMS"
    async with sessions() as session:
        [change] = await consent_history(session, subject_id=customer)
        opened = await open_evidence(FieldCipher(session, provider), change)
        entries = (
            (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.action == "consent.granted")
                )
            )
            .scalars()
            .all()
        )
        assert (await verify_chain(session)).ok
    assert (change.status, change.collected_channel, change.method, change.actor) == (
        "GRANTED",
        "POS",
        "SIGNATURE",
        "app:test-pos",
    )
    assert opened.ip == IP and opened.user_agent == AGENT
    assert [entry.details["change_id"] for entry in entries] == [str(change.id)]
    assert str(customer) not in str(entries[0].details) and entries[0].subject != str(customer)


async def test_ip_and_user_agent_are_not_in_plaintext(consents, sessions):
    customer = await consents.customer()
    await consents.grant(customer)
    await consents.withdraw(customer)

    async with sessions() as session:
        rows = [
            *(await session.execute(text("SELECT * FROM consent_change"))).all(),
            *(await session.execute(text("SELECT * FROM audit_entry"))).all(),
            *(await session.execute(text("SELECT * FROM consent"))).all(),
        ]
    dump = repr(rows).encode() + b"".join(
        value for row in rows for value in row if isinstance(value, bytes)
    )
    assert len(rows) == 5
    for secret in (IP, AGENT, "203.0.113", "LoyalPOS"):
        assert secret.encode() not in dump


async def test_withdraw_and_grant_again_keep_the_whole_history(consents, sessions):
    customer = await consents.customer()

    await consents.grant(customer, minutes_ago=30)
    withdrawn = await consents.withdraw(customer, minutes_ago=20, method=CollectionMethod.SMS_CODE)
    again = await consents.grant(customer, minutes_ago=10)

    assert withdrawn.status == "WITHDRAWN" and withdrawn.withdrawn_at is not None
    assert again.status == "GRANTED" and again.withdrawn_at is None and again.id == withdrawn.id
    async with sessions() as session:
        history = await consent_history(session, subject_id=customer)
    assert [(c.status, c.method) for c in history] == [
        ("GRANTED", "SIGNATURE"),
        ("WITHDRAWN", "SMS_CODE"),
        ("GRANTED", "SIGNATURE"),
    ]
    assert history[0].details == {
        "previous_status": "WITHDRAWN",
        "previous_document_id": str(consents.doc(Purpose.MARKETING)),
    }


async def test_granting_the_same_document_again_records_nothing(consents):
    customer = await consents.customer()
    first = await consents.grant(customer, minutes_ago=5)
    before = await consents.counts()

    second = await consents.grant(customer, minutes_ago=1)

    assert second.id == first.id and second.granted_at == first.granted_at
    assert await consents.counts() == before


async def test_consent_under_a_new_version_is_a_new_change(consents, sessions, provider):
    customer = await consents.customer()
    await consents.grant(customer, Purpose.PROFILING, None, minutes_ago=60)
    async with transaction(sessions) as session:
        v2 = await publish_document(
            session,
            provider,
            purpose=Purpose.PROFILING,
            language="ru",
            title="Ред. 2",
            text="Вторая редакция.",
            actor="staff:dpo",
            valid_from=utcnow() - timedelta(minutes=30),
        )

    regranted = await consents.grant(customer, Purpose.PROFILING, None, document=v2.id)

    assert regranted.document_id == v2.id
    async with sessions() as session:
        assert len(await consent_history(session, subject_id=customer)) == 2


async def test_dissemination_keeps_its_own_category_list(consents):
    customer = await consents.customer()
    picked = (DataCategory.REVIEWS, DataCategory.FIRST_NAME, DataCategory.REVIEWS)

    consent = await consents.grant(customer, Purpose.DISSEMINATION, None, categories=picked)

    assert consent.allowed_categories == ["FIRST_NAME", "REVIEWS"]
    assert not await consents.may(customer, Purpose.MARKETING, SMS)


def _bad_inputs() -> list[Any]:
    """(name, given-steps, the failing call, expected code)."""
    return [
        (
            "unknown document",
            "none",
            dict(document=uuid.uuid4()),
            ConsentErrorCode.DOCUMENT_NOT_FOUND,
        ),
        (
            "document of another purpose",
            "none",
            dict(document="PROFILING"),
            ConsentErrorCode.DOCUMENT_PURPOSE_MISMATCH,
        ),
        ("document no longer in force", "superseded", {}, ConsentErrorCode.DOCUMENT_NOT_IN_FORCE),
        ("document not yet in force", "scheduled", {}, ConsentErrorCode.DOCUMENT_NOT_IN_FORCE),
        (
            "marketing without a channel",
            "none",
            dict(channel=None),
            ConsentErrorCode.CHANNEL_REQUIRED,
        ),
        (
            "profiling with a channel",
            "none",
            dict(purpose=Purpose.PROFILING, channel=SMS),
            ConsentErrorCode.CHANNEL_NOT_ALLOWED,
        ),
        (
            "dissemination without categories",
            "none",
            dict(purpose=Purpose.DISSEMINATION, channel=None),
            ConsentErrorCode.CATEGORIES_REQUIRED,
        ),
        (
            "categories on marketing",
            "none",
            dict(categories=(DataCategory.CITY,)),
            ConsentErrorCode.CATEGORIES_NOT_ALLOWED,
        ),
        (
            "evidence from the future",
            "none",
            dict(minutes_ago=-60),
            ConsentErrorCode.INVALID_EVIDENCE,
        ),
        ("an IP that is not one", "none", dict(ip="999.1.1.1"), ConsentErrorCode.INVALID_EVIDENCE),
        (
            "a huge user agent",
            "none",
            dict(user_agent="x" * 600),
            ConsentErrorCode.INVALID_EVIDENCE,
        ),
        (
            "older than the last change",
            "withdrawn",
            dict(minutes_ago=90),
            ConsentErrorCode.OUT_OF_ORDER,
        ),
    ]


@pytest.mark.parametrize(
    ("given", "call", "code"),
    [case[1:] for case in _bad_inputs()],
    ids=[case[0] for case in _bad_inputs()],
)
async def test_a_bad_grant_is_a_typed_error_and_changes_nothing(
    consents, sessions, provider, given, call, code
):
    call = dict(call)  # the parameters are shared by every backend's run
    customer = await consents.customer()
    if given == "withdrawn":
        await consents.grant(customer, minutes_ago=60)
        await consents.withdraw(customer, minutes_ago=30)
    if given in {"superseded", "scheduled"}:
        async with transaction(sessions) as session:
            await publish_document(
                session,
                provider,
                purpose=Purpose.MARKETING,
                language="ru",
                title="Ред. 2",
                text="Вторая редакция.",
                actor="staff:dpo",
                valid_from=utcnow() + timedelta(days=1 if given == "scheduled" else -1),
            )
    if given == "scheduled":
        async with sessions() as session:
            [v2] = [
                row
                for row in await list_documents(session, purpose=Purpose.MARKETING, language="ru")
                if row.version == 2
            ]
        call = dict(call, document=v2.id)
    if call.get("document") == "PROFILING":
        call = dict(call, document=consents.doc(Purpose.PROFILING))
    before = await consents.counts()

    with pytest.raises(DomainError) as raised:
        await consents.grant(
            customer,
            call.pop("purpose", Purpose.MARKETING),
            call.pop("channel", SMS),
            document=call.pop("document", None),
            categories=call.pop("categories", ()),
            **call,
        )

    assert raised.value.code == code
    assert "203.0.113" not in raised.value.message
    assert await consents.counts() == before


@pytest.mark.parametrize("history", ["never given", "already withdrawn", "another channel"])
async def test_withdrawing_what_is_not_granted_is_refused(consents, history):
    customer = await consents.customer()
    if history == "already withdrawn":
        await consents.grant(customer, minutes_ago=10)
        await consents.withdraw(customer, minutes_ago=5)
    if history == "another channel":
        await consents.grant(customer, channel=EMAIL, minutes_ago=10)
    before = await consents.counts()

    with pytest.raises(DomainError) as raised:
        await consents.withdraw(customer)

    assert raised.value.code == ConsentErrorCode.CONSENT_NOT_GRANTED
    assert raised.value.field == ["channel"]
    assert await consents.counts() == before


# --- enforcement --------------------------------------------------------------------------


async def test_may_process_follows_consent_per_purpose_and_channel(consents):
    customer = await consents.customer()
    assert not await consents.may(customer, Purpose.MARKETING, SMS)

    await consents.grant(customer, minutes_ago=10)
    await consents.grant(customer, Purpose.PROFILING, None, minutes_ago=10)

    assert await consents.may(customer, Purpose.MARKETING, SMS)
    assert not await consents.may(customer, Purpose.MARKETING, EMAIL)
    assert await consents.may(customer, Purpose.PROFILING)
    assert not await consents.may(customer, Purpose.THIRD_PARTY_TRANSFER)
    await consents.withdraw(customer, minutes_ago=5)
    assert not await consents.may(customer, Purpose.MARKETING, SMS)
    assert await consents.may(customer, Purpose.PROFILING)


async def test_asking_the_wrong_question_is_a_bug_not_a_no(consents, sessions):
    customer = await consents.customer()
    async with sessions() as session:
        with pytest.raises(ValueError):
            await may_process(session, subject_id=customer, purpose=Purpose.MARKETING)
        with pytest.raises(ValueError):
            await may_process(session, subject_id=customer, purpose=Purpose.PROFILING, channel=SMS)


async def test_a_restricted_subject_is_excluded_from_every_purpose(consents, sessions):
    customer = await consents.customer()
    for purpose, channel in ((Purpose.MARKETING, SMS), (Purpose.PROFILING, None)):
        await consents.grant(customer, purpose, channel, minutes_ago=10)
    request = uuid.uuid4()

    await consents.restrict(customer, request)

    assert not await consents.may(customer, Purpose.MARKETING, SMS)
    assert not await consents.may(customer, Purpose.PROFILING)
    async with sessions() as session:
        assert await is_restricted(session, subject_id=customer)
        assert await allowed_subjects(session, [customer], purpose=Purpose.PROFILING) == set()
    await consents.lift(customer, request)
    assert await consents.may(customer, Purpose.PROFILING)


async def test_restrictions_of_different_requests_are_lifted_separately(consents, sessions):
    customer = await consents.customer()
    await consents.grant(customer, Purpose.PROFILING, None, minutes_ago=10)
    first, second = uuid.uuid4(), uuid.uuid4()
    await consents.restrict(customer, first)
    await consents.restrict(customer, first)  # the same request again: nothing new
    await consents.restrict(customer, second)

    await consents.lift(customer, first)

    assert not await consents.may(customer, Purpose.PROFILING)
    async with sessions() as session:
        rows = (await session.execute(select(ProcessingRestriction))).scalars().all()
        actions = (
            (
                await session.execute(
                    select(AuditEntry.action).where(AuditEntry.action.like("processing.%"))
                )
            )
            .scalars()
            .all()
        )
    assert sorted((row.request_id == first, row.lifted_at is not None) for row in rows) == [
        (False, False),
        (True, True),
    ]
    assert actions == ["processing.restricted"] * 2 + ["processing.restriction_lifted"]
    await consents.lift(customer)
    assert await consents.may(customer, Purpose.PROFILING)


async def test_the_answer_at_a_past_instant_comes_from_the_history(consents, sessions):
    customer = await consents.customer()
    now = utcnow()
    await consents.grant(customer, minutes_ago=60)
    await consents.withdraw(customer, minutes_ago=30)
    await consents.grant(customer, minutes_ago=10)

    answers = [
        await consents.may(customer, Purpose.MARKETING, SMS, at=now - timedelta(minutes=m))
        for m in (90, 45, 20, 5)
    ]

    assert answers == [False, True, False, True]
    await consents.restrict(customer)
    assert await consents.may(customer, Purpose.MARKETING, SMS, at=now - timedelta(minutes=5))
    assert not await consents.may(
        customer, Purpose.MARKETING, SMS, at=utcnow() + timedelta(seconds=1)
    )


async def test_allowed_subjects_answers_for_a_batch(consents, sessions):
    people = [await consents.customer() for _ in range(5)]
    await consents.grant(people[0], Purpose.PROFILING, None, minutes_ago=10)
    await consents.grant(people[1], Purpose.PROFILING, None, minutes_ago=10)
    await consents.grant(people[2], Purpose.PROFILING, None, minutes_ago=10)
    await consents.withdraw(people[1], Purpose.PROFILING, None, minutes_ago=5)
    await consents.restrict(people[2])
    await consents.grant(people[3], minutes_ago=10)  # marketing only

    async with sessions() as session:
        now = await allowed_subjects(session, [*people, uuid.uuid4()], purpose=Purpose.PROFILING)
        before = await allowed_subjects(
            session, people, purpose=Purpose.PROFILING, at=utcnow() - timedelta(minutes=7)
        )

    assert now == {people[0]}
    assert before == {people[0], people[1], people[2]}  # restricted only since now


# --- audience -----------------------------------------------------------------------------


async def _load_tiers(sessions: Sessions, provider: LocalKeyring) -> None:
    levels = [
        {"code": "base", "name": "Base", "threshold": 0},
        {"code": "gold", "name": "Gold", "threshold": 1000},
    ]
    await Loyalty(sessions, provider).load(program(tiers={"levels": levels}))


async def _promote(sessions: Sessions, customer: uuid.UUID, tier: str) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(Account).where(Account.customer_id == customer).values(tier=tier)
        )


async def _audience(sessions: Sessions, **kw: Any) -> list[uuid.UUID]:
    async with sessions() as session:
        rows = await marketing_audience(
            session, **({"segment": None, "first": 100, "after": None} | kw)
        )
    return [row.id for row in rows]


async def test_the_audience_holds_only_consenting_active_unrestricted_customers(consents, sessions):
    yes, restricted, withdrawn, email_only, erased, _silent = [
        await consents.customer() for _ in range(6)
    ]
    for person in (yes, restricted, withdrawn, erased):
        await consents.grant(person, minutes_ago=10)
    await consents.withdraw(withdrawn, minutes_ago=5)
    await consents.grant(email_only, channel=EMAIL, minutes_ago=10)
    await consents.restrict(restricted)
    async with transaction(sessions) as session:
        await session.execute(
            update(Customer).where(Customer.id == erased).values(status=CustomerStatus.ERASED.value)
        )

    assert await _audience(sessions, channel=SMS) == [yes]
    assert await _audience(sessions, channel=EMAIL) == [email_only]
    assert await _audience(sessions, channel=MarketingChannel.PUSH) == []


async def test_the_audience_filters_by_tier(consents, sessions, provider):
    no_account = await consents.customer()  # registered before the program existed
    await _load_tiers(sessions, provider)
    base, gold = [await consents.customer() for _ in range(2)]
    for person in (base, gold, no_account):
        await consents.grant(person, minutes_ago=10)
    await _promote(sessions, gold, "gold")

    assert await _audience(sessions, channel=SMS, segment="gold") == [gold]
    assert await _audience(sessions, channel=SMS, segment="base") == [base]
    assert set(await _audience(sessions, channel=SMS)) == {base, gold, no_account}
    with pytest.raises(DomainError) as raised:
        await _audience(sessions, channel=SMS, segment="platinum")
    assert raised.value.field == ["segment"]


async def test_the_audience_pages_by_keyset(consents, sessions):
    people = [await consents.customer() for _ in range(5)]
    for person in people:
        await consents.grant(person, minutes_ago=10)
    async with sessions() as session:
        rows = await marketing_audience(session, channel=SMS, segment=None, first=100, after=None)
    expected = [row.id for row in rows]

    seen: list[uuid.UUID] = []
    after = None
    for _ in range(4):
        async with sessions() as session:
            page = await marketing_audience(
                session, channel=SMS, segment=None, first=2, after=after
            )
        seen += [row.id for row in page[:2]]
        if len(page) <= 2:
            break
        after = (page[1].created_at, page[1].id)

    assert sorted(expected) == sorted(people)
    assert seen == expected


# --- demo ---------------------------------------------------------------------------------


async def test_the_demo_gives_people_consents_with_evidence(settings, provider, sessions):
    import io

    from rich.console import Console

    from graph.demo import seed_demo

    await seed_demo(
        settings,
        provider,
        customers=120,
        seed=5,
        if_empty=False,
        console=Console(file=io.StringIO()),
        anchor=datetime(2025, 6, 1, tzinfo=UTC),
    )

    async with sessions() as session:
        customers = (await session.execute(select(func.count()).select_from(Customer))).scalar_one()
        by_purpose = dict(
            (
                await session.execute(
                    select(Consent.purpose, func.count()).group_by(Consent.purpose)
                )
            ).all()
        )
        withdrawn = (
            await session.execute(
                select(func.count()).select_from(Consent).where(Consent.status == "WITHDRAWN")
            )
        ).scalar_one()
        changes = (await session.execute(select(ConsentChange))).scalars().all()
        online = [c for c in changes if c.collected_channel in ("WEB", "MOBILE_APP")]
        opened = await open_evidence(FieldCipher(session, provider), online[0])
        chain = await verify_chain(session)
        audience = await marketing_audience(
            session, channel=SMS, segment=None, first=100, after=None
        )

    assert by_purpose["LOYALTY_PARTICIPATION"] > customers * 0.8
    assert by_purpose["MARKETING"] > 0 and withdrawn > 0
    assert chain.ok and chain.entries == len(changes)
    assert opened.ip is not None and opened.user_agent is not None
    assert all(c.ip_ct is None for c in changes if c.collected_channel == "POS")
    assert len(audience) > 10
