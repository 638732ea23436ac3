"""`run-scheduled` with many accounts due at once, against a bare UPDATE of the same lots.

The night an `end_of_year` expiry falls due, every account has a lot expiring at the same
instant. This measures `loyalty.scheduled.run_scheduled` (what `loyalgraph loyalty
run-scheduled` runs) on `--accounts` such accounts, and in the same run, on the same lots:

    baseline: one bare `UPDATE loyalty_lot SET remaining = 0, status = 'EXPIRED' WHERE
        status IN ('PENDING', 'ACTIVE') AND expires_at <= :at` in one transaction, rolled back
        (it writes no entries or allocations, so it leaves the ledger as it was), timed after
        an untimed warm-up of the same statement (also rolled back);
    engine: `run_scheduled` at the same instant: batches of `--batch-size` accounts, each
        locked, its due lots expired with an EXPIRE entry and allocation per lot dated at the
        lot's expiry, committed;
    old (optional, `--old-sample N`, default 200): the per-account path it replaced
        (`ledger.catch_up` + `tiers.review_tier`, one transaction per account) over N extra
        accounts due at the same instant, run first, for the speed-up the sets give.

-> accounts/s per side, `ratio` = engine accounts/s / baseline accounts/s (the baseline's
"accounts" are the accounts whose lots its UPDATE expired), the target (>= 5,000 accounts/s)
and whether it was met. At the end `loyalty.verify.verify_ledger` must pass and every due lot
must have exactly one EXPIRE entry dated at its expiry, else the exit status is 1.

    .venv/bin/python benchmarks/scheduled_bench.py                          # SQLite, 5,000
    .venv/bin/python benchmarks/scheduled_bench.py --accounts 100000        # the issue's size
    .venv/bin/python benchmarks/scheduled_bench.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Each account also holds a second lot that is not due (expiring a year later), so the statements
find the due lots among others. Accounts, entries and lots are seeded with bulk INSERTs (the
seeding is not timed); their tiers were reviewed the day before, so no review is due.
Prints JSON (stdout) and a one-line summary (stderr). Nothing here asserts on timing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import os
import platform
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from profile_data import scratch_database
from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph.models import Customer
from loyalty.definition import parse_definition
from loyalty.ledger import catch_up, expiring_by, lock_account
from loyalty.models import Account, Allocation, EntryKind, LedgerEntry, Lot, LotStatus
from loyalty.program import active_program, load_program
from loyalty.scheduled import run_scheduled
from loyalty.scheduled_batch import BATCH_ACCOUNTS
from loyalty.tiers import review_tier
from loyalty.verify import verify_ledger
from migrations.runner import upgrade

TARGET = 5_000  # accounts/s (issue 14)
DUE = datetime(2026, 12, 31, 21, 0, tzinfo=UTC)  # the end of the year in Moscow
EARNED = DUE - timedelta(days=200)
SEED_CHUNK = 10_000


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


PROGRAM = {
    "code": "bench",
    "name": "Scheduled bench",
    "currency": "RUB",
    "pending_days": 0,
    "earn": {"points": 1, "per_minor": 100},
    "expiry": {"policy": "end_of_year", "years": 0},
    "tiers": {
        "review_every_days": 30,
        "levels": [{"code": "base", "name": "Base", "threshold": 0}],
    },
}


async def seed(
    sessions: async_sessionmaker[AsyncSession], count: int, rng: random.Random
) -> list[uuid.UUID]:
    """`count` accounts, each with a lot due at DUE and one due a year later."""
    program = None
    async with sessions() as session:
        program = await active_program(session)
    assert program is not None
    ids: list[uuid.UUID] = []
    for start in range(0, count, SEED_CHUNK):
        size = min(SEED_CHUNK, count - start)
        customers, accounts, entries, lots = [], [], [], []
        for _ in range(size):
            customer_id = uuid.uuid4()
            ids.append(customer_id)
            customers.append(
                {
                    "id": customer_id,
                    "status": "ACTIVE",
                    "registered_channel": "POS",
                    "created_at": EARNED,
                    "updated_at": EARNED,
                }
            )
            accounts.append(
                {
                    "customer_id": customer_id,
                    "tier": "base",
                    "tier_since": EARNED,
                    "tier_reviewed_at": DUE - timedelta(days=1),
                    "created_at": EARNED,
                }
            )
            for expires in (DUE, DUE + timedelta(days=365)):
                points = rng.randint(10, 500)
                entry_id = uuid.uuid4()
                entries.append(
                    {
                        "id": entry_id,
                        "customer_id": customer_id,
                        "kind": EntryKind.EARN.value,
                        "points": points,
                        "occurred_at": EARNED,
                        "recorded_at": EARNED,
                        "program_id": program.row.id,
                        "actor": "system",
                        "outstanding": 0,
                    }
                )
                lots.append(
                    {
                        "id": uuid.uuid4(),
                        "customer_id": customer_id,
                        "entry_id": entry_id,
                        "kind": EntryKind.EARN.value,
                        "amount": points,
                        "remaining": points,
                        "status": LotStatus.ACTIVE.value,
                        "earned_at": EARNED,
                        "available_at": EARNED,
                        "expires_at": expires,
                    }
                )
        async with transaction(sessions) as session:
            for model, rows in (
                (Customer, customers),
                (Account, accounts),
                (LedgerEntry, entries),
                (Lot, lots),
            ):
                await session.execute(insert(_table(model)), rows)
    return ids


async def old_path(sessions: async_sessionmaker[AsyncSession], ids: list[uuid.UUID]) -> float:
    """The per-account scheduled work `run_scheduled` did before the sets, timed."""
    started = time.perf_counter()
    for customer_id in ids:
        async with transaction(sessions) as session:
            program = await active_program(session)
            assert program is not None
            account = await lock_account(session, customer_id, program.rules, DUE)
            await catch_up(session, account, program, DUE)
            every = timedelta(days=program.rules.tiers.review_every_days)
            if account.tier_reviewed_at <= DUE - every:
                await review_tier(session, account, program.rules, DUE)
    return time.perf_counter() - started


async def bare_update(engine: AsyncEngine) -> tuple[float, int, int]:
    """The baseline: one UPDATE of the due lots, rolled back. (seconds, lots, accounts)."""
    lots = _table(Lot)
    async with engine.connect() as connection:
        accounts = await connection.scalar(
            select(func.count(func.distinct(lots.c.customer_id))).where(expiring_by(DUE))
        )
        await connection.rollback()
        started = time.perf_counter()
        async with connection.begin() as tx:
            result = await connection.execute(
                update(lots)
                .where(expiring_by(DUE))
                .values(remaining=0, status=LotStatus.EXPIRED.value)
            )
            seconds = time.perf_counter() - started
            await tx.rollback()
    return seconds, int(result.rowcount), int(accounts or 0)


async def check(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    problems: list[str] = []
    async with sessions() as session:
        report = await verify_ledger(session)
        if not report.ok:
            problems.append(f"ledger verify: {report.breaches[:3]}")
        left = await session.scalar(select(func.count()).select_from(Lot).where(expiring_by(DUE)))
        if left:
            problems.append(f"{left} due lots were not expired")
        entries = _table(LedgerEntry)
        allocations = _table(Allocation)
        wrong = await session.scalar(
            select(func.count())
            .select_from(entries.join(allocations, allocations.c.entry_id == entries.c.id))
            .where(entries.c.kind == EntryKind.EXPIRE.value, entries.c.occurred_at != DUE)
        )
        if wrong:
            problems.append(f"{wrong} expiry entries are not dated at the due instant")
        twice = (
            await session.execute(
                select(col(Allocation.lot_id))
                .join(LedgerEntry, col(LedgerEntry.id) == col(Allocation.entry_id))
                .where(col(LedgerEntry.kind) == EntryKind.EXPIRE)
                .group_by(col(Allocation.lot_id))
                .having(func.count() > 1)
            )
        ).all()
        if twice:
            problems.append(f"{len(twice)} lots expired twice")
    return problems


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


async def measure(args: argparse.Namespace, settings: Settings, url: str) -> dict[str, Any]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    rng = random.Random(args.seed)
    try:
        async with transaction(sessions) as session:
            await load_program(session, parse_definition(PROGRAM), actor="bench")
        seeding = time.perf_counter()
        sample = await seed(sessions, args.old_sample, rng) if args.old_sample else []
        await seed(sessions, args.accounts, rng)
        seeded = time.perf_counter() - seeding
        print(f"seeded {args.accounts + len(sample):,} accounts in {seeded:.1f} s", file=sys.stderr)
        old_seconds = await old_path(sessions, sample) if sample else 0.0

        await bare_update(engine)  # warm-up, rolled back
        bare_seconds, bare_lots, bare_accounts = await bare_update(engine)

        started = time.perf_counter()
        report = await run_scheduled(
            sessions, at=DUE, batch_size=args.batch_size, expiring_within_days=1
        )
        engine_seconds = time.perf_counter() - started
        problems = await check(sessions)
        if report.accounts != args.accounts or report.expired_lots != args.accounts:
            problems.append(
                f"run_scheduled did {report.accounts} accounts and {report.expired_lots} lots,"
                f" expected {args.accounts} of each"
            )
        if bare_lots != args.accounts:
            problems.append(f"the bare UPDATE touched {bare_lots} lots, not {args.accounts}")
        version = engine.dialect.server_version_info
    finally:
        await engine.dispose()
    engine_rate = rate(report.accounts, engine_seconds)
    bare_rate = rate(bare_accounts, bare_seconds)
    return {
        "engine": {
            "accounts": report.accounts,
            "expired_lots": report.expired_lots,
            "expired_points": report.expired_points,
            "seconds": round(engine_seconds, 3),
            "accounts_per_second": engine_rate,
            "batch_size": args.batch_size,
        },
        "baseline_bare_update": {
            "accounts": bare_accounts,
            "lots": bare_lots,
            "seconds": round(bare_seconds, 3),
            "accounts_per_second": bare_rate,
        },
        "old_per_account": {
            "accounts": len(sample),
            "seconds": round(old_seconds, 3),
            "accounts_per_second": rate(len(sample), old_seconds),
        },
        "ratio": round(engine_rate / bare_rate, 4) if bare_rate else None,
        "speedup_over_old": round(engine_rate / rate(len(sample), old_seconds), 1)
        if sample and old_seconds
        else None,
        "target_accounts_per_second": TARGET,
        "target_met": engine_rate >= TARGET,
        "seed_seconds": round(seeded, 1),
        "server_version": ".".join(map(str, version or ())),
        "failures": problems,
    }


def run(args: argparse.Namespace) -> int:
    admin_url = None if args.database_url == "sqlite" else args.database_url
    with (
        tempfile.TemporaryDirectory(prefix="lg-bench-scheduled-") as tmp,
        scratch_database(admin_url, Path(tmp) / "home") as (url, backend, version),
    ):
        settings = Settings.from_env(
            {"LOYALGRAPH_HOME": str(Path(tmp) / "home"), "LOYALGRAPH_DATABASE_URL": url}
        )
        settings.ensure_dirs()
        upgrade(url)
        print(f"scheduled benchmark on {backend} {version}...", file=sys.stderr)
        result = asyncio.run(measure(args, settings, url))
    report = {
        "benchmark": "scheduled",
        **result,
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "database_backend": backend,
            "database_version": version,
        },
    }
    print(json.dumps(report, indent=2))
    engine, bare = report["engine"], report["baseline_bare_update"]
    print(
        f"scheduled [{backend}]: {engine['accounts']:,} accounts due at once: run_scheduled"
        f" {engine['accounts_per_second']:,} accounts/s vs bare UPDATE"
        f" {bare['accounts_per_second']:,} accounts/s (ratio {report['ratio']}); old per-account"
        f" path {report['old_per_account']['accounts_per_second']:,} accounts/s; target"
        f" {TARGET:,} accounts/s {'met' if report['target_met'] else 'NOT met'}",
        file=sys.stderr,
    )
    return 1 if report["failures"] else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALGRAPH_BENCH_DATABASE_URL", "sqlite"),
        help="`sqlite` (default: a temporary file) or a PostgreSQL server to create a scratch"
        " database on",
    )
    parser.add_argument("--accounts", type=int, default=5_000, help="accounts due at once")
    parser.add_argument("--big", action="store_true", help="the issue's size: 100,000 accounts")
    parser.add_argument("--batch-size", type=int, default=BATCH_ACCOUNTS)
    parser.add_argument(
        "--old-sample", type=int, default=200, help="accounts run through the old path (0: none)"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.big:
        args.accounts = 100_000
    if args.accounts < 1 or args.batch_size < 1 or args.old_sample < 0:
        parser.error("--accounts and --batch-size must be at least 1, --old-sample >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
