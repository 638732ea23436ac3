"""The raw database (SQLite file, PostgreSQL dump) holds no personal data in plaintext."""

from tests.api.operations import PURCHASE, REGISTER, purchase_input
from tests.dumps import raw_database

PEOPLE = [
    {
        "phone": "+79031234567",
        "email": "svetlana.orlova@example.ru",
        "firstName": "Svetlana",
        "lastName": "Orlova",
        "address": "Tverskaya 7",
    },
    {
        "phone": "+79267654321",
        "email": "dmitry.sokolov@example.ru",
        "firstName": "Дмитрий",
        "lastName": "Соколов",
        "birthDate": "1985-03-08",
    },
]
SECRETS = [
    "order-0000",
    "order-0001",
    "79031234567",
    "9031234567",
    "svetlana.orlova",
    "Svetlana",
    "Orlova",
    "Tverskaya",
    "79267654321",
    "dmitry.sokolov",
    "Дмитрий",
    "Соколов",
    "1985-03-08",
    "runner_svetik",
    "Great shoes, Svetlana approves",
]


async def _seed(gql):
    for number, person in enumerate(PEOPLE):
        data = await gql.data(REGISTER, {"input": {"channel": "WEB", **person}}, as_="app")
        customer = data["customerRegister"]["customer"]["id"]
        await gql.data(
            PURCHASE, {"input": purchase_input(customer, f"order-{number:04d}")}, as_="app"
        )
    first = (await gql.data('{ customerByIdentifier(kind: PHONE, value: "+79031234567") { id } }'))[
        "customerByIdentifier"
    ]["id"]
    await gql.data(
        "mutation($i: SocialProfileLinkInput!) { socialProfileLink(input: $i) { errors { code } } }",
        {"i": {"customerId": first, "platform": "VK", "handle": "runner_svetik", "followers": 10}},
    )
    await gql.data(
        "mutation($i: ReviewSubmitInput!) { reviewSubmit(input: $i) { errors { code } } }",
        {
            "i": {
                "customerId": first,
                "productSku": "S1",
                "rating": 5,
                "text": "Great shoes, Svetlana approves",
            }
        },
    )
    second = (
        await gql.data('{ customerByIdentifier(kind: PHONE, value: "+79267654321") { id } }')
    )["customerByIdentifier"]["id"]
    merged = await gql.data(
        "mutation($i: CustomersMergeInput!) { customersMerge(input: $i) { errors { code } } }",
        {"i": {"customerIds": [first, second], "reason": "Orlova called from Tverskaya"}},
    )
    assert merged["customersMerge"]["errors"] == []


async def test_no_plaintext_personal_data_in_the_database(gql, app, database_url):
    await _seed(gql)
    await app.state.engine.dispose()  # flush SQLite's WAL into the file we read
    raw = raw_database(database_url)
    assert b"customer" in raw  # we are reading the right thing
    leaked = [s for s in SECRETS if s.encode() in raw or s.lower().encode() in raw]
    assert leaked == []
