"""A registration matched against its block on arrival (the live path of identity resolution)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from graph.customers import RegisterResult, register_customer
from graph.resolution.job import match_new
from graph.resolution.models import DuplicateCandidate
from privacy.fields import FieldCipher


async def register_and_match(
    session: AsyncSession, cipher: FieldCipher, **fields: Any
) -> tuple[RegisterResult, list[DuplicateCandidate]]:
    """`register_customer`, then, for a new customer, the possible duplicates staff should see
    (pending candidates above the review threshold), in the same transaction."""
    result = await register_customer(session, cipher, **fields)
    if not result.created:
        return result, []
    return result, await match_new(session, cipher, customer_id=result.customer.id)
