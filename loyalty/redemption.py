"""Spending points: `redeem` at once, or `reserve` → `commit` / `cancel` at a checkout, plus
operator adjustments and the `quote` dry run.

Each writer locks the account first (see `loyalty.ledger`), then checks its idempotency key, so
a retry that races the first attempt waits for it and replays its result. Checks run before
anything is written; a failed check raises a DomainError and the caller's transaction rolls
back, so bad input changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.clock import utcnow
from graph.customers import get_active_customer, get_customer
from graph.enums import EventType
from graph.events import request_hash, stored_idempotency_key
from graph.lines import MAX_TOTAL_MINOR, LineInput, check_lines
from graph.models import Event
from loyalty.definition import MAX_POINTS
from loyalty.earning import capped, points_paid_for
from loyalty.errors import LoyaltyErrorCode, loyalty_error
from loyalty.ledger import (
    Balance,
    balance_of,
    catch_up,
    credit_by_policy,
    debit,
    lock_account,
    new_entry,
    release,
    spendable_lots,
)
from loyalty.models import Account, EntryKind, LedgerEntry, Reservation, ReservationStatus
from loyalty.program import ActiveProgram, require_program
from loyalty.rules import Cart, compute_earning, max_redeemable
from privacy import audit
from privacy.fields import FieldCipher

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Redeemed:
    """A debit or an adjustment, and whether it is the replay of an earlier request."""

    entry: LedgerEntry
    replayed: bool


@dataclass(frozen=True, slots=True)
class Held:
    reservation: Reservation
    replayed: bool


@dataclass(frozen=True, slots=True)
class Quote:
    earn_points: int
    rules: tuple[str, ...]
    max_redeem_points: int
    balance: Balance
    point_value_minor: int
    currency: str


def _check_points(points: int) -> None:
    if not 0 < points <= MAX_POINTS:
        raise loyalty_error(
            LoyaltyErrorCode.INVALID_POINTS, "points must be a positive whole number", "points"
        )


async def _own_purchase(
    session: AsyncSession, program: ActiveProgram, account: Account, purchase_id: uuid.UUID
) -> Event:
    """A purchase of this account's customer (or of a customer merged into it)."""
    purchase = await session.get(Event, purchase_id)
    if purchase is None or purchase.type != EventType.PURCHASE:
        raise loyalty_error(LoyaltyErrorCode.PURCHASE_NOT_FOUND, "no such purchase", "purchaseId")
    if (await get_customer(session, purchase.customer_id)).id != account.customer_id:
        raise loyalty_error(
            LoyaltyErrorCode.PURCHASE_NOT_FOUND, "this customer made no such purchase", "purchaseId"
        )
    if purchase.currency != program.rules.currency:
        raise loyalty_error(
            LoyaltyErrorCode.CURRENCY_MISMATCH, "the purchase is in another currency", "purchaseId"
        )
    return purchase


async def _check_purchase_share(
    session: AsyncSession, program: ActiveProgram, purchase: Event, points: int
) -> None:
    """Points already paid for `purchase` count against its share too."""
    paid = await points_paid_for(session, purchase)
    most = max_redeemable(program.rules, order_total_minor=purchase.amount_minor or 0)
    if points + paid > most:
        raise loyalty_error(
            LoyaltyErrorCode.SHARE_EXCEEDED,
            f"at most {max(most - paid, 0)} more points may pay for this purchase"
            f" ({program.rules.redemption.max_share_percent}% of it, {paid} paid already)",
            "points",
        )


async def _order_total(
    session: AsyncSession,
    program: ActiveProgram,
    account: Account,
    *,
    order_total_minor: int | None,
    purchase_id: uuid.UUID | None,
    currency: str | None,
) -> tuple[int, Event | None]:
    """The total of the order the points pay for: a recorded purchase, or a cart's total."""
    wanted = (currency or program.rules.currency).strip().upper()
    if wanted != program.rules.currency:
        raise loyalty_error(
            LoyaltyErrorCode.CURRENCY_MISMATCH,
            f"points pay only for orders in {program.rules.currency}",
            "currency",
        )
    if purchase_id is not None:
        purchase = await _own_purchase(session, program, account, purchase_id)
        return purchase.amount_minor or 0, purchase
    if order_total_minor is None:
        raise loyalty_error(
            LoyaltyErrorCode.INVALID_INPUT,
            "give orderTotalMinor or purchaseId: the share payable with points needs the total",
            "orderTotalMinor",
        )
    if not 0 < order_total_minor <= MAX_TOTAL_MINOR:
        raise loyalty_error(
            LoyaltyErrorCode.INVALID_INPUT, "the order total must be positive", "orderTotalMinor"
        )
    return order_total_minor, None


