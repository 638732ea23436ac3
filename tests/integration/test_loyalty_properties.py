"""Property: any sequence of earning, returns, redemptions, holds, adjustments, time jumps and
scheduled runs keeps the ledger's invariants, and the ledger agrees with a small model of it.

Hypothesis draws thirty operations, one at a time from what the state allows (a return needs a
purchase with units left, a commit a hold), for two members, each example against a fresh
database (a copy of the migrated template, or a PostgreSQL database made from the template) on
a simulated clock that only moves forward: by drawn jumps (a minute to 200 days, across the
10-day pending period, the 6-hour holds and the 100-day expiry), to the next instant something
falls due (exactly, a second before, a second after), and by one second after every other
operation. Purchases and returns are sometimes dated up to 150 days back (an import). No two
lots of a member are earned at the same instant, so the order points are spent in is fully
determined and the model can follow it lot by lot.

Before each operation the model (below, written from the rules the `loyalty` docstrings state)
predicts the outcome: success, a replay, or an error code. After it:

- the engine's outcome is the predicted one;
- `verify_ledger` finds no breach;
- each member's balance (available, pending, held), lots (kind, amount, remaining, status and
  times), unpaid debt and holds equal the model's;
- the available balance is never negative under `claw_back_remaining`;
- the points spent (redeemed, held, committed) never exceed the points credited;
- an operation that failed, or replayed, changed no row of any loyalty or event table.

A fixed seed per return policy and no example database: CI sees the same examples every run.
SQLite runs 25 examples per policy, PostgreSQL 12. Mutating the engine (spending lots in
another order, not settling debt, skipping the funds check, releasing a hold late) fails it.
"""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from core.db import create_engine, session_factory, transaction
from core.errors import DomainError
from graph.customers import register_customer
from graph.enums import Channel
from graph.events import CustomerRef, LineInput, record_purchase, record_return
from loyalty import install
from loyalty.definition import ProgramDefinition, ReturnPolicy
from loyalty.ledger import Balance, balance_of
from loyalty.models import EntryKind, LedgerEntry, Lot, LotStatus, Reservation
from loyalty.models import ReservationStatus as Hold
from loyalty.program import load_program
from loyalty.redemption import adjust, cancel, commit, redeem, reserve
from loyalty.scheduled import run_scheduled
from loyalty.verify import verify_ledger
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring
from tests.integration.loyalty_helpers import Loyalty, ledger_rows, program

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PENDING = timedelta(days=10)
LIFETIME = timedelta(days=100)
HOLD = timedelta(hours=6)  # long enough for a commit to come before most jumps
REVIEW = timedelta(days=30)
SHARE_PERCENT = 50
POINT_VALUE = 100
TICK = timedelta(seconds=1)
MEMBERS = 2
STEPS = 30
# A fixed seed per policy (and no example database): CI sees the same examples every run.
SEEDS = {ReturnPolicy.CLAW_BACK_REMAINING: 20260105, ReturnPolicy.ALLOW_NEGATIVE: 20260106}
EXAMPLES = {"sqlite": 25, "postgresql": 12}  # per return policy


def definition(policy: ReturnPolicy, min_balance: int) -> ProgramDefinition:
    """1 point per 1.00 RUB, books 1.5x, the app 2x; 10 days pending, 100 days to expire."""
    return program(
        returns=policy.value,
        earn={
            "points": 1,
            "per_minor": 100,
            "rules": [
                {
                    "code": "app",
                    "priority": 50,
                    "when": {"channels": ["MOBILE_APP"]},
                    "multiplier": "2",
                },
                {
                    "code": "books",
                    "priority": 10,
                    "when": {"categories": ["books"]},
                    "multiplier": "1.5",
                },
            ],
        },
        redemption={
            "point_value_minor": POINT_VALUE,
            "max_share_percent": SHARE_PERCENT,
            "min_balance": min_balance,
            "hold_minutes": HOLD // timedelta(minutes=1),
        },
        tiers={
            "review_every_days": REVIEW.days,
            "levels": [{"code": "base", "name": "Base", "threshold": 0}],
        },
    )


# --- operations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Buy:
    who: int
    lines: tuple[tuple[str, int, int], ...]  # (category, quantity, unit price)
    channel: Channel
    days_ago: int  # recorded now, happened then (an import): its points may be due already


@dataclass(frozen=True)
class Return:
    pick: int  # among purchases with units left
    line: int
    percent: int  # of the units left on that line
    over: bool  # one unit more than is left: RETURN_EXCEEDS_PURCHASE
    days_ago: int  # happened then, but not before the purchase


@dataclass(frozen=True)
class Redeem:
    who: int
    percent: int  # of the available balance (over 100: more than there is)
    delta: int
    share_ok: bool  # an order total that allows these points, or one minor unit less
    on_purchase: int | None  # pay for one of the member's purchases instead of a cart


@dataclass(frozen=True)
class Retry:
    same: bool  # the last redemption's key with the same payload, or with one more point


@dataclass(frozen=True)
class Reserve:
    who: int
    percent: int
    delta: int
    share_ok: bool


@dataclass(frozen=True)
class Commit:
    pick: int  # among holds not yet closed
    foreign: bool  # the other member asks
    on_purchase: int | None
    any_hold: bool  # pick among all holds, closed ones too


