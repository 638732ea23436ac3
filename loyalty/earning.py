"""Points that come by themselves: purchases, returns, fixed bonuses and referral rewards.

Called from the graph's facts (see `loyalty.listener`), so a purchase earns the same whether it
came from a POS, the web, the app or an import, in the transaction that recorded it.
`now` is the instant the fact was recorded; `occurred_at` the instant it happened (an imported
purchase from last year earns points dated last year, which may well have expired).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from graph.customers import get_customer
from graph.enums import EventType
from graph.models import Customer, Event, EventLine
from loyalty.definition import BonusEvent, ReturnPolicy
from loyalty.ledger import (
    catch_up,
    credit_by_policy,
    debit,
    lock_account,
    new_entry,
    spendable_lots,
)
from loyalty.models import Account, EntryKind, LedgerEntry, Lot, LotStatus, Program, Reservation
from loyalty.models import ReservationStatus as Held
from loyalty.program import ActiveProgram
from loyalty.rules import Cart, Line, compute_earning, share_of
from loyalty.tiers import upgrade_if_qualified
from privacy.fields import FieldCipher


async def cart_of(session: AsyncSession, event: Event) -> Cart:
    lines = (
        await session.execute(
            select(EventLine)
            .where(col(EventLine.event_id) == event.id)
            .order_by(col(EventLine.line_no))
        )
    ).scalars()
    return Cart(
        channel=event.channel,  # type: ignore[arg-type]
        occurred_at=event.occurred_at,
        currency=event.currency or "",
        lines=tuple(
            Line(line.sku, line.category, line.quantity, line.unit_price_minor, line.total_minor)
            for line in lines
        ),
    )


async def capped(
    session: AsyncSession,
    account: Account,
    program: ActiveProgram,
    points: int,
    when: datetime,
) -> int:
    """`points` cut to what the per-day and per-month caps still allow at `when`."""
    caps = program.rules.earn.caps
    for limit, (start, end) in (
        (caps.per_day, program.rules.day_bounds(when)),
        (caps.per_month, program.rules.month_bounds(when)),
    ):
        if limit is None:
            continue
        so_far = (
            await session.execute(
                select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                    col(LedgerEntry.customer_id) == account.customer_id,
                    col(LedgerEntry.kind) == EntryKind.EARN,
                    col(LedgerEntry.occurred_at) >= start,
                    col(LedgerEntry.occurred_at) < end,
                )
            )
        ).scalar_one()
        points = max(0, min(points, limit - int(so_far)))
    return points


async def award_bonus(
    session: AsyncSession,
    account: Account,
    program: ActiveProgram,
    trigger: BonusEvent,
    *,
    when: datetime,
    now: datetime,
    purchase_id: uuid.UUID | None = None,
    once_since: datetime | None = None,
) -> None:
    """Every bonus of the program for `trigger` that is valid at `when`. With `once_since`,
    a bonus already given to this account since then is not given again."""
    for bonus in program.rules.earn.bonuses:
        if bonus.event is not trigger or not bonus.covers(when):
            continue
        if once_since is not None:
            given = (
                await session.execute(
                    select(col(LedgerEntry.id))
                    .where(
                        col(LedgerEntry.customer_id) == account.customer_id,
                        col(LedgerEntry.kind) == EntryKind.BONUS,
                        col(LedgerEntry.rule_code) == bonus.code,
                        col(LedgerEntry.occurred_at) >= once_since,
                    )
                    .limit(1)
                )
            ).scalar_one_or_none()
            if given is not None:
                continue
        entry = new_entry(account, program, EntryKind.BONUS, bonus.points, when)
        entry.rule_code = bonus.code
        entry.purchase_id = purchase_id
        await credit_by_policy(session, account, program, entry, pending=bonus.pending, now=now)


async def _birth_month(cipher: FieldCipher, customer: Customer) -> int | None:
    if customer.birth_date_ct is None:
        return None
    value = await cipher.decrypt(
        table="customer", column="birth_date_ct", row_id=customer.id, blob=customer.birth_date_ct
    )
    return date.fromisoformat(value).month if value else None


async def earn_for_purchase(
    session: AsyncSession,
    program: ActiveProgram,
    cipher: FieldCipher,
    *,
    purchase: Event,
    buyer: Customer,
    first_purchase: bool,
) -> int:
    """Credit a purchase's points (pending for the return window) and its bonuses."""
    now = purchase.recorded_at
    when = purchase.occurred_at
    account = await lock_account(session, buyer.id, program.rules, now)
    earning = compute_earning(program.rules, await cart_of(session, purchase), tier=account.tier)
    points = await capped(session, account, program, earning.points, when)
    if points > 0:
        entry = new_entry(account, program, EntryKind.EARN, points, when)
        entry.event_id = entry.purchase_id = purchase.id
        entry.rule_code = ",".join(earning.rules)[:64] or None
        await credit_by_policy(
            session, account, program, entry, pending=True, now=now, event_id=purchase.id
        )
    if first_purchase:
        await award_bonus(
            session,
            account,
            program,
            BonusEvent.FIRST_PURCHASE,
            when=when,
            now=now,
            purchase_id=purchase.id,
        )
    birthday_bonuses = [
        bonus for bonus in program.rules.earn.bonuses if bonus.event is BonusEvent.BIRTHDAY_MONTH
    ]
    local = when.astimezone(program.rules.zone)
    if birthday_bonuses and await _birth_month(cipher, buyer) == local.month:
        year_start = datetime(local.year, 1, 1, tzinfo=program.rules.zone)
        await award_bonus(
            session,
            account,
            program,
            BonusEvent.BIRTHDAY_MONTH,
            when=when,
            now=now,
            purchase_id=purchase.id,
            once_since=year_start,
        )
    await upgrade_if_qualified(session, account, program.rules, now)
    await catch_up(session, account, program, now)
    return points


