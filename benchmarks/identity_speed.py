"""Identity resolution speed: the whole-base run against bare Splink, and one registration.

    .venv/bin/python benchmarks/identity_speed.py                     # 3,000 demo people
    .venv/bin/python benchmarks/identity_speed.py --customers 1000000 # the big run (slow seed)

One process, one machine, same data:
- ours: `graph.resolution.job.resolve_base` on a fresh SQLite database seeded by the demo
  (`graph.demo.seed_demo`): decrypt every profile and identifier (AES-GCM, data keys unwrapped
  per subject), normalise, write the HMAC blocking keys, train and score with Splink on DuckDB
  in memory, store the model and candidate pairs, merge above the automatic threshold.
- bare Splink: the same plaintext people (taken from the generated world, never from the
  database), the same `matching_record`, comparisons, training and prediction: no decryption,
  no keys, no writes.
`ratio = ours / bare` is our overhead. Then `--registrations` new customers register one at a
time through `register_and_match` (one transaction each, the base present) and the latency of
each is reported as p50/p99. Prints JSON; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

import graph.demo
from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph.demo_world import World
from graph.enums import Channel, IdentityKind
from graph.resolution import model
from graph.resolution.features import matching_record
from graph.resolution.job import resolve_base
from graph.resolution.registration import register_and_match
from migrations.runner import upgrade
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring

ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)


def _bare(world: World) -> float:
    started = time.perf_counter()
    records = []
    for p in world.people:
        ids = {k: [i.value for i in p.identities if i.kind == k] for k in IdentityKind}
        records.append(
            matching_record(
                p.index,
                first_name=p.first_name,
                last_name=p.last_name,
                birth_date=p.birth_date.isoformat() if p.birth_date else None,
                address=p.address,
                phones=ids[IdentityKind.PHONE],
                emails=ids[IdentityKind.EMAIL],
                cards=ids[IdentityKind.LOYALTY_CARD],
            )
        )
    linker = model.new_linker(records)
    model.train(linker, max_pairs=3e5)  # as resolve_base does
    model.predict(linker, threshold=0.5)
    return time.perf_counter() - started


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(settings: Settings, customers: int, registrations: int, seed: int) -> dict[str, Any]:
    keyring = LocalKeyring(settings.keyring_path)
    captured: list[World] = []

    class Capturing(World):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            captured.append(self)

    graph.demo.World = Capturing  # type: ignore[misc]
    seed_started = time.perf_counter()
    await graph.demo.seed_demo(
        settings, keyring, customers=customers, seed=seed, if_empty=False,
        console=Console(file=io.StringIO()), anchor=ANCHOR,
    )  # fmt: skip
    seed_seconds = time.perf_counter() - seed_started
    world = captured[0]
    bare = _bare(world)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    started = time.perf_counter()
    report = await resolve_base(sessions, keyring)
    ours = time.perf_counter() - started
    latencies: list[float] = []
    for i in range(registrations):
        person = world.people[(i * 7919) % len(world.people)]
        begun = time.perf_counter()
        async with transaction(sessions) as session:
            await register_and_match(
                session,
                FieldCipher(session, keyring),
                channel=Channel.WEB,
                email=f"bench.{i}@example.org",
                first_name=person.first_name,
                last_name=person.last_name,
                birth_date=person.birth_date,
            )
        latencies.append(time.perf_counter() - begun)
    await engine.dispose()
    return {
        "customers": len(world.people),
        "seed_seconds": round(seed_seconds, 2),
        "ours_seconds": round(ours, 2),
        "bare_splink_seconds": round(bare, 2),
        "ratio": round(ours / bare, 2),
        "pairs": report.pairs,
        "automatic_merges": report.automatic_merges,
        "pending": report.pending,
        "registration_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "registration_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "registrations": registrations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--registrations", type=int, default=30)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    home = Path(tempfile.mkdtemp(prefix="lg-identity-speed-"))
    settings = Settings.from_env({"LOYALGRAPH_HOME": str(home)})
    settings.ensure_dirs()
    upgrade(settings.database_url)
    result = asyncio.run(run(settings, args.customers, args.registrations, args.seed))
    print(json.dumps(result, indent=2))
    print(
        f"{result['customers']:,} customers: ours {result['ours_seconds']} s, bare Splink "
        f"{result['bare_splink_seconds']} s (ratio {result['ratio']}); registration p50 "
        f"{result['registration_p50_ms']} ms, p99 {result['registration_p99_ms']} ms",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
