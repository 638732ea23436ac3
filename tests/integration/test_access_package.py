"""The access package (152-FZ art. 14): everything the database holds about a subject and why,
in JSON and as a readable HTML page; nothing of anyone else, even someone linked to them."""

from __future__ import annotations

import json

from sqlalchemy import or_, select

from core.db import transaction
from graph.influence import submit_review
from graph.models import Event, Identity, Referral, ReviewVote
from loyalty.models import LedgerEntry
from privacy.consent_models import Consent, ConsentChange
from privacy.fields import FieldCipher
from privacy.subject_rights import access_package
from tests.integration.test_erasure import (
    ADDRESS,
    ADJUST_REASON,
    EMAIL,
    FIRST,
    HANDLE,
    IP,
    LAST,
    OLD_EMAIL,
    OTHER_FIRST,
    OTHER_LAST,
    OTHER_REVIEW,
    REVIEW_TEXT,
    USER_AGENT,
    seed,
)

MARKUP = "<script>alert('x')</script> & more"


async def test_package_holds_every_record_of_the_subject_and_nothing_of_anyone_else(
    sessions, provider
) -> None:
    # given Alisa (with a merged duplicate) and Boris, linked by a referral and votes
    seeded = await seed(sessions, provider)
    ids = [seeded.subject, seeded.duplicate]

    # when
    async with sessions() as session:
        package = await access_package(
            session, FieldCipher(session, provider), subject_id=seeded.subject
        )
        identities = (
            (await session.execute(select(Identity).where(Identity.customer_id.in_(ids))))  # type: ignore[attr-defined]
            .scalars()
            .all()
        )
        events = (
            (await session.execute(select(Event).where(Event.customer_id.in_(ids))))  # type: ignore[attr-defined]
            .scalars()
            .all()
        )
        entries = (
            (
                await session.execute(
                    select(LedgerEntry).where(LedgerEntry.customer_id.in_(ids))  # type: ignore[attr-defined]
                )
            )
            .scalars()
            .all()
        )
        referrals = (
            (
                await session.execute(
                    select(Referral).where(
                        or_(
                            Referral.referrer_id.in_(ids),  # type: ignore[attr-defined]
                            Referral.referee_id.in_(ids),  # type: ignore[union-attr]
                        )
                    )
                )
            )
            .scalars()
            .all()
        )
        votes = (
            (await session.execute(select(ReviewVote).where(ReviewVote.voter_id.in_(ids))))  # type: ignore[attr-defined]
            .scalars()
            .all()
        )
        consents = (
            (await session.execute(select(Consent).where(Consent.subject_id == seeded.subject)))
            .scalars()
            .all()
        )
        changes = (
            (
                await session.execute(
                    select(ConsentChange).where(ConsentChange.subject_id == seeded.subject)
                )
            )
            .scalars()
            .all()
        )

    # then every record the database holds for her is there, decrypted
    document = package.as_json()
    assert document["subjectId"] == str(seeded.subject)
    records = {s["name"]: s["records"] for s in document["sections"]}
    profile = records["profile"]
    assert {p["customerId"] for p in profile} == {str(i) for i in ids}
    assert profile[0]["firstName"] == FIRST and profile[0]["lastName"] == LAST
    assert profile[0]["birthDate"] == "1990-05-17" and profile[0]["address"] == ADDRESS
    assert len(records["identifiers"]) == len(identities) == 3
    assert {i["value"] for i in records["identifiers"]} == {"+79165551234", EMAIL, OLD_EMAIL}
    assert {e["id"] for e in records["events"]} == {str(e.id) for e in events}
    assert all(e["lines"] for e in records["events"] if e["type"] == "PURCHASE")
    assert {e["id"] for e in records["ledger_entries"]} == {str(e.id) for e in entries}
    assert ADJUST_REASON in {e["reason"] for e in records["ledger_entries"]}
    assert len(records["loyalty_accounts"]) >= 1 and records["lots"]
    assert [r["text"] for r in records["reviews"]] == [REVIEW_TEXT]
    assert records["reviews"][0]["helpfulVotes"] == 1
    assert len(records["review_votes"]) == len(votes) == 1
    assert len(records["referrals"]) == len(referrals) == 2
    assert {r["role"] for r in records["referrals"]} == {"REFERRER"}
    assert [s["handle"] for s in records["social_profiles"]] == [HANDLE]
    counts = records["social_profiles"][0]["followerHistory"]
    assert [c["followers"] for c in counts] == [1200, 1500]
    assert records["social_profiles"][0]["followers"] == 1500
    assert len(records["merges"]) == 1
    assert len(records["consents"]) == len(consents) == 1
    assert len(records["consent_history"]) == len(changes) == 1
    assert records["consent_history"][0]["ipAddress"] == IP
    assert records["consent_history"][0]["userAgent"] == USER_AGENT
    # with sources, purposes, legal bases, recipients and retention for each kind of data
    for section in document["sections"]:
        assert section["sourceSystem"] and section["purposes"] and section["legalBasis"]
        assert section["recipients"] and section["retention"]
    # and nothing of Boris: not his name, phone, review, nor even his customer id
    text = json.dumps(document, ensure_ascii=False)
    for foreign in (OTHER_FIRST, OTHER_LAST, OTHER_REVIEW, "79031112233", str(seeded.other)):
        assert foreign not in text
    html = package.as_html()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    for expected in (LAST, EMAIL, REVIEW_TEXT, "Legal basis", "Retention"):
        assert expected in html
    assert OTHER_LAST not in html and str(seeded.other) not in html


async def test_a_merged_id_reaches_the_same_package_and_html_is_escaped(sessions, provider) -> None:
    # given a review whose text is markup
    seeded = await seed(sessions, provider)
    async with transaction(sessions) as session:
        await submit_review(
            session,
            FieldCipher(session, provider),
            customer_id=seeded.subject,
            product_sku="HTML-1",
            rating=3,
            text=MARKUP,
        )

    # when asked by the duplicate's old id
    async with sessions() as session:
        package = await access_package(
            session, FieldCipher(session, provider), subject_id=seeded.duplicate
        )

    # then it is the survivor's whole package, and the page shows the markup as text
    assert package.subject_id == seeded.subject
    assert MARKUP in [r["text"] for r in package.section("reviews").records]
    html = package.as_html()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html
    assert "<script>" not in html
