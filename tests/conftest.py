"""Shared fixtures: every database test runs on SQLite, and on PostgreSQL when
LOYALGRAPH_TEST_DATABASE_URL is set. Each test gets its own database, copied from a template
that real Alembic migrations built once per session."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from api.apikeys import create_api_key
from api.app import create_app
from api.auth import Role, issue_token
from core.db import transaction
from core.settings import Settings
from migrations.runner import upgrade
from privacy.keys import LocalKeyring

pytest_plugins = ["tests.scoring_fixtures"]

PG_URL = os.environ.get("LOYALGRAPH_TEST_DATABASE_URL")
BACKENDS = (
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)] if PG_URL else ["sqlite"]
)


def _pg_parts(name: str) -> tuple[dict[str, Any], str]:
    assert PG_URL is not None
    url = make_url(PG_URL)
    connect = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "database": url.database or "postgres",
    }
    return connect, url.set(database=name).render_as_string(hide_password=False)


async def _pg_admin(*statements: str) -> None:
    connect, _ = _pg_parts("postgres")
    connection = await asyncpg.connect(**connect)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"lg_template_{os.getpid()}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    upgrade(_pg_parts(name)[1])
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "loyalgraph.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    template_name: str = request.getfixturevalue("pg_template")
    name = f"lg_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    yield _pg_parts(name)[1]
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    home = tmp_path / "home"
    return Settings.from_env(
        {"LOYALGRAPH_HOME": str(home), "LOYALGRAPH_DATABASE_URL": database_url}
    )


@pytest.fixture
def provider(settings: Settings) -> LocalKeyring:
    settings.ensure_dirs()
    return LocalKeyring(settings.keyring_path)


@pytest.fixture
async def app(settings: Settings, provider: LocalKeyring) -> AsyncIterator[Starlette]:
    application = create_app(settings, provider)
    yield application
    await application.state.engine.dispose()


@pytest.fixture
def sessions(app: Starlette) -> async_sessionmaker[AsyncSession]:
    result: async_sessionmaker[AsyncSession] = app.state.sessions
    return result


class GraphQL:
    """Real HTTP through the ASGI app. `call` returns the parsed body; `post` the response."""

    def __init__(self, client: httpx.AsyncClient, provider: LocalKeyring) -> None:
        self.client = client
        self.provider = provider
        self.api_key: str | None = None

    def token(self, role: Role | str, customer_id: str | uuid.UUID | None = None) -> str:
        parsed = uuid.UUID(str(customer_id)) if customer_id else None
        return issue_token(self.provider.secret("jwt"), role=Role(role), customer_id=parsed)

    def headers(
        self, *, as_: str | None, token: str | None, customer: str | None
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        if as_ == "app":
            assert self.api_key is not None
            headers["X-API-Key"] = self.api_key
        elif as_ == "customer":
            headers["Authorization"] = f"Bearer {self.token(Role.CUSTOMER, customer)}"
        elif as_ is not None:
            headers["Authorization"] = f"Bearer {self.token(as_)}"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        as_: str | None = "operator",
        token: str | None = None,
        customer: str | None = None,
        accept: str = "application/json",
    ) -> httpx.Response:
        headers = self.headers(as_=as_, token=token, customer=customer) | {"Accept": accept}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def call(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        as_: str | None = "operator",
        customer: str | None = None,
    ) -> dict[str, Any]:
        response = await self.post(query, variables, as_=as_, customer=customer)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        as_: str | None = "operator",
        customer: str | None = None,
    ) -> dict[str, Any]:
        body = await self.call(query, variables, as_=as_, customer=customer)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
async def gql(app: Starlette, provider: LocalKeyring) -> AsyncIterator[GraphQL]:
    async with transaction(app.state.sessions) as session:
        _, key = await create_api_key(session, app_name="test-pos")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        helper = GraphQL(client, provider)
        helper.api_key = key
        yield helper
