"""Request ids, JSON logs and Prometheus metrics (`/metrics`).

- Every request gets an id (the caller's `X-Request-ID` when it is a plain token, else a new
  one), returned in the `X-Request-ID` header and put on every log line written while the
  request runs (a log record factory, so every logger and handler has `request_id`).
- `LOYALGRAPH_LOG_FORMAT=json` writes one JSON object per line (for production log shippers).
- `/metrics`: requests by GraphQL operation and outcome, latency histograms, errors by code,
  the database pool in use and the model versions being served. The metrics live in the app's
  own registry (two apps in one process do not mix their counts).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from cross_web import HTTPException
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.transport import decode_request_json
from scoring.registry import Champions

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_INBOUND_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_OPERATION = re.compile(r"^\s*(?:query|mutation|subscription)\s+([A-Za-z_]\w{0,63})")
_NAME = re.compile(r"[A-Za-z_]\w{0,63}")
MAX_OPERATIONS = 500  # distinct operation labels; later names are counted as "other"
MAX_BODY_SNIFF = 1_000_000


def install_log_record_factory() -> None:
    """Give every log record a `request_id` attribute (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, "loyalgraph", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        record.request_id = request_id.get()
        return record

    factory.loyalgraph = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Root logging for `loyalgraph serve`: text (default) or one JSON object per line."""
    install_log_record_factory()
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _Live(Collector):
    """Values read when Prometheus scrapes: the database pool and the served models."""

    def __init__(self, engine: AsyncEngine, champions: Champions | None) -> None:
        self.engine = engine
        self.champions = champions

    def collect(self) -> Iterable[Metric]:
        pool = self.engine.sync_engine.pool
        in_use = GaugeMetricFamily(
            "loyalgraph_db_pool_connections", "Database connections by state", labels=["state"]
        )
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        if callable(checked_out):
            in_use.add_metric(["in_use"], float(checked_out()))
        if callable(size):
            in_use.add_metric(["pool_size"], float(size()))
        yield in_use
        models = GaugeMetricFamily(
            "loyalgraph_model_loaded",
            "Champion model versions this process serves (1 per kind and version)",
            labels=["kind", "version"],
        )
        if self.champions is not None:
            from scoring.kinds import ModelKind

            for kind in ModelKind:
                model = self.champions.get(kind)
                if model is not None:
                    models.add_metric([kind.value, str(model.version)], 1.0)
        yield models


class Metrics:
    def __init__(self, engine: AsyncEngine, champions: Champions | None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loyalgraph_requests",
            "HTTP requests by GraphQL operation (or path) and outcome",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loyalgraph_request_seconds",
            "Request latency by GraphQL operation (or path)",
            ["operation"],
            registry=self.registry,
        )
        self.errors = Counter(
            "loyalgraph_errors",
            "Errors returned to clients, by extensions.code",
            ["code"],
            registry=self.registry,
        )
        self.registry.register(_Live(engine, champions))
        self._operations: set[str] = set()

    def operation_label(self, name: str) -> str:
        if name in self._operations:
            return name
        if len(self._operations) >= MAX_OPERATIONS:
            return "other"
        self._operations.add(name)
        return name

    async def endpoint(self, _: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _operation_of(body: bytes) -> str:
    try:  # the transport's own rule for a body, so nesting or bad bytes cannot raise here
        payload = decode_request_json(body)
    except HTTPException:
        return "invalid"
    name = payload.get("operationName")
    if isinstance(name, str) and _NAME.fullmatch(name):
        return name
    query = payload.get("query")
    if isinstance(query, str):
        found = _OPERATION.match(query)
        if found:
            return found.group(1)
    return "anonymous"


def _error_codes(body: bytes) -> list[str]:
    try:
        payload = json.loads(body)
    except ValueError:
        return []
    codes = []
    for error in payload.get("errors", []) if isinstance(payload, dict) else []:
        code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
        codes.append(str(code) if code else "UNKNOWN")
    return codes


class Observe:
    """Outermost middleware: the request id, then counts and latency once the response ends."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        inbound = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        rid = inbound if _INBOUND_ID.fullmatch(inbound) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        request_body = bytearray()
        response_body = bytearray()
        status = 500
        graphql = scope["path"] == "/graphql"

        # The GraphQL body is read ahead (up to MAX_BODY_SNIFF) so the operation is known even
        # when the app answers before reading it (401), then replayed to the app unchanged.
        buffered: list[Message] = []
        if graphql and scope["method"] == "POST":
            while len(request_body) <= MAX_BODY_SNIFF:
                message = await receive()
                buffered.append(message)
                if message["type"] != "http.request":
                    break
                request_body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    break

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and len(response_body) < (
                MAX_BODY_SNIFF if graphql else 0
            ):
                response_body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay, tagged_send)
        finally:
            self._record(scope, bytes(request_body), bytes(response_body), status, started)
            request_id.reset(token)

    def _record(
        self, scope: Scope, request: bytes, response: bytes, status: int, started: float
    ) -> None:
        if scope["path"] == "/graphql" and status in (401, 429):
            # Refused before anything ran: the caller's operationName must not become a label
            # (an unauthenticated client could fill the label space, or write data into it).
            operation = "unauthenticated" if status == 401 else "rate-limited"
        elif scope["path"] == "/graphql" and scope["method"] == "POST":
            operation = self.metrics.operation_label(_operation_of(request))
        elif scope["path"] == "/graphql":
            operation = "GET /graphql"
        else:
            operation = "other" if scope["path"].startswith("/_graphiql") else scope["path"]
            if operation not in {"/healthz", "/readyz", "/metrics", "other"}:
                operation = "other"
        codes = _error_codes(response) if b'"errors"' in response else []
        outcome = "ok" if status < 400 and not codes else ("error" if status < 500 else "failure")
        self.metrics.requests.labels(operation, outcome).inc()
        self.metrics.latency.labels(operation).observe(time.perf_counter() - started)
        for code in codes:
            self.metrics.errors.labels(code).inc()
        if status >= 500 and not codes:
            self.metrics.errors.labels(f"HTTP_{status}").inc()
