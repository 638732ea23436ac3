"""Events of every kind, keyset pagination, filters, identifiers, RFM facts."""

from tests.api.operations import PURCHASE, REGISTER, purchase_input

EVENT = "mutation($i: EventRecordInput!) { eventRecord(input: $i) { replayed event { __typename type channel ... on ContactInteraction { topic satisfaction } } errors { code field } } }"
EVENTS = "query($id: ID!, $after: String, $filter: EventFilter) { customer(id: $id) { events(first: 2, after: $after, filter: $filter) { edges { node { type occurredAt } } pageInfo { hasNextPage endCursor } } } }"


async def _customer(gql):
    data = await gql.data(
        REGISTER,
        {"input": {"channel": "POS", "phone": "+79168880000", "loyaltyCard": "7788 0001"}},
        as_="app",
    )
    return data["customerRegister"]["customer"]["id"]


async def test_event_kinds_pages_and_filters(gql):
    customer = await _customer(gql)
    times = [f"2026-01-0{day}T10:00:00Z" for day in range(1, 6)]
    await gql.data(
        PURCHASE,
        {"input": purchase_input(customer, "purchase-0001") | {"occurredAt": times[0]}},
        as_="app",
    )
    card = {"kind": "LOYALTY_CARD", "value": "77880001"}
    by_card = purchase_input(customer, "purchase-0002") | {
        "occurredAt": times[1],
        "channel": "WEB",
        "customerId": None,
        "identifier": card,
    }
    assert (await gql.data(PURCHASE, {"input": by_card}, as_="app"))["purchaseRecord"][
        "errors"
    ] == []
    visit = await gql.data(
        EVENT,
        {
            "i": {
                "customerId": customer,
                "type": "VISIT",
                "channel": "POS",
                "idempotencyKey": "visit-0001",
                "occurredAt": times[2],
            }
        },
        as_="app",
    )
    assert visit["eventRecord"]["event"]["__typename"] == "Visit"
    contact = await gql.data(
        EVENT,
        {
            "i": {
                "customerId": customer,
                "type": "CONTACT",
                "channel": "CONTACT_CENTER",
                "idempotencyKey": "contact-0001",
                "occurredAt": times[3],
                "topic": "delivery",
                "satisfaction": 4,
            }
        },
        as_="app",
    )
    assert contact["eventRecord"]["event"]["topic"] == "delivery"
    campaign = await gql.data(
        EVENT,
        {
            "i": {
                "customerId": customer,
                "type": "CAMPAIGN_RESPONSE",
                "channel": "MOBILE_APP",
                "idempotencyKey": "campaign-0001",
                "occurredAt": times[4],
                "campaign": "spring",
                "campaignChannel": "MOBILE_APP",
                "action": "CLICKED",
            }
        },
        as_="app",
    )
    assert campaign["eventRecord"]["errors"] == []

    seen, after = [], None
    while True:
        page = (await gql.data(EVENTS, {"id": customer, "after": after}))["customer"]["events"]
        seen += [edge["node"]["occurredAt"][:10] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [t[:10] for t in reversed(times)]

    purchases = (
        await gql.data(
            EVENTS, {"id": customer, "filter": {"types": ["PURCHASE"], "channels": ["WEB"]}}
        )
    )["customer"]["events"]
    assert [e["node"]["type"] for e in purchases["edges"]] == ["PURCHASE"]
    contact_bad = await gql.data(
        EVENT,
        {
            "i": {
                "customerId": customer,
                "type": "CONTACT",
                "channel": "CONTACT_CENTER",
                "idempotencyKey": "contact-0002",
                "topic": "x",
                "satisfaction": 9,
            }
        },
        as_="app",
    )
    assert contact_bad["eventRecord"]["errors"][0]["field"] == ["input", "satisfaction"]
    unknown = await gql.data(
        PURCHASE,
        {
            "input": purchase_input(customer, "purchase-0003")
            | {"customerId": None, "identifier": {"kind": "LOYALTY_CARD", "value": "999999"}}
        },
        as_="app",
    )
    assert unknown["purchaseRecord"]["errors"][0]["code"] == "CUSTOMER_NOT_FOUND"


async def test_rfm_facts(gql):
    customer = await _customer(gql)
    for n, day in enumerate(["2026-01-01", "2026-01-11", "2026-01-31"]):
        await gql.data(
            PURCHASE,
            {
                "input": purchase_input(
                    customer, f"rfm-order-{n:04d}", price=1000 * (n + 1), quantity=1
                )
                | {"occurredAt": f"{day}T12:00:00Z"}
            },
            as_="app",
        )
    rfm = (
        await gql.data(
            "query($id: ID!) { customer(id: $id) { rfm { frequency monetary { amountMinor currency } averageCheck { amountMinor } averageInterPurchaseDays recencyDays lifetimeDays } } }",
            {"id": customer},
        )
    )["customer"]["rfm"]
    assert rfm["frequency"] == 3
    assert rfm["monetary"] == {"amountMinor": 6000, "currency": "RUB"}
    assert rfm["averageCheck"]["amountMinor"] == 2000
    assert rfm["averageInterPurchaseDays"] == 15.0
    assert rfm["lifetimeDays"] - rfm["recencyDays"] == 30


async def test_unverified_identifier_never_merges(gql):
    first = await gql.data(
        REGISTER, {"input": {"channel": "POS", "phone": "+79168889999"}}, as_="app"
    )
    second = await gql.data(
        REGISTER,
        {"input": {"channel": "WEB", "phone": "+79168889999", "phoneVerified": True}},
        as_="app",
    )
    assert second["customerRegister"]["created"] is True
    assert (
        first["customerRegister"]["customer"]["id"] != second["customerRegister"]["customer"]["id"]
    )
    third = await gql.data(
        REGISTER,
        {"input": {"channel": "MOBILE_APP", "phone": "8 916 888 99 99", "phoneVerified": True}},
        as_="app",
    )
    assert (
        third["customerRegister"]["customer"]["id"] == second["customerRegister"]["customer"]["id"]
    )
    # an event by that phone goes to the verified holder, never to the one who only typed it
    bought = await gql.data(
        PURCHASE,
        {
            "input": purchase_input("", "by-phone-0001")
            | {"customerId": None, "identifier": {"kind": "PHONE", "value": "+79168889999"}}
        },
        as_="app",
    )
    assert bought["purchaseRecord"]["errors"] == []
    who = await gql.data(
        "query($id: ID!) { customer(id: $id) { rfm { frequency } } }",
        {"id": first["customerRegister"]["customer"]["id"]},
    )
    assert who["customer"]["rfm"]["frequency"] == 0


async def test_an_identifier_only_typed_in_records_nothing(gql):
    await gql.data(REGISTER, {"input": {"channel": "POS", "phone": "+79168887777"}}, as_="app")
    unverified = await gql.data(
        PURCHASE,
        {
            "input": purchase_input("", "typed-0001")
            | {"customerId": None, "identifier": {"kind": "PHONE", "value": "8 916 888 77 77"}}
        },
        as_="app",
    )
    assert unverified["purchaseRecord"]["errors"][0]["code"] == "CUSTOMER_NOT_FOUND"


async def test_contact_topics_are_codes_not_free_text(gql):
    customer = await _customer(gql)
    free_text = await gql.data(
        EVENT,
        {
            "i": {
                "customerId": customer,
                "type": "CONTACT",
                "channel": "CONTACT_CENTER",
                "idempotencyKey": "contact-free-1",
                "topic": "Мой телефон +79161234567 не работает",
            }
        },
        as_="app",
    )
    assert free_text["eventRecord"]["errors"][0]["field"] == ["input", "topic"]
    assert free_text["eventRecord"]["errors"][0]["code"] == "INVALID_INPUT"
