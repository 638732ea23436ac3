"""The benchmark still runs end to end on tiny settings (it checks both sides answer the same
data before timing). No timing is asserted: the numbers are for the issue notes."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "graphql_profile.py"


def test_graphql_profile_benchmark_runs(tmp_path):
    args = ["--customers", "4", "--events", "3", "--requests", "16", "--warmup", "4", "--rounds", "2", "--concurrency", "2"]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["graphql"]["requests"] == report["baseline"]["requests"] == 16
    assert report["ratio_rps"] > 0
