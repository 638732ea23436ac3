"""Concurrent registrations of one verified phone: one customer, the others `created: false`."""

import asyncio

from tests.api.operations import REGISTER


async def test_twenty_registrations_of_one_verified_phone_make_one_customer(gql):
    fields = {"channel": "MOBILE_APP", "phone": "+79161236000", "phoneVerified": True}
    results = await asyncio.gather(
        *(gql.data(REGISTER, {"input": fields | {"firstName": f"N{n}"}}, as_="app") for n in range(20))
    )
    payloads = [r["customerRegister"] for r in results]
    assert [p["errors"] for p in payloads] == [[]] * 20
    assert sorted(p["created"] for p in payloads) == [False] * 19 + [True]
    assert len({p["customer"]["id"] for p in payloads}) == 1
