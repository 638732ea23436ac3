"""Model quality on the demo retailer, strict time split: the LightGBM churn and value models
against the RFM rule, a run-rate rule and BG/NBD + Gamma-Gamma, all on the same holdout rows,
with and without the influence features.

    .venv/bin/python benchmarks/model_quality.py                    # 10,000 people, seed 42
    .venv/bin/python benchmarks/model_quality.py --seeds 42 43 44   # three demo worlds
    .venv/bin/python benchmarks/model_quality.py --quick            # a tiny run (the test suite's)

For each seed a demo retailer (`loyalgraph seed-demo`'s generator and points ledger, two years
ending at `--anchor`) is written into a temporary SQLite database. The windows are the ones
`loyalgraph train` uses (`ml.datasets`): holdout features at D - H with labels from [D - H, D),
early stopping and calibration on D - H - g, training cutoffs stacked from D - H - 2g back
(g = H when the history holds three horizons, less when it is short), nothing at or after D
loaded; only customers with a profiling consent are used.

Rows of the table, each on the same holdout customers:
    lightgbm                 every feature (RFM, behaviour, loyalty, influence, season, and
                             the BG/NBD + Gamma-Gamma features the model builds on)
    lightgbm_no_influence    the same without the influence features
    lightgbm_no_classic      without the BG/NBD + Gamma-Gamma features
    rfm                      the RFM cell code (recency, frequency, monetary quintiles)
    run_rate                 value only: the last 365 days' spend scaled to the horizon
    bgnbd / bgnbd_gg         BG/NBD on purchase days (churn: ranked by expected purchases in
                             H; log loss and Brier of its P(no purchase in H)), x Gamma-Gamma
                             for value
Metrics: churn AUC (the promotion metric), log loss, Brier, top-decile lift; value normalised
Gini (the promotion metric), Spearman, top-decile capture, bias.

Prints JSON (stdout) and a markdown table (stderr).
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
from datetime import UTC, datetime
from typing import Any

from ml.baselines import evaluate_baselines
from ml.fitting import PRIMARY_METRIC, evaluate, feature_list, fit
from ml.training import Prepared, TrainRequest, prepare
from scoring.classic import fit_classic
from scoring.kinds import ModelKind

VARIANTS = {
    "lightgbm": {"include_influence": True, "include_classic": True},
    "lightgbm_no_influence": {"include_influence": False, "include_classic": True},
    "lightgbm_no_classic": {"include_influence": True, "include_classic": False},
}


async def _prepare(people: int, seed: int, anchor: datetime, horizon: int) -> list[Prepared]:
    from rich.console import Console

    from core.db import create_engine, session_factory
    from core.settings import Settings
    from graph.demo import seed_demo
    from loyalty.demo import seed_demo_ledger
    from migrations.runner import upgrade
    from privacy.keys import LocalKeyring

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.from_env({"LOYALGRAPH_HOME": folder})
        settings.ensure_dirs()
        await asyncio.to_thread(upgrade, settings.database_url)
        provider = LocalKeyring(settings.keyring_path)
        console = Console(file=io.StringIO())
        await seed_demo(
            settings, provider, customers=people, seed=seed, if_empty=False, console=console,
            anchor=anchor,
        )  # fmt: skip
        await seed_demo_ledger(settings, provider, seed=seed, now=anchor)
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                return [
                    await prepare(
                        session,
                        request=TrainRequest(kind=kind, cutoff=anchor, horizon_days=horizon),
                        currency=settings.currency,
                    )
                    for kind in ModelKind
                ]
        finally:
            await engine.dispose()


def _table(prepared: Prepared) -> dict[str, dict[str, float]]:
    kind, data = prepared.request.kind, prepared.data
    rows: dict[str, dict[str, float]] = {}
    for name, options in VARIANTS.items():
        fitted = fit(kind, data, features=feature_list(**options))
        rows[name] = evaluate(fitted.model, data.holdout)
    rows.update(
        evaluate_baselines(
            data.holdout, data.plan.horizon_days, kind, fit_classic(data.holdout.features)
        )
    )
    return rows


def run_seed(people: int, seed: int, anchor: datetime, horizon: int) -> dict[str, Any]:
    started = time.perf_counter()
    prepared = asyncio.run(_prepare(people, seed, anchor, horizon))
    result: dict[str, Any] = {"seed": seed, "people": people}
    for item in prepared:
        data = item.data
        result[item.request.kind.value] = {
            "rows": {
                "train": data.train_rows,
                "validation": data.validation.rows,
                "holdout": data.holdout.rows,
            },
            "holdout_cutoff": data.plan.holdout.isoformat(),
            "metrics": _table(item),
        }
    result["seconds"] = time.perf_counter() - started
    return result


def _margins(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind: the LightGBM model's primary metric minus the best baseline's, per seed."""
    out: dict[str, Any] = {}
    for kind in ModelKind:
        metric = PRIMARY_METRIC[kind]
        margins, influence = [], []
        for result in results:
            table = result[kind.value]["metrics"]
            best = max(v[metric] for k, v in table.items() if not k.startswith("lightgbm"))
            margins.append(table["lightgbm"][metric] - best)
            influence.append(table["lightgbm"][metric] - table["lightgbm_no_influence"][metric])
        out[kind.value] = {
            "metric": metric,
            "over_best_baseline": margins,
            "over_best_baseline_mean": statistics.fmean(margins),
            "influence_gain": influence,
            "influence_gain_mean": statistics.fmean(influence),
            "beats_every_baseline": all(m > 0 for m in margins),
        }
    return out


def _markdown(results: list[dict[str, Any]]) -> str:
    lines = []
    for kind in ModelKind:
        metrics = list(results[0][kind.value]["metrics"]["lightgbm"])
        lines.append(f"\n{kind.value} (holdout, mean over seeds {[r['seed'] for r in results]})")
        lines.append("| model | " + " | ".join(metrics) + " |")
        lines.append("|---" * (len(metrics) + 1) + "|")
        for name in results[0][kind.value]["metrics"]:
            cells = []
            for metric in metrics:
                values = [r[kind.value]["metrics"][name].get(metric) for r in results]
                known = [v for v in values if v is not None]
                cells.append(f"{statistics.fmean(known):.4f}" if known else "-")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--anchor", default="2026-06-01", help="end of the demo's two years")
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the test suite")
    args = parser.parse_args()
    if args.quick:
        args.people, args.seeds = 800, [7]
    anchor = datetime.fromisoformat(args.anchor).replace(tzinfo=UTC)
    results = [run_seed(args.people, seed, anchor, args.horizon) for seed in args.seeds]
    report = {"anchor": anchor.isoformat(), "horizon_days": args.horizon, "runs": results,
              "summary": _margins(results)}  # fmt: skip
    print(json.dumps(report, indent=2))
    print(_markdown(results), file=sys.stderr)
    for kind, summary in report["summary"].items():
        print(
            f"{kind}: lightgbm {summary['metric']} over the best baseline "
            f"{summary['over_best_baseline_mean']:+.4f} (per seed "
            f"{', '.join(f'{m:+.4f}' for m in summary['over_best_baseline'])}); influence "
            f"features {summary['influence_gain_mean']:+.4f}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
