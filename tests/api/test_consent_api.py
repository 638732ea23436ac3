"""Consent over GraphQL: grant and withdraw with evidence from the request, who may do it, typed
payload errors that change nothing, Customer.consents, consentDocuments and marketingAudience."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from api.schema.common import customer_uuid, to_global_id
from core.clock import utcnow
from core.db import transaction
from privacy.consent import consent_history, open_evidence
from privacy.consent_documents import ensure_default_documents
from privacy.consent_models import Consent, ConsentChange, ConsentDocument
from privacy.enforcement import restrict_processing
from privacy.fields import FieldCipher
from privacy.models import AuditEntry
from tests.api.operations import REGISTER

GRANT = """
mutation Grant($input: ConsentGrantInput!) {
  consentGrant(input: $input) {
    consent { id purpose channel status allowedCategories grantedAt withdrawnAt
              document { id version language textHash } }
    errors { code message field }
  }
}
"""

WITHDRAW = """
mutation Withdraw($input: ConsentWithdrawInput!) {
  consentWithdraw(input: $input) {
    consent { purpose channel status withdrawnAt }
    errors { code message field }
  }
}
"""

DOCUMENTS = """
query Documents($purpose: Purpose, $language: String, $currentOnly: Boolean! = true) {
  consentDocuments(purpose: $purpose, language: $language, currentOnly: $currentOnly) {
    id purpose language version title textHash validFrom validTo
  }
}
"""

PUBLISH = """
mutation Publish($input: ConsentDocumentPublishInput!) {
  consentDocumentPublish(input: $input) {
    document { id purpose language version textHash }
    errors { code field }
  }
}
"""

CONSENTS = """
query Consents($id: ID!) {
  customer(id: $id) {
    consents { purpose channel status allowedCategories document { version language } }
  }
}
"""

AUDIENCE = """
query Audience($channel: MarketingChannel!, $segment: String, $first: Int, $after: String) {
  marketingAudience(channel: $channel, segment: $segment, first: $first, after: $after) {
    edges { cursor node { id status } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

PAGE_WITH_CONSENTS = """
query Page($first: Int!) {
  customers(first: $first) { edges { node { id consents { purpose status } } } }
}
"""


@pytest.fixture
async def docs(sessions) -> dict[tuple[str, str], str]:
    async with transaction(sessions) as session:
        rows = await ensure_default_documents(session)
    return {(row.purpose, row.language): to_global_id("ConsentDocument", row.id) for row in rows}


async def _customer(gql, phone: str) -> str:
    fields = {"channel": "POS", "phone": phone, "phoneVerified": True}
    data = await gql.data(REGISTER, {"input": fields}, as_="app")
    return data["customerRegister"]["customer"]["id"]


def _as(customer: str) -> dict[str, Any]:
    return {"as_": "customer", "customer": str(customer_uuid(customer))}


def _evidence(**changes: Any) -> dict[str, Any]:
    return {"collectedChannel": "MOBILE_APP", "method": "CHECKBOX"} | changes


def _grant(customer: str, document: str, **changes: Any) -> dict[str, Any]:
    fields = {
        "customerId": customer,
        "purpose": "MARKETING",
        "channel": "SMS",
        "documentId": document,
        "evidence": _evidence(),
    }
    return fields | changes


async def _payload(gql, operation: str, input: dict, **caller: Any) -> dict:
    [payload] = (await gql.data(operation, {"input": input}, **caller)).values()
    return payload


def _codes(body: dict) -> set[str]:
    return {error["extensions"]["code"] for error in body.get("errors", [])}


async def _counts(sessions) -> dict[str, int]:
    async with sessions() as session:
        return {
            model.__tablename__: (
                await session.execute(select(func.count()).select_from(model))
            ).scalar_one()
            for model in (Consent, ConsentChange, ConsentDocument, AuditEntry)
        }


async def test_a_customer_grants_their_own_consent_with_the_request_as_evidence(
    gql, docs, sessions, provider
):
    customer = await _customer(gql, "+79167770001")
    document = docs[("MARKETING", "ru")]

    response = await gql.client.post(
        "/graphql",
        json={"query": GRANT, "variables": {"input": _grant(customer, document)}},
        headers=gql.headers(as_="customer", token=None, customer=str(customer_uuid(customer)))
        | {"User-Agent": "ShopApp/7.1 (Android 14)"},
    )

    payload = response.json()["data"]["consentGrant"]
    assert payload["errors"] == []
    consent = payload["consent"]
    assert (consent["purpose"], consent["channel"], consent["status"]) == (
        "MARKETING",
        "SMS",
        "GRANTED",
    )
    assert consent["document"]["id"] == document and consent["document"]["version"] == 1
    async with sessions() as session:
        [change] = await consent_history(session, subject_id=customer_uuid(customer))
        opened = await open_evidence(FieldCipher(session, provider), change)
    assert opened.ip == "127.0.0.1" and opened.user_agent == "ShopApp/7.1 (Android 14)"
    assert change.actor == f"customer:{customer_uuid(customer)}"
    assert (change.collected_channel, change.method) == ("MOBILE_APP", "CHECKBOX")


async def test_apps_and_operators_record_consents_on_a_customers_behalf(gql, docs, sessions):
    customer = await _customer(gql, "+79167770002")
    evidence = _evidence(
        collectedChannel="POS", method="SIGNATURE", ip="198.51.100.4", userAgent="Till/1"
    )
    by_app = _grant(customer, docs[("MARKETING", "ru")], evidence=evidence)
    by_operator = _grant(
        customer,
        docs[("PROFILING", "en")],
        purpose="PROFILING",
        channel=None,
        evidence=_evidence(collectedChannel="CONTACT_CENTER", method="RECORDED_CALL"),
    )

    assert (await _payload(gql, GRANT, by_app, as_="app"))["errors"] == []
    assert (await _payload(gql, GRANT, by_operator, as_="operator"))["errors"] == []

    async with sessions() as session:
        changes = await consent_history(session, subject_id=customer_uuid(customer))
    assert {change.actor.split(":")[0] for change in changes} == {"app", "staff"}


async def test_withdrawal_over_graphql_shows_in_customer_consents(gql, docs):
    customer = await _customer(gql, "+79167770003")
    past = (utcnow() - timedelta(minutes=10)).isoformat()
    await _payload(
        gql, GRANT, _grant(customer, docs[("MARKETING", "ru")], evidence=_evidence(occurredAt=past))
    )
    dissemination = _grant(
        customer,
        docs[("DISSEMINATION", "ru")],
        purpose="DISSEMINATION",
        channel=None,
        allowedCategories=["REVIEWS", "FIRST_NAME"],
    )
    await _payload(gql, GRANT, dissemination, **_as(customer))

    withdrawn = await _payload(
        gql,
        WITHDRAW,
        {"customerId": customer, "purpose": "MARKETING", "channel": "SMS", "evidence": _evidence()},
        **_as(customer),
    )

    assert withdrawn["errors"] == [] and withdrawn["consent"]["status"] == "WITHDRAWN"
    own = (await gql.data(CONSENTS, {"id": customer}, **_as(customer)))["customer"]["consents"]
    staff = (await gql.data(CONSENTS, {"id": customer}, as_="compliance"))["customer"]["consents"]
    assert (
        own
        == staff
        == [
            {
                "purpose": "DISSEMINATION",
                "channel": None,
                "status": "GRANTED",
                "allowedCategories": ["FIRST_NAME", "REVIEWS"],
                "document": {"version": 1, "language": "ru"},
            },
            {
                "purpose": "MARKETING",
                "channel": "SMS",
                "status": "WITHDRAWN",
                "allowedCategories": [],
                "document": {"version": 1, "language": "ru"},
            },
        ]
    )


async def test_only_the_customer_and_staff_read_consents(gql, docs):
    customer = await _customer(gql, "+79167770004")
    other = await _customer(gql, "+79167770005")

    by_app = await gql.call(CONSENTS, {"id": customer}, as_="app")
    by_other = await gql.call(CONSENTS, {"id": customer}, **_as(other))

    assert _codes(by_app) == {"FORBIDDEN"}
    assert _codes(by_other) == {"FORBIDDEN"}


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        ("other customer", False),
        ("analyst", False),
        ("compliance", False),
        ("app", True),
        ("admin", True),
    ],
)
async def test_who_may_record_a_consent(gql, docs, sessions, caller, allowed):
    customer = await _customer(gql, "+79167770006")
    other = await _customer(gql, "+79167770007")
    who = _as(other) if caller == "other customer" else {"as_": caller}
    before = await _counts(sessions)

    body = await gql.call(GRANT, {"input": _grant(customer, docs[("MARKETING", "ru")])}, **who)

    if allowed:
        assert body["data"]["consentGrant"]["errors"] == []
    else:
        assert _codes(body) == {"FORBIDDEN"}
        assert await _counts(sessions) == before


@pytest.mark.parametrize(
    ("case", "expected_code", "expected_field"),
    [
        ("unknown document version", "DOCUMENT_NOT_FOUND", ["input", "documentId"]),
        ("document for another purpose", "DOCUMENT_PURPOSE_MISMATCH", ["input", "documentId"]),
        ("marketing without channel", "CHANNEL_REQUIRED", ["input", "channel"]),
        ("profiling with channel", "CHANNEL_NOT_ALLOWED", ["input", "channel"]),
        ("dissemination without categories", "CATEGORIES_REQUIRED", ["input", "allowedCategories"]),
        ("bad ip", "INVALID_EVIDENCE", ["input", "evidence", "ip"]),
        ("unknown customer", "CUSTOMER_NOT_FOUND", ["input", "customerId"]),
    ],
)
async def test_a_bad_grant_gets_a_typed_error_and_changes_nothing(
    gql, docs, sessions, case, expected_code, expected_field
):
    customer = await _customer(gql, "+79167770008")
    marketing = docs[("MARKETING", "ru")]
    fields = {
        "unknown document version": _grant(customer, to_global_id("ConsentDocument", uuid.uuid4())),
        "document for another purpose": _grant(customer, docs[("PROFILING", "ru")]),
        "marketing without channel": _grant(customer, marketing, channel=None),
        "profiling with channel": _grant(customer, docs[("PROFILING", "ru")], purpose="PROFILING"),
        "dissemination without categories": _grant(
            customer, docs[("DISSEMINATION", "ru")], purpose="DISSEMINATION", channel=None
        ),
        "bad ip": _grant(customer, marketing, evidence=_evidence(ip="not-an-ip")),
        "unknown customer": _grant(to_global_id("Customer", uuid.uuid4()), marketing),
    }[case]
    before = await _counts(sessions)

    payload = await _payload(gql, GRANT, fields)

    assert payload["consent"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(expected_code, expected_field)]
    assert await _counts(sessions) == before


async def test_withdrawing_a_consent_never_given_is_a_typed_error(gql, docs, sessions):
    customer = await _customer(gql, "+79167770009")
    before = await _counts(sessions)

    payload = await _payload(
        gql,
        WITHDRAW,
        {"customerId": customer, "purpose": "PROFILING", "evidence": _evidence()},
        **_as(customer),
    )

    assert [e["code"] for e in payload["errors"]] == ["CONSENT_NOT_GRANTED"]
    assert await _counts(sessions) == before


async def test_consent_documents_are_public_to_every_signed_in_caller(gql, docs):
    for caller in ({"as_": "app"}, {"as_": "analyst"}, _as(await _customer(gql, "+79167770010"))):
        rows = (await gql.data(DOCUMENTS, {"purpose": "MARKETING"}, **caller))["consentDocuments"]
        assert {(row["language"], row["version"]) for row in rows} == {("ru", 1), ("en", 1)}
    response = await gql.post(DOCUMENTS, {}, as_=None)
    assert response.status_code == 401


async def test_compliance_publishes_a_new_version(gql, docs, sessions):
    fields = {"purpose": "MARKETING", "language": "ru", "title": "Ред. 2", "text": "Новый текст."}
    before = await _counts(sessions)

    refused = await gql.call(PUBLISH, {"input": fields}, as_="operator")
    published = await _payload(gql, PUBLISH, fields, as_="compliance")

    assert _codes(refused) == {"FORBIDDEN"}
    assert published["errors"] == [] and published["document"]["version"] == 2
    current = (await gql.data(DOCUMENTS, {"purpose": "MARKETING", "language": "ru"}))[
        "consentDocuments"
    ]
    every = await gql.data(
        DOCUMENTS, {"purpose": "MARKETING", "language": "ru", "currentOnly": False}
    )
    assert [row["version"] for row in current] == [2]
    assert [row["version"] for row in every["consentDocuments"]] == [2, 1]
    assert every["consentDocuments"][1]["validTo"] is not None
    after = await _counts(sessions)
    assert after["consent_document"] == before["consent_document"] + 1
    assert after["audit_entry"] == before["audit_entry"] + 1


async def test_marketing_audience_lists_only_consenting_unrestricted_customers(
    gql, docs, sessions, provider
):
    people = [await _customer(gql, f"+7916777{n:04d}") for n in range(100, 106)]
    sms = docs[("MARKETING", "ru")]
    for person in people[:5]:
        await _payload(gql, GRANT, _grant(person, sms))
    await _payload(gql, GRANT, _grant(people[5], sms, channel="EMAIL"))
    async with transaction(sessions) as session:
        await restrict_processing(
            session,
            provider,
            subject_id=customer_uuid(people[4]),
            request_id=None,
            actor="staff:dpo",
        )

    seen, after = [], None
    while True:
        page = (await gql.data(AUDIENCE, {"channel": "SMS", "first": 2, "after": after}))[
            "marketingAudience"
        ]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == people[:4]
    email = (await gql.data(AUDIENCE, {"channel": "EMAIL"}, as_="analyst"))["marketingAudience"]
    assert [edge["node"]["id"] for edge in email["edges"]] == [people[5]]


@pytest.mark.parametrize("caller", ["app", "compliance", "customer"])
async def test_marketing_audience_is_for_operators_analysts_and_admins(gql, caller):
    who = _as(await _customer(gql, "+79167770200")) if caller == "customer" else {"as_": caller}

    body = await gql.call(AUDIENCE, {"channel": "SMS"}, **who)

    assert _codes(body) == {"FORBIDDEN"}


async def test_an_unknown_segment_is_an_error_not_an_empty_audience(gql):
    body = await gql.call(AUDIENCE, {"channel": "SMS", "segment": "platinum"})

    assert _codes(body) == {"NO_ACTIVE_PROGRAM"}


@pytest.fixture
def statements(app):
    from sqlalchemy import event

    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


async def test_consents_of_a_page_of_customers_cost_one_statement(gql, docs, statements):
    people = [await _customer(gql, f"+7916777{n:04d}") for n in range(300, 306)]
    for person in people:
        await _payload(gql, GRANT, _grant(person, docs[("MARKETING", "ru")]))
    counts = {}
    for first in (2, 6):
        statements.clear()
        data = await gql.data(PAGE_WITH_CONSENTS, {"first": first})
        assert all(e["node"]["consents"] for e in data["customers"]["edges"])
        counts[first] = len(statements)

    assert counts[2] == counts[6], counts
