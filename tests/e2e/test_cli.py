"""The command line as a user runs it: real processes, a real server on a free port."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CLI = str(Path(sys.executable).with_name("loyalgraph"))


@pytest.fixture
def env(tmp_path):
    return {
        **os.environ,
        "LOYALGRAPH_HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def run(env, *args, check=True):
    result = subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_mistakes_are_one_clear_line_and_exit_2(env, tmp_path):
    bad_env = run({**env, "LOYALGRAPH_ENV": "staging"}, "migrate", check=False)
    assert (
        bad_env.returncode == 2
        and "LOYALGRAPH_ENV" in bad_env.stderr
        and "Traceback" not in bad_env.stderr
    )
    weird = tmp_path / "people.xls"
    weird.write_text("x")
    assert run(env, "import", "customers", str(weird), check=False).returncode == 2
    assert run(env, "token", "--role", "customer", check=False).returncode == 2


def test_demo_import_token_and_serve(env, tmp_path):
    run(env, "migrate")
    seeded = run(env, "seed-demo", "--customers", "40", "--seed", "7")
    assert "Built the demo points ledger" in seeded.stderr  # the demo program, two years of points
    checked = run(env, "ledger", "verify")
    assert "the ledger is consistent" in checked.stdout and " 0 entries" not in checked.stdout
    again = run(env, "seed-demo", "--if-empty").stderr
    assert "not seeded" in again and "ledger" not in again
    people = tmp_path / "people.csv"
    people.write_text("channel,phone,first_name\nPOS,8 (916) 700-00-01,Анна\nWEB,12,Bob\n")
    imported = run(env, "import", "customers", str(people), check=False)
    assert imported.returncode == 1  # one bad row
    assert "line 3" in imported.stderr and "Bob" not in imported.stderr
    key = run(env, "apikey", "create", "--app", "pos").stdout.strip()
    token = run(env, "token", "--role", "operator").stdout.strip()

    port = _free_port()
    server = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        query = '{ customerByIdentifier(kind: PHONE, value: "+79167000001") { id profile { firstName } } }'
        found = httpx.post(
            f"{base}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert found["data"]["customerByIdentifier"]["profile"] == {"firstName": "Анна"}
        listing = httpx.post(
            f"{base}/graphql",
            json={"query": "{ customers(first: 100) { edges { node { id } } } }"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert len(listing["data"]["customers"]["edges"]) >= 40
        as_app = httpx.post(
            f"{base}/graphql",
            json={"query": query.replace(" profile { firstName }", "")},
            headers={"X-API-Key": key},
        )
        assert (
            as_app.json()["data"]["customerByIdentifier"]["id"]
            == found["data"]["customerByIdentifier"]["id"]
        )
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
    assert "+79167000001" not in output  # access log: method, path, status, time only
    assert "POST /graphql 200" in output
