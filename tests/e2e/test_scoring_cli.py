"""The data scientist's commands as real processes: score, models, evaluate, and the mistakes
(each one line, exit 2, nothing registered or stored)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.scoring_fixtures import Seeded

CLI = str(Path(sys.executable).with_name("loyalgraph"))
CUTOFF = "2026-06-01"


@pytest.fixture
def env(tmp_path: Path, seeded_sqlite: Seeded, trained_store: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(seeded_sqlite.location, home / "loyalgraph.db")
    shutil.copyfile(seeded_sqlite.keyring, home / "keyring.json")
    shutil.copyfile(trained_store / "mlflow.db", home / "mlflow.db")
    return {
        **os.environ,
        "LOYALGRAPH_HOME": str(home),
        "LOYALGRAPH_MLFLOW_ARTIFACTS": str(trained_store / "mlartifacts"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=600)


def test_score_models_and_evaluate(env):
    scored = run(env, "score", "--all", "--cutoff", CUTOFF, "--json")
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["scored"] > 100 and report["not_permitted"] > 0
    assert report["churn_model"] == "loyalgraph-churn:1"

    again = run(env, "score", "--all", "--if-unscored")
    assert again.returncode == 0 and "stored already" in again.stderr

    models = json.loads(run(env, "models", "--json").stdout)
    assert {(m["model"], tuple(m["aliases"])) for m in models} == {
        ("loyalgraph-churn", ("champion",)),
        ("loyalgraph-value", ("champion",)),
    }

    evaluated = run(env, "evaluate", "churn", "--cutoff", CUTOFF, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    table = json.loads(evaluated.stdout)["churn"]["metrics"]
    assert set(table) == {"loyalgraph-churn v1", "rfm", "bgnbd"}
    assert table["loyalgraph-churn v1"]["auc"] > table["bgnbd"]["auc"] > table["rfm"]["auc"]

    text = run(env, "train", "value", "--if-no-champion")
    assert text.returncode == 0 and "has a champion" in text.stderr

    # Another horizon than the model's only when asked, and then by ranking alone.
    relabelled = run(env, "evaluate", "churn", "--cutoff", CUTOFF, "--horizon", "30", "--relabel",
                     "--json")  # fmt: skip
    assert relabelled.returncode == 0, relabelled.stderr
    table = json.loads(relabelled.stdout)["churn"]
    assert table["relabelled"] and table["model_horizon_days"] == 90
    assert table["horizon_days"] == 30
    assert set(table["metrics"]["loyalgraph-churn v1"]) == {"auc", "top_decile_lift"}
    assert "log_loss" in table["metrics"]["bgnbd"]  # a baseline is fitted for any horizon


def test_score_customer_prints_what_it_stored(env):
    assert run(env, "score", "--all", "--cutoff", CUTOFF).returncode == 0
    home = Path(env["LOYALGRAPH_HOME"])
    with sqlite3.connect(home / "loyalgraph.db") as connection:
        customer, churn, band = connection.execute(
            "SELECT customer_id, score, band FROM customer_score WHERE kind = 'churn' "
            "ORDER BY customer_id LIMIT 1"
        ).fetchone()
    key = str(uuid.UUID(customer))

    shown = run(env, "score", "--customer", key, "--cutoff", CUTOFF)

    assert shown.returncode == 0, shown.stderr
    assert f"customer {key}:" in shown.stdout
    churn_line = next(line for line in shown.stdout.splitlines() if "churn:" in line)
    assert f"{churn:.3f}" in churn_line and f"band {band}" in churn_line
    assert "value:" in shown.stdout and "contribution" in shown.stdout
    report = json.loads(run(env, "score", "--customer", key, "--cutoff", CUTOFF, "--json").stdout)
    (entry,) = report["customers"]
    stored = entry["scores"]["churn"]
    assert stored["score"] == pytest.approx(churn) and stored["band"] == band
    assert len(stored["reasons"]) == 5 and entry["scores"]["value"]["reasons"]
    with sqlite3.connect(home / "loyalgraph.db") as connection:
        (reasons,) = connection.execute(
            "SELECT reasons FROM customer_score WHERE kind = 'churn' AND customer_id = ?",
            (customer,),
        ).fetchone()
    assert stored["reasons"] == json.loads(reasons)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("train", "churn", "--cutoff", "2099-01-01"), "CUTOFF_IN_FUTURE"),
        (("train", "churn", "--horizon", "0"), "INVALID_HORIZON"),
        (("train", "value", "--cutoff", "2024-01-01"), "EMPTY_TRAINING_WINDOW"),
        (("train", "churn", "--cutoff", "last tuesday"), "--cutoff takes an ISO 8601 date"),
        (("score", "--all", "--alias", "staging"), "UNKNOWN_MODEL_ALIAS"),
        (("score", "--all", "--cutoff", "2099-01-01"), "CUTOFF_IN_FUTURE"),
        (("score",), "give either --all or --customer"),
        (("score", "--customer", "not-an-id"), "--customer takes a customer id"),
        (("evaluate", "value", "--alias", "nope"), "UNKNOWN_MODEL_ALIAS"),
        (("evaluate", "churn", "--cutoff", CUTOFF, "--horizon", "30"), "INVALID_HORIZON"),
    ],
)
def test_mistakes_are_one_line_exit_2_and_change_nothing(env, args, says):
    before = _state(env)

    result = run(env, *args)

    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3  # one sentence, wrapped at most
    assert _state(env) == before


def _state(env: dict[str, str]) -> tuple[str, int]:
    """The MLflow store's bytes (runs, versions, aliases) and the stored scores."""
    home = Path(env["LOYALGRAPH_HOME"])
    registry = hashlib.sha256((home / "mlflow.db").read_bytes()).hexdigest()
    with sqlite3.connect(home / "loyalgraph.db") as connection:
        (scores,) = connection.execute("SELECT count(*) FROM customer_score").fetchone()
    return registry, scores