@dataclass(frozen=True)
class Cancel:
    pick: int
    foreign: bool
    any_hold: bool


@dataclass(frozen=True)
class Adjust:
    who: int
    points: int


@dataclass(frozen=True)
class Jump:
    seconds: int


@dataclass(frozen=True)
class JumpToDue:
    offset: int  # seconds from the next instant something falls due


@dataclass(frozen=True)
class Scheduled:
    pass


Op = (
    Buy
    | Return
    | Redeem
    | Retry
    | Reserve
    | Commit
    | Cancel
    | Adjust
    | Jump
    | JumpToDue
    | Scheduled
)

who = st.integers(0, MEMBERS - 1)
percent = st.one_of(st.integers(10, 100), st.sampled_from([100, 101, 130]))
# Hypothesis leans towards the first and smallest choices, so the usual case comes first.
rarely = st.sampled_from([False] * 7 + [True])
backdated = st.one_of(st.just(0), st.just(0), st.integers(1, 150))
mostly = st.sampled_from([True] * 5 + [False])
buy = st.builds(
    Buy,
    who=who,
    lines=st.lists(
        st.tuples(
            st.sampled_from(["grocery", "books"]),
            st.integers(1, 5),
            st.one_of(st.integers(5_000, 30_000), st.integers(1, 200)),
        ),
        min_size=1,
        max_size=2,
    ).map(tuple),
    channel=st.sampled_from([Channel.POS, Channel.WEB, Channel.MOBILE_APP]),
    days_ago=backdated,
)
minutes, hours, days, months = (60, 3_600, 86_400, 30 * 86_400)
short_jump = st.builds(
    Jump, seconds=st.one_of(st.integers(minutes, hours), st.integers(hours, 3 * days))
)
day_jump = st.builds(Jump, seconds=st.integers(days, months))  # past the pending period
long_jump = st.builds(Jump, seconds=st.integers(months, 200 * days))  # past the expiry


def spend(spenders: st.SearchStrategy[int]) -> st.SearchStrategy[Op]:
    return st.builds(
        Redeem,
        who=spenders,
        percent=percent,
        delta=st.integers(-1, 1),
        share_ok=mostly,
        on_purchase=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 20)),
    )


def hold(spenders: st.SearchStrategy[int]) -> st.SearchStrategy[Op]:
    return st.builds(
        Reserve, who=spenders, percent=percent, delta=st.integers(-1, 1), share_ok=mostly
    )


give_back = st.builds(
    Return,
    pick=st.integers(0, 20),
    line=st.integers(0, 1),
    percent=st.integers(1, 100),
    over=rarely,
    days_ago=backdated,
)
pay_hold = st.builds(
    Commit,
    pick=st.integers(0, 20),
    foreign=rarely,
    on_purchase=st.one_of(st.none(), st.integers(0, 20)),
    any_hold=rarely,
)
drop_hold = st.builds(Cancel, pick=st.integers(0, 20), foreign=rarely, any_hold=rarely)
adjustment = st.builds(
    Adjust, who=who, points=st.one_of(st.integers(1, 400), st.integers(-400, -1))
)
due_jump = st.builds(JumpToDue, offset=st.sampled_from([0, 0, -1, 1]))


def operations(model: Model, now: datetime) -> st.SearchStrategy[Op]:
    """What may come next. Operations that need something (points, a purchase, a hold) are
    offered more once it exists; repeated alternatives weigh more."""
    options: list[st.SearchStrategy[Op]] = []
    if any(h.status == Hold.HELD and h.expires_at > now for h in model.holds):
        options += [pay_hold, drop_hold, pay_hold, pay_hold]  # before the hold runs out
    options += [buy, day_jump]
    rich = [m for m in range(MEMBERS) if model.balance(m, now).available > 0]
    if rich:
        options += [spend(st.sampled_from(rich)), hold(st.sampled_from(rich))]
    if model.holds:
        options += [pay_hold, drop_hold]
    if any(p.left(n) for p in model.purchases for n in range(len(p.lines))):
        options += [give_back]
    options += [short_jump, adjustment, buy, due_jump, spend(who), st.builds(Scheduled)]
    options += [long_jump, hold(who)]
    if model.last_redeem is not None:
        options += [st.builds(Retry, same=st.booleans())]
    return st.one_of(options)


# --- the model ---------------------------------------------------------------------------------


@dataclass
class MLot:
    kind: EntryKind
    amount: int
    remaining: int
    status: LotStatus
    earned_at: datetime
    available_at: datetime
    expires_at: datetime
    event: int | None = None  # index of the purchase that earned it

    def spendable(self, now: datetime) -> bool:
        """Status-wise, as `balance_of` counts it (remaining aside)."""
        active = self.status == LotStatus.ACTIVE or (
            self.status == LotStatus.PENDING and self.available_at <= now
        )
        return active and self.expires_at > now


@dataclass
class MHold:
    who: int
    points: int
    created_at: datetime
    expires_at: datetime
    taken: list[tuple[int, int]]  # (index of the member's lot, points)
    status: Hold = Hold.HELD
    purchase: int | None = None
    id: uuid.UUID | None = None


