"""The demo's points history: two years of the demo retailer replayed through the program.

After `graph.demo` has bulk-inserted the customer graph (publishing no facts), `seed_demo_ledger`
loads `loyalty/programs/demo.yaml` and bulk-writes the ledger the engine would hold had it run all
along, its scheduled job included: bonuses, capped purchase points pending for the return window,
returns and refunds, referral rewards (identifier check, limit, budget), a fifth of repeat buyers
paying with points on later purchases, lots activating and expiring at their instants, tiers
upgraded on earning and reviewed on schedule. So `run-scheduled` right after it has nothing to do.

The numbers come from the engine's pure rules (`compute_earning`, `share_of`, `max_redeemable`,
`level_for`, the program's `available_at`/`expires_at`/`day_bounds`/`month_bounds`); the steps
follow `loyalty.earning`, `loyalty.ledger` and `loyalty.tiers`, and
`tests/integration/test_loyalty_demo.py` replays small demos through those modules and compares
the ledgers. Entries carry no idempotency keys (generated history, not requests); `recorded_at`
is the simulated instant. It refuses (`DemoRefused`) a database with loyalty accounts.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from core.clock import as_utc, utcnow
from core.db import UTCDateTime, create_engine, session_factory, transaction
from core.settings import Settings
from graph.demo import DemoRefused
from graph.enums import Channel, EventType, ReferralStatus
from graph.models import Customer, Event, EventLine, Identity, Referral, Review
from loyalty.definition import (
    BonusEvent,
    Downgrade,
    ProgramDefinition,
    ReturnPolicy,
    TierLevel,
    TierMetric,
)
from loyalty.models import (
    Account,
    Allocation,
    EntryKind,
    LedgerEntry,
    Lot,
    LotStatus,
    TierChange,
)
from loyalty.program import load_program, read_program_file
from loyalty.rules import Cart, Line, compute_earning, max_redeemable, share_of
from loyalty.tiers import EARNING_KINDS, level_for, rank
from privacy.fields import FieldCipher
from privacy.keys import KeyProvider

DEMO_PROGRAM = Path(__file__).resolve().parent / "programs" / "demo.yaml"
REDEEMER_SHARE = 0.2  # of the customers who buy more than once
REDEEM_CHANCE = 0.5  # a redeemer pays with points on this share of later purchases
CHUNK = 2_000  # rows per INSERT statement
BLOCK = 1_000  # accounts replayed, then written while the next block is replayed
YIELD_EVERY = 25  # accounts replayed between two chances for the writer to go on
SQLITE_CACHE_KIB = 64 * 1024  # the index pages the inserts touch, kept in memory
OPEN = (LotStatus.PENDING, LotStatus.ACTIVE)
KEYS_PER_BLOCK = 32  # customers whose data keys are loaded together
FAR = datetime.max.replace(tzinfo=UTC)
CHANNELS = {channel.value: channel for channel in Channel}
_ENTRY: dict[str, Any] = dict.fromkeys(
    ("rule_code", "event_id", "purchase_id", "reservation_id", "order_total_minor",
     "idempotency_key", "request_hash", "reason_ct"),
) | {"points": 0, "actor": "system", "outstanding": 0}  # fmt: skip


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


@dataclass(slots=True)
class _Lot:
    id: uuid.UUID
    customer_id: uuid.UUID
    entry_id: uuid.UUID
    kind: str
    amount: int
    remaining: int
    status: str
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    event_id: uuid.UUID | None
    rule_code: str | None

    def spendable(self, now: datetime) -> bool:
        """`loyalty.ledger.spendable_lots`, for one lot."""
        return (
            self.remaining > 0
            and self.earned_at <= now
            and (
                self.status == LotStatus.ACTIVE
                or (self.status == LotStatus.PENDING and self.available_at <= now)
            )
            and (self.expires_at is None or self.expires_at > now)
        )

    def due(self) -> datetime:
        """When the scheduled job next has something to do with this open lot."""
        activates = self.available_at if self.status == LotStatus.PENDING else FAR
        return min(activates, self.expires_at or FAR)

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__} | {"origin_lot_id": None}


@dataclass(frozen=True, slots=True)
class _Purchase:
    id: uuid.UUID
    customer_id: uuid.UUID
    occurred_at: datetime
    recorded_at: datetime
    amount_minor: int
    cart: Cart


@dataclass(frozen=True, slots=True)
class _Return:
    id: uuid.UUID
    purchase: _Purchase
    occurred_at: datetime
    recorded_at: datetime
    amount_minor: int


@dataclass(slots=True)
class _Book:
    """The rows being written, shared by every member."""

    rules: ProgramDefinition
    program_id: uuid.UUID
    entries: list[dict[str, Any]] = field(default_factory=list)
    lots: list[_Lot] = field(default_factory=list)
    allocations: list[dict[str, Any]] = field(default_factory=list)
    tier_changes: list[dict[str, Any]] = field(default_factory=list)
    members: list[_Member] = field(default_factory=list)

    def drain(
        self, members: list[_Member], now: datetime, ledger: DemoLedger
    ) -> dict[type[SQLModel], list[dict[str, Any]]]:
        """The rows of `members` (done with their history) in foreign-key order, counted."""
        rows: dict[type[SQLModel], list[dict[str, Any]]] = {
            Account: [member.account_row() for member in members],
            LedgerEntry: self.entries,
            Lot: [lot.row() for lot in self.lots],
            Allocation: self.allocations,
            TierChange: self.tier_changes,
        }
        ledger.accounts += len(members)
        ledger.tiers.update(member.tier for member in members)
        ledger.entries.update(entry["kind"] for entry in self.entries)
        ledger.lots.update(lot.status for lot in self.lots)
        ledger.spendable += sum(lot.remaining for lot in self.lots if lot.spendable(now))
        self.entries, self.lots, self.allocations, self.tier_changes = [], [], [], []
        return rows

    def entry(
        self, customer_id: uuid.UUID, kind: EntryKind, when: datetime, now: datetime, **values: Any
    ) -> dict[str, Any]:
        return {
            **_ENTRY, "id": new_id(), "customer_id": customer_id, "kind": kind.value,
            "occurred_at": when, "recorded_at": now, "program_id": self.program_id, **values,
        }  # fmt: skip


def _ids() -> Iterator[uuid.UUID]:
    """Version-4 uuids that increase: a random prefix, then a counter. Written in order, they
    append to the primary-key and foreign-key indexes instead of landing all over them."""
    counter = int.from_bytes(os.urandom(16)) & ~((1 << 40) - 1)
    while True:
        counter += 1
        yield uuid.UUID(int=counter, version=4)


new_id = partial(next, _ids())


class _Member:
    """One account, moved through its history in time order (`loyalty.earning` and friends,
    over lists instead of tables)."""

    def __init__(
        self, book: _Book, customer_id: uuid.UUID, opened: datetime, birth_month: int | None
    ) -> None:
        self.book = book
        self.rules = book.rules
        self.id = customer_id
        self.birth_month = birth_month
        self.tier = self.rules.tiers.levels[0].code
        self.tier_since = self.tier_reviewed_at = self.created_at = opened
        self.grace_until: datetime | None = None
        self.open_lots: list[_Lot] = []
        self.debts: list[dict[str, Any]] = []
        self.window = timedelta(days=self.rules.tiers.window_days)
        self.every = timedelta(days=self.rules.tiers.review_every_days)
        self.qualifying: list[tuple[datetime, int]] = []  # a heap of (occurred_at, value)
        self.qualifying_sum = 0
        self.next_due = FAR  # the earliest instant a lot activates or expires
        self.earned_day: Counter[datetime] = Counter()
        self.earned_month: Counter[datetime] = Counter()
        self.bonus_last: dict[str, datetime] = {}
        self.earned: Counter[uuid.UUID] = Counter()  # EARN points per purchase
        self.paid: Counter[uuid.UUID] = Counter()  # points that paid for a purchase
        self.returned: Counter[uuid.UUID] = Counter()  # minor units returned per purchase
        self.purchases = 0

    def record(self, entry: dict[str, Any], now: datetime) -> None:
        self.book.entries.append(entry)
        if entry["kind"] in EARNING_KINDS and self.rules.tiers.metric is TierMetric.POINTS_EARNED:
            self.qualify(entry["occurred_at"], entry["points"], now)

    def qualify(self, when: datetime, value: int, now: datetime) -> None:
        """Count `value` at `when` (<= now) towards tiers. Every later question is asked at a
        later instant, so what has left the window never comes back into it."""
        if when > now - self.window:
            heapq.heappush(self.qualifying, (when, value))
            self.qualifying_sum += value

    def credit(
        self, entry: dict[str, Any], *, earned_at: datetime, pending: bool, now: datetime,
        event_id: uuid.UUID | None = None,
    ) -> None:  # fmt: skip
        available_at = self.rules.available_at(earned_at, pending=pending)
        lot = _Lot(
            new_id(), self.id, entry["id"], entry["kind"], entry["points"], entry["points"],
            LotStatus.PENDING if available_at > now else LotStatus.ACTIVE, earned_at,
            available_at, self.rules.expires_at(earned_at), event_id, entry["rule_code"],
        )  # fmt: skip
        self.record(entry, now)
        self.open_lots.append(lot)
        self.book.lots.append(lot)
        self.next_due = min(self.next_due, lot.due())
        if lot.status == LotStatus.ACTIVE:
            self.settle_debt(now)

    def spendable(self, now: datetime, *, first: uuid.UUID | None = None) -> list[_Lot]:
        lots = [lot for lot in self.open_lots if lot.spendable(now)]
        lots.sort(key=lambda lot: (
            0 if first is not None and lot.event_id == first else 1,
            lot.expires_at or FAR, lot.earned_at, str(lot.id),
        ))  # fmt: skip
        return lots

    def allocate(self, entry: dict[str, Any], lots: Iterable[_Lot], points: int) -> int:
        taken = 0
        for lot in lots:
            if taken == points:
                break
            take = min(lot.remaining, points - taken)
            if take <= 0:
                continue
            lot.remaining -= take
            self.book.allocations.append(
                {"id": new_id(), "entry_id": entry["id"], "lot_id": lot.id, "points": take}
            )
            taken += take
        return taken

    def debit(
        self, entry: dict[str, Any], lots: list[_Lot], points: int, *, now: datetime,
        allow_debt: bool = False,
    ) -> None:  # fmt: skip
        entry["points"] = -points
        taken = self.allocate(entry, lots, points)
        if taken < points:
            assert allow_debt, "a debit was not covered by the lots checked for it"
            entry["outstanding"] = points - taken
            self.debts.append(entry)
        self.record(entry, now)

    def settle_debt(self, now: datetime) -> None:
        if not self.debts:
            return
        lots = self.spendable(now)
        for debt in sorted(self.debts, key=lambda e: (e["occurred_at"], str(e["id"]))):
            debt["outstanding"] -= self.allocate(debt, lots, debt["outstanding"])
        self.debts = [debt for debt in self.debts if debt["outstanding"] > 0]

    def expire(self, lot: _Lot, when: datetime) -> None:
        if lot.remaining > 0:
            entry = self.book.entry(self.id, EntryKind.EXPIRE, when, when, rule_code=lot.rule_code)
            self.debit(entry, [lot], lot.remaining, now=when)
        lot.status = LotStatus.EXPIRED

    def advance(self, now: datetime) -> None:
        """The scheduled job, run continuously up to `now`: tier reviews, then pending lots
        activating (paying down debt) and lots expiring, each at its own instant."""
        every = self.every
        if self.tier_reviewed_at + every <= now and self.reviews_change_nothing():
            self.tier_reviewed_at += (now - self.tier_reviewed_at) // every * every
        while self.tier_reviewed_at + every <= now:
            self.review(self.tier_reviewed_at + every)
        if self.next_due > now:
            return
        due: list[tuple[datetime, int, str, _Lot]] = []
        for lot in self.open_lots:
            if lot.status == LotStatus.PENDING and lot.available_at <= now:
                due.append((lot.available_at, 0, str(lot.id), lot))
            if lot.expires_at is not None and lot.expires_at <= now:
                due.append((lot.expires_at, 1, str(lot.id), lot))
        for instant, expiring, _, lot in sorted(due, key=lambda item: item[:3]):
            if expiring:
                self.expire(lot, instant)
            elif lot.status == LotStatus.PENDING:
                lot.status = LotStatus.ACTIVE
                self.settle_debt(instant)
        self.open_lots = [lot for lot in self.open_lots if lot.status in OPEN]
        self.next_due = min((lot.due() for lot in self.open_lots), default=FAR)

    def reviews_change_nothing(self) -> bool:
        """Until the next earning, reviews of the lowest tier only move `tier_reviewed_at`,
        unless the window's positive part (a return leaving it raises the rest) qualifies."""
        levels = self.rules.tiers.levels
        if self.tier != levels[0].code or self.grace_until is not None:
            return False
        return len(levels) == 1 or (
            sum(value for _, value in self.qualifying if value > 0) < levels[1].threshold
        )

    def qualifying_value(self, now: datetime) -> int:
        """`loyalty.tiers.qualifying_value`: what counts in (now - window, now]."""
        start = now - self.window
        while self.qualifying and self.qualifying[0][0] <= start:
            self.qualifying_sum -= heapq.heappop(self.qualifying)[1]
        return max(self.qualifying_sum, 0)

    def change(self, to: TierLevel, reason: str, value: int, now: datetime) -> None:
        self.book.tier_changes.append({
            "id": new_id(), "customer_id": self.id, "from_tier": self.tier, "to_tier": to.code,
            "reason": reason, "qualifying": value, "occurred_at": now,
        })  # fmt: skip
        self.tier, self.tier_since, self.grace_until = to.code, now, None

    def upgrade_if_qualified(self, now: datetime) -> None:
        value = self.qualifying_value(now)
        target = level_for(self.rules, value)
        if rank(self.rules, target.code) > rank(self.rules, self.tier):
            self.change(target, "UPGRADE", value, now)

    def review(self, now: datetime) -> None:
        tiers = self.rules.tiers
        value = self.qualifying_value(now)
        target = level_for(self.rules, value)
        current, wanted = rank(self.rules, self.tier), rank(self.rules, target.code)
        self.tier_reviewed_at = now
        if wanted > current:
            self.change(target, "UPGRADE", value, now)
        elif wanted == current:
            self.grace_until = None
        elif tiers.grace_days and self.grace_until is None:
            self.grace_until = now + timedelta(days=tiers.grace_days)
        elif self.grace_until is None or self.grace_until <= now:
            if tiers.downgrade is Downgrade.ONE_LEVEL:
                target = tiers.levels[current - 1]
            self.change(target, "DOWNGRADE", value, now)

    def bonus(
        self, trigger: BonusEvent, *, when: datetime, now: datetime,
        purchase_id: uuid.UUID | None = None, once_since: datetime | None = None,
    ) -> None:  # fmt: skip
        for bonus in self.rules.earn.bonuses:
            if bonus.event is not trigger or not bonus.covers(when):
                continue
            last = self.bonus_last.get(bonus.code)
            if once_since is not None and last is not None and last >= once_since:
                continue
            entry = self.book.entry(
                self.id, EntryKind.BONUS, when, now,
                points=bonus.points, rule_code=bonus.code, purchase_id=purchase_id,
            )  # fmt: skip
            self.credit(entry, earned_at=when, pending=bonus.pending, now=now)
            self.bonus_last[bonus.code] = max(when, last or when)

    def register(self, now: datetime) -> None:
        self.bonus(BonusEvent.REGISTRATION, when=now, now=now)

    def review_bonus(self, now: datetime) -> None:
        self.advance(now)
        self.bonus(BonusEvent.REVIEW_ACCEPTED, when=now, now=now)

    def capped(self, points: int, day: datetime, month: datetime) -> int:
        """`loyalty.earning.capped`: EARN points of the day and month (program zone) so far."""
        caps = self.rules.earn.caps
        for limit, so_far in (
            (caps.per_day, self.earned_day[day]),
            (caps.per_month, self.earned_month[month]),
        ):
            if limit is not None:
                points = max(0, min(points, limit - so_far))
        return points

    def purchase(self, purchase: _Purchase) -> None:
        now, when, rules = purchase.recorded_at, purchase.occurred_at, self.rules
        self.advance(now)
        self.purchases += 1
        earning = compute_earning(rules, purchase.cart, tier=self.tier)
        day, month = rules.day_bounds(when)[0], rules.month_bounds(when)[0]
        points = self.capped(earning.points, day, month)
        if points > 0:
            entry = self.book.entry(
                self.id, EntryKind.EARN, when, now, points=points, event_id=purchase.id,
                purchase_id=purchase.id, rule_code=",".join(earning.rules)[:64] or None,
            )  # fmt: skip
            self.credit(entry, earned_at=when, pending=True, now=now, event_id=purchase.id)
            self.earned[purchase.id] += points
            self.earned_day[day] += points
            self.earned_month[month] += points
        if self.purchases == 1:
            self.bonus(BonusEvent.FIRST_PURCHASE, when=when, now=now, purchase_id=purchase.id)
        local = when.astimezone(rules.zone)
        if self.birth_month == local.month:
            year_start = datetime(local.year, 1, 1, tzinfo=rules.zone)
            self.bonus(
                BonusEvent.BIRTHDAY_MONTH, when=when, now=now,
                purchase_id=purchase.id, once_since=year_start,
            )  # fmt: skip
        if rules.tiers.metric is TierMetric.SPEND:
            self.qualify(when, purchase.amount_minor, now)
        self.upgrade_if_qualified(now)
        self.advance(now)

    def give_back(self, item: _Return) -> None:
        now, purchase = item.recorded_at, item.purchase
        self.advance(now)
        whole = purchase.amount_minor
        before = self.returned[purchase.id]
        after = self.returned[purchase.id] = before + item.amount_minor
        earned, paid = self.earned[purchase.id], self.paid[purchase.id]
        reverse = share_of(earned, after, whole) - share_of(earned, before, whole)
        refund = share_of(paid, after, whole) - share_of(paid, before, whole)
        if reverse > 0:
            self.take_back(item, reverse)
        if refund > 0:
            entry = self.book.entry(
                self.id, EntryKind.REFUND, item.occurred_at, now, points=refund,
                event_id=item.id, purchase_id=purchase.id,
            )  # fmt: skip
            self.credit(entry, earned_at=item.occurred_at, pending=False, now=now)
        if self.rules.tiers.metric is TierMetric.SPEND:
            self.qualify(item.occurred_at, -item.amount_minor, now)
        self.advance(now)

    def take_back(self, item: _Return, points: int) -> None:
        now, purchase_id = item.recorded_at, item.purchase.id
        own_pending = [
            lot for lot in self.open_lots
            if lot.event_id == purchase_id and lot.status == LotStatus.PENDING
            and lot.available_at > now and lot.remaining > 0
        ]  # fmt: skip
        lots = own_pending + self.spendable(now, first=purchase_id)
        allow_debt = self.rules.returns is ReturnPolicy.ALLOW_NEGATIVE
        target = points if allow_debt else min(points, sum(lot.remaining for lot in lots))
        if target <= 0:
            return
        entry = self.book.entry(
            self.id, EntryKind.REVERSAL, item.occurred_at, now,
            event_id=item.id, purchase_id=purchase_id,
        )  # fmt: skip
        self.debit(entry, lots, target, now=now, allow_debt=allow_debt)
        for lot in lots:
            if lot.status == LotStatus.PENDING and lot.remaining == 0 and lot.available_at > now:
                lot.status = LotStatus.CANCELLED
        self.open_lots = [lot for lot in self.open_lots if lot.status != LotStatus.CANCELLED]

    def referral(self, points: int, code: str, purchase: _Purchase) -> None:
        now = purchase.recorded_at
        self.advance(now)
        entry = self.book.entry(
            self.id, EntryKind.REFERRAL, purchase.occurred_at, now,
            points=points, rule_code=code, purchase_id=purchase.id,
        )  # fmt: skip
        self.credit(
            entry, earned_at=purchase.occurred_at, pending=self.rules.referral.pending, now=now
        )
        self.upgrade_if_qualified(now)

    def redeem(self, purchase: _Purchase, now: datetime) -> None:
        """Pay for `purchase` with as many points as the policy and the balance allow."""
        self.advance(now)
        lots = self.spendable(now)
        available = sum(lot.remaining for lot in lots) - sum(d["outstanding"] for d in self.debts)
        most = max_redeemable(self.rules, order_total_minor=purchase.amount_minor)
        points = min(available, most - self.paid[purchase.id])  # the share, less what paid
        if available < self.rules.redemption.min_balance or points <= 0:
            return
        entry = self.book.entry(
            self.id, EntryKind.REDEEM, now, now,
            purchase_id=purchase.id, order_total_minor=purchase.amount_minor,
        )  # fmt: skip
        self.debit(entry, lots, points, now=now)
        self.paid[purchase.id] += points

    def account_row(self) -> dict[str, Any]:
        return {
            "customer_id": self.id, "tier": self.tier, "tier_since": self.tier_since,
            "tier_reviewed_at": self.tier_reviewed_at, "grace_until": self.grace_until,
            "created_at": self.created_at,
        }  # fmt: skip


