"""Tiers: qualification over a rolling window, upgrade at once, downgrade only at review.

A customer qualifies on points earned (purchase points, bonuses and referral rewards, less what
returns took back) or on net spend, within the program's window. An upgrade happens the moment
an earning qualifies; a downgrade waits for the scheduled review, then goes one level down or to
the level the customer qualifies for, after an optional grace period.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from graph.enums import EventType
from graph.models import Customer, Event
from loyalty.definition import Downgrade, ProgramDefinition, TierLevel, TierMetric
from loyalty.models import Account, EntryKind, LedgerEntry, TierChange

EARNING_KINDS = (EntryKind.EARN, EntryKind.BONUS, EntryKind.REFERRAL, EntryKind.REVERSAL)


@dataclass(frozen=True, slots=True)
class Progress:
    qualifying: int
    next_tier: TierLevel | None
    remaining: int


async def qualifying_values(
    session: AsyncSession,
    customer_ids: Sequence[uuid.UUID],
    program: ProgramDefinition,
    now: datetime,
) -> dict[uuid.UUID, int]:
    """What counts towards a tier, for many accounts in one statement: points earned (less
    what returns took back), or net spend of the account and of customers merged into it,
    within the program's window (now - window, now]."""
    start = now - timedelta(days=program.tiers.window_days)
    if program.tiers.metric is TierMetric.POINTS_EARNED:
        rows = await session.execute(
            select(col(LedgerEntry.customer_id), func.sum(col(LedgerEntry.points)))
            .where(
                col(LedgerEntry.customer_id).in_(customer_ids),
                col(LedgerEntry.kind).in_(EARNING_KINDS),
                col(LedgerEntry.occurred_at) > start,
                col(LedgerEntry.occurred_at) <= now,
            )
            .group_by(col(LedgerEntry.customer_id))
        )
        found = {row[0]: int(row[1] or 0) for row in rows}
    else:
        # An account's spend counts its own events and those of customers merged into it.
        owner = case(
            (col(Customer.id).in_(customer_ids), col(Customer.id)),
            else_=col(Customer.survivor_id),
        ).label("owner")
        amount = func.coalesce(col(Event.amount_minor), 0)
        net = func.sum(
            case(
                (col(Event.type) == EventType.PURCHASE, amount),
                (col(Event.type) == EventType.RETURN, -amount),
                else_=0,
            )
        )
        rows = await session.execute(
            select(owner, net)
            .join(Customer, col(Customer.id) == col(Event.customer_id))
            .where(
                or_(
                    col(Customer.id).in_(customer_ids), col(Customer.survivor_id).in_(customer_ids)
                ),
                col(Event.occurred_at) > start,
                col(Event.occurred_at) <= now,
            )
            .group_by(owner)
        )
        found = {row[0]: int(row[1] or 0) for row in rows}
    return {key: max(found.get(key, 0), 0) for key in customer_ids}


async def qualifying_value(
    session: AsyncSession, account: Account, program: ProgramDefinition, now: datetime
) -> int:
    """`qualifying_values` for one account."""
    values = await qualifying_values(session, [account.customer_id], program, now)
    return values[account.customer_id]


def level_for(program: ProgramDefinition, value: int) -> TierLevel:
    qualified = program.tiers.levels[0]
    for level in program.tiers.levels:
        if value >= level.threshold:
            qualified = level
    return qualified


def rank(program: ProgramDefinition, code: str) -> int:
    for position, level in enumerate(program.tiers.levels):
        if level.code == code:
            return position
    return 0


def progress(program: ProgramDefinition, tier: str, value: int) -> Progress:
    levels = program.tiers.levels
    position = rank(program, tier)
    if position + 1 >= len(levels):
        return Progress(qualifying=value, next_tier=None, remaining=0)
    upcoming = levels[position + 1]
    return Progress(
        qualifying=value, next_tier=upcoming, remaining=max(upcoming.threshold - value, 0)
    )


def _change(account: Account, to: TierLevel, reason: str, value: int, now: datetime) -> TierChange:
    change = TierChange(
        customer_id=account.customer_id,
        from_tier=account.tier,
        to_tier=to.code,
        reason=reason,
        qualifying=value,
        occurred_at=now,
    )
    account.tier = to.code
    account.tier_since = now
    account.grace_until = None
    return change


async def upgrade_if_qualified(
    session: AsyncSession, account: Account, program: ProgramDefinition, now: datetime
) -> None:
    value = await qualifying_value(session, account, program, now)
    target = level_for(program, value)
    if rank(program, target.code) > rank(program, account.tier):
        session.add(_change(account, target, "UPGRADE", value, now))
        await session.flush()


@dataclass(frozen=True, slots=True)
class Review:
    """What a scheduled review decides for one account (`decide_review`)."""

    outcome: str | None  # "UPGRADE", "DOWNGRADE", "GRACE" or None
    to: TierLevel | None  # the new level when the tier changes
    grace_until: datetime | None  # the account's grace_until after the review


def decide_review(
    program: ProgramDefinition,
    tier: str,
    grace_until: datetime | None,
    value: int,
    now: datetime,
) -> Review:
    """The review rule: upgrade to the level qualified for, keep it, start a grace period,
    or downgrade (one level or to the level qualified for) once grace has run out."""
    target = level_for(program, value)
    current = rank(program, tier)
    wanted = rank(program, target.code)
    if wanted > current:
        return Review("UPGRADE", target, None)
    if wanted == current:
        return Review(None, None, None)
    if program.tiers.grace_days and grace_until is None:
        return Review("GRACE", None, now + timedelta(days=program.tiers.grace_days))
    if grace_until is None or grace_until <= now:
        if program.tiers.downgrade is Downgrade.ONE_LEVEL:
            target = program.tiers.levels[current - 1]
        return Review("DOWNGRADE", target, None)
    return Review(None, None, grace_until)


async def review_tier(
    session: AsyncSession, account: Account, program: ProgramDefinition, now: datetime
) -> str | None:
    """The scheduled review of one account. Returns "UPGRADE", "DOWNGRADE", "GRACE" or None."""
    value = await qualifying_value(session, account, program, now)
    decision = decide_review(program, account.tier, account.grace_until, value, now)
    account.tier_reviewed_at = now
    if decision.to is not None:
        session.add(_change(account, decision.to, decision.outcome or "", value, now))
    account.grace_until = decision.grace_until
    await session.flush()
    return decision.outcome
