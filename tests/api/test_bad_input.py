"""Bad input gets a typed error and writes nothing."""

import pytest
from sqlalchemy import func, select

from core.db import metadata
from tests.api.operations import PURCHASE, REGISTER, purchase_input

GRAPHQL_RESPONSE = "application/graphql-response+json"


async def _counts(sessions) -> dict[str, int]:
    async with sessions() as session:
        return {
            name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for name, table in metadata.tables.items()
        }


@pytest.fixture
async def customer(gql):
    data = await gql.data(
        REGISTER, {"input": {"channel": "POS", "phone": "+79161239999"}}, as_="app"
    )
    return data["customerRegister"]["customer"]["id"]


async def _payload_error(gql, sessions, mutation, variables, name):
    before = await _counts(sessions)
    data = await gql.data(mutation, variables, as_="app")
    assert await _counts(sessions) == before
    errors = data[name]["errors"]
    assert len(errors) == 1
    return errors[0]


async def test_malformed_phone(gql, sessions):
    error = await _payload_error(
        gql, sessions, REGISTER, {"input": {"channel": "WEB", "phone": "+7 12"}}, "customerRegister"
    )
    assert error["code"] == "INVALID_PHONE"
    assert error["field"] == ["input", "phone"]
    assert "+7 12" not in error["message"]


async def test_a_bad_second_identifier_writes_no_customer_at_all(gql, sessions):
    error = await _payload_error(
        gql,
        sessions,
        REGISTER,
        {
            "input": {
                "channel": "WEB",
                "phone": "+79161234500",
                "email": "not-an-email",
                "firstName": "Ольга",
            }
        },
        "customerRegister",
    )
    assert error["code"] == "INVALID_EMAIL"


async def test_negative_price(gql, sessions, customer):
    error = await _payload_error(
        gql,
        sessions,
        PURCHASE,
        {"input": purchase_input(customer, "neg-price-1", price=-100)},
        "purchaseRecord",
    )
    assert error["code"] == "INVALID_INPUT"
    assert error["field"] == ["input", "lines", "0", "unitPriceMinor"]


async def test_zero_quantity_and_future_date(gql, sessions, customer):
    zero = await _payload_error(
        gql,
        sessions,
        PURCHASE,
        {"input": purchase_input(customer, "zero-qty-1", quantity=0)},
        "purchaseRecord",
    )
    assert zero["field"] == ["input", "lines", "0", "quantity"]
    future = purchase_input(customer, "future-1") | {"occurredAt": "2199-01-01T00:00:00Z"}
    assert (await _payload_error(gql, sessions, PURCHASE, {"input": future}, "purchaseRecord"))["field"] == ["input", "occurredAt"]


async def test_return_of_more_than_was_bought(gql, sessions, customer):
    bought = await gql.data(
        PURCHASE, {"input": purchase_input(customer, "buy-two-1", quantity=2)}, as_="app"
    )
    purchase_id = bought["purchaseRecord"]["purchase"]["id"]
    ret = "mutation($i: ReturnRecordInput!) { returnRecord(input: $i) { return { id amount { amountMinor } } errors { code field message } } }"

    def ret_input(key, quantity):
        return {
            "i": {
                "purchaseId": purchase_id,
                "channel": "POS",
                "idempotencyKey": key,
                "lines": [{"sku": "SKU-1", "quantity": quantity}],
            }
        }

    error = await _payload_error(gql, sessions, ret, ret_input("ret-too-many", 3), "returnRecord")
    assert error["code"] == "RETURN_EXCEEDS_PURCHASE"
    assert error["field"] == ["input", "lines", "0", "quantity"]
    first = await gql.data(ret, ret_input("ret-one-1", 1), as_="app")
    assert first["returnRecord"]["return"]["amount"]["amountMinor"] == 10_000
    second = await _payload_error(gql, sessions, ret, ret_input("ret-two-more", 2), "returnRecord")
    assert second["code"] == "RETURN_EXCEEDS_PURCHASE"


async def test_reused_idempotency_key_with_another_payload(gql, sessions, customer):
    await gql.data(
        PURCHASE, {"input": purchase_input(customer, "same-key-1", price=100)}, as_="app"
    )
    error = await _payload_error(
        gql,
        sessions,
        PURCHASE,
        {"input": purchase_input(customer, "same-key-1", price=200)},
        "purchaseRecord",
    )
    assert error["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_unknown_identifier_kind_is_a_validation_error(gql, sessions):
    before = await _counts(sessions)
    response = await gql.post(
        'query { customerByIdentifier(kind: FAX, value: "1") { id } }', accept=GRAPHQL_RESPONSE
    )
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    link = "mutation($i: IdentityLinkInput!) { identityLink(input: $i) { errors { code } } }"
    response = await gql.post(
        link,
        {"i": {"customerId": "x", "kind": "FAX", "value": "1", "channel": "WEB"}},
        accept=GRAPHQL_RESPONSE,
    )
    assert response.status_code == 400
    assert await _counts(sessions) == before


async def test_tampered_cursor(gql, customer):
    page = "query($after: String) { customers(first: 1, after: $after) { pageInfo { endCursor } } }"
    cursor = (await gql.data(page, {"after": None}))["customers"]["pageInfo"]["endCursor"]
    tampered = cursor[:-4] + ("AAAA" if not cursor.endswith("AAAA") else "BBBB")
    body = await gql.call(page, {"after": tampered})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    assert body["data"] is None


async def test_page_size_is_capped(gql):
    body = await gql.call("query { customers(first: 101) { edges { cursor } } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_five_megabyte_query_is_refused(gql):
    huge = "query { " + "a" * (5 * 1024 * 1024) + " }"
    response = await gql.post(huge)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


async def test_depth_fifty_is_refused(gql):
    query = "query { me { " + "referredBy { referrer { " * 25 + "id" + " } }" * 25 + " } }"
    response = await gql.post(query, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "depth" in response.json()["errors"][0]["message"]


async def test_too_many_aliases_are_refused(gql):
    query = "query { " + " ".join(f"a{n}: __typename" for n in range(40)) + " }"
    body = (await gql.post(query)).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_malformed_id(gql):
    body = await gql.call('query { customer(id: "garbage") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_fractional_money_is_refused_not_truncated(gql, sessions, customer):
    before = await _counts(sessions)
    response = await gql.post(
        PURCHASE, {"input": purchase_input(customer, "fraction-1", price=99.99)}, as_="app"
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    inline = f'input: {{channel: POS, idempotencyKey: "fraction-2", customerId: "{customer}", lines: [{{sku: "S", category: "c", quantity: 1, unitPriceMinor: 9.5}}]}}'
    literal = PURCHASE.replace("($input: PurchaseRecordInput!)", "").replace(
        "input: $input", inline
    )
    assert (await gql.post(literal, as_="app")).json()["errors"][0]["extensions"][
        "code"
    ] == "GRAPHQL_VALIDATION_FAILED"
    assert await _counts(sessions) == before


async def test_an_overflowing_total_is_a_typed_error(gql, sessions, customer):
    order = purchase_input(customer, "huge-total-1", price=10**12, quantity=100_000)
    order["lines"] = order["lines"] * 100
    error = await _payload_error(gql, sessions, PURCHASE, {"input": order}, "purchaseRecord")
    assert error["code"] == "INVALID_INPUT" and error["field"] == ["input", "lines"]


async def test_listing_merged_customers_is_explained(gql):
    body = await gql.call("{ customers(filter: {status: MERGED}) { edges { cursor } } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "survivor" in body["errors"][0]["message"]
