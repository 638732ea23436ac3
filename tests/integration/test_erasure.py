"""Destruction of a data subject (152-FZ art. 21): crypto-shredding plus deletion.

Given a customer with identifiers, a profile, a merged duplicate, reviews, a referral,
purchases that earned points, an adjustment with a reason, a social profile and a consent with
evidence, when they are destroyed, then nobody can find them, no dump of the database holds
their phone, e-mail or name (nor their blind index or an old ciphertext), a ciphertext copied
before cannot be decrypted, the ledger still verifies and the certificate says what was done.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import utcnow
from core.db import transaction
from core.errors import DomainError
from graph.customers import register_customer
from graph.enums import Channel, CustomerStatus, IdentityKind, SocialPlatform
from graph.influence import (
    accept_referral,
    create_referral,
    link_social_profile,
    submit_review,
    vote_review,
)
from graph.merge import merge_customers
from graph.models import Customer, Event, Identity, Review, SocialProfile
from loyalty.models import LedgerEntry
from loyalty.redemption import adjust
from loyalty.verify import verify_ledger
from privacy.audit import verify_chain
from privacy.consent import Evidence, grant_consent
from privacy.consent_documents import publish_document
from privacy.consent_models import Consent, ConsentChange
from privacy.erasure_models import DestructionCertificate
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider
from privacy.models import AuditEntry, DataKey
from privacy.purposes import CollectionChannel, CollectionMethod, MarketingChannel, Purpose
from privacy.subject_rights import (
    SubjectRightsErrorCode,
    access_package,
    destroy_subject,
    scrub_storage,
)
from tests.api.operations import CUSTOMER_BY_IDENTIFIER
from tests.dumps import raw_database
from tests.integration.loyalty_helpers import Loyalty

PHONE = "+7 916 555-12-34"
PHONE_FORMS = ("+79165551234", "79165551234", "89165551234", "9165551234", "916 555-12-34")
EMAIL = "alisa.zhukovskaya@example.ru"
OLD_EMAIL = "a.zhukovskaya.old@example.ru"  # on the duplicate merged into her
FIRST, LAST = "Alisa", "Zhukovskaya-Ostrogradskaya"
ADDRESS = "Moscow, Tverskaya street 7, flat 12"
REVIEW_TEXT = "Loved the rye bread from the Tverskaya shop"
ADJUST_REASON = "Goodwill for the broken freezer"
IP, USER_AGENT = "203.0.113.77", "AlisaPhone/17.2"
HANDLE = "alisa_bakes_rye"
OTHER_PHONE = "+7 903 111-22-33"
OTHER_FIRST, OTHER_LAST = "Boris", "Petrovsky-Vyazemsky"
OTHER_REVIEW = "Boris thinks the kefir is too sour"


@dataclass
class Seeded:
    subject: uuid.UUID
    duplicate: uuid.UUID
    other: uuid.UUID
    review: uuid.UUID
    other_review: uuid.UUID
    phone_index: str = ""
    profile_ct: bytes = b""
    identity_ct: bytes = b""
    identity_row: uuid.UUID = field(default_factory=uuid.uuid4)
    events: int = 0


async def seed(sessions: async_sessionmaker[AsyncSession], provider: KeyProvider) -> Seeded:
    """Alisa (with a duplicate merged into her) and Boris, linked by a referral and votes."""
    loyalty = Loyalty(sessions, provider)
    await loyalty.load()
    start = utcnow() - timedelta(days=40)
    async with transaction(sessions) as session:
        cipher = FieldCipher(session, provider)
        alisa = (
            await register_customer(
                session,
                cipher,
                channel=Channel.MOBILE_APP,
                phone=PHONE,
                phone_verified=True,
                email=EMAIL,
                email_verified=True,
                first_name=FIRST,
                last_name=LAST,
                birth_date=date(1990, 5, 17),
                address=ADDRESS,
                now=start,
            )
        ).customer
        duplicate = (
            await register_customer(
                session,
                cipher,
                channel=Channel.WEB,
                email=OLD_EMAIL,
                email_verified=True,
                first_name=FIRST,
                now=start + timedelta(days=1),
            )
        ).customer
        boris = (
            await register_customer(
                session,
                cipher,
                channel=Channel.POS,
                phone=OTHER_PHONE,
                phone_verified=True,
                first_name=OTHER_FIRST,
                last_name=OTHER_LAST,
                now=start,
            )
        ).customer
        await merge_customers(
            session,
            cipher,
            customer_ids=[alisa.id, duplicate.id],
            survivor_id=alisa.id,
            actor="staff:test",
            reason="same person, old web account",
            now=start + timedelta(days=2),
        )
        review = await submit_review(
            session,
            cipher,
            customer_id=alisa.id,
            product_sku="RYE-1",
            rating=5,
            text=REVIEW_TEXT,
            now=start + timedelta(days=3),
        )
        other_review = await submit_review(
            session,
            cipher,
            customer_id=boris.id,
            product_sku="KEFIR-1",
            rating=2,
            text=OTHER_REVIEW,
            now=start + timedelta(days=3),
        )
        await vote_review(session, review_id=review.id, voter_id=boris.id, helpful=True)
        await vote_review(session, review_id=other_review.id, voter_id=alisa.id, helpful=False)
        referral = await create_referral(session, referrer_id=alisa.id, now=start)
        await accept_referral(session, code=referral.code, referee_id=boris.id, now=start)
        await create_referral(session, referrer_id=alisa.id, code="ALISAINVITES")
        await link_social_profile(
            session,
            cipher,
            customer_id=alisa.id,
            platform=SocialPlatform.TELEGRAM,
            handle=HANDLE,
            followers=1200,
            now=start,
        )
        await link_social_profile(  # a refresh: the count's history has two observations
            session,
            cipher,
            customer_id=alisa.id,
            platform=SocialPlatform.TELEGRAM,
            handle=HANDLE,
            followers=1500,
            now=start + timedelta(days=1),
        )
        document = await publish_document(
            session,
            provider,
            purpose=Purpose.MARKETING,
            language="ru",
            title="SMS",
            text="I agree to receive SMS offers.",
            actor="staff:test",
            valid_from=start - timedelta(days=1),
        )
        await grant_consent(
            session,
            cipher,
            subject_id=alisa.id,
            purpose=Purpose.MARKETING,
            channel=MarketingChannel.SMS,
            document_id=document.id,
            evidence=Evidence(
                occurred_at=start + timedelta(days=1),
                collected_channel=CollectionChannel.MOBILE_APP,
                method=CollectionMethod.CHECKBOX,
                actor=f"customer:{alisa.id}",
                ip=IP,
                user_agent=USER_AGENT,
            ),
        )
        ids = (alisa.id, duplicate.id, boris.id, review.id, other_review.id)
    for days, buyer, amount in ((5, ids[0], 150_000), (6, ids[2], 90_000), (8, ids[0], 60_000)):
        await loyalty.buy(buyer, amount, at=start + timedelta(days=days))
    async with transaction(sessions) as session:
        cipher = FieldCipher(session, provider)
        await adjust(
            session,
            cipher,
            customer_id=ids[0],
            points=50,
            reason=ADJUST_REASON,
            actor="staff:test",
            idempotency_key="seed-adjust",
        )
        seeded = Seeded(*ids)
        phone = (
            await session.execute(
                select(Identity).where(
                    Identity.customer_id == ids[0], Identity.kind == IdentityKind.PHONE
                )
            )
        ).scalar_one()
        seeded.phone_index = phone.value_index
        seeded.identity_ct = phone.value_ct or b""
        seeded.identity_row = phone.id
        customer = await session.get(Customer, ids[0])
        assert customer is not None and customer.last_name_ct is not None
        seeded.profile_ct = customer.last_name_ct
        seeded.events = (
            await session.execute(
                select(func.count()).select_from(Event).where(Event.customer_id == ids[0])
            )
        ).scalar_one()
    return seeded


async def destroy(
    sessions: async_sessionmaker[AsyncSession], provider: KeyProvider, subject: uuid.UUID
) -> DestructionCertificate:
    async with transaction(sessions) as session:
        return await destroy_subject(
            session,
            FieldCipher(session, provider),
            subject_id=subject,
            actor="staff:compliance",
            request_id=uuid.uuid4(),
        )


def traces(seeded: Seeded) -> list[bytes]:
    texts = [*PHONE_FORMS, EMAIL, OLD_EMAIL, LAST, ADDRESS, REVIEW_TEXT, ADJUST_REASON, IP]
    texts += [USER_AGENT, HANDLE, seeded.phone_index]
    return [t.encode() for t in texts] + [seeded.profile_ct, seeded.identity_ct]


async def test_destroyed_subject_leaves_no_trace_and_the_books_still_add_up(
    sessions, provider, gql, database_url
) -> None:
    # given
    seeded = await seed(sessions, provider)
    found = await gql.data(CUSTOMER_BY_IDENTIFIER, {"kind": "PHONE", "value": PHONE})
    assert found["customerByIdentifier"] is not None
    async with sessions() as session:
        before = await verify_ledger(session)
        points_before = (
            await session.execute(
                select(func.sum(LedgerEntry.points)).where(
                    LedgerEntry.customer_id == seeded.subject
                )
            )
        ).scalar_one()
    assert before.ok and points_before > 0

    # when
    certificate = await destroy(sessions, provider, seeded.subject)
    async with sessions() as session:
        assert await scrub_storage(session)

    # then nobody finds them by any identifier
    for kind, value in (("PHONE", PHONE), ("EMAIL", EMAIL), ("EMAIL", OLD_EMAIL)):
        body = await gql.data(CUSTOMER_BY_IDENTIFIER, {"kind": kind, "value": value})
        assert body["customerByIdentifier"] is None
    # no dump of the database holds their data, their blind index or an old ciphertext
    dump = raw_database(database_url)
    assert OTHER_LAST.encode() not in dump  # the other customer's name is ciphertext too
    for trace in traces(seeded):
        assert trace not in dump, trace[:40]
    # a ciphertext copied before can no longer be decrypted
    async with sessions() as session:
        cipher = FieldCipher(session, provider)
        assert (
            await cipher.decrypt(
                table="customer",
                column="last_name_ct",
                row_id=seeded.subject,
                blob=seeded.profile_ct,
            )
            is None
        )
        keys = (
            (
                await session.execute(
                    select(DataKey).where(
                        DataKey.subject_id.in_([seeded.subject, seeded.duplicate])  # type: ignore[attr-defined]
                    )
                )
            )
            .scalars()
            .all()
        )
        assert len(keys) == 2
        assert all(k.wrapped_key is None and k.destroyed_at is not None for k in keys)
        # the books stay, anonymous, and still add up
        report = await verify_ledger(session)
        assert report.ok, report.breaches
        points_after = (
            await session.execute(
                select(func.sum(LedgerEntry.points)).where(
                    LedgerEntry.customer_id == seeded.subject
                )
            )
        ).scalar_one()
        assert points_after == points_before
        events = (
            await session.execute(
                select(func.count()).select_from(Event).where(Event.customer_id == seeded.subject)
            )
        ).scalar_one()
        assert events == seeded.events > 0
        for customer_id in (seeded.subject, seeded.duplicate):
            row = await session.get(Customer, customer_id)
            assert row is not None and row.status == CustomerStatus.ERASED
            assert row.first_name_ct is None and row.last_name_ct is None
            assert row.address_ct is None and row.birth_date_ct is None
        review = await session.get(Review, seeded.review)
        assert review is not None and review.text_ct is None and review.rating == 5
        assert (
            await session.execute(select(func.count()).select_from(SocialProfile))
        ).scalar_one() == 0
        consent = (
            await session.execute(select(Consent).where(Consent.subject_id == seeded.subject))
        ).scalar_one()
        assert consent.status == "WITHDRAWN"
        evidence = (
            (
                await session.execute(
                    select(ConsentChange).where(ConsentChange.subject_id == seeded.subject)
                )
            )
            .scalars()
            .all()
        )
        assert evidence and all(c.ip_ct is None and c.user_agent_ct is None for c in evidence)
        # the other customer is untouched
        boris = await session.get(Customer, seeded.other)
        assert boris is not None and boris.status == CustomerStatus.ACTIVE
        other = await session.get(Review, seeded.other_review)
        assert other is not None
        assert (
            await cipher.decrypt(
                table="review", column="text_ct", row_id=other.id, blob=other.text_ct
            )
            == OTHER_REVIEW
        )
        # one audit entry says it happened, under a pseudonym, and the chain holds
        entries = (
            (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.action == "subject.destroyed")
                )
            )
            .scalars()
            .all()
        )
        assert len(entries) == 1
        assert entries[0].details["certificate_id"] == str(certificate.id)
        assert str(seeded.subject) not in repr(entries[0].details) + str(entries[0].subject)
        assert (await verify_chain(session)).ok
        stored = await session.get(DestructionCertificate, certificate.id)
    # the certificate lists what was destroyed, how, when and by whom
    assert stored is not None
    document = stored.as_json()
    assert document["intact"] and document["destroyedBy"] == "staff:compliance"
    assert set(document["subjectIds"]) == {str(seeded.subject), str(seeded.duplicate)}
    assert set(document["keysDestroyed"]) == {str(k.id) for k in keys}
    items = {item["table"]: item for item in document["items"]}
    assert items["identity"]["rowsDeleted"] == 3  # phone, e-mail, the duplicate's e-mail
    assert items["social_profile"]["rowsDeleted"] == 1
    assert items["follower_count"]["rowsDeleted"] == 2
    assert items["customer"]["rowsAnonymised"] == 2
    assert "last_name_ct" in items["customer"]["columnsCleared"]
    assert items["review"]["rowsAnonymised"] == 1
    assert items["referral"] == {
        "table": "referral",
        "rowsDeleted": 1,
        "rowsAnonymised": 1,
        "columnsCleared": ["code"],
        "rowsRetained": 0,
    }
    assert items["loyalty_entry"]["rowsAnonymised"] == 1
    assert items["event"]["rowsRetained"] == seeded.events
    assert items["consent_change"]["rowsAnonymised"] == 1
    assert items["data_key"]["rowsAnonymised"] == 2


async def test_erasing_twice_or_an_unknown_subject_is_a_typed_error_and_changes_nothing(
    sessions, provider, gql
) -> None:
    # given
    seeded = await seed(sessions, provider)
    await destroy(sessions, provider, seeded.subject)
    async with sessions() as session:
        audit_before = (
            await session.execute(select(func.count()).select_from(AuditEntry))
        ).scalar_one()

    # when / then: again, by the survivor's id or the merged duplicate's
    for subject in (seeded.subject, seeded.duplicate):
        with pytest.raises(DomainError) as error:
            await destroy(sessions, provider, subject)
        assert error.value.code == SubjectRightsErrorCode.ALREADY_ERASED
    with pytest.raises(DomainError) as error:
        await destroy(sessions, provider, uuid.uuid4())
    assert error.value.code == SubjectRightsErrorCode.SUBJECT_NOT_FOUND
    async with sessions() as session:
        with pytest.raises(DomainError) as error:
            await access_package(session, FieldCipher(session, provider), subject_id=seeded.subject)
        assert error.value.code == SubjectRightsErrorCode.SUBJECT_ERASED
        certificates = (
            await session.execute(select(func.count()).select_from(DestructionCertificate))
        ).scalar_one()
        audit_after = (
            await session.execute(select(func.count()).select_from(AuditEntry))
        ).scalar_one()
    assert certificates == 1 and audit_after == audit_before
