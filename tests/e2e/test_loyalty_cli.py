"""`loyalgraph loyalty ...` and `loyalgraph ledger verify` as an operator runs them: real
processes on a real database file."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

CLI = str(Path(sys.executable).with_name("loyalgraph"))
DEMO_PROGRAM = Path(__file__).resolve().parents[2] / "loyalty" / "programs" / "demo.yaml"
OPEN = "('ACTIVE', 'PENDING')"


@pytest.fixture
def env(tmp_path):
    home = tmp_path / "home"
    return {**os.environ, "LOYALGRAPH_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "1000"}


def run(env, *args, check=True):
    result = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def sql(env, query):
    with sqlite3.connect(Path(env["LOYALGRAPH_HOME"]) / "loyalgraph.db") as connection:
        return connection.execute(query).fetchall()


def members_who_bought(env, tmp_path, now):
    """Two customers registered and two purchases (and a partial return) imported from files."""
    people = tmp_path / "people.csv"
    people.write_text("channel,phone,first_name\nPOS,+79160000101,Анна\nWEB,+79160000102,Борис\n")
    bought = (now - timedelta(days=3)).isoformat()
    events = [
        {"type": "PURCHASE", "idempotency_key": "e2e-purchase-1", "identifier_kind": "PHONE",
         "identifier_value": "+79160000101", "channel": "POS", "occurred_at": bought,
         "lines": [{"sku": "HOME-1", "category": "home", "quantity": 2, "unit_price_minor": 250000}]},
        {"type": "PURCHASE", "idempotency_key": "e2e-purchase-2", "identifier_kind": "PHONE",
         "identifier_value": "+79160000102", "channel": "MOBILE_APP", "occurred_at": bought,
         "lines": [{"sku": "BOOK-1", "category": "books", "quantity": 1, "unit_price_minor": 180000}]},
        {"type": "RETURN", "idempotency_key": "e2e-return-1", "purchase_idempotency_key": "e2e-purchase-1",
         "channel": "POS", "occurred_at": (now - timedelta(days=1)).isoformat(), "sku": "HOME-1", "quantity": 1},
    ]  # fmt: skip
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(event) for event in events) + "\n")
    run(env, "import", "customers", str(people))
    run(env, "import", "events", str(path))


def test_load_program_refuses_a_mistake_and_versions_changes(env, tmp_path):
    run(env, "migrate")
    data = yaml.safe_load(DEMO_PROGRAM.read_text(encoding="utf-8"))

    # a mistake is one line naming the field, exit 2, and nothing is stored
    data["earn"]["rules"][2]["priority"] = "high"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    refused = run(env, "loyalty", "load-program", str(bad), check=False)
    assert refused.returncode == 2, refused.stderr
    assert "earn.rules.2.priority" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert sql(env, "SELECT count(*) FROM loyalty_program") == [(0,)]
    missing = run(env, "loyalty", "load-program", str(tmp_path / "absent.yaml"), check=False)
    assert missing.returncode == 2 and "cannot read" in missing.stderr

    # the demo program loads; loading it again changes nothing; a change is the next version
    first = run(env, "loyalty", "load-program", str(DEMO_PROGRAM))
    assert "program demo version 1: stored as a new version" in first.stdout
    again = run(env, "loyalty", "load-program", str(DEMO_PROGRAM))
    assert "program demo version 1: unchanged" in again.stdout
    data["earn"]["rules"][2]["priority"] = 10
    data["pending_days"] = 7
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "version 2: stored" in run(env, "loyalty", "load-program", str(changed)).stdout
    rows = sql(env, "SELECT code, version, active FROM loyalty_program ORDER BY version")
    assert rows == [("demo", 1, 0), ("demo", 2, 1)]


def test_imports_earn_and_the_scheduled_run_does_its_work_once(env, tmp_path):
    run(env, "migrate")
    run(env, "loyalty", "load-program", str(DEMO_PROGRAM))
    now = datetime.now(UTC)
    members_who_bought(env, tmp_path, now)
    # imported purchases earned points (the return took back its half), pending for 14 days
    earned = sql(env, "SELECT kind, count(*) FROM loyalty_entry GROUP BY kind ORDER BY kind")
    assert dict(earned) == {"BONUS": 4, "EARN": 2, "REVERSAL": 1}  # welcome and first purchase

    at = (now + timedelta(days=20)).isoformat()
    first = json.loads(run(env, "loyalty", "run-scheduled", "--at", at, "--json").stdout)
    assert first["program"] == {"code": "demo", "version": 1}
    assert first["activated_lots"] == 4 and first["expired_lots"] == 0  # purchases and bonuses
    # run again as of the same instant: nothing is left to do
    second = json.loads(run(env, "loyalty", "run-scheduled", "--at", at, "--json").stdout)
    assert (second["accounts"], second["activated_lots"], second["expired_lots"]) == (0, 0, 0)
    assert second["tier_reviews"] == 0

    # near the end of the year: the summary counts both customers and lists nobody (cron mail
    # stays short); --list-expiring lists them, by id only; --json gives both
    soon = (now + timedelta(days=340)).isoformat()
    summary = run(env, "loyalty", "run-scheduled", "--at", soon, "--expiring-within", "60").stdout
    assert "Customers with points expiring within 60 days: 2 (" in summary
    assert "--list-expiring" in summary and "first expiry" not in summary
    assert len(summary.splitlines()) == 7
    reminder = run(env, "loyalty", "run-scheduled", "--at", soon, "--expiring-within", "60",
                   "--list-expiring").stdout  # fmt: skip
    assert "Customers with points expiring within 60 days: 2" in reminder
    both = json.loads(run(env, "loyalty", "run-scheduled", "--at", soon, "--expiring-within",
                          "60", "--json").stdout)  # fmt: skip
    assert both["expiring_customers"] == len(both["expiring"]) == 2
    assert both["expiring_points"] == sum(item["points"] for item in both["expiring"]) > 0
    assert "Анна" not in reminder and "+7916" not in reminder
    listed = [line.split()[0] for line in reminder.splitlines() if "first expiry" in line]
    assert len(listed) == 2 and all(uuid.UUID(value) for value in listed)

    # a year on, two runs at once expire every lot exactly once
    later = (now + timedelta(days=400)).isoformat()
    (open_lots,) = sql(env, f"SELECT count(*) FROM loyalty_lot WHERE status IN {OPEN}")[0]
    runs = [
        subprocess.Popen([CLI, "loyalty", "run-scheduled", "--at", later, "--json"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    reports = []
    for process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    assert sum(report["expired_lots"] for report in reports) == open_lots > 0
    assert sum(report["tier_reviews"] for report in reports) == 2
    assert sql(env, f"SELECT count(*) FROM loyalty_lot WHERE status IN {OPEN}") == [(0,)]
    assert "the ledger is consistent" in run(env, "ledger", "verify").stdout

    text = run(env, "loyalty", "run-scheduled", "--at", later).stdout
    assert "0 accounts had work due" in text


def test_a_wrong_time_is_one_line_and_exit_2(env):
    run(env, "migrate")
    wrong = run(env, "loyalty", "run-scheduled", "--at", "next tuesday", check=False)
    assert wrong.returncode == 2 and "--at" in wrong.stderr and "Traceback" not in wrong.stderr
    nothing = run(env, "loyalty", "run-scheduled")
    assert "no loyalty program is loaded" in nothing.stderr


def test_ledger_verify_passes_a_clean_ledger_and_names_a_corrupted_lot(env, tmp_path):
    run(env, "migrate")
    run(env, "loyalty", "load-program", str(DEMO_PROGRAM))
    members_who_bought(env, tmp_path, datetime.now(UTC))
    clean = run(env, "ledger", "verify")
    assert "checked 2 accounts, 6 lots and 7 entries" in clean.stdout
    assert "the ledger is consistent" in clean.stdout

    # given a copy of the database where one lot claims points its allocations took
    home = Path(env["LOYALGRAPH_HOME"])
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    broken = {**env, "LOYALGRAPH_HOME": str(copy)}
    (lot,) = sql(broken, "SELECT id FROM loyalty_lot WHERE kind = 'EARN' ORDER BY id LIMIT 1")[0]
    with sqlite3.connect(copy / "loyalgraph.db") as connection:
        connection.execute("UPDATE loyalty_lot SET remaining = remaining + 7 WHERE id = ?", (lot,))

    # when the copy is verified, the breach names the check and the lot, and the exit is 1
    checked = run(broken, "ledger", "verify", check=False)
    assert checked.returncode == 1
    assert f"lot_remaining_matches_allocations {uuid.UUID(lot)}" in checked.stdout
    assert "account_balance_matches_lots" in checked.stdout
    assert "breaches" in checked.stderr
    # and the original is untouched
    assert run(env, "ledger", "verify").returncode == 0
