"""`loyalgraph export consent-audit`, `export verify` and `audit verify` as a user runs them:
real processes against a migrated SQLite database."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import uuid
from pathlib import Path

import pytest

from core.db import create_engine, session_factory, transaction
from privacy.audit import record
from privacy.keys import LocalKeyring
from tests.e2e.test_cli import run
from tests.integration.test_exports import CHANGES, seed_consent_history


@pytest.fixture
def env(tmp_path):
    return {
        **os.environ,
        "LOYALGRAPH_HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def _db(env) -> Path:
    return Path(env["LOYALGRAPH_HOME"]) / "loyalgraph.db"


async def _seed(env, audit_entries: int) -> None:
    engine = create_engine(f"sqlite:///{_db(env)}")
    keys = LocalKeyring(Path(env["LOYALGRAPH_HOME"]) / "keyring.json")
    try:
        sessions = session_factory(engine)
        await seed_consent_history(sessions)
        for number in range(audit_entries):
            async with transaction(sessions) as session:
                await record(
                    session,
                    keys,
                    action="consent.granted",
                    actor="app:web",
                    subject_id=uuid.uuid4(),
                    details={"n": number},
                )
    finally:
        await engine.dispose()


@pytest.fixture
def seeded(env):
    run(env, "migrate")
    asyncio.run(_seed(env, audit_entries=4))
    return env


@pytest.mark.parametrize("format", ["csv", "json", "xlsx"])
def test_export_writes_a_signed_file_that_verifies_until_one_byte_changes(seeded, tmp_path, format):
    output = tmp_path / f"consent.{format}"

    exported = run(seeded, "export", "consent-audit", "--format", format, "--output", str(output))

    assert f"wrote {len(CHANGES)} rows" in exported.stdout
    assert output.is_file() and Path(f"{output}.sig").is_file()
    verified = run(seeded, "export", "verify", str(output))
    assert verified.stdout.startswith(f"OK {output}: signature valid ({len(CHANGES)} rows")

    data = bytearray(output.read_bytes())
    data[len(data) // 3] ^= 0x01
    output.write_bytes(bytes(data))
    failed = run(seeded, "export", "verify", str(output), check=False)
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and "changed after it was signed" in failed.stdout


def test_filters_narrow_the_export_and_the_signature_records_them(seeded, tmp_path):
    output = tmp_path / "marketing.json"

    run(
        seeded,
        "export",
        "consent-audit",
        "--format",
        "json",
        "--output",
        str(output),
        "--purpose",
        "marketing",
        "--channel",
        "SMS",
        "--from",
        "2026-01-01",
        "--to",
        "2026-02-28",
    )

    rows = json.loads(output.read_text())
    assert [row["status"] for row in rows] == ["GRANTED", "WITHDRAWN"]
    signed = json.loads(Path(f"{output}.sig").read_text())["signed"]["metadata"]
    assert signed["filters"]["purpose"] == "MARKETING" and signed["filters"]["to"] == "2026-02-28"
    # the export itself is in the audit log, and the log still verifies
    assert "5 entries, the hash chain is intact" in run(seeded, "audit", "verify").stdout


def test_a_signature_from_another_keyring_fails(seeded, tmp_path):
    output = tmp_path / "consent.csv"
    run(seeded, "export", "consent-audit", "--format", "csv", "--output", str(output))
    other_keyring = tmp_path / "someone-elses-keyring.json"
    LocalKeyring(other_keyring)  # an existing keyring of another data home
    other = {**seeded, "LOYALGRAPH_KEYRING": str(other_keyring)}

    failed = run(other, "export", "verify", str(output), check=False)

    assert failed.returncode == 1 and "another key" in failed.stdout


def test_mistakes_are_one_line_and_exit_2(seeded, tmp_path):
    output = tmp_path / "x.csv"
    cases = [
        (
            "export",
            "consent-audit",
            "--format",
            "csv",
            "--output",
            str(output),
            "--from",
            "31.01.2026",
        ),
        (
            "export",
            "consent-audit",
            "--format",
            "csv",
            "--output",
            str(output),
            "--status",
            "MAYBE",
        ),
        ("export", "consent-audit", "--format", "pdf", "--output", str(output)),
        ("export", "consent-audit", "--format", "csv", "--output", str(tmp_path / "no" / "x.csv")),
        ("export", "verify", str(tmp_path / "missing.csv")),
    ]
    for args in cases:
        result = run(seeded, *args, check=False)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr, args
    assert not output.exists()
    unsigned = tmp_path / "unsigned.csv"
    unsigned.write_text("a,b\n")
    result = run(seeded, "export", "verify", str(unsigned), check=False)
    assert result.returncode == 2 and "no signature file" in result.stderr


def test_audit_verify_names_the_edited_and_the_deleted_entry(seeded):
    assert "4 entries, the hash chain is intact" in run(seeded, "audit", "verify").stdout
    with sqlite3.connect(_db(seeded)) as connection:
        connection.execute("UPDATE audit_entry SET details = '{\"n\": 99}' WHERE seq = 2")

    edited = run(seeded, "audit", "verify", check=False)

    assert edited.returncode == 1
    assert "seq 2 (consent.granted)" in edited.stdout and "do not match its hash" in edited.stdout

    with sqlite3.connect(_db(seeded)) as connection:
        connection.execute("DELETE FROM audit_entry WHERE seq IN (1, 2)")
    deleted = run(seeded, "audit", "verify", check=False)
    assert deleted.returncode == 1
    assert "seq 3 (consent.granted)" in deleted.stdout and "entry 1 is missing" in deleted.stdout
