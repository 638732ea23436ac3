"""`loyalgraph apikey list | revoke | rotate` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e.test_cli import CLI


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def test_list_revoke_and_rotate(tmp_path: Path) -> None:
    env = {**os.environ, "LOYALGRAPH_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    env.pop("LOYALGRAPH_DATABASE_URL", None)
    assert _run(env, "migrate").returncode == 0
    key = _run(env, "apikey", "create", "--app", "till").stdout.strip()
    listed = _run(env, "apikey", "list").stdout.splitlines()
    assert len(listed) == 1 and "  till  " in listed[0] and "last used never" in listed[0]
    assert key not in listed[0]
    key_id = listed[0].split()[0]

    rotated = _run(env, "apikey", "rotate", key_id)
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert new_key.startswith("lg_") and new_key != key
    [active] = _run(env, "apikey", "list").stdout.splitlines()
    new_id = active.split()[0]
    assert new_id != key_id
    everything = _run(env, "apikey", "list", "--all").stdout
    assert f"{key_id}  till" in everything and "revoked" in everything

    assert _run(env, "apikey", "revoke", new_id).returncode == 0
    assert _run(env, "apikey", "list").stdout.strip() == "no active API keys"
    again = _run(env, "apikey", "revoke", new_id)
    assert again.returncode == 2 and "already revoked" in again.stderr
    bad = _run(env, "apikey", "revoke", "not-an-id")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: 'not-an-id' is not an API key id (see `loyalgraph apikey list`)"
    ]
