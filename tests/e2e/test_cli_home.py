"""A CLI that cannot mislead: one data home whatever the working folder, read-only commands
that create nothing, and one line (exit 2) for a database that is missing or not migrated."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.settings import CHECKOUT, Settings
from privacy.keys import LocalKeyring
from privacy.signing import fingerprint, public_key_bytes, sign_file
from tests.e2e.test_cli import CLI

READ_ONLY = [["ledger", "verify"], ["audit", "verify"], ["doctor"]]


def _run(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "cron-cwd"
    folder.mkdir()
    return folder


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALGRAPH_")}
    return env | {"NO_COLOR": "1", "COLUMNS": "60"} | extra


def test_the_default_home_is_the_same_absolute_place_from_any_folder(
    outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(outside)
    from_outside = Settings.from_env({})
    monkeypatch.chdir(CHECKOUT)
    from_checkout = Settings.from_env({})
    assert from_outside.home == from_checkout.home == CHECKOUT / "var"
    assert from_outside.database_url == from_checkout.database_url


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_on_an_empty_home_create_nothing(
    command: list[str], outside: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    result = _run(command, cwd=outside, env=_env(LOYALGRAPH_HOME=str(home)))
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if command != ["doctor"]:
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert lines == [
            f"error: database at {home / 'loyalgraph.db'} is not migrated: run loyalgraph migrate"
        ]
    assert not home.exists(), "a read-only command created the data home"
    assert list(outside.iterdir()) == [], "a ./var (or anything) appeared in the working folder"


def test_from_outside_the_checkout_the_commands_work_against_the_home(
    outside: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = _env(LOYALGRAPH_HOME=str(home))
    assert _run(["migrate"], cwd=tmp_path, env=env).returncode == 0
    keys = LocalKeyring(home / "keyring.json")
    export = home / "exports" / "sample.csv"
    export.parent.mkdir(parents=True, exist_ok=True)
    export.write_text("id,value\n1,2\n")
    sign_file(export, keys, metadata={"rows": 1})

    for command in (["ledger", "verify"], ["audit", "verify"], ["export", "verify", str(export)]):
        result = _run(command, cwd=outside, env=env)
        assert result.returncode == 0, (command, result.stderr)
    doctor = _run(["doctor"], cwd=outside, env=env)
    assert doctor.returncode == 0, doctor.stdout
    assert f"data home  {home}" in doctor.stdout
    assert "database   ok" in doctor.stdout and "keyring    ok" in doctor.stdout
    assert list(outside.iterdir()) == []

    # Without the keyring that signed it: which key is needed, exit 2, and no new keyring.
    elsewhere = tmp_path / "other-home"
    result = _run(
        ["export", "verify", str(export)], cwd=outside, env=_env(LOYALGRAPH_HOME=str(elsewhere))
    )
    assert result.returncode == 2, result.stdout
    signer = fingerprint(public_key_bytes(keys))[:16]
    assert f"needs the signing key (Ed25519 key {signer})" in result.stderr
    assert "FAILED" not in result.stdout
    assert not elsewhere.exists()
    assert list(outside.iterdir()) == []


def test_a_database_behind_the_code_is_named_with_its_migration(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(LOYALGRAPH_HOME=str(home))
    from migrations.runner import upgrade

    home.mkdir()
    upgrade(f"sqlite:///{home / 'loyalgraph.db'}", "0001")
    result = _run(["ledger", "verify"], cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "is at migration 0001, not " in result.stderr
    assert "run loyalgraph migrate" in result.stderr


def test_doctor_checks_that_the_keyring_opens_the_databases_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(LOYALGRAPH_HOME=str(home))
    assert _run(["migrate"], cwd=tmp_path, env=env).returncode == 0
    seeded = _run(["seed-demo", "--customers", "20"], cwd=tmp_path, env=env)
    assert seeded.returncode == 0, seeded.stderr
    healthy = _run(["doctor"], cwd=tmp_path, env=env)
    assert healthy.returncode == 0, healthy.stdout
    assert (
        "keys+db    ok  the keyring opens the database's data keys (1 root keys" in healthy.stdout
    )

    (home / "keyring.json").rename(home / "keyring.json.bak")
    LocalKeyring(home / "keyring.json")  # another data home's keyring in its place
    wrong = _run(["doctor"], cwd=tmp_path, env=env)
    assert wrong.returncode == 1
    assert "keys+db    BAD the keyring cannot open the database's data keys" in wrong.stdout
