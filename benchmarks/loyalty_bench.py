"""The loyalty engine's write path on PostgreSQL, against the bare SQL of the same writes.

One run measures both sides on the same server, database, connection pool and data, and prints
JSON (stdout) plus a one-line summary (stderr). The figures that matter are the ratios; absolute
numbers depend on the machine. Nothing here asserts on timing.

    .venv/bin/python benchmarks/loyalty_bench.py
    .venv/bin/python benchmarks/loyalty_bench.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/loyalty_bench.py --quick            # a tiny run (the test suite's)

Database
    `--database-url` (default `$LOYALGRAPH_BENCH_DATABASE_URL`, else
    postgresql://postgres@127.0.0.1:5432/postgres) names a server: a database `lg_bench_<hex>`
    is created there, migrated with `migrations.runner.upgrade`, and dropped afterwards.
    `--database-url sqlite` runs on a temporary SQLite file instead (writers then queue on
    SQLite's single write lock: only useful as a smoke test). A fresh `LocalKeyring` in a temp
    dir; the program below is loaded with `loyalty.program.load_program`.

Both sides share one `core.db.create_engine` engine (asyncpg) whose pool holds a connection for
every concurrent worker, and run in this process on one event loop: the engine side's Python
work (ORM, HMACs, the listener) is part of what it costs, as it would be in the API process.

(a) Earning: `--purchases` purchases for `--customers` members (purchase i is member i mod C,
    1-2 lines, the same carts on both sides), `--workers` at a time, each purchase its own
    transaction.
    engine: `core.db.transaction` + `graph.events.record_purchase`, whose `PurchaseRecorded`
        fact runs `loyalty.earning.earn_for_purchase` in the same transaction (idempotency
        check, customer lookup, event and lines, first-purchase check, account lock, rules,
        caps, the EARN entry and its pending lot, tier check, catch-up).
    baseline: a connection-level transaction (no ORM, no loyalty code) with the statements a
        purchase's rows need: SELECT the account FOR UPDATE, INSERT the event, its lines, the
        EARN entry and its lot, with the points computed inline.
    -> purchases/s for each side (recorded and earned: every engine purchase must have its EARN
    entry and both sides must credit the same points), `ratio_throughput` = engine / baseline.

(b) Redemption latency: `--clients` clients, each doing `--redemptions` redemptions of
    `--points` points one after another, each its own transaction, in two scenarios:
    distinct accounts (client k spends from its own member) and one shared hot account (every
    client spends from the same member, so they queue on its lock). Each side has its own
    members, funded beforehand with three lots (`loyalty.redemption.adjust`).
    engine: `core.db.transaction` + `loyalty.redemption.redeem` (program, customer, account
        lock, idempotency key, order total and share, catch-up, balance, lots, entry and
        allocations).
    baseline: SELECT the account FOR UPDATE, SELECT its spendable lots in spending order,
        UPDATE each lot taken from, INSERT the REDEEM entry and its allocations.
    graphql (distinct accounts only, unless --no-graphql): the `pointsRedeem` mutation through
        the real app (`api.app.create_app`, its own default pool) over `httpx.ASGITransport`,
        as an operator.
    -> p50/p99 latency (ms) per side, `ratio_p50` / `ratio_p99` = engine / baseline (and
    graphql / baseline).

Clients are closed loops (each sends its next request when the last one answered), so once the
box is saturated a latency is mostly queueing: compare the sides, not the absolute numbers.
`statements` counts the SQL statements of one purchase and one redemption per side, run alone.

Every timed phase runs in `--rounds` rounds, alternating which side goes first (ABBA), after an
untimed warm-up. At the end `loyalty.verify.verify_ledger` must pass over everything both sides
wrote (the baseline writes rows the ledger's invariants accept), else the exit status is 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This folder's scripts are named after what they measure (scoring.py): the repository root
# goes first, so `import scoring` is the package; `import profile_data` still finds this folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import metadata as packages
from typing import Any

import httpx
from profile_data import scratch_database
from sqlalchemy import and_, event, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

import loyalty
from api.app import create_app
from api.auth import Role, issue_token
from core.clock import utcnow
from core.db import WRITE_INTENT, create_engine, metadata, session_factory, transaction
from core.settings import Settings
from graph.customers import register_customer
from graph.enums import Channel, EventType
from graph.events import CustomerRef, record_purchase
from graph.lines import LineInput
from loyalty.definition import ProgramDefinition, parse_definition
from loyalty.models import EntryKind, LedgerEntry, LotStatus
from loyalty.program import active_program, load_program
from loyalty.redemption import adjust, redeem
from loyalty.verify import verify_ledger
from migrations.runner import upgrade
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CURRENCY = "RUB"
PROGRAM: dict[str, Any] = {
    "code": "bench",
    "name": "Benchmark",
    "currency": CURRENCY,
    "pending_days": 14,
    "earn": {"points": 1, "per_minor": 100},  # 1 point per 1.00, no rules, no caps
    "expiry": {"policy": "days", "days": 365},
    "redemption": {"point_value_minor": 100, "max_share_percent": 100, "min_balance": 0},
    "returns": "claw_back_remaining",
    "tiers": {"levels": [{"code": "base", "name": "Base", "threshold": 0}]},
}
FUNDING_LOTS = 3
CATEGORIES = ["grocery", "books", "home", "kids"]

ACCOUNT = metadata.tables["loyalty_account"]
EVENT = metadata.tables["event"]
EVENT_LINE = metadata.tables["event_line"]
ENTRY = metadata.tables["loyalty_entry"]
LOT = metadata.tables["loyalty_lot"]
ALLOCATION = metadata.tables["loyalty_allocation"]

REDEEM_MUTATION = """
mutation Redeem($input: PointsRedeemInput!) {
  pointsRedeem(input: $input) { replayed entry { id points } errors { code message } }
}
"""

Cart = list[tuple[str, int, int]]  # (category, quantity, unit price in minor units)


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def report(self, unit: str) -> dict[str, Any]:
        count = len(self.latencies)
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            if not ordered:
                return 0.0
            return round(ordered[min(count - 1, int(p * count))] * 1000, 2)

        return {
            unit: count,
            "seconds": round(self.seconds, 3),
            f"{unit}_per_second": round(count / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if ordered else 0.0,
            "failures": len(self.failures),
            "first_failures": self.failures[:3],
        }


async def timed(side: Side, call: Awaitable[None]) -> None:
    started = time.perf_counter()
    try:
        await call
    except Exception as error:  # a failure is reported, not timed
        side.failures.append(f"{type(error).__name__}: {error}"[:300])
        return
    side.latencies.append(time.perf_counter() - started)


async def pooled(
    side: Side | None, items: list[int], workers: int, call: Callable[[int], Awaitable[None]]
) -> None:
    """Run `call(i)` for every item with `workers` in flight; timed into `side` unless None."""
    queue = list(reversed(items))

    async def worker() -> None:
        while queue:
            item = queue.pop()
            if side is None:
                await call(item)
            else:
                await timed(side, call(item))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    if side is not None:
        side.seconds += time.perf_counter() - started


async def abba(
    sides: dict[str, Side],
    runs: dict[str, Callable[[Side | None, list[int]], Awaitable[None]]],
    items: int,
    rounds: int,
    warmup: int,
) -> None:
    """Warm each side up, then split `items` into rounds, alternating which side goes first."""
    for run in runs.values():
        if warmup:
            await run(None, list(range(-warmup, 0)))
    per_round = [items // rounds] * rounds
    per_round[-1] += items - sum(per_round)
    start = 0
    for number, count in enumerate(per_round):
        names = list(runs)
        order = names if number % 2 == 0 else names[::-1]
        for name in order:
            await runs[name](sides[name], list(range(start, start + count)))
        start += count


# --- the data ---------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    provider: LocalKeyring
    rules: ProgramDefinition
    program_id: uuid.UUID
    carts: list[Cart]
    earners: list[uuid.UUID] = field(default_factory=list)
    redeemers: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    hot: dict[str, uuid.UUID] = field(default_factory=dict)
    engine_events: list[uuid.UUID] = field(default_factory=list)
    baseline_points: int = 0

    def cart(self, index: int) -> Cart:
        return self.carts[index % len(self.carts)]

    def earner(self, index: int) -> uuid.UUID:
        return self.earners[index % len(self.earners)]


def make_carts(rng: random.Random, count: int) -> list[Cart]:
    return [
        [
            (rng.choice(CATEGORIES), rng.randint(1, 3), rng.randrange(10_000, 500_000, 100))
            for _ in range(rng.randint(1, 2))
        ]
        for _ in range(count)
    ]


async def register(bench: Bench, count: int, prefix: int) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for start in range(0, count, 50):
        async with transaction(bench.sessions) as session:
            cipher = FieldCipher(session, bench.provider)
            for n in range(start, min(start + 50, count)):
                result = await register_customer(
                    session,
                    cipher,
                    channel=Channel.POS,
                    phone=f"+79{prefix:02d}{n:07d}",
                    phone_verified=True,
                )
                ids.append(result.customer.id)
    return ids


async def fund(bench: Bench, customer_id: uuid.UUID, points: int) -> None:
    """FUNDING_LOTS active lots (adjustments) that together hold `points`."""
    each = points // FUNDING_LOTS + 1
    for n in range(FUNDING_LOTS):
        async with transaction(bench.sessions) as session:
            await adjust(
                session,
                FieldCipher(session, bench.provider),
                customer_id=customer_id,
                points=each,
                reason="benchmark funding",
                actor="bench",
                idempotency_key=f"fund-{customer_id.hex}-{n}",
            )


async def prepare(bench: Bench) -> None:
    args = bench.args
    bench.earners = await register(bench, args.customers, 10)
    sides = ["engine", "baseline"] + ([] if args.no_graphql else ["graphql"])
    for number, side in enumerate(sides):
        people = await register(bench, args.clients + 1, 20 + number)
        bench.redeemers[side], bench.hot[side] = people[:-1], people[-1]
        need = (args.redemptions + args.warmup_redemptions + 1) * args.points
        for member in bench.redeemers[side]:
            await fund(bench, member, need)
        if side != "graphql":
            await fund(bench, bench.hot[side], need * args.clients)


# --- (a) earning ------------------------------------------------------------------------------


async def engine_earn(bench: Bench, index: int, *, timed_run: bool) -> None:
    async with transaction(bench.sessions) as session:
        recorded = await record_purchase(
            session,
            FieldCipher(session, bench.provider),
            customer=CustomerRef(customer_id=bench.earner(index)),
            channel=Channel.POS,
            lines=[
                LineInput(sku=f"SKU-{n}", quantity=q, category=c, unit_price_minor=p)
                for n, (c, q, p) in enumerate(bench.cart(index))
            ],
            idempotency_key=f"bench-engine-{index}-{uuid.uuid4().hex[:8]}",
            currency=CURRENCY,
        )
    if timed_run:
        bench.engine_events.append(recorded.event.id)


async def baseline_earn(bench: Bench, index: int, *, timed_run: bool) -> None:
    customer_id, cart = bench.earner(index), bench.cart(index)
    now = utcnow()
    total = sum(quantity * price for _, quantity, price in cart)
    points = total * bench.rules.earn.points // bench.rules.earn.per_minor
    event_id, entry_id = uuid.uuid4(), uuid.uuid4()
    async with bench.engine.connect() as connection:
        connection = await connection.execution_options(**{WRITE_INTENT: True})
        async with connection.begin():
            await connection.execute(
                select(ACCOUNT.c.customer_id)
                .where(ACCOUNT.c.customer_id == customer_id)
                .with_for_update()
            )
            await connection.execute(
                insert(EVENT).values(
                    id=event_id,
                    customer_id=customer_id,
                    type=EventType.PURCHASE,
                    channel=Channel.POS,
                    occurred_at=now,
                    recorded_at=now,
                    idempotency_key=uuid.uuid4().hex,
                    request_hash=uuid.uuid4().hex,
                    currency=CURRENCY,
                    amount_minor=total,
                )
            )
            await connection.execute(
                insert(EVENT_LINE),
                [
                    {
                        "id": uuid.uuid4(),
                        "event_id": event_id,
                        "line_no": n,
                        "sku": f"SKU-{n}",
                        "category": category,
                        "quantity": quantity,
                        "unit_price_minor": price,
                        "total_minor": quantity * price,
                    }
                    for n, (category, quantity, price) in enumerate(cart, start=1)
                ],
            )
            await connection.execute(
                insert(ENTRY).values(
                    id=entry_id,
                    customer_id=customer_id,
                    kind=EntryKind.EARN,
                    points=points,
                    occurred_at=now,
                    recorded_at=now,
                    program_id=bench.program_id,
                    event_id=event_id,
                    purchase_id=event_id,
                    actor="system",
                    outstanding=0,
                )
            )
            await connection.execute(
                insert(LOT).values(
                    id=uuid.uuid4(),
                    customer_id=customer_id,
                    entry_id=entry_id,
                    kind=EntryKind.EARN,
                    amount=points,
                    remaining=points,
                    status=LotStatus.PENDING,
                    earned_at=now,
                    available_at=bench.rules.available_at(now, pending=True),
                    expires_at=bench.rules.expires_at(now),
                    event_id=event_id,
                )
            )
    if timed_run:
        bench.baseline_points += points


async def measure_earn(bench: Bench) -> dict[str, Any]:
    args = bench.args
    sides = {"engine": Side("engine"), "baseline": Side("baseline")}

    def runner(
        call: Callable[..., Awaitable[None]],
    ) -> Callable[[Side | None, list[int]], Awaitable[None]]:
        async def run(side: Side | None, items: list[int]) -> None:
            await pooled(
                side,
                items,
                args.workers,
                lambda i: call(bench, i, timed_run=side is not None),
            )

        return run

    runs = {"engine": runner(engine_earn), "baseline": runner(baseline_earn)}
    await abba(sides, runs, args.purchases, args.rounds, args.warmup)
    async with bench.sessions() as session:
        earned = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(col(LedgerEntry.points)), 0)).where(
                    col(LedgerEntry.kind) == EntryKind.EARN,
                    col(LedgerEntry.event_id).in_(bench.engine_events),
                )
            )
        ).one()
    engine, baseline = sides["engine"].report("purchases"), sides["baseline"].report("purchases")
    engine |= {"earned": int(earned[0]), "points_earned": int(earned[1])}
    baseline |= {"earned": baseline["purchases"], "points_earned": bench.baseline_points}
    if engine["earned"] != engine["purchases"]:
        sides["engine"].failures.append(f"{engine['earned']} EARN entries")
    if engine["points_earned"] != baseline["points_earned"]:
        sides["engine"].failures.append("the sides credited different points")
    return {
        "engine": engine,
        "baseline": baseline,
        "ratio_throughput": ratio(engine["purchases_per_second"], baseline["purchases_per_second"]),
        "failures": sides["engine"].failures[-2:],
    }


# --- (b) redemption ---------------------------------------------------------------------------


async def engine_redeem(bench: Bench, customer_id: uuid.UUID, key: str) -> None:
    async with transaction(bench.sessions) as session:
        done = await redeem(
            session,
            FieldCipher(session, bench.provider),
            customer_id=customer_id,
            points=bench.args.points,
            idempotency_key=key,
            order_total_minor=bench.args.points * 100,
        )
        assert not done.replayed


async def baseline_redeem(bench: Bench, customer_id: uuid.UUID, key: str) -> None:
    points, now = bench.args.points, utcnow()
    entry_id = uuid.uuid4()
    async with bench.engine.connect() as connection:
        connection = await connection.execution_options(**{WRITE_INTENT: True})
        async with connection.begin():
            await connection.execute(
                select(ACCOUNT.c.customer_id)
                .where(ACCOUNT.c.customer_id == customer_id)
                .with_for_update()
            )
            lots = (
                await connection.execute(
                    select(LOT.c.id, LOT.c.remaining)
                    .where(
                        LOT.c.customer_id == customer_id,
                        LOT.c.remaining > 0,
                        or_(
                            LOT.c.status == LotStatus.ACTIVE,
                            and_(LOT.c.status == LotStatus.PENDING, LOT.c.available_at <= now),
                        ),
                        or_(LOT.c.expires_at.is_(None), LOT.c.expires_at > now),
                    )
                    .order_by(LOT.c.expires_at.asc().nulls_last(), LOT.c.earned_at, LOT.c.id)
                )
            ).all()
            takes: list[tuple[uuid.UUID, int]] = []
            left = points
            for lot_id, remaining in lots:
                if left == 0:
                    break
                take = min(int(remaining), left)
                takes.append((lot_id, take))
                left -= take
            if left:
                raise RuntimeError("insufficient points")
            await connection.execute(
                insert(ENTRY).values(
                    id=entry_id,
                    customer_id=customer_id,
                    kind=EntryKind.REDEEM,
                    points=-points,
                    occurred_at=now,
                    recorded_at=now,
                    program_id=bench.program_id,
                    idempotency_key=key,
                    request_hash=key,
                    order_total_minor=points * 100,
                    actor="system",
                    outstanding=0,
                )
            )
            for lot_id, take in takes:
                await connection.execute(
                    update(LOT).where(LOT.c.id == lot_id).values(remaining=LOT.c.remaining - take)
                )
            await connection.execute(
                insert(ALLOCATION),
                [
                    {"id": uuid.uuid4(), "entry_id": entry_id, "lot_id": lot_id, "points": take}
                    for lot_id, take in takes
                ],
            )


class GraphQLClient:
    def __init__(self, bench: Bench, settings: Settings) -> None:
        self.app = create_app(settings, bench.provider)
        token = issue_token(
            bench.provider.secret("jwt"),
            role=Role.OPERATOR,
            subject="bench-operator",
            ttl=timedelta(hours=2),
            issuer=settings.jwt_issuer,
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {token}"},
        )
        self.points = bench.args.points

    async def redeem(self, customer_id: uuid.UUID, key: str) -> None:
        variables = {
            "input": {
                "customerId": str(customer_id),
                "points": self.points,
                "idempotencyKey": key,
                "orderTotalMinor": self.points * 100,
            }
        }
        response = await self.client.post(
            "/graphql", json={"query": REDEEM_MUTATION, "variables": variables}
        )
        body = response.json()
        payload = (body.get("data") or {}).get("pointsRedeem") or {}
        if response.status_code != 200 or body.get("errors") or payload.get("errors"):
            raise RuntimeError(json.dumps(body)[:300])

    async def close(self) -> None:
        await self.client.aclose()
        await self.app.state.engine.dispose()


async def measure_redeem(
    bench: Bench, graphql: GraphQLClient | None, *, hot: bool
) -> dict[str, Any]:
    args = bench.args
    calls: dict[str, Callable[[uuid.UUID, str], Awaitable[None]]] = {
        "engine": lambda c, k: engine_redeem(bench, c, k),
        "baseline": lambda c, k: baseline_redeem(bench, c, k),
    }
    if graphql is not None and not hot:
        calls["graphql"] = graphql.redeem
    sides = {name: Side(name) for name in calls}
    scenario = "hot" if hot else "distinct"

    def runner(name: str) -> Callable[[Side | None, list[int]], Awaitable[None]]:
        async def run(side: Side | None, items: list[int]) -> None:
            # `items` are redemption numbers; every client does each of them in turn.
            async def client(k: int) -> None:
                member = bench.hot[name] if hot else bench.redeemers[name][k]
                for item in items:
                    key = f"bench-{scenario}-{name}-{k}-{item}-{uuid.uuid4().hex[:6]}"
                    if side is None:
                        await calls[name](member, key)
                    else:
                        await timed(side, calls[name](member, key))

            started = time.perf_counter()
            await asyncio.gather(*(client(k) for k in range(args.clients)))
            if side is not None:
                side.seconds += time.perf_counter() - started

        return run

    runs = {name: runner(name) for name in calls}
    await abba(sides, runs, args.redemptions, min(args.rounds, args.redemptions), 0)
    reports = {name: side.report("redemptions") for name, side in sides.items()}
    result: dict[str, Any] = {
        "accounts": "one shared account" if hot else f"{args.clients} distinct accounts",
        **reports,
        "ratio_p50": ratio(reports["engine"]["p50_ms"], reports["baseline"]["p50_ms"]),
        "ratio_p99": ratio(reports["engine"]["p99_ms"], reports["baseline"]["p99_ms"]),
    }
    if "graphql" in reports:
        result["ratio_graphql_p50"] = ratio(
            reports["graphql"]["p50_ms"], reports["baseline"]["p50_ms"]
        )
        result["ratio_graphql_p99"] = ratio(
            reports["graphql"]["p99_ms"], reports["baseline"]["p99_ms"]
        )
    return result


async def warm_redeemers(bench: Bench, graphql: GraphQLClient | None) -> None:
    """Untimed redemptions on every side (statement caches, pools, the app's first request)."""
    for _ in range(bench.args.warmup_redemptions):
        for name, members in bench.redeemers.items():
            for member in members:
                key = f"bench-warm-{name}-{uuid.uuid4().hex}"
                if name == "engine":
                    await engine_redeem(bench, member, key)
                elif name == "baseline":
                    await baseline_redeem(bench, member, key)
                elif graphql is not None:
                    await graphql.redeem(member, key)


class Statements:
    """Counts the SQL statements an engine sends (BEGIN and COMMIT are not cursor calls)."""

    def __init__(self, *engines: AsyncEngine) -> None:
        self.count = 0
        for engine in engines:
            event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: object) -> None:
        self.count += 1

    async def of(self, call: Awaitable[None]) -> int:
        before = self.count
        await call
        return self.count - before


