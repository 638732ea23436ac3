"""One boundary rule for every string and instant: a typed error naming the field, never the
value, and nothing written."""

import json

import pytest

from tests.api.operations import PURCHASE, REGISTER, purchase_input
from tests.api.test_bad_input import _counts

PUBLISH = """
mutation Publish($input: ConsentDocumentPublishInput!) {
  consentDocumentPublish(input: $input) { document { id } errors { code field } }
}
"""
GRANT = """
mutation Grant($input: ConsentGrantInput!) {
  consentGrant(input: $input) { consent { id } errors { code field } }
}
"""
EXPORT = """
mutation Export($input: ConsentAuditExportInput!) {
  consentAuditExport(input: $input) { errors { code field } }
}
"""
REVIEW = 'mutation($input: ReviewSubmitInput!) { reviewSubmit(input: $input) { errors { code } } }'
EVENTS = 'query($id: ID!, $since: DateTime) { customer(id: $id) { events(filter: {since: $since}) { edges { cursor } } } }'
CUSTOMERS = 'query($after: DateTime) { customers(filter: {createdAfter: $after}) { edges { cursor } } }'
NUL = "bad\x00value"
SURROGATE = "a\ud800b"
TOO_EARLY = "0001-01-01T00:00:00+14:00"
TOO_LATE = "9999-12-31T23:59:59-12:00"


@pytest.fixture
async def customer(gql):
    fields = {"channel": "POS", "phone": "+79161235555", "phoneVerified": True}
    data = await gql.data(REGISTER, {"input": fields}, as_="app")
    return data["customerRegister"]["customer"]["id"]


async def _refused(gql, sessions, operation, variables, field, *, as_="app", secret=None):
    before = await _counts(sessions)
    # Sent as ASCII JSON with \u escapes, as a client would send a lone surrogate.
    headers = gql.headers(as_=as_, token=None, customer=None) | {"Content-Type": "application/json"}
    content = json.dumps({"query": operation, "variables": variables})
    response = await gql.client.post("/graphql", content=content, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert await _counts(sessions) == before
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field
    assert ".".join(field) in error["message"]
    if secret is not None:
        assert secret not in error["message"]
    return error


@pytest.mark.parametrize("name", ["sku", "category"])
async def test_a_nul_in_a_purchase_line(gql, sessions, customer, name):
    variables = purchase_input(customer, "nul-line")
    variables["lines"][0][name] = NUL
    await _refused(gql, sessions, PURCHASE, {"input": variables}, ["input", "lines", "0", name], secret=NUL)


@pytest.mark.parametrize("name", ["externalRef", "storeCode", "idempotencyKey"])
async def test_a_nul_in_a_purchase_field(gql, sessions, customer, name):
    variables = purchase_input(customer, "nul-field") | {name: NUL}
    await _refused(gql, sessions, PURCHASE, {"input": variables}, ["input", name], secret=NUL)


async def test_a_nul_in_a_review_and_a_consent_document(gql, sessions, customer):
    review = {"customerId": customer, "productSku": NUL, "rating": 5}
    await _refused(gql, sessions, REVIEW, {"input": review}, ["input", "productSku"])
    for name in ("title", "text"):
        document = {"purpose": "MARKETING", "language": "ru", "title": "Условия", "text": "Текст"} | {name: NUL}
        await _refused(gql, sessions, PUBLISH, {"input": document}, ["input", name], as_="compliance")


async def test_a_lone_surrogate_in_a_name(gql, sessions):
    fields = {"channel": "WEB", "phone": "+79161235556", "firstName": SURROGATE}
    await _refused(gql, sessions, REGISTER, {"input": fields}, ["input", "firstName"])


async def test_strings_have_a_length_per_field(gql, sessions, customer):
    fields = {"channel": "WEB", "phone": "+79161235557", "firstName": "Я" * 257}
    error = await _refused(gql, sessions, REGISTER, {"input": fields}, ["input", "firstName"])
    assert "256" in error["message"]
    review = {"customerId": customer, "productSku": "SKU-1", "rating": 5, "text": "отлично " * 1000}
    await _refused(gql, sessions, REVIEW, {"input": review}, ["input", "text"])


async def test_a_half_megabyte_user_agent_is_refused(gql, sessions, customer):
    async with sessions() as session:
        from sqlalchemy import text
        document = (await session.execute(text("SELECT id FROM consent_document LIMIT 1"))).scalar()
    grant = {
        "customerId": customer, "purpose": "MARKETING", "channel": "SMS",
        "documentId": str(document) if document else "x",
        "evidence": {"collectedChannel": "MOBILE_APP", "method": "CHECKBOX", "userAgent": "M" * 500_000},
    }
    await _refused(gql, sessions, GRANT, {"input": grant}, ["input", "evidence", "userAgent"])


@pytest.mark.parametrize("instant", [TOO_EARLY, TOO_LATE])
async def test_instants_out_of_range(gql, sessions, customer, instant):
    purchase = purchase_input(customer, "far-instant") | {"occurredAt": instant}
    await _refused(gql, sessions, PURCHASE, {"input": purchase}, ["input", "occurredAt"], secret=instant)
    await _refused(gql, sessions, EVENTS, {"id": customer, "since": instant}, ["filter", "since"], as_="operator")
    await _refused(gql, sessions, CUSTOMERS, {"after": instant}, ["filter", "createdAfter"], as_="operator")
    grant = {
        "customerId": customer, "purpose": "MARKETING", "channel": "SMS", "documentId": "x",
        "evidence": {"collectedChannel": "MOBILE_APP", "method": "CHECKBOX", "occurredAt": instant},
    }
    await _refused(gql, sessions, GRANT, {"input": grant}, ["input", "evidence", "occurredAt"])
    export = {"format": "JSON", "from": instant[:10]}
    await _refused(gql, sessions, EXPORT, {"input": export}, ["input", "from"], as_="compliance")


async def test_the_largest_long_price_is_refused_as_too_large(gql, sessions, customer):
    purchase = purchase_input(customer, "huge-price", price=2**63 - 1)
    data = await gql.data(PURCHASE, {"input": purchase}, as_="app")
    [error] = data["purchaseRecord"]["errors"]
    assert error["field"] == ["input", "lines", "0", "unitPriceMinor"]
    assert "negative" not in error["message"]