Step = tuple[datetime, int, int, Callable[[], None]]


@dataclass(slots=True)
class DemoLedger:
    """What was written, for the summary line."""

    code: str
    version: int
    accounts: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    entries: Counter[str] = field(default_factory=Counter)
    lots: Counter[str] = field(default_factory=Counter)
    spendable: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        tiers = ", ".join(f"{n:,} {tier}" for tier, n in self.tiers.most_common())
        lots = ", ".join(f"{n:,} {status.lower()}" for status, n in self.lots.most_common())
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in self.entries.most_common())
        return (
            f"Built the demo points ledger in {self.seconds:.1f} s under program "
            f"{self.code!r} version {self.version}: {self.accounts:,} accounts ({tiers}), "
            f"{sum(self.entries.values()):,} entries ({kinds}), "
            f"{sum(self.lots.values()):,} lots ({lots}); {self.spendable:,} points spendable now."
        )


async def _read(session: AsyncSession, query: Any) -> Any:
    """Rows of a Core query on the session's connection (no ORM result machinery)."""
    return await (await session.connection()).execute(query)


async def _birth_months(
    session: AsyncSession, provider: KeyProvider, rows: list[Any]
) -> dict[uuid.UUID, int]:
    """Birth months, decrypted a block of customers at a time: one query per block for the
    data keys, and a cipher per block (its key cache makes each lookup cost its size)."""
    months: dict[uuid.UUID, int] = {}
    for start in range(0, len(rows), KEYS_PER_BLOCK):
        block = rows[start : start + KEYS_PER_BLOCK]
        cipher = FieldCipher(session, provider)
        await cipher.preload(row.birth_date_ct for row in block)
        for row in block:
            value = await cipher.decrypt(
                table="customer", column="birth_date_ct", row_id=row.id, blob=row.birth_date_ct
            )
            if value:
                months[row.id] = date.fromisoformat(value).month
    return months


