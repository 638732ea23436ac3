"""One MLflow pin: pyproject.toml's exact `mlflow-skinny==X` is what is installed, and the UI
(`loyalgraph mlflow-ui`) takes its version from it rather than from a second number."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from api.cli_mlflow import pinned_version

ROOT = Path(__file__).resolve().parents[2]


def test_the_client_is_pinned_exactly_and_installed_at_the_pin() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in dependencies if d.startswith("mlflow")]
    assert len(pins) == 1 and re.fullmatch(r"mlflow-skinny==\d+\.\d+\.\d+", pins[0]), pins
    assert pinned_version() == pins[0].split("==")[1]


def test_the_makefile_names_no_mlflow_version_of_its_own() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "loyalgraph mlflow-ui" in makefile
    assert not re.search(r"mlflow[-a-z]*==\d", makefile)