def _check_share(program: ActiveProgram, points: int, total: int) -> None:
    most = max_redeemable(program.rules, order_total_minor=total)
    if points > most:
        raise loyalty_error(
            LoyaltyErrorCode.SHARE_EXCEEDED,
            f"at most {most} points may pay for this order"
            f" ({program.rules.redemption.max_share_percent}% of it)",
            "points",
        )


async def _check_funds(
    session: AsyncSession, account: Account, program: ActiveProgram, points: int, now: datetime
) -> None:
    balance = await balance_of(session, account.customer_id, now)
    minimum = program.rules.redemption.min_balance
    if balance.available < minimum:
        raise loyalty_error(
            LoyaltyErrorCode.BELOW_MINIMUM_BALANCE,
            f"points can be spent from a balance of {minimum}",
            "points",
        )
    if balance.available < points:
        raise loyalty_error(
            LoyaltyErrorCode.INSUFFICIENT_POINTS,
            f"the balance is {max(balance.available, 0)} points",
            "points",
        )


def _reused() -> Exception:
    return loyalty_error(
        LoyaltyErrorCode.IDEMPOTENCY_KEY_REUSED,
        "this idempotency key was used for a different request",
        "idempotencyKey",
    )


async def _earlier(session: AsyncSession, key: str, digest: str) -> LedgerEntry | None:
    """The entry an earlier request with this key wrote, if any. Redemptions, holds and
    adjustments share one key space (the entry's unique key), so a key reused across them is
    caught too. Call it after locking the account: a racing retry then waits and replays."""
    existing = (
        await session.execute(select(LedgerEntry).where(col(LedgerEntry.idempotency_key) == key))
    ).scalar_one_or_none()
    if existing is not None and existing.request_hash != digest:
        raise _reused()
    return existing


@dataclass(frozen=True, slots=True)
class _Spending:
    """A redemption or hold past its first checks: the account is locked, and `earlier` is
    what a previous request with the same key wrote (then the caller replays it)."""

    program: ActiveProgram
    account: Account
    key: str
    digest: str
    earlier: LedgerEntry | None

    def entry(self, kind: EntryKind, now: datetime) -> LedgerEntry:
        entry = new_entry(self.account, self.program, kind, 0, now)
        entry.idempotency_key = self.key
        entry.request_hash = self.digest
        return entry


async def _begin_spending(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    request: dict[str, object],
    customer_id: uuid.UUID,
    points: int,
    idempotency_key: str,
    order_total_minor: int | None,
    currency: str | None,
    now: datetime,
) -> _Spending:
    key = stored_idempotency_key(cipher, idempotency_key)
    fingerprint = request | {
        "customer": customer_id,
        "points": points,
        "total": order_total_minor,
        "currency": currency,
    }
    digest = request_hash(cipher, fingerprint)
    _check_points(points)
    program = await require_program(session)
    customer = await get_active_customer(session, customer_id, "customerId")
    account = await lock_account(session, customer.id, program.rules, now)
    return _Spending(program, account, key, digest, await _earlier(session, key, digest))


async def redeem(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer_id: uuid.UUID,
    points: int,
    idempotency_key: str,
    order_total_minor: int | None = None,
    purchase_id: uuid.UUID | None = None,
    currency: str | None = None,
    now: datetime | None = None,
) -> Redeemed:
    """Pay with points at once, earliest-expiring points first."""
    now = now or utcnow()
    request: dict[str, object] = {"op": "redeem", "purchase": purchase_id}
    spending = await _begin_spending(
        session,
        cipher,
        request=request,
        customer_id=customer_id,
        points=points,
        idempotency_key=idempotency_key,
        order_total_minor=order_total_minor,
        currency=currency,
        now=now,
    )
    if spending.earlier is not None:
        return Redeemed(spending.earlier, replayed=True)
    program, account = spending.program, spending.account
    total, purchase = await _order_total(
        session,
        program,
        account,
        order_total_minor=order_total_minor,
        purchase_id=purchase_id,
        currency=currency,
    )
    _check_share(program, points, total)
    if purchase is not None:
        await _check_purchase_share(session, program, purchase, points)
    await catch_up(session, account, program, now)
    await _check_funds(session, account, program, points, now)
    entry = spending.entry(EntryKind.REDEEM, now)
    entry.order_total_minor = total
    entry.purchase_id = purchase.id if purchase else None
    await debit(
        session, entry, await spendable_lots(session, account.customer_id, now), points=points
    )
    return Redeemed(entry, replayed=False)


