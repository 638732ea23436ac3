"""How fast `loyalgraph import` loads a history, against a bare load of the same rows.

Prints JSON (stdout) and one summary line per backend (stderr). The figures that matter are
ratios against a baseline measured in the same run; absolute numbers depend on the machine.

    .venv/bin/python benchmarks/import_bench.py                                  # small
    .venv/bin/python benchmarks/import_bench.py --customers 100000 --purchases 1000000
    .venv/bin/python benchmarks/import_bench.py --no-postgresql                  # SQLite only

For each backend (SQLite in a temp dir; PostgreSQL on `--postgresql-url`, a scratch database
created and dropped), in one run:
  customers   `--customers` rows (phone, e-mail, names, birth date, registered_at) through
              `graph.bulk_customers.bulk_import_customers` (validation, blind indexes,
              per-customer data keys, encryption, COPY/executemany).
  purchases   `--purchases` one-line purchases by phone through
              `graph.bulk_events.bulk_import_events`, no loyalty program loaded.
  baseline    the very rows those imports wrote (customer + identity + data_key; event +
              event_line), read back and loaded into unconstrained tables of the same columns
              with a bare `COPY` (asyncpg `copy_records_to_table`) on PostgreSQL or one
              `executemany` per table (stdlib sqlite3, one transaction) on SQLite.
  program     `--program-purchases` more purchases with the demo program loaded: with a
              program, rows go through the live engine one by one (set-based earning is not
              built), reported so that the gap is visible.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from profile_data import scratch_database
from rich.console import Console
from sqlalchemy.engine import make_url

from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph.bulk_customers import bulk_import_customers
from graph.bulk_events import bulk_import_events
from loyalty import install
from loyalty.program import load_program, read_program_file
from migrations.runner import upgrade
from privacy.keys import LocalKeyring

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
START = datetime(2024, 1, 1, tzinfo=UTC)


def write_files(folder: Path, customers: int, purchases: int, extra: int, seed: int) -> None:
    rng = random.Random(seed)
    with (folder / "customers.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["channel", "phone", "email", "first_name", "last_name", "birth_date", "registered_at"]
        )
        for n in range(customers):
            joined = START + timedelta(days=rng.randrange(0, 365))
            out.writerow(
                [
                    "POS",
                    f"+7916{n:07d}",
                    f"member{n}@example.ru",
                    "Анна",
                    "Кузнецова",
                    f"19{rng.randrange(50, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}",
                    joined.isoformat(),
                ]
            )
    for name, count, offset in (("purchases.csv", purchases, 0), ("more.csv", extra, purchases)):
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            out = csv.writer(handle)
            out.writerow(
                [
                    "type",
                    "idempotency_key",
                    "identifier_kind",
                    "identifier_value",
                    "channel",
                    "occurred_at",
                    "sku",
                    "category",
                    "quantity",
                    "unit_price_minor",
                ]
            )
            for n in range(offset, offset + count):
                when = START + timedelta(days=rng.randrange(0, 540), seconds=rng.randrange(86400))
                out.writerow(
                    [
                        "PURCHASE",
                        f"receipt-{n:09d}",
                        "PHONE",
                        f"+7916{rng.randrange(customers):07d}",
                        "POS",
                        when.isoformat(),
                        f"SKU-{rng.randrange(500)}",
                        "food",
                        rng.randrange(1, 4),
                        rng.randrange(1000, 500_000),
                    ]
                )


async def _rows_pg(url: str, tables: list[str]) -> dict[str, list[Any]]:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        return {table: list(await connection.fetch(f"SELECT * FROM {table}")) for table in tables}
    finally:
        await connection.close()


async def _bare_pg(url: str, rows: dict[str, list[Any]]) -> float:
    import asyncpg

    connection = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        for table in rows:
            await connection.execute(
                f"CREATE TABLE bare_{table} AS SELECT * FROM {table} WHERE false"
            )
        start = time.perf_counter()
        async with connection.transaction():
            for table, records in rows.items():
                await connection.copy_records_to_table(
                    f"bare_{table}", records=[tuple(r) for r in records]
                )
        return time.perf_counter() - start
    finally:
        await connection.close()


def _bare_sqlite(url: str, tables: list[str]) -> tuple[float, int]:
    path = make_url(url).database
    assert path is not None
    connection = sqlite3.connect(path)
    try:
        rows = {table: connection.execute(f"SELECT * FROM {table}").fetchall() for table in tables}
        for table in tables:
            connection.execute(f"CREATE TABLE bare_{table} AS SELECT * FROM {table} WHERE 0")
        connection.commit()
        start = time.perf_counter()
        with connection:
            for table, records in rows.items():
                if records:
                    marks = ",".join("?" * len(records[0]))
                    connection.executemany(f"INSERT INTO bare_{table} VALUES ({marks})", records)
        return time.perf_counter() - start, sum(len(r) for r in rows.values())
    finally:
        connection.close()


async def _bare(url: str, backend: str, tables: list[str]) -> float:
    if backend == "sqlite":
        return _bare_sqlite(url, tables)[0]
    return await _bare_pg(url, await _rows_pg(url, tables))


async def measure(args: argparse.Namespace, folder: Path, url: str, backend: str) -> dict[str, Any]:
    home = folder / f"home-{backend}"
    settings = Settings.from_env({"LOYALGRAPH_HOME": str(home), "LOYALGRAPH_DATABASE_URL": url})
    settings.ensure_dirs()
    provider = LocalKeyring(settings.keyring_path)
    console = Console(file=io.StringIO())
    started = time.perf_counter()
    people = await bulk_import_customers(
        settings, provider, folder / "customers.csv", console=console, batch_rows=args.batch_rows
    )
    customers_s = time.perf_counter() - started
    started = time.perf_counter()
    bought = await bulk_import_events(
        settings, provider, folder / "purchases.csv", console=console, batch_rows=args.batch_rows
    )
    purchases_s = time.perf_counter() - started
    assert not people.failed and not bought.failed, (people.failed[:3], bought.failed[:3])
    bare_customers = await _bare(url, backend, ["data_key", "customer", "identity"])
    bare_purchases = await _bare(url, backend, ["event", "event_line"])
    result: dict[str, Any] = {
        "customers": {
            "rows": people.imported,
            "import_per_second": round(people.imported / customers_s),
            "bare_per_second": round(people.imported / bare_customers),
            "ratio": round(bare_customers / customers_s, 3),
        },
        "purchases": {
            "rows": bought.imported,
            "import_per_second": round(bought.imported / purchases_s),
            "bare_per_second": round(bought.imported / bare_purchases),
            "ratio": round(bare_purchases / purchases_s, 3),
        },
    }
    if args.program_purchases:
        install()
        engine = create_engine(url)
        try:
            async with transaction(session_factory(engine)) as session:
                await load_program(session, read_program_file(args.program), actor="bench")
        finally:
            await engine.dispose()
        started = time.perf_counter()
        more = await bulk_import_events(
            settings, provider, folder / "more.csv", console=console, batch_rows=args.batch_rows
        )
        seconds = time.perf_counter() - started
        result["purchases_with_program"] = {
            "rows": more.imported,
            "import_per_second": round(more.imported / seconds),
            "ratio_to_bare": round(
                (more.imported / seconds) / result["purchases"]["bare_per_second"], 4
            ),
            "path": "live engine row by row (set-based earning not built)",
        }
    return result


def run(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {"benchmark": "import", "backends": {}}
    backends = [None] + ([] if args.no_postgresql else [args.postgresql_url])
    with tempfile.TemporaryDirectory(prefix="lg-bench-import-") as tmp:
        folder = Path(tmp)
        write_files(folder, args.customers, args.purchases, args.program_purchases, args.seed)
        for admin in backends:
            with scratch_database(admin, folder / "db") as (url, backend, version):
                (folder / "db").mkdir(exist_ok=True)
                upgrade(url)
                print(f"import benchmark on {backend} {version}...", file=sys.stderr)
                result = asyncio.run(measure(args, folder, url, backend))
                report["backends"][backend] = result | {"version": version}
                c, p = result["customers"], result["purchases"]
                print(
                    f"import [{backend}]: customers {c['import_per_second']}/s vs bare "
                    f"{c['bare_per_second']}/s (ratio {c['ratio']}); purchases "
                    f"{p['import_per_second']}/s vs bare {p['bare_per_second']}/s "
                    f"(ratio {p['ratio']})",
                    file=sys.stderr,
                )
    report["sizes"] = {
        "customers": args.customers,
        "purchases": args.purchases,
        "program_purchases": args.program_purchases,
        "batch_rows": args.batch_rows,
    }
    report["environment"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    print(json.dumps(report, indent=2))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--purchases", type=int, default=20_000)
    parser.add_argument(
        "--program-purchases",
        type=int,
        default=300,
        help="purchases imported with the demo program loaded (0: skip)",
    )
    parser.add_argument("--batch-rows", type=int, default=5_000)
    parser.add_argument("--postgresql-url", default=DEFAULT_PG)
    parser.add_argument("--no-postgresql", action="store_true")
    parser.add_argument(
        "--program",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "loyalty/programs/demo.yaml",
    )
    parser.add_argument("--seed", type=int, default=14)
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(run(parse_args()))
