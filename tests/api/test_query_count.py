"""DataLoaders keep the number of SQL statements flat, whatever the page size."""

import pytest
from sqlalchemy import event

from tests.api.operations import PURCHASE, REGISTER, purchase_input

PAGE = """
query Page($first: Int!) {
  customers(first: $first) {
    edges { node {
      id
      identities { kind verified }
      events(first: 5) { edges { node { id type ... on Purchase { total { amountMinor } lines { sku } } } } }
      reviews { rating helpfulVotes }
      referredBy { status referrer { id } }
      rfm { frequency }
    } }
  }
}
"""


@pytest.fixture
def statements(app):
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


async def _seed(gql, people: int) -> None:
    ids = []
    for n in range(people):
        data = await gql.data(
            REGISTER, {"input": {"channel": "POS", "phone": f"+7916{5550000 + n}"}}, as_="app"
        )
        ids.append(data["customerRegister"]["customer"]["id"])
    for n, customer in enumerate(ids):
        for k in range(2):
            await gql.data(
                PURCHASE,
                {"input": purchase_input(customer, f"seed-{n}-{k}", sku=f"S{k}")},
                as_="app",
            )
        await gql.data(
            "mutation($i: ReviewSubmitInput!) { reviewSubmit(input: $i) { errors { code } } }",
            {"i": {"customerId": customer, "productSku": "S0", "rating": 4}},
            as_="app",
        )
    for n in range(1, people):
        created = await gql.data(
            "mutation($i: ReferralCreateInput!) { referralCreate(input: $i) { referral { code } } }",
            {"i": {"referrerId": ids[n - 1]}},
        )
        code = created["referralCreate"]["referral"]["code"]
        await gql.data(
            "mutation($i: ReferralAcceptInput!) { referralAccept(input: $i) { errors { code } } }",
            {"i": {"code": code, "customerId": ids[n]}},
        )


async def test_statement_count_does_not_grow_with_the_page(gql, statements):
    await _seed(gql, 50)
    counts = {}
    for first in (5, 50):
        statements.clear()
        data = await gql.data(PAGE, {"first": first})
        assert len(data["customers"]["edges"]) == first
        assert all(len(e["node"]["events"]["edges"]) == 2 for e in data["customers"]["edges"])
        counts[first] = len(statements)
    print(f"statements per page: {counts}")
    assert counts[5] == counts[50], counts
    assert counts[50] <= 12, counts


async def test_one_data_key_lookup_for_a_profile(gql, statements):
    await _seed(gql, 3)
    customer = (await gql.data("{ customers(first: 1) { edges { node { id } } } }"))["customers"][
        "edges"
    ][0]["node"]["id"]
    await gql.data(
        "mutation($i: ReviewSubmitInput!) { reviewSubmit(input: $i) { errors { code } } }",
        {"i": {"customerId": customer, "productSku": "S9", "rating": 5, "text": "text to decrypt"}},
        as_="app",
    )
    statements.clear()
    data = await gql.data(
        "query($id: ID!) { customer(id: $id) { profile { firstName } identities { value } reviews { text } socialProfiles { handle } } }",
        {"id": customer},
    )
    assert data["customer"]["reviews"][0]["text"] == "text to decrypt"
    assert sum("FROM data_key" in s for s in statements) == 1, statements


async def test_node_lookups_are_batched(gql, statements):
    await _seed(gql, 6)
    page = await gql.data(
        "{ customers(first: 6) { edges { node { reviews { id } identities { id } } } } }"
    )
    ids = [n["reviews"][0]["id"] for n in (e["node"] for e in page["customers"]["edges"])]
    ids += [n["identities"][0]["id"] for n in (e["node"] for e in page["customers"]["edges"])]
    aliases = " ".join(f'n{i}: node(id: "{node_id}") {{ id }}' for i, node_id in enumerate(ids))
    statements.clear()
    data = await gql.data("{ " + aliases + " }")
    assert all(value is not None for value in data.values())
    # one statement per table, plus the owners' customer rows and the API key check
    assert len(statements) <= 5, statements


LOYALTY_PAGE = """
query LoyaltyPage($first: Int!) {
  customers(first: $first) {
    edges { node {
      id
      loyalty {
        balance pendingBalance heldPoints
        tier { code name multiplier }
        tierProgress { qualifying nextTier { code } remaining }
        expiringSoon(days: 365) { points firstExpiry }
        ledger(first: 3) { edges { node { kind points actor } } }
      }
    } }
  }
}
"""


async def test_loyalty_statements_do_not_grow_with_the_page(gql, statements, sessions):
    from core.db import transaction
    from loyalty.program import load_program
    from tests.integration.loyalty_helpers import program

    async with transaction(sessions) as session:
        tiers = {
            "levels": [
                {"code": "base", "name": "Base", "threshold": 0},
                {"code": "gold", "name": "Gold", "threshold": 1000},
            ]
        }
        await load_program(session, program(tiers=tiers), actor="test")
    await _seed(gql, 12)
    page = await gql.data("{ customers(first: 12) { edges { node { id } } } }")
    for edge in page["customers"]["edges"][::2]:
        adjust = "mutation($i: PointsAdjustInput!) { pointsAdjust(input: $i) { errors { code } } }"
        given = {
            "customerId": edge["node"]["id"],
            "points": 50,
            "reason": "goodwill",
            "idempotencyKey": f"goodwill-{edge['node']['id']}",
        }
        await gql.data(adjust, {"i": given})
    counts = {}
    for first in (3, 12):
        statements.clear()
        data = await gql.data(LOYALTY_PAGE, {"first": first})
        accounts = [edge["node"]["loyalty"] for edge in data["customers"]["edges"]]
        assert len(accounts) == first
        assert all(
            account["pendingBalance"] == 400 for account in accounts
        )  # two purchases of 200.00
        assert accounts[0]["balance"] == 50 and accounts[0]["tierProgress"]["nextTier"] == {
            "code": "gold"
        }
        counts[first] = len(statements)
    print(f"loyalty statements per page: {counts}")
    assert counts[3] == counts[12], counts
    assert counts[12] <= 12, counts