async def count_statements(bench: Bench, graphql: GraphQLClient | None) -> dict[str, Any]:
    """Statements for one purchase and one redemption per side, run alone (untimed)."""
    engines = [bench.engine] + ([graphql.app.state.engine] if graphql is not None else [])
    counter = Statements(*engines)
    index = bench.args.purchases + bench.args.warmup  # beyond the timed and warm-up carts
    earn = {
        "engine": await counter.of(engine_earn(bench, index, timed_run=False)),
        "baseline": await counter.of(baseline_earn(bench, index, timed_run=False)),
    }
    key = f"bench-count-{uuid.uuid4().hex}"
    spend = {
        "engine": await counter.of(engine_redeem(bench, bench.redeemers["engine"][0], key)),
        "baseline": await counter.of(
            baseline_redeem(bench, bench.redeemers["baseline"][0], key + "-b")
        ),
    }
    if graphql is not None:
        spend["graphql"] = await counter.of(
            graphql.redeem(bench.redeemers["graphql"][0], key + "-g")
        )
    return {"per_purchase": earn, "per_redemption": spend}


# --- orchestration ----------------------------------------------------------------------------


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def _version(package: str) -> str | None:
    try:
        return packages.version(package)
    except packages.PackageNotFoundError:
        return None


PACKAGES = "sqlalchemy sqlmodel asyncpg aiosqlite strawberry-graphql starlette httpx"


