"""GraphQL over HTTP, authentication and authorization, dev and production modes."""

import httpx
import pytest
from sqlalchemy import select, update

from api.app import create_app
from core.settings import Settings
from graph.models import Customer
from tests.api.operations import REGISTER

GRAPHQL_RESPONSE = "application/graphql-response+json"
PROFILE = "query($id: ID!) { customer(id: $id) { id profile { firstName } identities { value } } }"


async def _register(gql, phone, **extra):
    data = await gql.data(
        REGISTER, {"input": {"channel": "WEB", "phone": phone, **extra}}, as_="app"
    )
    return data["customerRegister"]["customer"]["id"]


async def test_graphql_response_media_type(gql):
    ok = await gql.post("query { __typename }", accept=GRAPHQL_RESPONSE)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert ok.json()["extensions"]["cost"]["requested"] == 1
    bad = await gql.post("query { nope }", accept=GRAPHQL_RESPONSE)
    assert bad.status_code == 400 and "data" not in bad.json()
    parse = await gql.post("query {", accept=GRAPHQL_RESPONSE)
    assert parse.status_code == 400
    assert parse.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_legacy_json_is_200_even_on_validation_errors(gql):
    response = await gql.post("query { nope }")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_get_allows_queries_and_refuses_mutations(gql):
    headers = gql.headers(as_="operator", token=None, customer=None)
    query = await gql.client.get("/graphql", params={"query": "{ __typename }"}, headers=headers)
    assert query.status_code == 200 and query.json()["data"] == {"__typename": "Query"}
    mutation = 'mutation { customerUnmerge(input: {customerId: "x"}) { errors { code } } }'
    refused = await gql.client.get("/graphql", params={"query": mutation}, headers=headers)
    assert refused.status_code == 405


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic abc"},
        {"X-API-Key": "lg_unknown"},
    ],
)
async def test_wrong_or_missing_credentials_are_401(gql, headers):
    response = await gql.client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "www-authenticate" in response.headers


async def test_token_signed_with_another_key_is_401(gql):
    import jwt

    forged = jwt.encode(
        {"sub": "x", "role": "admin", "aud": "loyalgraph", "iss": "loyalgraph", "exp": 9999999999},
        b"k" * 32,
        algorithm="HS256",
    )
    response = await gql.post("{ __typename }", token=forged, as_=None)
    assert response.status_code == 401