@dataclass
class MPurchase:
    who: int
    at: datetime
    lines: list[tuple[str, int, int]]  # (sku, quantity, unit price)
    earned: int
    returned: dict[str, int] = field(default_factory=dict)
    returned_amount: int = 0
    paid: int = 0
    id: uuid.UUID | None = None

    @property
    def amount(self) -> int:
        return sum(quantity * price for _, quantity, price in self.lines)

    def left(self, line: int) -> int:
        sku, quantity, _ = self.lines[line]
        return quantity - self.returned.get(sku, 0)


@dataclass
class MMember:
    lots: list[MLot] = field(default_factory=list)
    debt: int = 0
    reviewed_at: datetime = T0


class Rejected(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def share(total: int, part: int, whole: int) -> int:
    return total * part // whole if whole > 0 else 0


class Model:
    def __init__(self, policy: ReturnPolicy, min_balance: int) -> None:
        self.allow_debt = policy is ReturnPolicy.ALLOW_NEGATIVE
        self.min_balance = min_balance
        self.members = [MMember() for _ in range(MEMBERS)]
        self.holds: list[MHold] = []
        self.purchases: list[MPurchase] = []
        self.keys: dict[str, tuple[int, int, int | None, int | None]] = {}
        self.last_redeem: tuple[str, int, int, int, int | None] | None = None
        self.notes: Counter[str] = Counter()

    # ledger mechanics, as `loyalty.ledger` states them
    def balance(self, who: int, now: datetime) -> Balance:
        member = self.members[who]
        available = sum(lot.remaining for lot in member.lots if lot.spendable(now))
        pending = sum(
            lot.remaining
            for lot in member.lots
            if lot.status == LotStatus.PENDING and lot.available_at > now and lot.expires_at > now
        )
        held = sum(
            hold.points
            for hold in self.holds
            if hold.who == who and hold.status == Hold.HELD and hold.expires_at > now
        )
        # A hold past its time gives its points back at once, to the lots still spendable.
        lapsed = sum(
            points
            for hold in self.holds
            if hold.who == who and hold.status == Hold.HELD and hold.expires_at <= now
            for i, points in hold.taken
            if member.lots[i].spendable(now)
        )
        return Balance(available=available + lapsed - member.debt, pending=pending, held=held)

    def spendable(self, who: int, now: datetime, first: int | None = None) -> list[int]:
        """Indices of lots a debit takes from, in order: `first`'s lots, earliest expiry."""
        lots = self.members[who].lots
        usable = [i for i, lot in enumerate(lots) if lot.remaining > 0 and lot.spendable(now)]
        return sorted(
            usable,
            key=lambda i: (
                0 if first is not None and lots[i].event == first else 1,
                lots[i].expires_at,
                lots[i].earned_at,
            ),
        )

    def allocate(self, who: int, order: list[int], points: int) -> list[tuple[int, int]]:
        taken: list[tuple[int, int]] = []
        for i in order:
            lot = self.members[who].lots[i]
            take = min(lot.remaining, points - sum(n for _, n in taken))
            if take > 0:
                lot.remaining -= take
                taken.append((i, take))
        return taken

    def settle(self, who: int, now: datetime) -> None:
        member = self.members[who]
        if member.debt > 0:
            paid = sum(n for _, n in self.allocate(who, self.spendable(who, now), member.debt))
            member.debt -= paid
            self.notes["points paid a debt"] += paid > 0

    def credit(self, who: int, lot: MLot, now: datetime) -> None:
        self.members[who].lots.append(lot)
        if lot.status == LotStatus.ACTIVE:
            self.settle(who, now)

    def new_lot(
        self, kind: EntryKind, points: int, when: datetime, now: datetime, *, pending: bool
    ) -> MLot:
        available = when + PENDING if pending else when
        status = LotStatus.PENDING if available > now else LotStatus.ACTIVE
        return MLot(kind, points, points, status, when, available, when + LIFETIME)

    def expire(self, lot: MLot) -> None:
        lot.remaining = 0
        if lot.status != LotStatus.CANCELLED:
            lot.status = LotStatus.EXPIRED

    def release(self, hold: MHold, status: Hold, when: datetime) -> None:
        lots = self.members[hold.who].lots
        for i, points in hold.taken:
            lots[i].remaining += points
        hold.status = status
        for i, _ in hold.taken:
            lot = lots[i]
            if lot.status in (LotStatus.EXPIRED, LotStatus.CANCELLED) or lot.expires_at <= when:
                self.notes["a released hold's points expired with their lot"] += 1
                self.expire(lot)

    def catch_up(self, who: int, now: datetime) -> None:
        stale = [h for h in self.holds if h.who == who and h.status == Hold.HELD]
        for hold in sorted((h for h in stale if h.expires_at <= now), key=lambda h: h.expires_at):
            self.release(hold, Hold.EXPIRED, hold.expires_at)
        for lot in self.members[who].lots:
            if lot.status not in (LotStatus.PENDING, LotStatus.ACTIVE):
                continue
            if lot.expires_at <= now:
                self.expire(lot)
            elif lot.status == LotStatus.PENDING and lot.available_at <= now:
                lot.status = LotStatus.ACTIVE
        self.settle(who, now)

    def check_funds(self, who: int, points: int, now: datetime) -> None:
        available = self.balance(who, now).available
        if available < self.min_balance:
            raise Rejected("BELOW_MINIMUM_BALANCE")
        if available < points:
            raise Rejected("INSUFFICIENT_POINTS")

    # operations: each returns "ok" or "replay", or raises Rejected with the expected code
    def buy(self, op: Buy, when: datetime, now: datetime) -> str:
        exact = Decimal(0)
        for category, quantity, price in op.lines:
            factor = Decimal(2) if op.channel == Channel.MOBILE_APP else Decimal(1)
            factor *= Decimal("1.5") if category == "books" else Decimal(1)
            exact += Decimal(quantity * price) / 100 * factor
        points = int(exact.to_integral_value(rounding=ROUND_FLOOR))
        lines = [(f"SKU-{n}", quantity, price) for n, (_, quantity, price) in enumerate(op.lines)]
        self.purchases.append(MPurchase(op.who, when, lines, earned=points))
        if points > 0:
            lot = self.new_lot(EntryKind.EARN, points, when, now, pending=True)
            lot.event = len(self.purchases) - 1
            self.notes["a backdated purchase earned points already due"] += lot.available_at <= now
            self.credit(op.who, lot, now)
        self.catch_up(op.who, now)
        return "ok"

    def give_back(self, index: int, sku: str, quantity: int, when: datetime, now: datetime) -> str:
        purchase = self.purchases[index]
        line = next(n for n, (s, _, _) in enumerate(purchase.lines) if s == sku)
        if quantity > purchase.left(line):
            raise Rejected("RETURN_EXCEEDS_PURCHASE")
        who = purchase.who
        self.catch_up(who, now)
        before = purchase.returned_amount
        after = before + quantity * purchase.lines[line][2]
        whole = purchase.amount
        reverse = share(purchase.earned, after, whole) - share(purchase.earned, before, whole)
        refund = share(purchase.paid, after, whole) - share(purchase.paid, before, whole)
        purchase.returned[sku] = purchase.returned.get(sku, 0) + quantity
        purchase.returned_amount = after
        if reverse > 0:
            lots = self.members[who].lots
            own = [
                i
                for i, lot in enumerate(lots)
                if lot.event == index
                and lot.status == LotStatus.PENDING
                and lot.available_at > now
                and lot.remaining > 0
            ]
            order = own + self.spendable(who, now, first=index)
            coverable = sum(lots[i].remaining for i in order)
            target = reverse if self.allow_debt else min(reverse, coverable)
            if target > 0:
                taken = sum(n for _, n in self.allocate(who, order, target))
                self.members[who].debt += target - taken
                for i in order:
                    lot = lots[i]
                    if (
                        lot.status == LotStatus.PENDING
                        and lot.remaining == 0
                        and lot.available_at > now
                    ):
                        lot.status = LotStatus.CANCELLED
        if refund > 0:
            self.notes["a return gave back points paid for the purchase"] += 1
            lot = self.new_lot(EntryKind.REFUND, refund, when, now, pending=False)
            self.credit(who, lot, now)
        self.catch_up(who, now)
        return "ok"

    def order_total(self, points: int, share_ok: bool, on_purchase: int | None) -> int:
        if on_purchase is not None:
            return self.purchases[on_purchase].amount
        return points * POINT_VALUE * 100 // SHARE_PERCENT - (0 if share_ok else 1)

    def check_share(self, points: int, total: int) -> None:
        if points > total * SHARE_PERCENT // 100 // POINT_VALUE:
            raise Rejected("SHARE_EXCEEDED")

    def redeem(
        self, key: str, who: int, points: int, total: int, on_purchase: int | None, now: datetime
    ) -> str:
        payload = (who, points, None if on_purchase is not None else total, on_purchase)
        if key in self.keys:
            if self.keys[key] != payload:
                raise Rejected("IDEMPOTENCY_KEY_REUSED")
            return "replay"
        self.check_share(points, total)
        self.catch_up(who, now)
        self.check_funds(who, points, now)
        self.allocate(who, self.spendable(who, now), points)
        if on_purchase is not None:
            self.purchases[on_purchase].paid += points
        self.keys[key] = payload
        return "ok"

    def reserve(self, who: int, points: int, total: int, now: datetime) -> str:
        self.check_share(points, total)
        self.catch_up(who, now)
        self.check_funds(who, points, now)
        taken = self.allocate(who, self.spendable(who, now), points)
        self.holds.append(MHold(who, points, now, now + HOLD, taken))
        return "ok"

    def commit(self, hold: MHold, asker: int, on_purchase: int | None, now: datetime) -> str:
        if hold.who != asker:
            raise Rejected("RESERVATION_NOT_FOUND")
        if hold.status == Hold.COMMITTED:
            if on_purchase is not None and hold.purchase not in (None, on_purchase):
                raise Rejected("RESERVATION_CLOSED")
            return "replay"
        if hold.status == Hold.CANCELLED:
            raise Rejected("RESERVATION_CLOSED")
        if hold.status == Hold.EXPIRED or hold.expires_at <= now:
            raise Rejected("RESERVATION_EXPIRED")
        if on_purchase is not None:
            hold.purchase = on_purchase
            self.purchases[on_purchase].paid += hold.points
        hold.status = Hold.COMMITTED
        return "ok"

    def cancel(self, hold: MHold, asker: int, now: datetime) -> str:
        if hold.who != asker:
            raise Rejected("RESERVATION_NOT_FOUND")
        if hold.status == Hold.COMMITTED:
            raise Rejected("RESERVATION_CLOSED")
        if hold.status != Hold.HELD:
            return "replay"
        if hold.expires_at <= now:
            self.catch_up(hold.who, now)
            return "replay, caught up"
        self.release(hold, Hold.CANCELLED, now)
        return "ok"

    def adjust(self, who: int, points: int, now: datetime) -> str:
        self.catch_up(who, now)
        if points > 0:
            self.credit(who, self.new_lot(EntryKind.ADJUST, points, now, now, pending=False), now)
            return "ok"
        if self.balance(who, now).available < -points:
            raise Rejected("INSUFFICIENT_POINTS")
        self.allocate(who, self.spendable(who, now), -points)
        return "ok"

    def scheduled(self, now: datetime) -> str:
        for who, member in enumerate(self.members):
            due = any(
                lot.status in (LotStatus.PENDING, LotStatus.ACTIVE)
                and (
                    lot.expires_at <= now
                    or (lot.status == LotStatus.PENDING and lot.available_at <= now)
                )
                for lot in member.lots
            )
            due = due or any(
                h.who == who and h.status == Hold.HELD and h.expires_at <= now for h in self.holds
            )
            review = member.reviewed_at <= now - REVIEW
            if due or review:
                self.catch_up(who, now)
            if review:
                member.reviewed_at = now
        return "ok"

    def payable(self, who: int) -> list[int]:
        """The member's purchases that points may pay for here: untouched ones (neither paid
        with points nor returned yet), where the rules leave no doubt. Paying twice for one
        purchase, or for another member's, is tested on its own below."""
        return [
            i
            for i, p in enumerate(self.purchases)
            if p.who == who and p.paid == 0 and p.returned_amount == 0
        ]

    def unused_instant(self, who: int, when: datetime) -> datetime:
        """`when`, or a microsecond later, until none of the member's lots was earned then
        (two lots earned at one instant would be spent in an order only their ids decide)."""
        taken = {lot.earned_at for lot in self.members[who].lots}
        while when in taken:
            when += timedelta(microseconds=1)
        return when

    def next_due(self, now: datetime) -> datetime:
        instants = [m.reviewed_at + REVIEW for m in self.members]
        for member in self.members:
            for lot in member.lots:
                if lot.status in (LotStatus.PENDING, LotStatus.ACTIVE):
                    instants += [lot.available_at, lot.expires_at]
        instants += [h.expires_at for h in self.holds if h.status == Hold.HELD]
        later = [t for t in instants if t > now]
        return min(later) if later else now + timedelta(days=1)


def lot_view(lot: Lot | MLot) -> tuple[object, ...]:
    times = (lot.earned_at, lot.available_at, lot.expires_at)
    return (lot.kind, lot.amount, lot.remaining, lot.status, *times)


Act = Callable[[], Awaitable[tuple[str, uuid.UUID | None]]]  # the outcome, and a new row's id


# --- the engine side ------------------------------------------------------------------------


@dataclass
class Run:
    sessions: async_sessionmaker[AsyncSession]
    provider: LocalKeyring
    members: list[uuid.UUID]
    model: Model
    now: datetime = T0
    keys: int = 0
    log: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    def key(self) -> str:
        self.keys += 1
        return f"prop-key-{self.keys:06d}"

    def amount(self, who: int, percent: int, delta: int) -> int:
        available = self.model.balance(who, self.now).available
        return max(1, available * percent // 100 + delta)

    async def step(self, op: Op) -> None:
        """Predict with a copy of the model, run the engine, compare, then check everything."""
        if isinstance(op, Jump | JumpToDue):
            if isinstance(op, Jump):
                self.now += timedelta(seconds=op.seconds)
            else:
                due = self.model.next_due(self.now) + timedelta(seconds=op.offset)
                self.now = max(self.now, due)
            self.log.append(f"{op} -> now {self.now.isoformat()}")
            await self.check(rows_changed=False)
            return
        trial = copy.deepcopy(self.model)
        call = self.plan(op, trial)
        if call is None:
            self.log.append(f"{op}: nothing to do")
            self.outcomes[f"{type(op).__name__}: nothing to do"] += 1
            return
        predict, act = call
        try:
            expected = predict()
        except Rejected as rejected:
            expected = rejected.code
        quiet = expected not in ("ok", "replay, caught up")
        before = await self.rows() if quiet else None
        try:
            got, created = await act()
        except DomainError as error:
            got, created = str(error.code), None
        self.log.append(f"{op} at {self.now.isoformat()}: expected {expected}, got {got}")
        self.outcomes[f"{type(op).__name__}: {expected}"] += 1
        assert got == expected.split(",")[0], "\n".join(self.log)
        if expected in ("ok", "replay", "replay, caught up"):
            self.model = trial
            if created is not None:
                if isinstance(op, Buy):
                    self.model.purchases[-1].id = created
                else:
                    self.model.holds[-1].id = created
        if before is not None:
            assert await self.rows() == before, "a failed or replayed operation changed rows\n" + (
                "\n".join(self.log)
            )
        await self.check(rows_changed=not quiet)
        self.note_state()
        self.now += TICK

    def plan(self, op: Op, trial: Model) -> tuple[Callable[[], str], Act] | None:
        """What the model predicts for `op` (on `trial`), and how the engine does it."""
        now = self.now
        cipher = self.cipher
        if isinstance(op, Buy):
            lines = [
                LineInput(sku=f"SKU-{n}", quantity=q, category=c, unit_price_minor=p)
                for n, (c, q, p) in enumerate(op.lines)
            ]
            when = trial.unused_instant(op.who, now - timedelta(days=op.days_ago))

            async def buy() -> tuple[str, uuid.UUID]:
                async with transaction(self.sessions) as session:
                    recorded = await record_purchase(
                        session,
                        cipher(session),
                        customer=CustomerRef(self.members[op.who]),
                        channel=op.channel,
                        lines=lines,
                        idempotency_key=self.key(),
                        currency="RUB",
                        occurred_at=when,
                        now=now,
                    )
                return "ok", recorded.event.id

            return (lambda: trial.buy(op, when, now)), buy
        if isinstance(op, Return):
            open_ = [
                i
                for i, p in enumerate(trial.purchases)
                if any(p.left(n) for n in range(len(p.lines)))
            ]
            if not open_:
                return None
            index = open_[op.pick % len(open_)]
            purchase = trial.purchases[index]
            line = op.line % len(purchase.lines)
            left = purchase.left(line)
            quantity = left + 1 if op.over else max(1, left * op.percent // 100)
            sku = purchase.lines[line][0]
            assert purchase.id is not None
            purchase_id: uuid.UUID = purchase.id
            earliest = max(purchase.at, now - timedelta(days=op.days_ago))
            when = trial.unused_instant(purchase.who, earliest)

            async def give_back() -> tuple[str, None]:
                async with transaction(self.sessions) as session:
                    await record_return(
                        session,
                        cipher(session),
                        purchase_id=purchase_id,
                        channel=Channel.POS,
                        lines=[LineInput(sku=sku, quantity=quantity)],
                        idempotency_key=self.key(),
                        occurred_at=when,
                        now=now,
                    )
                return "ok", None

            return (lambda: trial.give_back(index, sku, quantity, when, now)), give_back
        if isinstance(op, Redeem | Retry):
            if isinstance(op, Redeem):
                points = self.amount(op.who, op.percent, op.delta)
                own = trial.payable(op.who)
                on = own[op.on_purchase % len(own)] if own and op.on_purchase is not None else None
                total = trial.order_total(points, op.share_ok, on)
                key, spender = self.key(), op.who
            elif trial.last_redeem is None:
                return None
            else:
                key, spender, points, total, on = trial.last_redeem
                if not op.same:  # another payload under the same key
                    points += 1
                    total = trial.order_total(points, True, on)
            # Remembered even when it fails: a retry of a failed redemption runs afresh.
            last = (key, spender, points, total, on)
            trial.last_redeem = self.model.last_redeem = last
            paid_for = trial.purchases[on].id if on is not None else None

            async def pay() -> tuple[str, None]:
                async with transaction(self.sessions) as session:
                    done = await redeem(
                        session,
                        cipher(session),
                        customer_id=self.members[spender],
                        points=points,
                        idempotency_key=key,
                        order_total_minor=None if paid_for else total,
                        purchase_id=paid_for,
                        now=now,
                    )
                return ("replay" if done.replayed else "ok"), None

            return (lambda: trial.redeem(key, spender, points, total, on, now)), pay
        if isinstance(op, Reserve):
            points = self.amount(op.who, op.percent, op.delta)
            total = trial.order_total(points, op.share_ok, None)

            async def hold() -> tuple[str, uuid.UUID]:
                async with transaction(self.sessions) as session:
                    held = await reserve(
                        session,
                        cipher(session),
                        customer_id=self.members[op.who],
                        points=points,
                        idempotency_key=self.key(),
                        order_total_minor=total,
                        now=now,
                    )
                return "ok", held.reservation.id

            return (lambda: trial.reserve(op.who, points, total, now)), hold
        if isinstance(op, Commit | Cancel):
            held = [h for h in trial.holds if h.status == Hold.HELD]
            choice = trial.holds if op.any_hold or not held else held
            if not choice:
                return None
            target = choice[op.pick % len(choice)]
            asker = (target.who + 1) % MEMBERS if op.foreign else target.who
            assert target.id is not None
            reservation_id = target.id
            if isinstance(op, Cancel):

                async def release() -> tuple[str, None]:
                    async with transaction(self.sessions) as session:
                        done = await cancel(
                            session,
                            customer_id=self.members[asker],
                            reservation_id=reservation_id,
                            now=now,
                        )
                    return ("replay" if done.replayed else "ok"), None

                return (lambda: trial.cancel(target, asker, now)), release
            most = target.points * POINT_VALUE * 100 // SHARE_PERCENT  # the smallest total
            own = [i for i in trial.payable(asker) if trial.purchases[i].amount >= most]
            on = own[op.on_purchase % len(own)] if own and op.on_purchase is not None else None
            commit_for = trial.purchases[on].id if on is not None else None

            async def pay_hold() -> tuple[str, None]:
                async with transaction(self.sessions) as session:
                    done = await commit(
                        session,
                        customer_id=self.members[asker],
                        reservation_id=reservation_id,
                        purchase_id=commit_for,
                        now=now,
                    )
                return ("replay" if done.replayed else "ok"), None

            return (lambda: trial.commit(target, asker, on, now)), pay_hold
        if isinstance(op, Adjust):

            async def correct() -> tuple[str, None]:
                async with transaction(self.sessions) as session:
                    await adjust(
                        session,
                        cipher(session),
                        customer_id=self.members[op.who],
                        points=op.points,
                        reason="property test",
                        actor="test",
                        idempotency_key=self.key(),
                        now=now,
                    )
                return "ok", None

            return (lambda: trial.adjust(op.who, op.points, now)), correct
        assert isinstance(op, Scheduled)

        async def scheduled() -> tuple[str, None]:
            await run_scheduled(self.sessions, at=now)
            return "ok", None

        return (lambda: trial.scheduled(now)), scheduled

    def cipher(self, session: AsyncSession) -> FieldCipher:
        return FieldCipher(session, self.provider)

    async def rows(self) -> dict[str, list[tuple[object, ...]]]:
        async with self.sessions() as session:
            return await ledger_rows(session)

    def note_state(self) -> None:
        """Which situations the examples reached (the test asserts the interesting ones)."""
        for member in self.model.members:
            if member.debt:
                self.outcomes["state: a member owes points"] += 1
            for lot in member.lots:
                if lot.status == LotStatus.EXPIRED and lot.amount:
                    self.outcomes["state: a lot expired"] += 1
                if lot.status == LotStatus.CANCELLED:
                    self.outcomes["state: a return cancelled a pending lot"] += 1
        if any(h.status == Hold.EXPIRED for h in self.model.holds):
            self.outcomes["state: a hold ran out"] += 1

    async def check(self, *, rows_changed: bool) -> None:
        """Every invariant and the model. Without `rows_changed` only what depends on the
        clock is compared (the balance as of now): the rows are the ones checked before."""
        where = "\n".join(self.log)
        async with self.sessions() as session:
            balances = [await balance_of(session, member, self.now) for member in self.members]
            if not rows_changed:
                for who, balance in enumerate(balances):
                    assert balance == self.model.balance(who, self.now), f"member {who}\n{where}"
                return
            report = await verify_ledger(session)
            assert report.ok, f"{report.breaches}\n{where}"
            lots = (await session.execute(select(Lot).order_by(col(Lot.earned_at)))).scalars()
            holds = await session.execute(select(Reservation).order_by(col(Reservation.created_at)))
            sums = await session.execute(
                select(
                    col(LedgerEntry.customer_id),
                    func.sum(col(LedgerEntry.outstanding)),
                    func.sum(col(LedgerEntry.points)).filter(
                        col(LedgerEntry.points) > 0, col(LedgerEntry.kind) != EntryKind.RELEASE
                    ),
                    func.sum(-col(LedgerEntry.points)).filter(
                        col(LedgerEntry.kind) == EntryKind.REDEEM
                    ),
                ).group_by(col(LedgerEntry.customer_id))
            )
            totals = {row[0]: [int(n or 0) for n in row[1:]] for row in sums.all()}
        index = {member: who for who, member in enumerate(self.members)}
        seen_lots: list[list[tuple[object, ...]]] = [[] for _ in self.members]
        for lot in lots:
            seen_lots[index[lot.customer_id]].append(lot_view(lot))
        seen_holds: list[list[tuple[object, ...]]] = [[] for _ in self.members]
        for reservation in holds.scalars():
            seen_holds[index[reservation.customer_id]].append(
                (reservation.points, reservation.status)
            )
        for who, member in enumerate(self.model.members):
            assert balances[who] == self.model.balance(who, self.now), f"member {who}\n{where}"
            if not self.model.allow_debt:
                assert balances[who].available >= 0, where
            ordered = sorted(member.lots, key=lambda lot: lot.earned_at)
            assert seen_lots[who] == [lot_view(lot) for lot in ordered], (
                f"member {who} lots\n{where}"
            )
            assert seen_holds[who] == [
                (h.points, h.status) for h in self.model.holds if h.who == who
            ], f"member {who} holds\n{where}"
            debt, credited, redeemed = totals.get(self.members[who], [0, 0, 0])
            assert debt == member.debt, f"member {who} debt\n{where}"
            held = sum(
                h.points
                for h in self.model.holds
                if h.who == who and h.status in (Hold.HELD, Hold.COMMITTED)
            )
            assert redeemed + held <= credited, f"member {who} spent more than credited\n{where}"


# --- databases and the test ---------------------------------------------------------------


def scratch_databases(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], AbstractAsyncContextManager[str]]:
    """A fresh migrated database per example: a copy of the SQLite template, or a PostgreSQL
    database created from the template database (and dropped after the example)."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")

        @asynccontextmanager
        async def sqlite() -> AsyncIterator[str]:
            target = tmp_path / f"example-{uuid.uuid4().hex[:8]}.db"
            shutil.copyfile(template, target)
            try:
                yield f"sqlite:///{target}"
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{target}{suffix}").unlink(missing_ok=True)

        return sqlite
    template_name: str = request.getfixturevalue("pg_template")
    server = make_url(os.environ["LOYALGRAPH_TEST_DATABASE_URL"])
    connect = {
        "host": server.host or "127.0.0.1",
        "port": server.port or 5432,
        "user": server.username or "postgres",
        "password": server.password,
        "database": server.database or "postgres",
    }

    @asynccontextmanager
    async def postgresql() -> AsyncIterator[str]:
        name = f"lg_prop_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(**connect)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()

    return postgresql


async def run_example(
    databases: Callable[[], AbstractAsyncContextManager[str]],
    provider: LocalKeyring,
    policy: ReturnPolicy,
    min_balance: int,
    draw: Callable[[st.SearchStrategy[Op]], Op],
    outcomes: Counter[str],
) -> None:
    async with databases() as url:
        engine = create_engine(url)
        try:
            sessions = session_factory(engine)
            async with transaction(sessions) as session:
                await load_program(session, definition(policy, min_balance), actor="test")
            members = []
            for n in range(MEMBERS):
                async with transaction(sessions) as session:
                    registered = await register_customer(
                        session,
                        FieldCipher(session, provider),
                        channel=Channel.POS,
                        phone=f"+7916555000{n}",
                        phone_verified=True,
                        now=T0,
                    )
                    members.append(registered.customer.id)
            run = Run(sessions, provider, members, Model(policy, min_balance), outcomes=outcomes)
            run.log.append(f"{policy}, min_balance {min_balance}")
            for _ in range(STEPS):
                await run.step(draw(operations(run.model, run.now)))
            outcomes.update(run.model.notes)
        finally:
            await engine.dispose()


@pytest.mark.parametrize("policy", list(ReturnPolicy))
def test_random_operations_keep_the_ledger_consistent(
    backend: str, policy: ReturnPolicy, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    install()
    databases = scratch_databases(backend, request, tmp_path)
    provider = LocalKeyring(tmp_path / "keyring.json")
    outcomes: Counter[str] = Counter()

    with asyncio.Runner() as runner:

        @settings(
            max_examples=EXAMPLES[backend],
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @seed(SEEDS[policy])
        @given(data=st.data(), min_balance=st.sampled_from([0, 0, 30]))
        def property_holds(data: st.DataObject, min_balance: int) -> None:
            runner.run(run_example(databases, provider, policy, min_balance, data.draw, outcomes))

        property_holds()
    if backend == "sqlite":  # enough examples to expect these; fewer run on PostgreSQL
        reached = {"Buy: ok", "Return: ok", "Redeem: ok", "Reserve: ok", "Adjust: ok"}
        reached |= {"Redeem: INSUFFICIENT_POINTS", "Redeem: SHARE_EXCEEDED", "Scheduled: ok"}
        reached |= {"state: a lot expired", "state: a hold ran out"}
        if policy is ReturnPolicy.ALLOW_NEGATIVE:
            reached |= {"state: a member owes points"}
        missing = reached - set(outcomes)
        assert not missing, f"the examples no longer reach {missing}: {sorted(outcomes.items())}"


# --- found while modelling the rules (minimal repros; the engine is fixed elsewhere) ---------


@pytest.fixture
async def shop(sessions: async_sessionmaker[AsyncSession], provider: LocalKeyring) -> Loyalty:
    helper = Loyalty(sessions, provider)
    await helper.load(program())  # 1 point per 1.00, 10 days pending, at most 50% in points
    return helper


async def _redeem_for(shop: Loyalty, customer: uuid.UUID, purchase: uuid.UUID, at: datetime) -> str:
    try:
        async with transaction(shop.sessions) as session:
            await redeem(
                session,
                FieldCipher(session, shop.provider),
                customer_id=customer,
                points=300,
                idempotency_key=shop.key(),
                purchase_id=purchase,
                now=at,
            )
    except DomainError as error:
        return str(error.code)
    return "ok"


async def test_points_paid_for_one_purchase_stay_within_its_share(shop: Loyalty) -> None:
    buyer = await shop.member("+79165550101", at=T0)
    await shop.buy(buyer, 300_000, at=T0)  # 3000 points, spendable after 10 days
    later = T0 + timedelta(days=11)
    purchase = await shop.buy(buyer, 60_000, at=later)  # 600.00: at most 300 points

    assert await _redeem_for(shop, buyer, purchase, later) == "ok"
    assert await _redeem_for(shop, buyer, purchase, later) == "SHARE_EXCEEDED"


async def test_points_pay_only_for_the_customers_own_purchase(shop: Loyalty) -> None:
    payer = await shop.member("+79165550102", at=T0)
    owner = await shop.member("+79165550103", at=T0)
    await shop.buy(payer, 300_000, at=T0)
    later = T0 + timedelta(days=11)
    theirs = await shop.buy(owner, 60_000, at=later)

    outcome = await _redeem_for(shop, payer, theirs, later)
    await shop.give_back(theirs, 1, at=later)

    assert (await shop.balance(owner, later)).available == 0  # no points moved across accounts
    assert outcome == "PURCHASE_NOT_FOUND"