async def measure(args: argparse.Namespace, settings: Settings, url: str) -> dict[str, Any]:
    loyalty.install()
    provider = LocalKeyring(settings.keyring_path)
    concurrency = max(args.workers, args.clients)
    extra = {} if url.startswith("sqlite") else {"pool_size": concurrency + 2, "max_overflow": 0}
    engine = create_engine(url, **extra)
    sessions = session_factory(engine)
    graphql: GraphQLClient | None = None
    try:
        rules = parse_definition(PROGRAM)
        async with transaction(sessions) as session:
            await load_program(session, rules, actor="bench")
            program = await active_program(session)
            assert program is not None
        bench = Bench(
            args,
            engine,
            sessions,
            provider,
            rules,
            program.row.id,
            make_carts(random.Random(args.seed), max(args.purchases, 1)),
        )
        started = time.perf_counter()
        await prepare(bench)
        prepared = time.perf_counter() - started
        print(f"prepared in {prepared:.1f} s; earning...", file=sys.stderr)
        earn = await measure_earn(bench)
        if not args.no_graphql:
            graphql = GraphQLClient(bench, settings)
        await warm_redeemers(bench, graphql)
        statements = await count_statements(bench, graphql)
        print("redeeming (distinct accounts)...", file=sys.stderr)
        distinct = await measure_redeem(bench, graphql, hot=False)
        print("redeeming (one hot account)...", file=sys.stderr)
        hot = await measure_redeem(bench, graphql, hot=True)
        async with sessions() as session:
            report = await verify_ledger(session)
        return {
            "earn": earn,
            "redeem": {"distinct_accounts": distinct, "hot_account": hot},
            "statements": statements,
            "ledger": {
                "verified": report.ok,
                "breaches": [f"{b.check}: {b.detail}" for b in report.breaches[:5]],
                "accounts": report.accounts,
                "entries": report.entries,
                "lots": report.lots,
            },
            "prepare_seconds": round(prepared, 1),
        }
    finally:
        if graphql is not None:
            await graphql.close()
        await engine.dispose()