async def test_roles(gql):
    customer = await _register(gql, "+79161230101", firstName="Мария")
    analyst = await gql.call(PROFILE, {"id": customer}, as_="analyst")
    assert analyst["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert analyst["data"]["customer"]["id"] == customer  # the rest of the customer is readable
    operator = await gql.data(PROFILE, {"id": customer}, as_="operator")
    assert operator["customer"]["profile"]["firstName"] == "Мария"
    assert operator["customer"]["identities"][0]["value"] == "+79161230101"
    listing = await gql.call("{ customers { edges { cursor } } }", as_="app")
    assert listing["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    register = await gql.call(
        REGISTER, {"input": {"channel": "WEB", "phone": "+79161230102"}}, as_="analyst"
    )
    assert register["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_customer_sees_only_themself(gql):
    me = await _register(gql, "+79161230201", firstName="Пётр")
    other = await _register(gql, "+79161230202", firstName="Павел")
    own = await gql.data(
        "{ me { id profile { firstName } } }", as_="customer", customer=gql_uuid(me)
    )
    assert own["me"] == {"id": me, "profile": {"firstName": "Пётр"}}
    theirs = await gql.call(PROFILE, {"id": other}, as_="customer", customer=gql_uuid(me))
    assert theirs["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert theirs["data"]["customer"] is None
    review = "mutation($i: ReviewSubmitInput!) { reviewSubmit(input: $i) { errors { code } } }"
    as_other = await gql.call(
        review,
        {"i": {"customerId": other, "productSku": "S", "rating": 1}},
        as_="customer",
        customer=gql_uuid(me),
    )
    assert as_other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    staff_only = await gql.call("{ me { id } }", as_="operator")
    assert staff_only["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def gql_uuid(global_id: str) -> str:
    from api.schema.common import customer_uuid

    return str(customer_uuid(global_id))


async def test_graphiql_in_dev(gql):
    page = await gql.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


async def test_health_and_readiness(gql):
    assert (await gql.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gql.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


@pytest.fixture
async def prod(settings, provider, gql):
    prod_settings = Settings.from_env(
        {
            "LOYALGRAPH_HOME": str(settings.home),
            "LOYALGRAPH_DATABASE_URL": settings.database_url,
            "LOYALGRAPH_ENV": "prod",
        }
    )
    application = create_app(prod_settings, provider)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://prod"
    ) as client:
        yield client, {"Authorization": f"Bearer {gql.token('operator')}"}, application
    await application.state.engine.dispose()


async def test_production_hides_introspection_suggestions_and_ide(prod):
    client, headers, _ = prod
    introspection = (
        await client.post(
            "/graphql", json={"query": "{ __schema { types { name } } }"}, headers=headers
        )
    ).json()
    assert introspection["errors"] and "__schema" not in (introspection.get("data") or {})
    typo = (
        await client.post(
            "/graphql", json={"query": '{ custmer(id: "x") { id } }'}, headers=headers
        )
    ).json()
    assert "Did you mean" not in typo["errors"][0]["message"]
    ide = await client.get("/graphql", headers={"Accept": "text/html"} | headers)
    assert ide.status_code != 200 or "graphiql" not in ide.text.lower()
    assert (await client.get("/_graphiql/graphiql.min.js")).status_code == 404  # nor its assets


async def test_production_masks_unexpected_errors(prod, gql, sessions):
    client, headers, _ = prod
    customer = await _register(gql, "+79161230301", firstName="Секрет")
    async with sessions() as session:  # corrupt the stored ciphertext: decryption must fail
        blob = (await session.execute(select(Customer.first_name_ct))).scalar_one()
        await session.execute(
            update(Customer).values(first_name_ct=blob[:-1] + bytes([blob[-1] ^ 1]))
        )
        await session.commit()
    body = (
        await client.post(
            "/graphql", json={"query": PROFILE, "variables": {"id": customer}}, headers=headers
        )
    ).json()
    error = body["errors"][0]
    assert error["message"] == "Unexpected error."
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    dev = await gql.call(PROFILE, {"id": customer})
    assert dev["errors"][0]["message"] != "Unexpected error."


async def test_a_customer_token_inside_an_app_stays_confined(gql):
    me = await _register(gql, "+79161230401")
    other = await _register(gql, "+79161230402")
    headers = gql.headers(as_="customer", token=None, customer=gql_uuid(me)) | {
        "X-API-Key": gql.api_key
    }
    response = await gql.client.post(
        "/graphql", json={"query": PROFILE, "variables": {"id": other}}, headers=headers
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    own = await gql.client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)
    assert own.json()["data"]["me"]["id"] == me


async def test_automatic_persisted_queries(gql):
    import hashlib

    query = "query Typename { __typename }"
    extensions = {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}
    }
    headers = gql.headers(as_="operator", token=None, customer=None)
    unknown = await gql.client.post("/graphql", json={"extensions": extensions}, headers=headers)
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await gql.client.post(
        "/graphql", json={"query": query, "extensions": extensions}, headers=headers
    )
    assert registered.json()["data"] == {"__typename": "Query"}
    by_hash = await gql.client.post("/graphql", json={"extensions": extensions}, headers=headers)
    assert by_hash.json()["data"] == {"__typename": "Query"}
    upper = {
        "persistedQuery": {
            "version": 1,
            "sha256Hash": extensions["persistedQuery"]["sha256Hash"].upper(),
        }
    }
    assert (await gql.client.post("/graphql", json={"extensions": upper}, headers=headers)).json()[
        "data"
    ] == {"__typename": "Query"}
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    mismatch = await gql.client.post(
        "/graphql", json={"query": query, "extensions": wrong}, headers=headers
    )
    assert mismatch.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_logs_never_echo_input_values(gql, caplog):
    caplog.set_level("DEBUG")
    body = await gql.call("query { customerByIdentifier(kind: PHONE, value: 79161234567) { id } }")
    assert "79161234567" in body["errors"][0]["message"]  # the caller gets their own input back
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "79161234567" not in caplog.text
    assert "request error GRAPHQL_VALIDATION_FAILED" in caplog.text


async def test_a_customer_cannot_assert_an_identifier_is_verified(gql):
    attacker = await _register(gql, "+79161230501")
    link = "mutation($i: IdentityLinkInput!) { identityLink(input: $i) { identity { verified } errors { code } } }"
    victim_phone = {
        "customerId": attacker,
        "kind": "PHONE",
        "value": "+79161230599",
        "channel": "WEB",
    }
    claimed = await gql.call(
        link, {"i": victim_phone | {"verified": True}}, as_="customer", customer=gql_uuid(attacker)
    )
    assert claimed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    typed = await gql.data(link, {"i": victim_phone}, as_="customer", customer=gql_uuid(attacker))
    assert typed["identityLink"]["identity"]["verified"] is False
    # the victim registers with a confirmed phone: a new customer, not the attacker's record
    victim = await gql.data(
        REGISTER,
        {
            "input": {
                "channel": "POS",
                "phone": "+79161230599",
                "phoneVerified": True,
                "firstName": "Жертва",
            }
        },
        as_="app",
    )
    assert victim["customerRegister"]["created"] is True
    assert victim["customerRegister"]["customer"]["id"] != attacker


async def test_a_merged_customers_token_is_refused(gql):
    one, two = await _register(gql, "+79161230601"), await _register(gql, "+79161230602")
    merged = await gql.data(
        "mutation($i: CustomersMergeInput!) { customersMerge(input: $i) { mergedCustomerId } }",
        {"i": {"customerIds": [one, two]}},
    )
    gone = merged["customersMerge"]["mergedCustomerId"]
    response = await gql.post("{ me { id } }", as_="customer", customer=gql_uuid(gone))
    assert response.status_code == 401


async def test_linking_a_strangers_phone_does_not_capture_their_lookups(gql):
    victim = await _register(gql, "8 (916) 555-01-01")
    attacker = await _register(gql, "+79165550199")
    link = "mutation($i: IdentityLinkInput!) { identityLink(input: $i) { errors { code } } }"
    await gql.data(
        link,
        {"i": {"customerId": attacker, "kind": "PHONE", "value": "+79165550101", "channel": "WEB"}},
        as_="customer",
        customer=gql_uuid(attacker),
    )
    lookup = await gql.call(
        '{ customerByIdentifier(kind: PHONE, value: "+79165550101") { id } }', as_="app"
    )
    assert lookup["errors"][0]["extensions"]["code"] == "IDENTIFIER_AMBIGUOUS"
    assert lookup["data"]["customerByIdentifier"] is None
    assert victim != attacker


async def test_voting_does_not_reveal_someone_elses_review_text(gql):
    author, voter = await _register(gql, "+79165550201"), await _register(gql, "+79165550202")
    review = await gql.data(
        "mutation($i: ReviewSubmitInput!) { reviewSubmit(input: $i) { review { id } } }",
        {
            "i": {
                "customerId": author,
                "productSku": "S1",
                "rating": 2,
                "text": "call me on +79160000000",
            }
        },
        as_="app",
    )
    vote = "mutation($i: ReviewVoteInput!) { reviewVote(input: $i) { review { helpfulVotes text } errors { code } } }"
    body = await gql.call(
        vote,
        {
            "i": {
                "reviewId": review["reviewSubmit"]["review"]["id"],
                "voterId": voter,
                "helpful": True,
            }
        },
        as_="customer",
        customer=gql_uuid(voter),
    )
    assert body["data"]["reviewVote"]["review"]["helpfulVotes"] == 1
    assert body["data"]["reviewVote"]["review"]["text"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