async def _returned_before(session: AsyncSession, purchase: Event, this_return: Event) -> int:
    total = (
        await session.execute(
            select(func.coalesce(func.sum(col(Event.amount_minor)), 0)).where(
                col(Event.purchase_id) == purchase.id,
                col(Event.type) == EventType.RETURN,
                col(Event.id) != this_return.id,
            )
        )
    ).scalar_one()
    return int(total or 0)


async def points_paid_for(session: AsyncSession, purchase: Event) -> int:
    """Points redeemed at once or through a committed hold to pay for `purchase`."""
    direct = (
        await session.execute(
            select(func.coalesce(func.sum(-col(LedgerEntry.points)), 0)).where(
                col(LedgerEntry.purchase_id) == purchase.id,
                col(LedgerEntry.kind) == EntryKind.REDEEM,
            )
        )
    ).scalar_one()
    held = (
        await session.execute(
            select(func.coalesce(func.sum(col(Reservation.points)), 0)).where(
                col(Reservation.purchase_id) == purchase.id,
                col(Reservation.status) == Held.COMMITTED,
            )
        )
    ).scalar_one()
    return int(direct) + int(held)


async def reverse_for_return(
    session: AsyncSession, program: ActiveProgram, *, return_event: Event, purchase: Event
) -> tuple[int, int]:
    """Take back the returned share of a purchase's points and give back the returned share of
    the points paid for it. Shares are cumulative over the purchase's returns, so returning a
    purchase in parts takes back exactly what returning it at once would.
    Returns (points taken back, points refunded)."""
    now = return_event.recorded_at
    when = return_event.occurred_at
    owner = await get_customer(session, purchase.customer_id)
    account = await lock_account(session, owner.id, program.rules, now)
    await catch_up(session, account, program, now)
    whole = purchase.amount_minor or 0
    before = await _returned_before(session, purchase, return_event)
    after = before + (return_event.amount_minor or 0)
    earned = (
        await session.execute(
            select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                col(LedgerEntry.event_id) == purchase.id, col(LedgerEntry.kind) == EntryKind.EARN
            )
        )
    ).scalar_one()
    reverse = share_of(int(earned), after, whole) - share_of(int(earned), before, whole)
    paid = await points_paid_for(session, purchase)
    refund = share_of(paid, after, whole) - share_of(paid, before, whole)
    taken = 0
    if reverse > 0:
        taken = await _take_back(session, account, program, purchase, return_event, reverse, now)
    if refund > 0:
        entry = new_entry(account, program, EntryKind.REFUND, refund, when)
        entry.event_id = return_event.id
        entry.purchase_id = purchase.id
        await credit_by_policy(session, account, program, entry, pending=False, now=now)
    await catch_up(session, account, program, now)
    return taken, refund


