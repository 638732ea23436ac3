"""The scheduled-work benchmark still runs end to end on a tiny size, and its own checks pass
(every due lot expired once, dated at its expiry, ledger verify clean). No timing is asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scheduled_bench.py"


def test_scheduled_benchmark_runs(tmp_path):
    database = os.environ.get("LOYALGRAPH_TEST_DATABASE_URL") or "sqlite"
    args = ["--accounts", "120", "--batch-size", "50", "--old-sample", "5"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--database-url", database],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["failures"] == []
    assert report["engine"]["accounts"] == report["baseline_bare_update"]["accounts"] == 120
    assert report["engine"]["expired_lots"] == report["baseline_bare_update"]["lots"] == 120
    assert report["old_per_account"]["accounts"] == 5
    assert report["ratio"] > 0
