"""`loyalgraph mlflow-ui` (what `make mlflow-ui` runs) serves the MLflow UI on a trained store:
its REST API finds the churn experiment and the champion, and the UI page renders them.

The first run installs the UI's own environment (`mlflow==` the client's pin), which takes a few
minutes; later runs reuse it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.cli_mlflow import pinned_version, store_revision
from scoring.kinds import CHAMPION, ModelKind
from tests.browser.conftest import BIN, free_port, wait_http

pytestmark = pytest.mark.slow


@pytest.fixture
def store_env(trained_store: Path, tmp_path: Path) -> dict[str, str]:
    import os

    copy = tmp_path / "mlflow"
    copy.mkdir()
    shutil.copyfile(trained_store / "mlflow.db", copy / "mlflow.db")
    env = {
        **os.environ,
        "LOYALGRAPH_HOME": str(tmp_path / "home"),
        "LOYALGRAPH_MLFLOW_TRACKING_URI": f"sqlite:///{copy / 'mlflow.db'}",
        "LOYALGRAPH_MLFLOW_ARTIFACTS": str(trained_store / "mlartifacts"),
    }
    done = subprocess.run(
        [str(BIN / "loyalgraph"), "mlflow-ui", "--install-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def test_ui_client_and_store_agree(store_env: dict[str, str]) -> None:
    revision = store_revision(store_env["LOYALGRAPH_MLFLOW_TRACKING_URI"])
    assert revision is not None
    done = subprocess.run(
        [str(BIN / "loyalgraph"), "mlflow-ui", "--check"],
        env=store_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"mlflow {pinned_version()}" in done.stdout


def test_mlflow_ui_serves_the_trained_store(store_env: dict[str, str], chrome: Any) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "loyalgraph"), "mlflow-ui", "--host", "127.0.0.1", "--port", str(port)],
        env=store_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", process, timeout=180)
        api = f"{url}/api/2.0/mlflow"
        experiment = httpx.get(
            f"{api}/experiments/get-by-name",
            params={"experiment_name": "loyalgraph-churn"},
            timeout=60,
        )
        assert experiment.status_code == 200, experiment.text
        experiment_id = experiment.json()["experiment"]["experiment_id"]
        model = ModelKind.CHURN.registered_name
        champion = httpx.get(
            f"{api}/registered-models/alias",
            params={"name": model, "alias": CHAMPION},
            timeout=60,
        )
        assert champion.status_code == 200, champion.text
        version = champion.json()["model_version"]
        assert version["name"] == model and CHAMPION in version.get("aliases", [CHAMPION])

        chrome.get(f"{url}/#/experiments/{experiment_id}")  # type: ignore[attr-defined]
        WebDriverWait(chrome, 90).until(
            lambda d: "loyalgraph-churn" in d.find_element(By.TAG_NAME, "body").text
        )
        chrome.get(f"{url}/#/models/{model}")  # type: ignore[attr-defined]
        WebDriverWait(chrome, 90).until(
            lambda d: (
                f"@ {CHAMPION}" in d.find_element(By.TAG_NAME, "body").text
                or f"@{CHAMPION}" in d.find_element(By.TAG_NAME, "body").text
            )
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_check_refuses_a_store_the_ui_does_not_know(
    store_env: dict[str, str], tmp_path: Path
) -> None:
    import sqlite3

    path = tmp_path / "future.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.execute("INSERT INTO alembic_version VALUES ('ffffffffffff')")
    env = store_env | {"LOYALGRAPH_MLFLOW_TRACKING_URI": f"sqlite:///{path}"}
    done = subprocess.run(
        [str(BIN / "loyalgraph"), "mlflow-ui", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "the store is at schema ffffffffffff" in done.stderr
