from tests.api.operations import CUSTOMER_BY_IDENTIFIER, PURCHASE, REGISTER, purchase_input


async def test_same_person_at_pos_and_online_is_one_customer(gql):
    # given a customer registered at POS with a national-format phone
    first = await gql.data(
        REGISTER,
        {
            "input": {
                "channel": "POS",
                "phone": "8 (916) 123-45-67",
                "phoneVerified": True,
                "firstName": "Ivan",
            }
        },
        as_="app",
    )
    assert first["customerRegister"]["created"] is True
    # when the same person registers online in E.164
    second = await gql.data(
        REGISTER,
        {
            "input": {
                "channel": "WEB",
                "phone": "+79161234567",
                "phoneVerified": True,
                "email": "ivan@example.com",
            }
        },
        as_="app",
    )
    # then the second registration finds the first
    payload = second["customerRegister"]
    assert payload["errors"] == []
    assert payload["created"] is False
    assert payload["customer"]["id"] == first["customerRegister"]["customer"]["id"]
    for spelling in ("8 (916) 123-45-67", "+79161234567", "+7 916 123 45 67"):
        found = await gql.data(CUSTOMER_BY_IDENTIFIER, {"kind": "PHONE", "value": spelling})
        assert found["customerByIdentifier"]["id"] == payload["customer"]["id"]


async def test_retried_purchase_records_once(gql):
    registered = await gql.data(
        REGISTER, {"input": {"channel": "POS", "phone": "+79161112233"}}, as_="app"
    )
    customer_id = registered["customerRegister"]["customer"]["id"]
    first = await gql.data(
        PURCHASE, {"input": purchase_input(customer_id, "receipt-0001")}, as_="app"
    )
    again = await gql.data(
        PURCHASE, {"input": purchase_input(customer_id, "receipt-0001")}, as_="app"
    )
    assert first["purchaseRecord"]["replayed"] is False
    assert again["purchaseRecord"]["replayed"] is True
    assert again["purchaseRecord"]["purchase"]["id"] == first["purchaseRecord"]["purchase"]["id"]
    events = await gql.data(
        "query($id: ID!) { customer(id: $id) { events(first: 10) { edges { node { id type } } } rfm { frequency monetary { amountMinor } } } }",
        {"id": customer_id},
    )
    assert len(events["customer"]["events"]["edges"]) == 1
    assert events["customer"]["rfm"]["frequency"] == 1
    assert events["customer"]["rfm"]["monetary"]["amountMinor"] == 20_000


async def test_concurrent_registrations_of_one_phone_make_one_customer(gql):
    import asyncio

    async def register():
        return await gql.data(
            REGISTER,
            {"input": {"channel": "WEB", "phone": "+79161112299", "phoneVerified": True}},
            as_="app",
        )

    results = await asyncio.gather(*(register() for _ in range(4)))
    payloads = [r["customerRegister"] for r in results]
    ids = {p["customer"]["id"] for p in payloads if p["customer"]}
    assert len(ids) == 1
    assert all(p["errors"] == [] or p["errors"][0]["code"] == "CONFLICT" for p in payloads)
    found = await gql.data(CUSTOMER_BY_IDENTIFIER, {"kind": "PHONE", "value": "+79161112299"})
    assert found["customerByIdentifier"]["id"] in ids


async def test_concurrent_retries_of_one_purchase_record_once(gql):
    import asyncio

    registered = await gql.data(
        REGISTER, {"input": {"channel": "POS", "phone": "+79161112244"}}, as_="app"
    )
    customer_id = registered["customerRegister"]["customer"]["id"]
    variables = {"input": purchase_input(customer_id, "receipt-concurrent-1")}
    results = await asyncio.gather(*(gql.data(PURCHASE, variables, as_="app") for _ in range(5)))
    ids = {r["purchaseRecord"]["purchase"]["id"] for r in results}
    assert len(ids) == 1
    assert sorted(r["purchaseRecord"]["replayed"] for r in results) == [
        False,
        True,
        True,
        True,
        True,
    ]
    rfm = await gql.data(
        "query($id: ID!) { customer(id: $id) { rfm { frequency } } }", {"id": customer_id}
    )
    assert rfm["customer"]["rfm"]["frequency"] == 1


async def test_a_retry_may_spell_the_identifier_differently(gql):
    await gql.data(
        REGISTER,
        {"input": {"channel": "POS", "phone": "+79161112255", "phoneVerified": True}},
        as_="app",
    )

    def by_phone(spelling):
        return purchase_input("", "receipt-by-phone-1") | {
            "customerId": None,
            "identifier": {"kind": "PHONE", "value": spelling},
        }

    first = await gql.data(PURCHASE, {"input": by_phone("+79161112255")}, as_="app")
    again = await gql.data(PURCHASE, {"input": by_phone("8 (916) 111-22-55")}, as_="app")
    assert again["purchaseRecord"]["errors"] == []
    assert again["purchaseRecord"]["replayed"] is True
    assert again["purchaseRecord"]["purchase"]["id"] == first["purchaseRecord"]["purchase"]["id"]
