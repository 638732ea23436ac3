"""Merge two records of one person, then unmerge: both come back exactly as they were."""

from tests.api.operations import PURCHASE, REGISTER, purchase_input

SNAPSHOT = """
query Snapshot($id: ID!) {
  customer(id: $id) {
    id status
    profile { firstName lastName birthDate }
    identities { kind value verified }
    events(first: 50) { edges { node { id type } } }
    reviews { id rating }
    socialProfiles { platform handle followers }
    rfm { frequency monetary { amountMinor } }
  }
}
"""

MERGE = """
mutation Merge($input: CustomersMergeInput!) {
  customersMerge(input: $input) { survivor { id } mergedCustomerId errors { code field } }
}
"""

UNMERGE = """
mutation Unmerge($input: CustomerUnmergeInput!) {
  customerUnmerge(input: $input) { customer { id status } survivor { id } errors { code field } }
}
"""


async def _register(gql, **fields):
    data = await gql.data(REGISTER, {"input": fields}, as_="app")
    assert data["customerRegister"]["errors"] == []
    return data["customerRegister"]["customer"]["id"]


async def _snapshot(gql, customer_id):
    return (await gql.data(SNAPSHOT, {"id": customer_id}))["customer"]


async def _person_with_history(gql):
    first = await _register(gql, channel="POS", phone="+79161230001", firstName="Иван")
    second = await _register(
        gql, channel="WEB", email="ivan@example.com", lastName="Петров", birthDate="1990-05-17"
    )
    await gql.data(
        PURCHASE, {"input": purchase_input(first, "pos-receipt-1", price=5_000)}, as_="app"
    )
    await gql.data(
        PURCHASE,
        {"input": purchase_input(second, "web-order-1", price=7_000, channel="WEB")},
        as_="app",
    )
    review = await gql.data(
        "mutation($i: ReviewSubmitInput!) { reviewSubmit(input: $i) { errors { code } } }",
        {
            "i": {
                "customerId": second,
                "productSku": "SKU-9",
                "rating": 5,
                "text": "Отличные кроссовки",
            }
        },
        as_="app",
    )
    assert review["reviewSubmit"]["errors"] == []
    social = await gql.data(
        "mutation($i: SocialProfileLinkInput!) { socialProfileLink(input: $i) { errors { code } } }",
        {
            "i": {
                "customerId": second,
                "platform": "TELEGRAM",
                "handle": "@ivan_runs",
                "followers": 1200,
            }
        },
        as_="app",
    )
    assert social["socialProfileLink"]["errors"] == []
    return first, second


async def test_merge_then_unmerge_restores_both_customers_exactly(gql):
    first, second = await _person_with_history(gql)
    before = {first: await _snapshot(gql, first), second: await _snapshot(gql, second)}

    merged = await gql.data(
        MERGE, {"input": {"customerIds": [first, second], "reason": "same person"}}
    )
    payload = merged["customersMerge"]
    assert payload["errors"] == []
    assert payload["survivor"]["id"] == first  # the longest-standing customer survives

    survivor = await _snapshot(gql, first)
    assert await _snapshot(gql, second) == survivor  # the old id resolves to the survivor
    assert {i["kind"] for i in survivor["identities"]} == {"PHONE", "EMAIL"}
    assert len(survivor["events"]["edges"]) == 2
    assert survivor["rfm"]["monetary"]["amountMinor"] == 24_000
    assert survivor["profile"] == {
        "firstName": "Иван",
        "lastName": "Петров",
        "birthDate": "1990-05-17",
    }
    by_email = await gql.data(
        'query { customerByIdentifier(kind: EMAIL, value: "IVAN@example.com") { id } }'
    )
    assert by_email["customerByIdentifier"]["id"] == first

    undone = await gql.data(UNMERGE, {"input": {"customerId": second}})
    assert undone["customerUnmerge"]["errors"] == []
    assert undone["customerUnmerge"]["customer"] == {"id": second, "status": "ACTIVE"}
    assert await _snapshot(gql, first) == before[first]
    assert await _snapshot(gql, second) == before[second]