def failures(result: dict[str, Any]) -> list[str]:
    found: list[str] = list(result["earn"]["failures"])
    sides = [result["earn"]["engine"], result["earn"]["baseline"]]
    for scenario in result["redeem"].values():
        sides += [value for value in scenario.values() if isinstance(value, dict)]
    found += [f for side in sides for f in side.get("first_failures", [])]
    if not result["ledger"]["verified"]:
        found.append(f"ledger: {result['ledger']['breaches']}")
    return found


def run(args: argparse.Namespace) -> int:
    admin_url = None if args.database_url == "sqlite" else args.database_url
    with (
        tempfile.TemporaryDirectory(prefix="lg-bench-loyalty-") as tmp,
        scratch_database(admin_url, Path(tmp) / "home") as (url, backend, version),
    ):
        settings = Settings.from_env(
            {"LOYALGRAPH_HOME": str(Path(tmp) / "home"), "LOYALGRAPH_DATABASE_URL": url}
            | {"LOYALGRAPH_CURRENCY": CURRENCY}
        )
        settings.ensure_dirs()
        upgrade(url)
        print(f"loyalty benchmark on {backend} {version}...", file=sys.stderr)
        result = asyncio.run(measure(args, settings, url))
    problems = failures(result)
    report = {
        "benchmark": "loyalty",
        **result,
        "sizes": {
            name: getattr(args, name)
            for name in ("customers", "purchases", "workers", "clients", "redemptions", "points")
        }
        | {"rounds": args.rounds, "warmup_purchases": args.warmup, "seed": args.seed},
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "database_backend": backend,
            "database_version": version,
            "pool": f"{max(args.workers, args.clients) + 2} connections, shared by both sides"
            " (the graphql side: the app's own default pool)",
            "client": "one process, one event loop (asyncio)",
            "versions": {name: _version(name) for name in PACKAGES.split()},
        },
        "failures": problems[:10],
    }
    print(json.dumps(report, indent=2))
    earn, distinct = report["earn"], report["redeem"]["distinct_accounts"]
    hot = report["redeem"]["hot_account"]
    print(
        f"loyalty [{backend}]: earn {earn['engine']['purchases_per_second']} vs "
        f"{earn['baseline']['purchases_per_second']} purchases/s (ratio "
        f"{earn['ratio_throughput']}); redeem p50/p99 ms distinct engine "
        f"{distinct['engine']['p50_ms']}/{distinct['engine']['p99_ms']} vs baseline "
        f"{distinct['baseline']['p50_ms']}/{distinct['baseline']['p99_ms']} (ratio "
        f"{distinct['ratio_p50']}/{distinct['ratio_p99']}); hot engine "
        f"{hot['engine']['p50_ms']}/{hot['engine']['p99_ms']} vs baseline "
        f"{hot['baseline']['p50_ms']}/{hot['baseline']['p99_ms']}",
        file=sys.stderr,
    )
    return 1 if problems else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Loyalty earn throughput and redeem latency vs the bare SQL of the same writes."
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALGRAPH_BENCH_DATABASE_URL", DEFAULT_URL),
        help="a PostgreSQL server to create a scratch database on, or `sqlite`",
    )
    parser.add_argument("--customers", type=int, default=500, help="members who buy")
    parser.add_argument("--purchases", type=int, default=2000, help="timed purchases per side")
    parser.add_argument("--workers", type=int, default=20, help="purchases in flight")
    parser.add_argument("--clients", type=int, default=20, help="concurrent redeeming clients")
    parser.add_argument("--redemptions", type=int, default=50, help="per client and side")
    parser.add_argument("--points", type=int, default=10, help="points per redemption")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (ABBA)")
    parser.add_argument("--warmup", type=int, default=40, help="untimed purchases per side")
    parser.add_argument(
        "--warmup-redemptions", type=int, default=2, help="untimed, per client and side"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed of the carts")
    parser.add_argument("--no-graphql", action="store_true", help="skip the pointsRedeem side")
    parser.add_argument("--quick", action="store_true", help="a tiny run that only proves it works")
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.purchases, args.workers, args.rounds = 6, 12, 3, 2
        args.clients, args.redemptions, args.warmup, args.warmup_redemptions = 3, 4, 2, 1
    for name in ("customers", "purchases", "workers", "clients", "redemptions", "points"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.rounds < 1 or args.warmup < 0 or args.warmup_redemptions < 0:
        parser.error("--rounds must be at least 1, --warmup and --warmup-redemptions >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