async def _purchases(session: AsyncSession) -> dict[uuid.UUID, _Purchase]:
    lines: dict[uuid.UUID, list[tuple[int, Line]]] = defaultdict(list)
    of_purchases = (
        select(
            col(EventLine.event_id), col(EventLine.line_no), col(EventLine.sku),
            col(EventLine.category), col(EventLine.quantity), col(EventLine.unit_price_minor),
        )
        .join(Event, col(Event.id) == col(EventLine.event_id))
        .where(col(Event.type) == EventType.PURCHASE)
    )  # fmt: skip
    for event_id, line_no, sku, category, quantity, price in await _read(session, of_purchases):
        lines[event_id].append((line_no, Line(sku, category, quantity, price)))
    purchases = select(
        col(Event.id), col(Event.customer_id), col(Event.channel), col(Event.occurred_at),
        col(Event.recorded_at), col(Event.currency), col(Event.amount_minor),
    ).where(col(Event.type) == EventType.PURCHASE)  # fmt: skip
    return {
        row.id: _Purchase(
            row.id, row.customer_id, row.occurred_at, row.recorded_at, row.amount_minor or 0,
            Cart(CHANNELS[row.channel], row.occurred_at, row.currency or "",
                 tuple(line for _, line in sorted(lines[row.id]))),
        )
        for row in await _read(session, purchases)
    }  # fmt: skip


