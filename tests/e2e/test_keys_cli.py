"""`keys` and `breach` as an operator runs them: real processes on a fresh SQLite home."""

import json
from datetime import UTC, datetime, timedelta

from tests.e2e.test_cli import env, run  # noqa: F401  (the fixture is used by name)


def test_rotate_root_then_reencrypt_keep_the_demo_free_of_old_keys(env, tmp_path):  # noqa: F811
    run(env, "migrate")
    run(env, "seed-demo", "--customers", "30")
    rotated = run(env, "keys", "rotate-root", "--retire-old")
    assert "re-wrapped" in rotated.stdout and "retired root keys: root-1" in rotated.stdout
    keyring = json.loads((tmp_path / "home" / "keyring.json").read_text())
    assert list(keyring["roots"]) == ["root-2"]

    again = run(env, "keys", "reencrypt", "--batch", "50")
    assert "new data keys" in again.stdout and "old keys retired" in again.stdout
    assert run(env, "audit", "verify").returncode == 0
    assert run(env, "ledger", "verify").returncode == 0


def test_breach_deadlines_and_an_overdue_notice(env):  # noqa: F811
    run(env, "migrate")
    detected = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    recorded = run(
        env,
        "breach",
        "record",
        "--detected-at",
        detected,
        "--description",
        "Backup bucket readable without credentials",
        "--categories",
        "phone, e-mail",
    )
    assert "notify within 24 h" in recorded.stdout
    breach_id = recorded.stdout.split()[1]
    overdue = run(env, "breach", "list", check=False)
    assert overdue.returncode == 1 and "OVERDUE initial" in overdue.stdout

    run(env, "breach", "notify", breach_id, "--stage", "initial")
    listed = run(env, "breach", "list")
    assert "late initial" in listed.stdout

    bad = run(
        env,
        "breach",
        "record",
        "--detected-at",
        detected,
        "--description",
        "x",
        "--categories",
        "phone",
        check=False,
    )
    assert bad.returncode == 2 and "10-4000 characters" in bad.stderr
