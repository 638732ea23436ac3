"""Over-limit queries are refused before anything runs: typed error, no `data`."""

from api.schema.common import customer_uuid
from tests.api.operations import REGISTER
from tests.unit.test_query_analysis import bomb

GRAPHQL_RESPONSE = "application/graphql-response+json"
COSTLY = (
    "query { customers(first: 100) { edges { node { events(first: 100) { edges { node {"
    " id ... on Purchase { lines { sku } } } } } } } } }"
)
COSTLY_BY_DEFAULT = (
    "query($n: Int = 100) { customers(first: $n) { edges { node { events(first: $n) {"
    " edges { node { id ... on Purchase { lines { sku } } } } } } } } }"
)


async def _customer(gql):
    data = await gql.data(REGISTER, {"input": {"channel": "WEB", "phone": "+79161230077"}}, as_="app")
    return str(customer_uuid(data["customerRegister"]["customer"]["id"]))


async def test_a_fragment_bomb_is_refused_without_data(gql):
    customer = await _customer(gql)
    response = await gql.post(bomb(20), as_="customer", customer=customer)
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    deeper = await gql.post(bomb(24), as_="customer", customer=customer, accept=GRAPHQL_RESPONSE)
    assert deeper.status_code == 400 and "data" not in deeper.json()


async def test_the_cost_limit_is_enforced(gql):
    await _customer(gql)
    for query in (COSTLY, COSTLY_BY_DEFAULT):
        response = await gql.post(query, accept=GRAPHQL_RESPONSE)
        assert response.status_code == 400
        body = response.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_two_operations_without_a_name_run_neither(gql, sessions):
    document = (
        'mutation Register { customerRegister(input: {channel: WEB, phone: "+79161230078"})'
        " { created } } query Look { __typename }"
    )
    response = await gql.post(document, as_="app", accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    looked = await gql.client.post(
        "/graphql",
        json={"query": document, "operationName": "Look"},
        headers=gql.headers(as_="app", token=None, customer=None),
    )
    assert looked.json()["data"] == {"__typename": "Query"}
    found = await gql.call(
        'query { customerByIdentifier(kind: PHONE, value: "+79161230078") { id } }'
    )
    assert found["data"]["customerByIdentifier"] is None