async def test_unmerge_of_a_chain_restores_what_the_merged_customer_brought(gql):
    a = await _register(gql, channel="POS", phone="+79161230011")
    b = await _register(gql, channel="WEB", phone="+79161230012")
    c = await _register(gql, channel="MOBILE_APP", phone="+79161230013")
    await gql.data(PURCHASE, {"input": purchase_input(c, "app-order-1")}, as_="app")
    before_b = await _snapshot(gql, b)
    assert (await gql.data(MERGE, {"input": {"customerIds": [b, c], "survivorId": b}}))[
        "customersMerge"
    ]["errors"] == []
    with_c = await _snapshot(gql, b)
    assert (await gql.data(MERGE, {"input": {"customerIds": [a, b]}}))["customersMerge"][
        "errors"
    ] == []
    assert (
        len((await _snapshot(gql, c))["identities"]) == 3
    )  # c resolves to a, which holds all three

    assert (await gql.data(UNMERGE, {"input": {"customerId": b}}))["customerUnmerge"][
        "errors"
    ] == []
    assert await _snapshot(gql, b) == with_c  # b comes back with c inside it
    assert (await gql.data(UNMERGE, {"input": {"customerId": c}}))["customerUnmerge"][
        "errors"
    ] == []
    assert await _snapshot(gql, b) == before_b


async def test_merge_errors_are_typed_and_change_nothing(gql):
    a = await _register(gql, channel="POS", phone="+79161230021")
    same = await gql.data(MERGE, {"input": {"customerIds": [a, a]}})
    assert same["customersMerge"]["errors"][0]["code"] == "SAME_CUSTOMER"
    not_merged = await gql.data(UNMERGE, {"input": {"customerId": a}})
    assert not_merged["customerUnmerge"]["errors"][0]["code"] == "NOT_MERGED"
    forbidden = await gql.call(MERGE, {"input": {"customerIds": [a, a]}}, as_="analyst")
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await _snapshot(gql, a))["status"] == "ACTIVE"


async def test_unmerge_withdraws_data_that_later_merges_passed_on(gql):
    anna = await _register(
        gql, channel="POS", phone="+79161230031", firstName="Анна", birthDate="1991-02-03"
    )
    bare = await _register(gql, channel="WEB", phone="+79161230032")
    root = await _register(gql, channel="MOBILE_APP", phone="+79161230033", lastName="Кузнецова")
    assert (await gql.data(MERGE, {"input": {"customerIds": [anna, bare], "survivorId": bare}}))[
        "customersMerge"
    ]["errors"] == []
    assert (await gql.data(MERGE, {"input": {"customerIds": [bare, root], "survivorId": root}}))[
        "customersMerge"
    ]["errors"] == []
    assert (await _snapshot(gql, root))["profile"] == {
        "firstName": "Анна",
        "lastName": "Кузнецова",
        "birthDate": "1991-02-03",
    }
    assert (await gql.data(UNMERGE, {"input": {"customerId": anna}}))["customerUnmerge"][
        "errors"
    ] == []
    assert (await _snapshot(gql, root))["profile"] == {
        "firstName": None,
        "lastName": "Кузнецова",
        "birthDate": None,
    }
    assert (await _snapshot(gql, anna))["profile"]["firstName"] == "Анна"


async def test_a_mutation_decides_on_what_the_database_holds_now(gql, app, provider, monkeypatch):
    """A merge that commits while a request waits for the write lock is seen by that request."""
    import api.schema.transaction as boundary
    from api.schema.common import customer_uuid
    from core.db import begin_write, transaction
    from graph.merge import merge_customers
    from privacy.fields import FieldCipher

    a = await _register(gql, channel="POS", phone="+79161230041")
    b = await _register(gql, channel="WEB", phone="+79161230042")
    review = "mutation($i: ReviewSubmitInput!) { reviewSubmit(input: $i) { review { id } errors { code } } }"
    assert (
        await gql.data(
            review, {"i": {"customerId": b, "productSku": "SKU-1", "rating": 5}}, as_="app"
        )
    )["reviewSubmit"]["errors"] == []

    async def merge_lands_first(session):
        async with transaction(app.state.sessions) as other:
            ids = [customer_uuid(a), customer_uuid(b)]
            await merge_customers(
                other,
                FieldCipher(other, provider),
                customer_ids=ids,
                survivor_id=ids[1],
                actor="op",
            )
        await begin_write(session)

    monkeypatch.setattr(boundary, "begin_write", merge_lands_first)
    # A's own token: authentication loads A (still active) before the merge lands
    late = await gql.data(
        review,
        {"i": {"customerId": a, "productSku": "SKU-1", "rating": 1}},
        as_="customer",
        customer=str(customer_uuid(a)),
    )
    monkeypatch.undo()
    assert late["reviewSubmit"]["errors"][0]["code"] == "DUPLICATE_REVIEW"  # A is B now
    assert len((await _snapshot(gql, b))["reviews"]) == 1
