"""API keys: revocation and rotation take effect on the next request, last use is recorded,
and each key has a rate limit (429 with Retry-After), in memory or shared through Redis."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from api.apikeys import ApiKey, create_api_key, list_api_keys, revoke_api_key, rotate_api_key
from api.app import create_app
from core.db import transaction
from core.settings import Settings
from privacy.keys import LocalKeyring

REDIS_URL = "redis://127.0.0.1:6379/0"
QUERY = {"query": "{ __typename }"}


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


async def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def _ask(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/graphql", json=QUERY, headers={"X-API-Key": key})


async def test_revoke_takes_effect_on_the_next_request(app, sessions) -> None:
    async with transaction(sessions) as session:
        row, key = await create_api_key(session, app_name="till-7")
    async with await _client(app) as client:
        assert (await _ask(client, key)).status_code == 200
        async with transaction(sessions) as session:
            await revoke_api_key(session, key_id=str(row.id))
        refused = await _ask(client, key)
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_rotate_gives_a_working_key_and_retires_the_old_one(app, sessions) -> None:
    async with transaction(sessions) as session:
        old, old_key = await create_api_key(session, app_name="web", rate_limit_per_minute=50)
    async with transaction(sessions) as session:
        new, new_key = await rotate_api_key(session, key_id=str(old.id))
    assert new.app_name == "web" and new.rate_limit_per_minute == 50
    async with await _client(app) as client:
        assert (await _ask(client, old_key)).status_code == 401
        assert (await _ask(client, new_key)).status_code == 200
    async with sessions() as session:
        active = await list_api_keys(session)
        everything = await list_api_keys(session, include_revoked=True)
        stored_old = await session.get(ApiKey, old.id)
    assert [k.id for k in active] == [new.id]
    assert {k.id for k in everything} == {old.id, new.id}
    assert stored_old is not None and stored_old.replaced_by == new.id


async def test_last_use_is_recorded(app, sessions) -> None:
    async with transaction(sessions) as session:
        row, key = await create_api_key(session, app_name="mobile")
    assert row.last_used_at is None
    async with await _client(app) as client:
        assert (await _ask(client, key)).status_code == 200
    async with sessions() as session:
        stored = await session.get(ApiKey, row.id)
    assert stored is not None and stored.last_used_at is not None


@pytest.fixture(params=["memory", "redis"])
async def limited_apps(
    request: pytest.FixtureRequest, settings: Settings, provider: LocalKeyring
) -> AsyncIterator[tuple]:
    """Two app instances (two processes' worth of state) on one database."""
    if request.param == "redis":
        if not _redis_up():
            pytest.skip("no Redis at 127.0.0.1:6379")
        settings = replace(settings, redis_url=REDIS_URL)
    first, second = create_app(settings, provider), create_app(settings, provider)
    yield request.param, first, second
    for app in (first, second):
        await app.state.engine.dispose()


async def test_over_the_limit_is_429_with_retry_after(limited_apps) -> None:
    kind, first, second = limited_apps
    async with transaction(first.state.sessions) as session:
        _, key = await create_api_key(session, app_name="pos", rate_limit_per_minute=2)
    async with await _client(first) as one, await _client(second) as two:
        assert [(await _ask(one, key)).status_code for _ in range(2)] == [200, 200]
        if kind == "memory":
            assert (await _ask(two, key)).status_code == 200  # another process counts anew
            over = await _ask(one, key)
        else:
            over = await _ask(two, key)  # Redis: the count is shared by every process
    assert over.status_code == 429, over.text
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
