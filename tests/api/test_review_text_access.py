"""Review text follows the profile's rule: decrypted for the author and the roles that may read
personal data, every staff read audited; FORBIDDEN for analysts and apps."""

from sqlalchemy import select

from api.schema.common import customer_uuid
from privacy.audit import pseudonym
from privacy.models import AuditEntry
from tests.api.operations import REGISTER

REVIEW = 'mutation($i: ReviewSubmitInput!) { reviewSubmit(input: $i) { review { id } errors { code } } }'
TEXT = 'query($id: ID!) { customer(id: $id) { reviews { rating text } } }'


async def _reads(sessions):
    async with sessions() as session:
        rows = await session.execute(select(AuditEntry).where(AuditEntry.action == "personal_data.read"))
        return list(rows.scalars())


async def test_review_text_is_personal_data(gql, sessions, provider):
    data = await gql.data(REGISTER, {"input": {"channel": "WEB", "phone": "+79161237000"}}, as_="app")
    author = data["customerRegister"]["customer"]["id"]
    words = "Курьер опоздал, но кроссовки отличные"
    submitted = await gql.data(REVIEW, {"i": {"customerId": author, "productSku": "SKU-1", "rating": 4, "text": words}}, as_="app")
    assert submitted["reviewSubmit"]["errors"] == []

    for role in ("analyst", "app"):
        body = await gql.call(TEXT, {"id": author}, as_=role)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", role
        assert words not in str(body)
    assert await _reads(sessions) == []

    own = await gql.data(TEXT, {"id": author}, as_="customer", customer=str(customer_uuid(author)))
    assert own["customer"]["reviews"][0]["text"] == words
    assert await _reads(sessions) == []

    staff = await gql.data(TEXT, {"id": author}, as_="operator")
    assert staff["customer"]["reviews"][0]["text"] == words
    (read,) = await _reads(sessions)
    assert read.subject == pseudonym(provider, customer_uuid(author))
