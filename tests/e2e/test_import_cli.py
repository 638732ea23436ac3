"""`loyalgraph import customers|events|consents` and `consent-documents load` as a user runs
them, and the import benchmark on tiny settings (no timing asserted)."""

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import env, run  # noqa: F401  (the fixture and the runner)

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "import_bench.py"


def test_a_history_goes_in_from_files(env, tmp_path):  # noqa: F811
    run(env, "migrate")
    documents = tmp_path / "documents.yaml"
    documents.write_text(
        "documents:\n  - purpose: PROFILING\n    language: ru\n    title: Профилирование\n"
        "    text: Я согласен.\n    valid_from: 2020-01-01T00:00:00Z\n",
        encoding="utf-8",
    )
    published = run(env, "consent-documents", "load", str(documents))
    assert "PROFILING ru version 1: published" in published.stdout
    again = run(env, "consent-documents", "load", str(documents))
    assert "already the newest version" in again.stdout
    people = tmp_path / "people.csv"
    people.write_text(
        "channel,phone,birth_date,registered_at\n"
        "POS,+79167000001,1990-01-01,2023-01-01\n"
        "POS,+79167000002,31.12.1990,2023-02-01\n"
        ",,,\n",
        encoding="utf-8",
    )
    strict = run(env, "import", "customers", "--on-bad-field", "skip-row", str(people), check=False)
    assert (
        strict.returncode == 1 and "line 3" in strict.stderr and "31.12.1990" not in strict.stderr
    )
    lenient = run(env, "import", "customers", str(people))
    assert "4 lines" not in lenient.stderr  # the header is not a data line
    assert "3 lines: 1 imported, 1 skipped" in lenient.stderr and "1 empty" in lenient.stderr
    assert "line 3: imported without birth_date" in lenient.stderr
    events = tmp_path / "events.csv"
    events.write_text(
        "type,idempotency_key,identifier_kind,identifier_value,channel,occurred_at,sku,quantity,"
        "total_minor\n"
        "PURCHASE,receipt-000001,PHONE,+79167000001,POS,2022-06-01T10:00:00Z,A-1,3,1000\n",
        encoding="utf-8",
    )
    assert "1 imported" in run(env, "import", "events", str(events)).stderr
    consents = tmp_path / "consents.jsonl"
    consents.write_text(
        json.dumps(
            {
                "identifier_kind": "PHONE", "identifier_value": "+79167000001",
                "action": "GRANT", "purpose": "PROFILING", "document_language": "ru",
                "document_version": 1, "occurred_at": "2023-01-01T00:00:00Z",
                "collected_channel": "PAPER", "method": "SIGNATURE",
            }
        )
        + "\n",
        encoding="utf-8",
    )  # fmt: skip
    assert "1 imported" in run(env, "import", "consents", str(consents)).stderr
    # resuming a finished file redoes nothing and reports the whole file again
    assert "1 lines: 1 imported" in run(env, "import", "consents", "--resume", str(consents)).stderr
    # importing it again from the start records nothing twice
    assert "1 skipped" in run(env, "import", "consents", str(consents)).stderr
    checked = run(env, "audit", "verify", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_import_benchmark_runs(tmp_path):
    args = ["--customers", "20", "--purchases", "50", "--program-purchases", "5"]
    result = subprocess.run(
        [sys.executable, str(BENCH), *args, "--no-postgresql"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sqlite = report["backends"]["sqlite"]
    assert sqlite["customers"]["rows"] == 20 and sqlite["purchases"]["rows"] == 50
    assert sqlite["purchases_with_program"]["rows"] == 5
