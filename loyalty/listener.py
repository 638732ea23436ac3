"""The loyalty engine's subscription to the graph: what each graph fact does to points.

`install()` subscribes once; the API app and the CLI call it at start-up. Without an active
program every fact is ignored, so the graph works the same before a program is loaded.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from graph import hooks
from graph.customers import get_customer
from graph.models import Customer, Identity
from loyalty.definition import BonusEvent
from loyalty.earning import award_bonus, earn_for_purchase, reverse_for_return, reward_referral
from loyalty.ledger import lock_account
from loyalty.program import active_program
from loyalty.transfers import move_on_merge, move_on_unmerge


async def _share_identifier(session: AsyncSession, first: Customer, second: Customer) -> bool:
    """Whether two customers (with everyone merged into them) hold a common identifier,
    verified or not: one person inviting themself through a second account."""
    mine, theirs = aliased(Identity), aliased(Identity)
    owner = aliased(Customer)
    other = aliased(Customer)
    row = (
        await session.execute(
            select(col(mine.id))
            .join(owner, col(owner.id) == col(mine.customer_id))
            .join(
                theirs,
                (col(theirs.kind) == col(mine.kind))
                & (col(theirs.value_index) == col(mine.value_index)),
            )
            .join(other, col(other.id) == col(theirs.customer_id))
            .where(
                (col(owner.id) == first.id) | (col(owner.survivor_id) == first.id),
                (col(other.id) == second.id) | (col(other.survivor_id) == second.id),
            )
            .limit(1)
        )
    ).scalar_one_or_none()
    return row is not None


async def on_graph_fact(session: AsyncSession, fact: hooks.GraphFact) -> None:
    program = await active_program(session)
    if program is None:
        return
    match fact:
        case hooks.PurchaseRecorded(cipher=cipher, event=event, buyer=buyer, first_purchase=first):
            await earn_for_purchase(
                session, program, cipher, purchase=event, buyer=buyer, first_purchase=first
            )
        case hooks.ReturnRecorded(event=event, purchase=purchase):
            await reverse_for_return(session, program, return_event=event, purchase=purchase)
        case hooks.CustomerRegistered(customer=customer):
            account = await lock_account(session, customer.id, program.rules, customer.created_at)
            await award_bonus(
                session,
                account,
                program,
                BonusEvent.REGISTRATION,
                when=customer.created_at,
                now=customer.created_at,
            )
        case hooks.ReviewSubmitted(review=review):
            account = await lock_account(
                session, review.customer_id, program.rules, review.created_at
            )
            await award_bonus(
                session,
                account,
                program,
                BonusEvent.REVIEW_ACCEPTED,
                when=review.created_at,
                now=review.created_at,
            )
        case hooks.ReferralConverted(referral=referral, purchase=purchase):
            assert referral.referee_id is not None
            referrer = await get_customer(session, referral.referrer_id)
            referee = await get_customer(session, referral.referee_id)
            await reward_referral(
                session,
                program,
                referrer_id=referrer.id,
                referee_id=referee.id,
                purchase=purchase,
                shares_identifier=await _share_identifier(session, referrer, referee),
            )
        case hooks.CustomersMerged(survivor_id=survivor, merged_id=merged, at=at):
            await move_on_merge(session, program, survivor_id=survivor, merged_id=merged, now=at)
        case hooks.CustomerUnmerged(survivor_id=survivor, restored_id=restored, at=at):
            await move_on_unmerge(
                session, program, survivor_id=survivor, restored_id=restored, now=at
            )


def install() -> None:
    """Subscribe the loyalty engine to the graph's facts (idempotent)."""
    hooks.subscribe(on_graph_fact, active=_program_active)


async def _program_active(session: AsyncSession) -> bool:
    return await active_program(session) is not None
