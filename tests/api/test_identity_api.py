"""The review queue over GraphQL: registration lists possible duplicates for staff, operators
list and decide candidates, other roles are refused, evidence holds no values."""

from __future__ import annotations

from graph.enums import IdentityKind
from graph.resolution.job import resolve_base
from graph.resolution.normalise import skeleton
from tests.identity_helpers import seed_world

REGISTER = """
mutation Register($input: CustomerRegisterInput!) {
  customerRegister(input: $input) {
    created
    customer { id }
    possibleDuplicates { id score evidence { field agreement weight } }
    errors { code }
  }
}
"""
QUEUE = """
query Queue($first: Int, $after: String, $min: Float!) {
  duplicateCandidates(first: $first, after: $after, minScore: $min) {
    edges { cursor node { id score status evidence { field agreement weight } customers { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
DECIDE = """
mutation Decide($input: DuplicateDecideInput!) {
  duplicateDecide(input: $input) {
    candidate { id status } survivor { id } errors { code field }
  }
}
"""
POSSIBLE = """
query Possible($id: ID!) { customer(id: $id) { possibleDuplicates { id score } } }
"""


async def _world_with_model(settings, provider, app, monkeypatch):
    world = await seed_world(settings, provider, monkeypatch, people=120, seed=5)
    await resolve_base(app.state.sessions, provider, merge=False, max_pairs=2e4)
    return world


def _twin_input(person):
    phone = next(i.value for i in person.identities if i.kind == IdentityKind.PHONE)
    return {
        "channel": "CONTACT_CENTER",
        "phone": phone,
        "firstName": skeleton(person.first_name).capitalize(),
        "lastName": skeleton(person.last_name).capitalize(),
        "birthDate": person.birth_date.isoformat(),
    }


def _someone(world, skip=None):
    return next(
        p
        for p in world.people
        if p.duplicate_of is None
        and p is not skip
        and p.birth_date is not None
        and any(i.kind == IdentityKind.PHONE for i in p.identities)
    )


async def test_registration_lists_possible_duplicates_for_staff_only(
    gql, settings, provider, app, monkeypatch
):
    world = await _world_with_model(settings, provider, app, monkeypatch)
    person = _someone(world)
    as_app = await gql.data(REGISTER, {"input": _twin_input(person)}, as_="app")
    assert as_app["customerRegister"]["created"] is True
    assert as_app["customerRegister"]["possibleDuplicates"] == []  # an app is not staff
    new_id = as_app["customerRegister"]["customer"]["id"]
    seen = await gql.data(POSSIBLE, {"id": new_id}, as_="operator")
    candidates = seen["customer"]["possibleDuplicates"]
    assert candidates and candidates[0]["score"] >= 0.5
    refused = await gql.call(POSSIBLE, {"id": new_id}, as_="analyst")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    other = _someone(world, skip=person)
    as_operator = await gql.data(REGISTER, {"input": _twin_input(other)}, as_="operator")
    listed = as_operator["customerRegister"]["possibleDuplicates"]
    assert listed and all(isinstance(e["weight"], float) for e in listed[0]["evidence"])
    words = {skeleton(other.first_name), skeleton(other.last_name), other.first_name}
    for item in listed[0]["evidence"]:
        assert not any(word.lower() in item["agreement"].lower() for word in words)


async def test_queue_pages_and_decisions(gql, settings, provider, app, monkeypatch):
    await _world_with_model(settings, provider, app, monkeypatch)
    first = await gql.data(QUEUE, {"first": 2, "min": 0.5})
    edges = first["duplicateCandidates"]["edges"]
    assert len(edges) == 2 and edges[0]["node"]["score"] >= edges[1]["node"]["score"]
    after = first["duplicateCandidates"]["pageInfo"]["endCursor"]
    second = await gql.data(QUEUE, {"first": 2, "after": after, "min": 0.5})
    assert {e["node"]["id"] for e in second["duplicateCandidates"]["edges"]}.isdisjoint(
        {e["node"]["id"] for e in edges}
    )
    refused = await gql.call(QUEUE, {"first": 2, "min": 0.5}, as_="app")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    distinct, merge = edges[0]["node"], edges[1]["node"]
    done = await gql.data(DECIDE, {"input": {"candidateId": distinct["id"], "decision": "DISTINCT"}})
    assert done["duplicateDecide"]["candidate"]["status"] == "DISTINCT"
    again = await gql.data(DECIDE, {"input": {"candidateId": distinct["id"], "decision": "MERGE"}})
    assert again["duplicateDecide"]["errors"][0]["code"] == "CANDIDATE_DECIDED"
    merged = await gql.data(DECIDE, {"input": {"candidateId": merge["id"], "decision": "MERGE"}})
    assert merged["duplicateDecide"]["candidate"]["status"] == "MERGED"
    survivor = merged["duplicateDecide"]["survivor"]["id"]
    assert survivor in {c["id"] for c in merge["customers"]}
    refused = await gql.call(
        DECIDE, {"input": {"candidateId": merge["id"], "decision": "DISTINCT"}}, as_="analyst"
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
