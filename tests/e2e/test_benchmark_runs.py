"""The benchmark still runs end to end on tiny settings (it checks both sides answer the same
data before timing). No timing is asserted: the numbers are for the issue notes."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "graphql_profile.py"


def test_graphql_profile_benchmark_runs(tmp_path):
    args = [
        "--customers",
        "4",
        "--events",
        "3",
        "--requests",
        "16",
        "--warmup",
        "4",
        "--rounds",
        "2",
        "--concurrency",
        "2",
    ]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["graphql"]["requests"] == report["baseline"]["requests"] == 16
    assert report["ratio_rps"] > 0


LOYALTY_SCRIPT = SCRIPT.parent / "loyalty_bench.py"


def test_loyalty_benchmark_runs(tmp_path):
    # PostgreSQL when the suite has one (what the benchmark is for), else a SQLite smoke run.
    database = os.environ.get("LOYALGRAPH_TEST_DATABASE_URL") or "sqlite"
    args = ["--quick", "--database-url", database]
    result = subprocess.run(
        [sys.executable, str(LOYALTY_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    earn = report["earn"]
    assert (
        earn["engine"]["purchases"]
        == earn["baseline"]["purchases"]
        == earn["engine"]["earned"]
        == 12
    )
    assert earn["engine"]["points_earned"] == earn["baseline"]["points_earned"] > 0
    assert earn["ratio_throughput"] > 0
    for scenario in report["redeem"].values():
        assert scenario["engine"]["redemptions"] == scenario["baseline"]["redemptions"] == 12
        assert scenario["ratio_p50"] > 0
    assert report["redeem"]["distinct_accounts"]["graphql"]["redemptions"] == 12
    assert report["ledger"]["verified"]


def test_privacy_benchmark_runs(tmp_path):
    script = SCRIPT.parent / "privacy_bench.py"
    args = ["--fields", "300", "--events", "30", "--consents", "500", "--repeat", "1"]
    result = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["fields"]["rows"] == 300 and report["fields"]["ratio_write"] > 0
    assert report["export"]["rows"] == 500 and report["export"]["xlsx_rows_per_s"] > 0
    assert report["erasure"]["events"] == 30 and report["erasure"]["certificate_items"] > 0


def _bench(tmp_path, name, *args):
    result = subprocess.run(
        [sys.executable, str(SCRIPT.parent / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_scoring_benchmark_runs(tmp_path):
    report = _bench(tmp_path, "scoring.py", "--quick")
    batch = report["batch"]
    assert batch["customers"] == 3000 and batch["scored"] > 0
    assert batch["ratio_throughput"] > 0 and batch["bare"]["customers_per_s"] > 0
    assert report["online"]["requests"] == 5 and report["online"]["ratio_p50"] > 0


def test_model_quality_benchmark_runs(tmp_path):
    report = _bench(tmp_path, "model_quality.py", "--quick")
    (run,) = report["runs"]
    for kind, primary in (("churn", "auc"), ("value", "normalised_gini")):
        table = run[kind]["metrics"]
        assert {"lightgbm", "lightgbm_no_influence", "lightgbm_no_classic", "rfm"} <= set(table)
        assert all(0 < row[primary] <= 1 for row in table.values())
        assert report["summary"][kind]["metric"] == primary
