"""Schema-driven fuzzing (hypothesis-graphql) through the ASGI app, bounded and seeded: no
generated query or mutation may get a 500 or an `INTERNAL_SERVER_ERROR`, on either database.

The budget is `FUZZ_EXAMPLES` requests per operation kind and backend (raise it with
LOYALGRAPH_FUZZ_EXAMPLES for a longer run); `derandomize` makes every run the same.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from api.apikeys import create_api_key
from api.app import create_app
from api.auth import Role, issue_token
from api.schema.build import build_schema
from core.db import transaction

FUZZ_EXAMPLES = int(os.environ.get("LOYALGRAPH_FUZZ_EXAMPLES", "100"))
OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
SCALARS = {
    # Mostly plausible values, with the edges (year 1, year 9999, 64-bit overflow) mixed in.
    "DateTime": st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS
    ).map(lambda moment: nodes.String(moment.isoformat())),
    "Date": st.dates().map(lambda day: nodes.String(day.isoformat())),
    "Long": st.integers(min_value=-(2**70), max_value=2**70).map(nodes.Int),
    "Decimal": st.decimals(allow_nan=False, allow_infinity=False, places=2).map(nodes.String),
}
SDL = str(build_schema(production=False))
STRATEGIES = {
    "query": queries(SDL, custom_scalars=SCALARS),
    "mutation": mutations(SDL, custom_scalars=SCALARS),
}


def _internal_errors(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        return [body]
    return [
        error
        for error in body.get("errors") or []
        if (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
    ]


@pytest.mark.parametrize("kind", ["query", "mutation"])
def test_generated_requests_never_get_a_500(settings, provider, kind):
    loop = asyncio.new_event_loop()
    app = create_app(settings, provider)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")

    async def api_key() -> str:
        async with transaction(app.state.sessions) as session:
            return (await create_api_key(session, app_name="fuzz"))[1]

    secret = provider.secret("jwt")
    credentials = [
        {"Authorization": f"Bearer {issue_token(secret, role=Role.OPERATOR)}"},
        {"Authorization": f"Bearer {issue_token(secret, role=Role.COMPLIANCE)}"},
        {"X-API-Key": loop.run_until_complete(api_key())},
    ]

    @hypothesis_settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(query=STRATEGIES[kind], who=st.sampled_from(credentials))
    def one_request(query: str, who: dict[str, str]) -> None:
        body = json.dumps({"query": query}).encode()
        headers = who | {"Content-Type": "application/json"}
        response = loop.run_until_complete(client.post("/graphql", content=body, headers=headers))
        assert response.status_code < 500, (query, response.text)
        assert not _internal_errors(response.json()), (query, response.text)

    try:
        one_request()
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(app.state.engine.dispose())
        loop.close()
