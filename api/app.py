"""The Starlette application: /graphql, /healthz, /readyz and /exports/{id} (signed exports)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import loyalty
from api.exports_route import ROUTES as EXPORT_ROUTES
from api.http import GraphQLView, error_body
from api.ide import ROUTES as IDE_ROUTES
from api.observability import Metrics, Observe, install_log_record_factory
from api.schema.build import build_schema
from core.db import create_engine, session_factory
from core.settings import Settings
from graph import privacy_sources as graph_privacy
from graph.resolution import service as resolution
from loyalty import privacy_sources as loyalty_privacy
from privacy.keys import KeyProvider, LocalKeyring
from scoring import privacy_sources as scoring_privacy
from scoring.registry import Champions

MAX_BODY_BYTES = 1_000_000
log = logging.getLogger("loyalgraph.access")


class BodyLimit:
    """Refuse request bodies over a limit before anything parses them (413, typed error)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = JSONResponse(
            error_body("REQUEST_TOO_LARGE", f"request body over {self.max_bytes} bytes"),
            status_code=413,
        )
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await too_large(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class AccessLog:
    """One line per request: method, path, status, milliseconds. Never the query string or
    body, where identifiers (phones, e-mails) travel; uvicorn's own access log is off."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            log.info("%s %s %s %.1fms", scope["method"], scope["path"], status, elapsed)


def create_app(settings: Settings | None = None, provider: KeyProvider | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    settings.ensure_dirs()
    provider = provider or LocalKeyring(settings.keyring_path)
    loyalty.install()  # purchases from every channel earn points, merges move balances
    graph_privacy.install()  # subject requests reach every domain's personal data
    loyalty_privacy.install()
    scoring_privacy.install()
    resolution.install()  # undoing an automatic merge marks its pair DISTINCT
    engine = create_engine(
        settings.database_url, pool_pre_ping=not settings.database_url.startswith("sqlite")
    )
    sessions = session_factory(engine)
    champions = Champions(settings.mlflow_tracking_uri)
    view = GraphQLView(
        build_schema(production=settings.is_prod),
        settings=settings,
        sessions=sessions,
        provider=provider,
        champions=champions,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"}, status_code=503
            )
        return JSONResponse({"status": "ready", "database": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # The champions load in a worker thread, off the request path (and again whenever an
        # alias moves); until then scores stay readable and online refreshes say so.
        watcher = asyncio.create_task(
            champions.watch(settings.model_refresh_seconds or None), name="champion-watcher"
        )
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await view.limiter.close()
            await engine.dispose()

    install_log_record_factory()
    metrics = Metrics(engine, champions)
    app = Starlette(
        routes=[
            Route("/metrics", metrics.endpoint),
            Route("/graphql", view, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *EXPORT_ROUTES,
            *([] if settings.is_prod else IDE_ROUTES),  # no IDE in production
        ],
        middleware=[
            Middleware(Observe, metrics=metrics),  # outermost: the request id covers every line
            Middleware(AccessLog),
            Middleware(BodyLimit),
        ],
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.settings = settings
    app.state.provider = provider
    app.state.champions = champions
    app.state.metrics = metrics
    return app
