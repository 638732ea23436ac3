"""Tiers: qualification over a rolling window, upgrade at once, downgrade only at review.

A customer qualifies on points earned (purchase points, bonuses and referral rewards, less what
returns took back) or on net spend, within the program's window. An upgrade happens the moment
an earning qualifies; a downgrade waits for the scheduled review, then goes one level down or to
the level the customer qualifies for, after an optional grace period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
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


async def qualifying_value(
    session: AsyncSession, account: Account, program: ProgramDefinition, now: datetime
) -> int:
    start = now - timedelta(days=program.tiers.window_days)
    if program.tiers.metric is TierMetric.POINTS_EARNED:
        total = (
            await session.execute(
                select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                    col(LedgerEntry.customer_id) == account.customer_id,
                    col(LedgerEntry.kind).in_(EARNING_KINDS),
                    col(LedgerEntry.occurred_at) > start,
                    col(LedgerEntry.occurred_at) <= now,
                )
            )
        ).scalar_one()
        return max(int(total), 0)
    members = select(col(Customer.id)).where(
        or_(
            col(Customer.id) == account.customer_id,
            col(Customer.survivor_id) == account.customer_id,
        )
    )
    spent, returned = (
        await session.execute(
            select(
                func.coalesce(
                    func.sum(col(Event.amount_minor)).filter(col(Event.type) == EventType.PURCHASE),
                    0,
                ),
                func.coalesce(
                    func.sum(col(Event.amount_minor)).filter(col(Event.type) == EventType.RETURN),
                    0,
                ),
            ).where(
                col(Event.customer_id).in_(members),
                col(Event.occurred_at) > start,
                col(Event.occurred_at) <= now,
            )
        )
    ).one()
    return max(int(spent or 0) - int(returned or 0), 0)


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


async def review_tier(
    session: AsyncSession, account: Account, program: ProgramDefinition, now: datetime
) -> str | None:
    """The scheduled review. Returns "UPGRADE", "DOWNGRADE", "GRACE" or None (no change)."""
    value = await qualifying_value(session, account, program, now)
    target = level_for(program, value)
    current = rank(program, account.tier)
    wanted = rank(program, target.code)
    account.tier_reviewed_at = now
    outcome: str | None = None
    if wanted > current:
        session.add(_change(account, target, "UPGRADE", value, now))
        outcome = "UPGRADE"
    elif wanted == current:
        account.grace_until = None
    elif program.tiers.grace_days and account.grace_until is None:
        account.grace_until = now + timedelta(days=program.tiers.grace_days)
        outcome = "GRACE"
    elif account.grace_until is None or account.grace_until <= now:
        if program.tiers.downgrade is Downgrade.ONE_LEVEL:
            target = program.tiers.levels[current - 1]
        session.add(_change(account, target, "DOWNGRADE", value, now))
        outcome = "DOWNGRADE"
    await session.flush()
    return outcome