async def reserve(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer_id: uuid.UUID,
    points: int,
    idempotency_key: str,
    order_total_minor: int | None = None,
    currency: str | None = None,
    now: datetime | None = None,
) -> Held:
    """Hold points for a checkout. The hold ends by `commit`, `cancel`, or by itself after the
    program's `hold_minutes` (its points then go back to their lots)."""
    now = now or utcnow()
    spending = await _begin_spending(
        session,
        cipher,
        request={"op": "reserve"},
        customer_id=customer_id,
        points=points,
        idempotency_key=idempotency_key,
        order_total_minor=order_total_minor,
        currency=currency,
        now=now,
    )
    if spending.earlier is not None:
        held = await session.get(Reservation, spending.earlier.reservation_id)
        assert held is not None
        return Held(held, replayed=True)
    program, account = spending.program, spending.account
    total, _ = await _order_total(
        session,
        program,
        account,
        order_total_minor=order_total_minor,
        purchase_id=None,
        currency=currency,
    )
    _check_share(program, points, total)
    await catch_up(session, account, program, now)
    await _check_funds(session, account, program, points, now)
    reservation = Reservation(
        customer_id=account.customer_id,
        points=points,
        created_at=now,
        expires_at=now + timedelta(minutes=program.rules.redemption.hold_minutes),
        order_total_minor=total,
        idempotency_key=spending.key,
        request_hash=spending.digest,
    )
    session.add(reservation)
    await session.flush()
    entry = spending.entry(EntryKind.RESERVE, now)
    entry.reservation_id = reservation.id
    entry.order_total_minor = total
    await debit(
        session, entry, await spendable_lots(session, account.customer_id, now), points=points
    )
    return Held(reservation, replayed=False)


