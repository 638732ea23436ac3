"""Marketing audiences: who may be contacted on a channel, optionally within one tier.

An audience member is an active customer (not merged into another, not erased) whom privacy
permits to be processed for marketing on that channel (a granted consent for the channel and no
processing restriction in force, `privacy.enforcement.permitted`). The filter runs in SQL, with
keyset pagination in registration order, the order of the `customers` list.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from graph.enums import CustomerStatus
from graph.models import Customer
from loyalty.errors import LoyaltyErrorCode, loyalty_error
from loyalty.models import Account
from loyalty.program import active_program
from privacy.enforcement import permitted
from privacy.purposes import MarketingChannel, Purpose


async def _check_segment(session: AsyncSession, segment: str) -> None:
    program = await active_program(session)
    if program is None:
        raise loyalty_error(
            LoyaltyErrorCode.NO_ACTIVE_PROGRAM, "segments are tiers of the loaded program"
        )
    codes = {level.code for level in program.rules.tiers.levels}
    if segment not in codes:
        raise loyalty_error(
            LoyaltyErrorCode.INVALID_INPUT,
            f"unknown segment; the program's tiers are {', '.join(sorted(codes))}",
            "segment",
        )


async def marketing_audience(
    session: AsyncSession,
    *,
    channel: MarketingChannel,
    segment: str | None,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Customer]:
    """Up to `first + 1` audience members after the keyset `after` (created_at, id): the extra
    row tells the caller whether another page exists.

    `segment` is a tier code of the active loyalty program (None: every tier, and customers
    without a loyalty account too); an unknown code is INVALID_INPUT, not an empty audience.
    """
    query = select(Customer).where(
        col(Customer.status) == CustomerStatus.ACTIVE.value,
        col(Customer.survivor_id).is_(None),
        permitted(col(Customer.id), purpose=Purpose.MARKETING, channel=channel),
    )
    if segment is not None:
        await _check_segment(session, segment)
        query = query.join(Account, col(Account.customer_id) == col(Customer.id)).where(
            col(Account.tier) == segment
        )
    if after is not None:
        at, row_id = after
        query = query.where(
            or_(
                col(Customer.created_at) > at,
                and_(col(Customer.created_at) == at, col(Customer.id) > row_id),
            )
        )
    query = query.order_by(col(Customer.created_at), col(Customer.id)).limit(first + 1)
    return list((await session.execute(query)).scalars().all())
