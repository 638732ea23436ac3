"""The query-analysis benchmark runs end to end on tiny settings; no timing is asserted."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "query_analysis.py"


def test_query_analysis_benchmark_runs(tmp_path):
    args = ["--levels", "14", "24", "--step", "10", "--repeats", "2"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)["rows"]
    assert [row["levels"] for row in rows] == [14, 24]
    assert rows[0]["bomb"].startswith("validated") and rows[1]["bomb"].startswith("refused")
    assert all(row["bytes"] == row["plain_bytes"] for row in rows)
