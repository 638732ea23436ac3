"""Data subject requests over GraphQL: a customer files for themself (never for another), staff
file on a customer's behalf, compliance processes and lists them; typed payload errors change
nothing; the access package reaches compliance and the subject only. And `loyalgraph requests
due` lists what is overdue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from api.schema.common import customer_uuid, from_global_id
from core.db import transaction
from privacy.enforcement import may_process
from privacy.fields import FieldCipher
from privacy.models import AuditEntry
from privacy.purposes import Purpose
from privacy.request_models import DataSubjectRequest, DataSubjectRequestStep, RequestKind
from privacy.requests import submit_request
from tests.api.operations import REGISTER

REQUEST_FIELDS = """
  id customerId kind status receivedAt dueAt extended overdue purpose channel receivedVia
  reason changes { field value }
  steps { action fromStatus toStatus actor reason }
  accessPackage { json html }
  certificate { id actor method keysDestroyed digest tables { table rowsDeleted } }
"""
SUBMIT = (
    "mutation($input: DataSubjectRequestSubmitInput!) { dataSubjectRequestSubmit(input: $input) {"
    f" request {{ {REQUEST_FIELDS} }} errors {{ code message field }} }} }}"
)
PROCESS = (
    "mutation($input: DataSubjectRequestProcessInput!) { dataSubjectRequestProcess(input: $input) {"
    f" request {{ {REQUEST_FIELDS} }} errors {{ code message field }} }} }}"
)
LIST = (
    "query($filter: DataSubjectRequestFilter, $first: Int, $after: String) {"
    " dataSubjectRequests(filter: $filter, first: $first, after: $after) {"
    "  edges { cursor node { id kind status dueAt overdue } } pageInfo { hasNextPage endCursor } } }"
)
MINE = (
    "query { myDataSubjectRequests(first: 10) { edges { node {"
    " id kind status reason accessPackage { json html } } } } }"
)
CLI = str(Path(sys.executable).with_name("loyalgraph"))


async def _member(gql, phone: str, first_name: str) -> str:
    fields = {"channel": "WEB", "phone": phone, "phoneVerified": True, "firstName": first_name}
    data = await gql.data(REGISTER, {"input": fields}, as_="app")
    assert data["customerRegister"]["errors"] == []
    return str(data["customerRegister"]["customer"]["id"])


def _as(customer: str) -> dict[str, Any]:
    return {"as_": "customer", "customer": str(customer_uuid(customer))}


async def _payload(gql, operation: str, input: dict[str, Any], **caller: Any) -> dict[str, Any]:
    [payload] = (await gql.data(operation, {"input": input}, **caller)).values()
    return payload


def _codes(body: dict[str, Any]) -> set[str]:
    return {error["extensions"]["code"] for error in body.get("errors", [])}


async def _counts(sessions) -> tuple[int, int, int]:
    async with sessions() as session:
        found = [
            (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for table in (DataSubjectRequest, DataSubjectRequestStep, AuditEntry)
        ]
        return found[0], found[1], found[2]


async def test_a_customer_files_an_access_request_and_reads_the_package(gql, sessions):
    # given a customer
    zoya = await _member(gql, "+7 916 300-40-50", "Zoya")

    # when she files an access request about herself
    submitted = await _payload(
        gql,
        SUBMIT,
        {"customerId": zoya, "kind": "ACCESS", "reason": "What do you keep on me?"},
        **_as(zoya),
    )

    # then it is received, due in ten working days, with her words readable to her
    assert submitted["errors"] == []
    request = submitted["request"]
    assert (request["kind"], request["status"], request["extended"]) == (
        "ACCESS",
        "RECEIVED",
        False,
    )
    assert request["customerId"] == zoya
    assert request["receivedVia"] == "WEB"
    assert request["reason"] == "What do you keep on me?"
    received = datetime.fromisoformat(request["receivedAt"])
    due = datetime.fromisoformat(request["dueAt"])
    assert timedelta(days=10) <= due - received <= timedelta(days=30)
    assert [s["action"] for s in request["steps"]] == ["RECEIVED"]
    assert request["accessPackage"] is None

    # when compliance verifies her identity and executes it
    verified = await _payload(
        gql,
        PROCESS,
        {"requestId": request["id"], "action": "VERIFY_IDENTITY", "reason": "called back"},
        as_="compliance",
    )
    assert verified["errors"] == []
    done = await _payload(
        gql, PROCESS, {"requestId": request["id"], "action": "EXECUTE"}, as_="compliance"
    )

    # then the package comes back to compliance as JSON and HTML
    assert done["errors"] == []
    assert done["request"]["status"] == "COMPLETED"
    package = done["request"]["accessPackage"]
    assert "Zoya" in json.dumps(json.loads(package["json"]))
    assert "Zoya" in package["html"]
    assert [s["action"] for s in done["request"]["steps"]] == [
        "RECEIVED",
        "IDENTITY_VERIFIED",
        "STARTED",
        "COMPLETED",
    ]

    # and to her, among her own requests
    mine = (await gql.data(MINE, **_as(zoya)))["myDataSubjectRequests"]["edges"]
    assert [edge["node"]["id"] for edge in mine] == [request["id"]]
    assert mine[0]["node"]["accessPackage"]["json"] == package["json"]

    # but an operator sees the request without the package or her words
    listed = await gql.call(
        "query($id: ID!) { dataSubjectRequests(filter: {customerId: $id}) { edges { node { id } } } }",
        {"id": zoya},
        as_="operator",
    )
    assert _codes(listed) == {"FORBIDDEN"}

    # and another customer sees none of it
    other = await _member(gql, "+7 916 300-40-51", "Oleg")
    assert (await gql.data(MINE, **_as(other)))["myDataSubjectRequests"]["edges"] == []


async def test_a_customer_filing_about_another_customer_gets_a_typed_error(gql, sessions):
    zoya = await _member(gql, "+7 916 300-40-60", "Zoya")
    oleg = await _member(gql, "+7 916 300-40-61", "Oleg")
    before = await _counts(sessions)

    # when Oleg files a destruction request about Zoya
    payload = await _payload(gql, SUBMIT, {"customerId": zoya, "kind": "DESTRUCTION"}, **_as(oleg))

    # then it is a typed payload error, and nothing was written
    assert payload["request"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("NOT_YOUR_DATA", ["input", "customerId"])
    ]
    assert await _counts(sessions) == before

    # the same about an id that does not exist: the same answer, no oracle
    unknown = "00000000-0000-4000-8000-000000000000"
    payload = await _payload(gql, SUBMIT, {"customerId": unknown, "kind": "ACCESS"}, **_as(oleg))
    assert [e["code"] for e in payload["errors"]] == ["NOT_YOUR_DATA"]
    assert await _counts(sessions) == before


async def test_staff_file_on_behalf_and_only_compliance_processes(gql, sessions):
    zoya = await _member(gql, "+7 916 300-40-70", "Zoya")

    # an operator files a rectification for her at the contact centre
    filed = await _payload(
        gql,
        SUBMIT,
        {
            "customerId": zoya,
            "kind": "RECTIFICATION",
            "changes": [{"field": "first_name", "value": "Zoia"}],
        },
        as_="operator",
    )
    assert filed["errors"] == []
    request = filed["request"]
    assert request["receivedVia"] == "CONTACT_CENTER"
    assert request["changes"] is None  # an operator does not read the requested values back
    assert request["steps"][0]["actor"].startswith("staff:")

    # an unknown customer is a typed error for staff
    unknown = "00000000-0000-4000-8000-000000000000"
    missing = await _payload(gql, SUBMIT, {"customerId": unknown, "kind": "ACCESS"}, as_="operator")
    assert [e["code"] for e in missing["errors"]] == ["CUSTOMER_NOT_FOUND"]

    # apps, analysts and anonymous callers may not file; only compliance and admins process
    for caller in ("app", "analyst"):
        body = await gql.call(SUBMIT, {"input": {"customerId": zoya, "kind": "ACCESS"}}, as_=caller)
        assert _codes(body) == {"FORBIDDEN"}, caller
    anonymous = await gql.post(SUBMIT, {"input": {"customerId": zoya, "kind": "ACCESS"}}, as_=None)
    assert anonymous.status_code == 401
    step = {"input": {"requestId": request["id"], "action": "VERIFY_IDENTITY"}}
    for caller in ("operator", "analyst"):
        assert _codes(await gql.call(PROCESS, step, as_=caller)) == {"FORBIDDEN"}
    assert _codes(await gql.call(PROCESS, step, **_as(zoya))) == {"FORBIDDEN"}

    # compliance sees the requested values, and the rectification goes through
    verified = await _payload(gql, PROCESS, step["input"], as_="admin")
    assert verified["request"]["changes"] == [{"field": "first_name", "value": "Zoia"}]
    done = await _payload(
        gql, PROCESS, {"requestId": request["id"], "action": "EXECUTE"}, as_="compliance"
    )
    assert done["errors"] == []
    assert done["request"]["status"] == "COMPLETED"
    name = await gql.data(
        "query($id: ID!) { customer(id: $id) { profile { firstName } } }", {"id": zoya}
    )
    assert name["customer"]["profile"]["firstName"] == "Zoia"


async def test_bad_steps_are_typed_payload_errors_that_change_nothing(gql, sessions):
    zoya = await _member(gql, "+7 916 300-40-80", "Zoya")
    filed = await _payload(gql, SUBMIT, {"customerId": zoya, "kind": "BLOCKING"}, **_as(zoya))
    request_id = filed["request"]["id"]
    before = await _counts(sessions)
    cases = [
        ({"action": "EXTEND", "reason": "busy"}, "EXTENSION_NOT_ALLOWED"),
        ({"action": "REFUSE"}, "REASON_REQUIRED"),
        ({"action": "START"}, "INVALID_TRANSITION"),
    ]
    for step, code in cases:
        payload = await _payload(gql, PROCESS, {"requestId": request_id, **step}, as_="compliance")
        assert payload["request"] is None
        assert [e["code"] for e in payload["errors"]] == [code], step
    assert await _counts(sessions) == before

    # a blocking request may be executed at once, and then nothing is processed
    done = await _payload(
        gql, PROCESS, {"requestId": request_id, "action": "EXECUTE"}, as_="compliance"
    )
    assert done["request"]["status"] == "COMPLETED"
    async with sessions() as session:
        subject = customer_uuid(zoya)
        assert not await may_process(session, subject_id=subject, purpose=Purpose.PROFILING)

    # bad submissions
    for input, code in [
        ({"kind": "RECTIFICATION"}, "CHANGES_REQUIRED"),
        (
            {"kind": "RECTIFICATION", "changes": [{"field": "salary", "value": "1"}]},
            "UNKNOWN_FIELD",
        ),
        ({"kind": "CONSENT_WITHDRAWAL", "purpose": "MARKETING"}, "CHANNEL_REQUIRED"),
        ({"kind": "ACCESS", "purpose": "PROFILING"}, "PURPOSE_NOT_ALLOWED"),
    ]:
        payload = await _payload(gql, SUBMIT, {"customerId": zoya, **input}, as_="compliance")
        assert [e["code"] for e in payload["errors"]] == [code], input
    assert (await _counts(sessions))[0] == before[0]


async def test_a_destruction_request_returns_its_certificate(gql):
    zoya = await _member(gql, "+7 916 300-40-90", "Zoya")
    filed = await _payload(gql, SUBMIT, {"customerId": zoya, "kind": "DESTRUCTION"}, **_as(zoya))
    request_id = filed["request"]["id"]
    for action in ("VERIFY_IDENTITY", "EXECUTE"):
        payload = await _payload(
            gql, PROCESS, {"requestId": request_id, "action": action}, as_="compliance"
        )
        assert payload["errors"] == []
    certificate = payload["request"]["certificate"]
    assert certificate["keysDestroyed"] >= 1
    assert certificate["actor"].startswith("staff:")
    assert len(certificate["digest"]) == 64
    assert any(table["table"] == "data_key" for table in certificate["tables"])
    # the customer can no longer be found
    gone = await gql.data(
        "query($p: String!) { customerByIdentifier(kind: PHONE, value: $p) { id } }",
        {"p": "+7 916 300-40-90"},
    )
    assert gone["customerByIdentifier"] is None


async def _filed(sessions, provider, subject, kind: RequestKind, at: datetime) -> None:
    async with transaction(sessions) as session:
        await submit_request(
            session,
            FieldCipher(session, provider),
            subject_id=subject,
            kind=kind,
            actor="staff:test",
            at=at,
        )


async def test_compliance_lists_overdue_requests_in_pages(gql, sessions, provider):
    # given three access requests received long ago (overdue) and one received now
    zoya = await _member(gql, "+7 916 300-41-00", "Zoya")
    subject = customer_uuid(zoya)
    long_ago = datetime.now(UTC) - timedelta(days=60)
    for offset in range(3):
        await _filed(
            sessions, provider, subject, RequestKind.ACCESS, long_ago + timedelta(days=offset)
        )
    await _filed(sessions, provider, subject, RequestKind.ACCESS, datetime.now(UTC))

    # when compliance lists the overdue ones two at a time
    first = (await gql.data(LIST, {"filter": {"overdue": True}, "first": 2}, as_="compliance"))[
        "dataSubjectRequests"
    ]
    rest = (
        await gql.data(
            LIST,
            {"filter": {"overdue": True}, "first": 2, "after": first["pageInfo"]["endCursor"]},
            as_="compliance",
        )
    )["dataSubjectRequests"]

    # then all three come, soonest deadline first, each marked overdue
    nodes = [edge["node"] for edge in first["edges"] + rest["edges"]]
    assert len(nodes) == 3 and first["pageInfo"]["hasNextPage"] is True
    assert rest["pageInfo"]["hasNextPage"] is False
    assert all(node["overdue"] for node in nodes)
    assert [node["dueAt"] for node in nodes] == sorted(node["dueAt"] for node in nodes)
    everything = await gql.data(LIST, {"first": 100}, as_="compliance")
    assert len(everything["dataSubjectRequests"]["edges"]) == 4

    # the limits hold, and customers may not list
    assert _codes(await gql.call(LIST, {"first": 101}, as_="compliance")) == {"BAD_USER_INPUT"}
    assert _codes(
        await gql.call(LIST, {"filter": {"dueWithinWorkingDays": -1}}, as_="compliance")
    ) == {"BAD_USER_INPUT"}
    assert _codes(await gql.call(LIST, {}, **_as(zoya))) == {"FORBIDDEN"}
    kinds = {"filter": {"kinds": ["DESTRUCTION"]}}
    assert (await gql.data(LIST, kinds, as_="admin"))["dataSubjectRequests"]["edges"] == []

    # and `loyalgraph requests due` prints them, exiting 1 because some are overdue
    env = {
        **os.environ,
        "LOYALGRAPH_HOME": str(Path(gql.provider.path).parent),
        "LOYALGRAPH_DATABASE_URL": str(
            sessions.kw["bind"].url.render_as_string(hide_password=False)
        ),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [CLI, "requests", "due", "--within", "0", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert [row["overdue"] for row in report["requests"]] == [True, True, True]
    assert {row["id"] for row in report["requests"]} == {
        str(from_global_id(node["id"], expected="DataSubjectRequest")[1]) for node in nodes
    }
    table = subprocess.run(
        [CLI, "requests", "due", "--within", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert table.returncode == 1
    assert "OVERDUE" in table.stdout and "4 requests, 3 overdue" in table.stdout
