"""/metrics after a few requests shows their counts, latencies and error codes; every response
carries a request id, which is also on the log lines written during the request."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.apikeys import create_api_key
from core.db import transaction


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


async def test_metrics_count_requests_latencies_and_errors(app, sessions) -> None:
    async with transaction(sessions) as session:
        _, key = await create_api_key(session, app_name="till")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(3):
            ok = await client.post(
                "/graphql", json={"query": "query Probe { __typename }"},
                headers={"X-API-Key": key},
            )  # fmt: skip
            assert ok.status_code == 200
        denied = await client.post("/graphql", json={"query": "query Probe { __typename }"})
        assert denied.status_code == 401
        bad = await client.post(
            "/graphql", json={"query": "query Broken { nope }"}, headers={"X-API-Key": key}
        )
        assert "errors" in bad.json()
        scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    values = _samples(scrape.text)
    ok_key = ("loyalgraph_requests_total", (("operation", "Probe"), ("outcome", "ok")))
    assert values[ok_key] == 3
    assert (
        values[("loyalgraph_requests_total", (("operation", "Broken"), ("outcome", "error")))] == 1
    )
    assert ("loyalgraph_requests_total", (("operation", "Probe"), ("outcome", "error"))) not in values
    assert values[("loyalgraph_request_seconds_count", (("operation", "Probe"),))] == 3
    assert values[("loyalgraph_request_seconds_sum", (("operation", "Probe"),))] > 0
    assert values[("loyalgraph_errors_total", (("code", "UNAUTHENTICATED"),))] == 1
    # a refused caller's operationName never becomes a label
    refused = ("loyalgraph_requests_total", (("operation", "unauthenticated"), ("outcome", "error")))
    assert values[refused] == 1
    assert values[("loyalgraph_errors_total", (("code", "GRAPHQL_VALIDATION_FAILED"),))] == 1
    assert ("loyalgraph_db_pool_connections", (("state", "in_use"),)) in values or any(
        name == "loyalgraph_db_pool_connections" for name, _ in values
    )


async def test_request_id_in_the_header_and_on_log_lines(
    app, caplog: pytest.LogCaptureFixture
) -> None:
    transport = httpx.ASGITransport(app=app)
    caplog.set_level(logging.INFO, logger="loyalgraph.access")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        fresh = await client.get("/healthz")
        given = await client.get("/healthz", headers={"X-Request-ID": "till-42-abc"})
        hostile = await client.get("/healthz", headers={"X-Request-ID": "a b\nc"})
    assert len(fresh.headers["x-request-id"]) == 32
    assert given.headers["x-request-id"] == "till-42-abc"
    assert hostile.headers["x-request-id"] != "a b\nc"
    ids = [getattr(r, "request_id", None) for r in caplog.records if r.name == "loyalgraph.access"]
    assert ids == [fresh.headers["x-request-id"], "till-42-abc", hostile.headers["x-request-id"]]


def test_json_log_lines_carry_the_request_id() -> None:
    import json

    from api.observability import JsonFormatter, install_log_record_factory, request_id

    install_log_record_factory()
    token = request_id.set("rid-1")
    try:
        record = logging.getLogger("loyalgraph.test").makeRecord(
            "loyalgraph.test", logging.INFO, __file__, 1, "hello %s", ("world",), None
        )
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "rid-1" and line["message"] == "hello world"