async def _referrals(
    session: AsyncSession, book: _Book, steps: dict[uuid.UUID, list[Step]],
    members: dict[uuid.UUID, _Member], first_purchase: dict[uuid.UUID, _Purchase],
) -> None:  # fmt: skip
    """`loyalty.earning.reward_referral`, decided in the order referees first bought: one person
    with two accounts gets nothing, and the per-referrer limit and the budget apply."""
    policy = book.rules.referral
    total = policy.referrer_points + policy.referee_points
    held: dict[uuid.UUID, set[tuple[str, str]]] = defaultdict(set)
    parties = select(col(Referral.referrer_id)).union(select(col(Referral.referee_id)))
    identities = select(col(Identity.customer_id), col(Identity.kind), col(Identity.value_index))
    identities = identities.where(col(Identity.customer_id).in_(parties))
    for customer_id, kind, index in await _read(session, identities):
        held[customer_id].add((kind, index))
    pairs = select(col(Referral.referrer_id), col(Referral.referee_id)).where(
        col(Referral.status) == ReferralStatus.CONVERTED
    )
    converted = [
        (first_purchase[b], a, b) for a, b in await _read(session, pairs) if b in first_purchase
    ]
    rewarded: Counter[uuid.UUID] = Counter()
    spent = 0
    for purchase, referrer, referee in sorted(
        converted, key=lambda c: (c[0].recorded_at, str(c[0].id))
    ):
        limit = policy.max_rewarded_per_referrer
        if total == 0 or held[referrer] & held[referee] or (limit and rewarded[referrer] >= limit):
            continue
        if policy.budget_points is not None and spent + total > policy.budget_points:
            continue
        spent += total
        rewarded[referrer] += policy.referrer_points > 0
        for customer_id, points, code in (
            (referrer, policy.referrer_points, "referral.referrer"),
            (referee, policy.referee_points, "referral.referee"),
        ):
            if points > 0:
                act = partial(members[customer_id].referral, points, code, purchase)
                steps[customer_id].append((purchase.recorded_at, 2, 0, act))


