"""What staff do with personal data leaves a pseudonymous trace in the hash-chained audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from api.schema.common import customer_uuid
from privacy.audit import pseudonym, verify_chain
from privacy.models import AuditEntry
from tests.api.operations import REGISTER

pytestmark = pytest.mark.asyncio

PROFILE = """
query Profile($id: ID!) { customer(id: $id) { id profile { firstName } } }
"""
MERGE = """
mutation Merge($input: CustomersMergeInput!) {
  customersMerge(input: $input) { survivor { id } errors { code } }
}
"""
UNMERGE = """
mutation Unmerge($input: CustomerUnmergeInput!) {
  customerUnmerge(input: $input) { customer { id } errors { code } }
}
"""


async def _register(gql, **fields):
    data = await gql.data(REGISTER, {"input": fields}, as_="app")
    return data["customerRegister"]["customer"]["id"]


async def _entries(sessions):
    async with sessions() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.seq))).scalars())


async def test_a_staff_read_is_audited_under_a_pseudonym_and_a_self_read_is_not(
    gql, sessions, provider
):
    cid = await _register(gql, channel="WEB", phone="+79161230001", firstName="Иван")
    before = len(await _entries(sessions))

    await gql.data(PROFILE, {"id": cid}, as_="customer", customer=str(customer_uuid(cid)))
    assert len(await _entries(sessions)) == before

    data = await gql.data(PROFILE, {"id": cid}, as_="operator")
    assert data["customer"]["profile"]["firstName"] == "Иван"
    (read,) = (await _entries(sessions))[before:]
    assert read.action == "personal_data.read"
    assert read.subject == pseudonym(provider, customer_uuid(cid))
    assert read.actor == "staff:operator-dev"
    assert cid not in str(read.details) and str(customer_uuid(cid)) not in read.subject


async def test_a_role_that_may_not_read_personal_data_leaves_no_read_entry(gql, sessions):
    cid = await _register(gql, channel="WEB", phone="+79161230002", firstName="Анна")
    before = len(await _entries(sessions))
    body = await gql.call(PROFILE, {"id": cid}, as_="analyst")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert len(await _entries(sessions)) == before


async def test_merge_and_unmerge_are_audited_and_the_chain_holds(gql, sessions, provider):
    first = await _register(gql, channel="POS", phone="+79161230003")
    second = await _register(gql, channel="WEB", email="a@example.com")
    merged = await gql.data(
        MERGE, {"input": {"customerIds": [first, second], "reason": "same person"}}
    )
    assert merged["customersMerge"]["errors"] == []
    survivor = merged["customersMerge"]["survivor"]["id"]
    other = second if survivor == first else first
    unmerged = await gql.data(UNMERGE, {"input": {"customerId": other}})
    assert unmerged["customerUnmerge"]["errors"] == []

    actions = [entry.action for entry in await _entries(sessions)]
    assert actions.count("customer.merged") == 1 and actions.count("customer.unmerged") == 1
    async with sessions() as session:
        report = await verify_chain(session)
    assert report.ok and report.entries == len(actions)