async def _locked_reservation(
    session: AsyncSession,
    program: ActiveProgram,
    *,
    customer_id: uuid.UUID,
    reservation_id: uuid.UUID,
    now: datetime,
) -> tuple[Account, Reservation]:
    customer = await get_active_customer(session, customer_id, "customerId")
    account = await lock_account(session, customer.id, program.rules, now)
    reservation = (
        await session.execute(
            select(Reservation)
            .where(col(Reservation.id) == reservation_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if reservation is None or reservation.customer_id != account.customer_id:
        raise loyalty_error(
            LoyaltyErrorCode.RESERVATION_NOT_FOUND,
            "this customer has no such reservation",
            "reservationId",
        )
    return account, reservation


async def commit(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    reservation_id: uuid.UUID,
    purchase_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Held:
    """Turn a hold into a payment. Committing twice returns the first commit."""
    now = now or utcnow()
    program = await require_program(session)
    account, reservation = await _locked_reservation(
        session, program, customer_id=customer_id, reservation_id=reservation_id, now=now
    )
    if reservation.status == ReservationStatus.COMMITTED:
        if purchase_id is not None and reservation.purchase_id not in (None, purchase_id):
            raise loyalty_error(
                LoyaltyErrorCode.RESERVATION_CLOSED,
                "this reservation was committed for another purchase",
                "purchaseId",
            )
        return Held(reservation, replayed=True)
    if reservation.status == ReservationStatus.CANCELLED:
        raise loyalty_error(
            LoyaltyErrorCode.RESERVATION_CLOSED, "this reservation was cancelled", "reservationId"
        )
    if reservation.status == ReservationStatus.EXPIRED or reservation.expires_at <= now:
        raise loyalty_error(
            LoyaltyErrorCode.RESERVATION_EXPIRED,
            "the hold expired and its points were released; reserve again",
            "reservationId",
        )
    if purchase_id is not None:
        purchase = await _own_purchase(session, program, account, purchase_id)
        await _check_purchase_share(session, program, purchase, reservation.points)
        reservation.purchase_id = purchase.id
    reservation.status = ReservationStatus.COMMITTED
    reservation.closed_at = now
    entry = new_entry(account, program, EntryKind.COMMIT, 0, now)
    entry.reservation_id = reservation.id
    entry.purchase_id = reservation.purchase_id
    session.add(entry)
    await session.flush()
    return Held(reservation, replayed=False)


async def cancel(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    reservation_id: uuid.UUID,
    now: datetime | None = None,
) -> Held:
    """Release a hold. Cancelling twice, or after the hold ran out, changes nothing more."""
    now = now or utcnow()
    program = await require_program(session)
    account, reservation = await _locked_reservation(
        session, program, customer_id=customer_id, reservation_id=reservation_id, now=now
    )
    if reservation.status == ReservationStatus.COMMITTED:
        raise loyalty_error(
            LoyaltyErrorCode.RESERVATION_CLOSED,
            "this reservation was committed; return the purchase instead",
            "reservationId",
        )
    if reservation.status != ReservationStatus.HELD:
        return Held(reservation, replayed=True)
    if reservation.expires_at <= now:
        await catch_up(session, account, program, now)
        return Held(reservation, replayed=True)
    await release(
        session, account, program, reservation, status=ReservationStatus.CANCELLED, when=now
    )
    return Held(reservation, replayed=False)


async def adjust(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    customer_id: uuid.UUID,
    points: int,
    reason: str,
    actor: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> Redeemed:
    """An operator's correction: positive points become an active lot, negative ones are taken
    from lots like a redemption (never below zero). The reason is stored encrypted under the
    customer's key, the actor in clear. A retry with the same key replays the first."""
    now = now or utcnow()
    key = stored_idempotency_key(cipher, idempotency_key)
    digest = request_hash(
        cipher, {"op": "adjust", "customer": customer_id, "points": points, "reason": reason}
    )
    if points == 0 or abs(points) > MAX_POINTS:
        raise loyalty_error(
            LoyaltyErrorCode.INVALID_POINTS, "an adjustment moves a non-zero whole number", "points"
        )
    reason = reason.strip()
    if not 3 <= len(reason) <= MAX_REASON:
        raise loyalty_error(
            LoyaltyErrorCode.INVALID_INPUT, f"a reason has 3-{MAX_REASON} characters", "reason"
        )
    program = await require_program(session)
    customer = await get_active_customer(session, customer_id, "customerId")
    account = await lock_account(session, customer.id, program.rules, now)
    existing = await _earlier(session, key, digest)
    if existing is not None:
        return Redeemed(existing, replayed=True)
    await catch_up(session, account, program, now)
    entry = new_entry(account, program, EntryKind.ADJUST, points, now)
    entry.idempotency_key = key
    entry.request_hash = digest
    entry.actor = actor[:100]
    entry.reason_ct = await cipher.encrypt(
        account.customer_id,
        table="loyalty_entry",
        column="reason_ct",
        row_id=entry.id,
        value=reason,
    )
    if points > 0:
        await credit_by_policy(session, account, program, entry, pending=False, now=now)
    else:
        balance = await balance_of(session, account.customer_id, now)
        if balance.available < -points:
            raise loyalty_error(
                LoyaltyErrorCode.INSUFFICIENT_POINTS,
                f"the balance is {max(balance.available, 0)} points",
                "points",
            )
        lots = await spendable_lots(session, account.customer_id, now)
        await debit(session, entry, lots, points=-points)
    await audit.record(
        session,
        cipher.keys,
        action="points.adjusted",
        actor=actor,
        subject_id=account.customer_id,
        details={"entry": str(entry.id), "points": points},
        at=now,
    )
    return Redeemed(entry, replayed=False)


async def quote(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    cart: Cart,
    now: datetime | None = None,
) -> Quote:
    """What a cart would earn and the most points that may pay for it. Writes nothing."""
    now = now or utcnow()
    check_lines(
        [
            LineInput(line.sku, line.quantity, line.category, line.unit_price_minor, line.total)
            for line in cart.lines
        ],
        priced=True,
    )
    program = await require_program(session)
    customer = await get_active_customer(session, customer_id, "customerId")
    if cart.currency != program.rules.currency:
        raise loyalty_error(
            LoyaltyErrorCode.CURRENCY_MISMATCH,
            f"the program earns on {program.rules.currency}",
            "currency",
        )
    account = await session.get(Account, customer.id)
    tier = account.tier if account else program.rules.tiers.levels[0].code
    earning = compute_earning(program.rules, cart, tier=tier)
    points = earning.points
    if account is not None:
        points = await capped(session, account, program, points, cart.occurred_at)
    balance = await balance_of(session, customer.id, now)
    spendable = max(balance.available, 0)
    if spendable < program.rules.redemption.min_balance:
        spendable = 0
    most = min(spendable, max_redeemable(program.rules, order_total_minor=cart.total_minor))
    return Quote(
        earn_points=points,
        rules=earning.rules,
        max_redeem_points=most,
        balance=balance,
        point_value_minor=program.rules.redemption.point_value_minor,
        currency=program.rules.currency,
    )