async def _timelines(
    session: AsyncSession, provider: KeyProvider, book: _Book, *, seed: int
) -> dict[uuid.UUID, list[Step]]:
    """Every account's history as steps in time order (registration, purchases, redemptions,
    returns, reviews, referral rewards)."""
    rules = book.rules
    people = select(col(Customer.id), col(Customer.created_at), col(Customer.birth_date_ct))
    customers = list(await _read(session, people))
    birthdays = any(b.event is BonusEvent.BIRTHDAY_MONTH for b in rules.earn.bonuses)
    months = await _birth_months(session, provider, customers) if birthdays else {}
    members = {
        row.id: _Member(book, row.id, row.created_at, months.get(row.id)) for row in customers
    }
    steps: dict[uuid.UUID, list[Step]] = defaultdict(list)
    for member in members.values():
        register = partial(member.register, member.created_at)
        steps[member.id].append((member.created_at, 0, 0, register))
    purchases = await _purchases(session)
    mine: dict[uuid.UUID, list[_Purchase]] = defaultdict(list)
    for purchase in purchases.values():
        mine[purchase.customer_id].append(purchase)
    first_purchase: dict[uuid.UUID, _Purchase] = {}
    for customer_id, bought in mine.items():
        member = members[customer_id]
        bought.sort(key=lambda p: (p.recorded_at, str(p.id)))
        first_purchase[customer_id] = bought[0]
        rng = random.Random(f"{seed}:loyalty:{member.created_at.isoformat()}")  # noqa: S311
        redeemer = len(bought) > 1 and rng.random() < REDEEMER_SHARE
        for position, purchase in enumerate(bought):
            act = partial(member.purchase, purchase)
            steps[customer_id].append((purchase.recorded_at, 1, 0, act))
            if redeemer and position > 0 and rng.random() < REDEEM_CHANCE:
                at = purchase.recorded_at + timedelta(seconds=rng.uniform(20, 90))
                steps[customer_id].append((at, 3, 0, partial(member.redeem, purchase, at)))
    query = select(
        col(Event.id), col(Event.purchase_id), col(Event.occurred_at),
        col(Event.recorded_at), col(Event.amount_minor),
    ).where(col(Event.type) == EventType.RETURN, col(Event.purchase_id).is_not(None))  # fmt: skip
    returns = await _read(session, query)
    for event_id, purchase_id, occurred, recorded, amount in returns:
        assert purchase_id is not None
        purchase = purchases[purchase_id]
        member = members[purchase.customer_id]
        item = _Return(event_id, purchase, occurred, recorded, amount or 0)
        steps[member.id].append((recorded, 1, 1, partial(member.give_back, item)))
    reviews = await _read(session, select(col(Review.customer_id), col(Review.created_at)))
    for customer_id, created in reviews:
        act = partial(members[customer_id].review_bonus, created)
        steps[customer_id].append((created, 1, 2, act))
    await _referrals(session, book, steps, members, first_purchase)
    book.members = sorted(members.values(), key=lambda member: member.id.bytes)  # index order
    return steps