async def _take_back(
    session: AsyncSession,
    account: Account,
    program: ActiveProgram,
    purchase: Event,
    return_event: Event,
    points: int,
    now: datetime,
) -> int:
    """The purchase's own lots first (pending ones are simply cancelled), then spendable lots;
    what is still missing becomes debt or is waived, as the program's return policy says."""
    own_pending = (
        await session.execute(
            select(Lot).where(
                col(Lot.customer_id) == account.customer_id,
                col(Lot.event_id) == purchase.id,
                col(Lot.status) == LotStatus.PENDING,
                col(Lot.available_at) > now,
                col(Lot.remaining) > 0,
            )
        )
    ).scalars()
    lots = list(own_pending) + await spendable_lots(
        session, account.customer_id, now, first=purchase.id
    )
    allow_debt = program.rules.returns is ReturnPolicy.ALLOW_NEGATIVE
    coverable = sum(lot.remaining for lot in lots)
    target = points if allow_debt else min(points, coverable)
    if target <= 0:
        return 0
    entry = new_entry(account, program, EntryKind.REVERSAL, 0, return_event.occurred_at)
    entry.event_id = return_event.id
    entry.purchase_id = purchase.id
    taken = await debit(session, entry, lots, points=target, allow_debt=allow_debt)
    for lot in lots:
        if lot.status == LotStatus.PENDING and lot.remaining == 0 and lot.available_at > now:
            lot.status = LotStatus.CANCELLED
    await session.flush()
    return taken


async def reward_referral(
    session: AsyncSession,
    program: ActiveProgram,
    *,
    referrer_id: uuid.UUID,
    referee_id: uuid.UUID,
    purchase: Event,
    shares_identifier: bool,
) -> bool:
    """Pay the referral rewards once the referee has bought. Not paid when the two share an
    identifier (one person, two accounts), past the per-referrer limit, or past the budget.
    The program row is locked, so concurrent conversions cannot overspend the budget."""
    rules = program.rules.referral
    total = rules.referrer_points + rules.referee_points
    if total == 0 or shares_identifier:
        return False
    now = purchase.recorded_at
    when = purchase.occurred_at
    referrer = (await get_customer(session, referrer_id)).id
    referee = (await get_customer(session, referee_id)).id
    locked = await _lock_program(session, program)
    if rules.max_rewarded_per_referrer is not None:
        rewarded = (
            await session.execute(
                select(func.count()).where(
                    col(LedgerEntry.customer_id) == referrer,
                    col(LedgerEntry.kind) == EntryKind.REFERRAL,
                    col(LedgerEntry.rule_code) == "referral.referrer",
                )
            )
        ).scalar_one()
        if rewarded >= rules.max_rewarded_per_referrer:
            return False
    if rules.budget_points is not None:
        spent = (
            await session.execute(
                select(func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                    col(LedgerEntry.kind) == EntryKind.REFERRAL,
                    col(LedgerEntry.program_id).in_(
                        select(col(Program.id)).where(col(Program.code) == locked)
                    ),
                )
            )
        ).scalar_one()
        if int(spent) + total > rules.budget_points:
            return False
    # Lock both accounts in a fixed order, so two conversions cannot deadlock.
    for customer_id, points, code in sorted(
        [
            (referrer, rules.referrer_points, "referral.referrer"),
            (referee, rules.referee_points, "referral.referee"),
        ],
        key=lambda item: str(item[0]),
    ):
        account = await lock_account(session, customer_id, program.rules, now)
        if points <= 0:
            continue
        entry = new_entry(account, program, EntryKind.REFERRAL, points, when)
        entry.rule_code = code
        entry.purchase_id = purchase.id
        await credit_by_policy(session, account, program, entry, pending=rules.pending, now=now)
        await upgrade_if_qualified(session, account, program.rules, now)
    return True


async def _lock_program(session: AsyncSession, program: ActiveProgram) -> str:
    row = (
        await session.execute(
            select(Program).where(col(Program.id) == program.row.id).with_for_update()
        )
    ).scalar_one()
    return row.code
