"""The model the ledger property test checks the engine against: the program, the
operations Hypothesis draws, and a plain-Python ledger written from the rules the `loyalty`
docstrings state (lot by lot, earliest expiry first, holds, debt, returns and refunds)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from hypothesis import strategies as st

from graph.enums import Channel
from loyalty.definition import ProgramDefinition, ReturnPolicy
from loyalty.ledger import Balance
from loyalty.models import EntryKind, Lot, LotStatus
from loyalty.models import ReservationStatus as Hold
from tests.integration.loyalty_helpers import program

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