async def build_demo_ledger(
    session: AsyncSession, provider: KeyProvider, definition: ProgramDefinition, *, seed: int,
    now: datetime, actor: str = "seed-demo",
) -> DemoLedger:  # fmt: skip
    """Load `definition` as the active program and write the demo's ledger up to `now` (or the
    last recorded moment, if later), in the caller's transaction.

    Accounts are independent once referral rewards are decided, so they are replayed a block at
    a time, and a block's rows are written while the next block is replayed."""
    started = time.perf_counter()
    if (await session.execute(select(func.count()).select_from(Account))).scalar_one():
        raise DemoRefused("demo ledger not built: the database already has loyalty accounts")
    program, _ = await load_program(session, definition, actor=actor)
    book = _Book(definition, program.id)
    ledger = DemoLedger(program.code, program.version)
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        await connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    writer: asyncio.Task[None] | None = None
    memo: dict[Any, Any] = {}  # date-times as the driver takes them (many repeat)
    collecting = gc.isenabled()
    gc.disable()  # millions of long-lived objects, next to no garbage: skip the cycle scans
    try:
        steps = await _timelines(session, provider, book, seed=seed)
        latest = max([now, *(step[0] for timeline in steps.values() for step in timeline)])
        for start in range(0, len(book.members), BLOCK):
            block = book.members[start : start + BLOCK]
            for position, member in enumerate(block, start=1):
                for *_, act in sorted(steps.pop(member.id, ()), key=lambda step: step[:3]):
                    act()
                member.advance(latest)
                if position % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let the writer send its next statement
            rows = book.drain(block, latest, ledger)
            if writer is not None:
                await writer
            writer = asyncio.create_task(_write(session, rows, memo))
        if writer is not None:
            await writer
    finally:
        if collecting:
            gc.enable()
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
    ledger.seconds = time.perf_counter() - started
    return ledger


