"""Concurrent merges leave one untangled graph: `graph verify` is clean and everyone reachable.

On PostgreSQL the merges really interleave (each request has its own connection); on SQLite
the database's one write lock serialises them, and the same outcomes must hold.
"""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select, text

from graph.models import MergeRecord
from graph.verify import verify_graph
from tests.api.operations import REGISTER

CLI = str(Path(sys.executable).with_name("loyalgraph"))
MERGE = """
mutation Merge($input: CustomersMergeInput!) {
  customersMerge(input: $input) { survivor { id } mergedCustomerId errors { code field } }
}
"""
LOOK = 'query($id: ID!) { customer(id: $id) { id status } }'
BY_PHONE = 'query($v: String!) { customerByIdentifier(kind: PHONE, value: $v) { id status } }'


async def _register(gql, phone):
    data = await gql.data(REGISTER, {"input": {"channel": "WEB", "phone": phone}}, as_="app")
    return data["customerRegister"]["customer"]["id"]


async def _merges(gql, inputs):
    results = await asyncio.gather(*(gql.data(MERGE, {"input": i}) for i in inputs))
    payloads = [r["customersMerge"] for r in results]
    ok = [p for p in payloads if not p["errors"]]
    codes = {e["code"] for p in payloads for e in p["errors"]}
    return ok, codes


async def _clean_and_reachable(gql, sessions, phones):
    async with sessions() as session:
        report = await verify_graph(session)
    assert report.ok, report.breaches
    for phone in phones:
        found = (await gql.data(BY_PHONE, {"v": phone}))["customerByIdentifier"]
        assert found["status"] == "ACTIVE"


async def test_opposite_survivors_racing_merge_once(gql, sessions):
    p1, p2 = await _register(gql, "+79161231001"), await _register(gql, "+79161231002")
    inputs = [{"customerIds": [p1, p2], "survivorId": s} for s in (p1, p2) * 5]
    ok, codes = await _merges(gql, inputs)
    assert len(ok) == 1
    assert codes <= {"ALREADY_MERGED", "CONFLICT"}
    survivor = ok[0]["survivor"]["id"]
    for customer in (p1, p2):
        assert (await gql.data(LOOK, {"id": customer}))["customer"] == {"id": survivor, "status": "ACTIVE"}
    await _clean_and_reachable(gql, sessions, ["+79161231001", "+79161231002"])


async def test_one_pair_merged_in_both_orders_has_one_merge_record(gql, sessions):
    a, b = await _register(gql, "+79161231011"), await _register(gql, "+79161231012")
    ok, codes = await _merges(gql, [{"customerIds": pair} for pair in ([a, b], [b, a]) * 10])
    assert len(ok) == 1
    assert codes <= {"ALREADY_MERGED", "CONFLICT"}
    async with sessions() as session:
        records = (await session.execute(select(func.count()).select_from(MergeRecord))).scalar_one()
    assert records == 1
    await _clean_and_reachable(gql, sessions, ["+79161231011", "+79161231012"])


async def test_chained_merges_racing_leave_everyone_on_an_active_customer(gql, sessions):
    for round_ in range(3):
        phones = [f"+791612310{round_}{n}" for n in range(3)]
        a, b, c = [await _register(gql, phone) for phone in phones]
        ok, codes = await _merges(gql, [
            {"customerIds": [a, b], "survivorId": a},
            {"customerIds": [b, c], "survivorId": b},
        ])
        assert ok, codes
        assert codes <= {"ALREADY_MERGED", "CUSTOMER_NOT_ACTIVE", "CONFLICT"}
        await _clean_and_reachable(gql, sessions, phones)


def _verify(database_url, tmp_path):
    env = {**os.environ, "LOYALGRAPH_HOME": str(tmp_path / "cli"), "LOYALGRAPH_DATABASE_URL": database_url}
    return subprocess.run([CLI, "graph", "verify"], env=env, capture_output=True, text=True, timeout=120)


async def test_graph_verify_names_the_first_breach(gql, sessions, database_url, tmp_path):
    p1, p2 = await _register(gql, "+79161231021"), await _register(gql, "+79161231022")
    ok, _ = await _merges(gql, [{"customerIds": [p1, p2], "survivorId": p1}])
    assert len(ok) == 1
    clean = await asyncio.to_thread(_verify, database_url, tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "the customer graph is consistent" in clean.stdout

    # given the tangle the old race left: each of the two merged into the other
    async with sessions() as session:
        await session.execute(text(
            "UPDATE customer SET status = 'MERGED', survivor_id ="
            " (SELECT id FROM customer c2 WHERE c2.survivor_id = customer.id)"
            " WHERE survivor_id IS NULL AND id IN (SELECT survivor_id FROM customer)"
        ))
        await session.commit()
    broken = await asyncio.to_thread(_verify, database_url, tmp_path)
    assert broken.returncode == 1
    assert "first breach: merged_points_to_active" in broken.stdout
    assert "identity_resolves_to_active" in broken.stdout
    assert "+7916" not in broken.stdout
