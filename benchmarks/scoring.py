"""Scoring speed: batch throughput with features included, and one customer's online latency,
each against LightGBM's bare `predict` on the same matrix, measured in the same run.

    .venv/bin/python benchmarks/scoring.py                      # 1,000,000 customers
    .venv/bin/python benchmarks/scoring.py --customers 200000
    .venv/bin/python benchmarks/scoring.py --quick              # a tiny run (the test suite's)

Models: a churn and a value model trained by `ml.fitting.fit` (the training code, early
stopping and calibration included) on `--train-customers` generated customers
(`benchmarks/synthetic_history.py`), with every feature (influence and classic ones too).

(a) Batch: `--customers` generated customers as of a cutoff (the history is generated into
    column arrays: the database is not what is measured here). For the scorable ones:
    ours: `scoring.features.compute_features` from the raw history + `eligible` +, per model,
        `ScoringModel.explain` (derived BG/NBD features, calibrated prediction and the top five
        TreeSHAP contributions that `loyalgraph score` stores) = what a batch computes.
    ours_no_reasons: the same with `ScoringModel.predict` (no contributions).
    bare: `Booster.predict` of both models on the very matrices `ours` fed them (built
        before the clock starts).
    -> customers/s per side and `ratio_throughput` = ours / bare (both models per customer).

(b) Online: a demo retailer of `--online-people` people in a temporary SQLite database; for
    `--requests` permitted customers in turn:
    ours: `scoring.batch.compute_scores(owners=[customer])`, the path of `scoresRefresh`
        (load the customer's history and their referees', features, both models with
        contributions, percentiles against the stored scores, the referees' stored value).
    bare: `Booster.predict` of both models on that customer's one-row matrices.
    -> p50/p99 latency (ms) per side and `ratio_p50` = ours / bare.

Prints JSON (stdout) and a summary (stderr). Nothing here asserts on timing.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This folder's scripts are named after what they measure (scoring.py): the repository root
# goes first, so `import scoring` is the package; `import profile_data` still finds this folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from synthetic_history import synthetic_history

from ml.datasets import build_datasets, plan_cutoffs
from ml.fitting import feature_list, fit
from scoring.features import compute_features, eligible
from scoring.kinds import ModelKind
from scoring.model import ScoringModel

END = datetime(2026, 6, 1, tzinfo=UTC)


def train_models(customers: int) -> dict[ModelKind, ScoringModel]:
    history = synthetic_history(customers, end=END, seed=1)
    plan = plan_cutoffs(END, 90, train_cutoffs=4, step_days=30)
    data = build_datasets(history, plan, np.ones(history.size, dtype=np.bool_))
    return {
        kind: fit(kind, data, features=feature_list(include_influence=True)).model
        for kind in ModelKind
    }


def _timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def batch(models: dict[ModelKind, ScoringModel], customers: int) -> dict[str, Any]:
    cutoff = END - timedelta(days=90)
    history = synthetic_history(customers, end=cutoff, seed=2)

    def ours(explain: bool) -> int:
        frame = compute_features(history, cutoff)
        rows = np.flatnonzero(eligible(history, cutoff))
        scorable = frame.iloc[rows]
        for model in models.values():
            if explain:
                model.explain(scorable)
            else:
                model.predict(scorable)
        return int(rows.size)

    frame = compute_features(history, cutoff).iloc[np.flatnonzero(eligible(history, cutoff))]
    matrices = {kind: model.matrix(frame) for kind, model in models.items()}

    def bare() -> int:
        for kind, model in models.items():
            model.booster.predict(matrices[kind], raw_score=True)
        return len(frame)

    # Alternate the order so neither side always runs on a warmer cache.
    bare_seconds, scored = _timed(bare)
    ours_seconds, scored_ours = _timed(lambda: ours(explain=True))
    plain_seconds, _ = _timed(lambda: ours(explain=False))
    bare_again, _ = _timed(bare)
    bare_seconds = min(bare_seconds, bare_again)
    assert scored == scored_ours
    return {
        "customers": customers,
        "scored": scored,
        "events": int(history.ev_cid.size),
        "ours": {"seconds": ours_seconds, "customers_per_s": scored / ours_seconds},
        "ours_no_reasons": {"seconds": plain_seconds, "customers_per_s": scored / plain_seconds},
        "bare": {"seconds": bare_seconds, "customers_per_s": scored / bare_seconds},
        "ratio_throughput": (scored / ours_seconds) / (scored / bare_seconds),
        "ratio_throughput_no_reasons": (scored / plain_seconds) / (scored / bare_seconds),
    }


async def online(
    models: dict[ModelKind, ScoringModel], people: int, requests: int
) -> dict[str, Any]:
    from rich.console import Console

    from core.db import create_engine, session_factory
    from core.settings import Settings
    from graph.demo import seed_demo
    from migrations.runner import upgrade
    from privacy.keys import LocalKeyring
    from scoring.batch import Models, compute_scores
    from scoring.history import load_history

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.from_env({"LOYALGRAPH_HOME": folder})
        settings.ensure_dirs()
        await asyncio.to_thread(upgrade, settings.database_url)  # it runs its own loop
        provider = LocalKeyring(settings.keyring_path)
        await seed_demo(
            settings, provider, customers=people, seed=11, if_empty=False,
            console=Console(file=io.StringIO()), anchor=END,
        )  # fmt: skip
        served = Models(churn=models[ModelKind.CHURN], value=models[ModelKind.VALUE])
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                history = await load_history(session, until=END, currency=settings.currency)
                buyers = np.flatnonzero(eligible(history, END) & history.profiled)
                chosen = [history.owners[i] for i in buyers]
                chosen = chosen[:requests]
                frame = compute_features(history, END)
                ours_ms, bare_ms = [], []
                for owner in chosen:
                    row = frame.iloc[[history.index[owner]]]
                    matrices = [model.matrix(row) for model in models.values()]
                    started = time.perf_counter()
                    for model, matrix in zip(models.values(), matrices, strict=True):
                        model.booster.predict(matrix, raw_score=True)
                    bare_ms.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    scores = await compute_scores(
                        session, models=served, cutoff=END, currency=settings.currency,
                        owners=[owner],
                    )  # fmt: skip
                    ours_ms.append((time.perf_counter() - started) * 1000)
                    assert len(scores.scores) == 2
        finally:
            await engine.dispose()
    return {
        "people": people,
        "requests": len(ours_ms),
        "ours": _latency(ours_ms),
        "bare": _latency(bare_ms),
        "ratio_p50": statistics.median(ours_ms) / statistics.median(bare_ms),
    }


def _latency(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--train-customers", type=int, default=50_000)
    parser.add_argument("--online-people", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the test suite")
    args = parser.parse_args()
    if args.quick:
        args.customers, args.train_customers = 3_000, 4_000
        args.online_people, args.requests = 200, 5
    seconds, models = _timed(lambda: train_models(args.train_customers))
    report: dict[str, Any] = {
        "training": {
            "customers": args.train_customers,
            "seconds": seconds,
            "trees": {kind.value: m.booster.num_trees() for kind, m in models.items()},
            "features": len(models[ModelKind.CHURN].features),
        },
        "batch": batch(models, args.customers),
        "online": asyncio.run(online(models, args.online_people, args.requests)),
    }
    print(json.dumps(report, indent=2))
    b, o = report["batch"], report["online"]
    print(
        f"batch {b['scored']:,} customers: ours {b['ours']['customers_per_s']:,.0f}/s "
        f"(without reasons {b['ours_no_reasons']['customers_per_s']:,.0f}/s), bare predict "
        f"{b['bare']['customers_per_s']:,.0f}/s, ratio {b['ratio_throughput']:.3f}; online p50 "
        f"{o['ours']['p50_ms']:.1f} ms vs bare {o['bare']['p50_ms']:.3f} ms "
        f"(ratio {o['ratio_p50']:.0f})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