async def _write(session: AsyncSession, rows: dict[Any, list[Any]], memo: dict[Any, Any]) -> None:
    for model, table_rows in rows.items():  # in foreign-key order
        await _insert(session, _table(model), table_rows, memo)


async def _insert(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], memo: dict[Any, Any]
) -> None:
    """Bulk INSERT (executemany) on the session's connection: the statement is compiled for
    the dialect and the column types' own bind processors prepare the values, so the rows are
    stored exactly as the ORM would store them, without its per-row bookkeeping. Date-times
    are prepared once per value (`memo`)."""
    connection = await session.connection()
    dialect = connection.dialect
    compiled = insert(table).compile(dialect=dialect)
    names = list(compiled.positiontup or [])
    values = itemgetter(*names)
    processors = []
    for position, name in enumerate(names):
        column_type = table.c[name].type
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((position, process, isinstance(column_type, UTCDateTime)))
    statement = str(compiled)
    for start in range(0, len(rows), CHUNK):
        batch = []
        for row in rows[start : start + CHUNK]:
            record = list(values(row))
            for position, process, memoised in processors:
                value = record[position]
                if value is None:
                    continue
                if not memoised:
                    record[position] = process(value)
                elif (ready := memo.get(value)) is not None:
                    record[position] = ready
                else:
                    record[position] = memo[value] = process(value)
            batch.append(tuple(record))
        await connection.exec_driver_sql(statement, batch)


async def seed_demo_ledger(
    settings: Settings, provider: KeyProvider, *, seed: int, now: datetime | None = None,
    definition: ProgramDefinition | None = None,
) -> DemoLedger:  # fmt: skip
    """Load the program (by default `loyalty/programs/demo.yaml`) and build the demo's ledger
    up to `now` (default: the wall clock), in one transaction of its own."""
    definition = definition or read_program_file(DEMO_PROGRAM)
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            return await build_demo_ledger(
                session, provider, definition, seed=seed, now=as_utc(now or utcnow())
            )
    finally:
        await engine.dispose()
