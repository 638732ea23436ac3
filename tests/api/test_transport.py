"""Malformed requests are a typed 400; a database that is down is a 503 for every credential."""

import uuid

import httpx
import pytest

from api.app import create_app
from api.auth import Role, issue_token
from core.settings import Settings
from privacy.keys import LocalKeyring

BODIES = {
    "string": b'"x"',
    "number": b"42",
    "null": b"null",
    "array": b"[1]",
    "invalid utf-8": b'{"query": "{ __typename \xff }"}',
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep object": b'{"query": "{ __typename }", "variables": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001,
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
async def test_a_malformed_body_is_a_typed_400(gql, body):
    headers = gql.headers(as_="operator", token=None, customer=None) | {"Content-Type": "application/json"}
    response = await gql.client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Traceback" not in response.text


@pytest.fixture
async def unreachable(tmp_path):
    # Nothing listens on port 1: every connection is refused at once.
    settings = Settings.from_env({
        "LOYALGRAPH_HOME": str(tmp_path / "home"),
        "LOYALGRAPH_DATABASE_URL": "postgresql://loyal:secret@127.0.0.1:1/loyalgraph_prod",
    })
    settings.ensure_dirs()
    provider = LocalKeyring(settings.keyring_path)
    app = create_app(settings, provider)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, provider
    await app.state.engine.dispose()


@pytest.mark.parametrize("credential", ["operator", "customer", "api key"])
async def test_a_database_that_is_down_is_503_for_every_credential(unreachable, credential):
    client, provider = unreachable
    secret = provider.secret("jwt")
    headers = {
        "operator": {"Authorization": f"Bearer {issue_token(secret, role=Role.OPERATOR)}"},
        "customer": {"Authorization": "Bearer " + issue_token(secret, role=Role.CUSTOMER, customer_id=uuid.uuid4())},
        "api key": {"X-API-Key": "lg_" + "a" * 40},
    }[credential]
    response = await client.post(
        "/graphql", json={"query": "{ customers(first: 1) { edges { cursor } } }"}, headers=headers
    )
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    for leak in ("127.0.0.1", "loyalgraph_prod", "Errno", "Connect call", "Traceback"):
        assert leak not in response.text
