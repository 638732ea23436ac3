"""What privacy costs: field encryption, consent-audit exports, erasure. (Named `privacy_bench` so
that, run as a script, it does not shadow the `privacy` package for the other benchmarks.)

Prints JSON (stdout) and one summary line per part (stderr). Every figure that matters is a
ratio against a baseline measured in the same run; absolute numbers depend on the machine.
Nothing here asserts on timing.

    .venv/bin/python benchmarks/privacy_bench.py                       # all parts, full size
    .venv/bin/python benchmarks/privacy_bench.py --parts fields --fields 20000

Parts
    fields   One identifier per row, `--fields` rows, SQLite file in a temp dir, one sqlite3
             connection. Plaintext side: INSERT (id, value) then SELECT and read every value.
             Encrypted side: the same rows through `privacy.crypto.encrypt_field` (AES-256-GCM
             under one subject's data key, AAD table|column|row|version) plus
             `privacy.crypto.blind_index` (HMAC-SHA256) into (id, value_ct, value_index), then
             SELECT and `decrypt_field` every value; and an equality lookup by blind index
             against a lookup by plaintext (both columns indexed). Ratios: encrypted / plain.
    export   `--consents` consent history rows (privacy.consent_models, bulk-inserted) exported
             with `privacy.exports` to CSV and JSON through the real writers, against a
             baseline that SELECTs the same columns in one cursor and writes them with
             `csv.writer`. Reports rows/s for both and the ratio.
    erasure  One customer with `--events` purchase events (graph services for the customer,
             bulk rows for the events), erased with `privacy.subject_rights.destroy_subject`;
             against a baseline that DELETEs the same customer's identity rows and clears the
             profile columns in bare SQL (what "delete the personal data" would cost without
             crypto-shredding, certificates or the audit trail).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This folder's scripts are named after what they measure (scoring.py): the repository root
# goes first, so `import scoring` is the package; `import profile_data` still finds this folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import csv
import json
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from privacy.crypto import (
    DataKeyMaterial,
    blind_index,
    decrypt_field,
    encrypt_field,
    generate_data_key,
)


def _best(fn: Callable[[], None], repeat: int) -> float:
    """The fastest of `repeat` runs, in seconds (the least disturbed by the machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_fields(rows: int, repeat: int) -> dict[str, Any]:
    material = DataKeyMaterial(key_id=uuid.uuid4(), version=1, key=generate_data_key())
    secret = generate_data_key()
    values = [f"+7916{index:07d}" for index in range(rows)]
    random.Random(7).shuffle(values)  # identifiers arrive in no order; indexes see that
    ids = [str(uuid.uuid4()) for _ in range(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "fields.db")
        db.execute("CREATE TABLE plain (id TEXT PRIMARY KEY, value TEXT)")
        db.execute("CREATE INDEX ix_plain ON plain (value)")
        db.execute("CREATE TABLE sealed (id TEXT PRIMARY KEY, value_ct BLOB, value_index TEXT)")
        db.execute("CREATE INDEX ix_sealed ON sealed (value_index)")

        def write_plain() -> None:
            db.execute("DELETE FROM plain")
            db.executemany("INSERT INTO plain VALUES (?, ?)", zip(ids, values, strict=True))
            db.commit()

        def write_sealed() -> None:
            db.execute("DELETE FROM sealed")
            db.executemany(
                "INSERT INTO sealed VALUES (?, ?, ?)",
                (
                    (
                        row_id,
                        encrypt_field(
                            material, table="t", column="value_ct", row_id=row_id, plaintext=value
                        ),
                        blind_index(secret, kind="PHONE", value=value),
                    )
                    for row_id, value in zip(ids, values, strict=True)
                ),
            )
            db.commit()

        def read_plain() -> None:
            for _row_id, value in db.execute("SELECT id, value FROM plain"):
                assert value

        def read_sealed() -> None:
            for row_id, blob in db.execute("SELECT id, value_ct FROM sealed"):
                assert decrypt_field(
                    material, table="t", column="value_ct", row_id=row_id, blob=blob
                )

        probes = values[:: max(1, rows // 500)]

        def lookup_plain() -> None:
            for value in probes:
                assert db.execute("SELECT id FROM plain WHERE value = ?", (value,)).fetchone()

        def lookup_sealed() -> None:
            for value in probes:
                index = blind_index(secret, kind="PHONE", value=value)
                assert db.execute(
                    "SELECT id FROM sealed WHERE value_index = ?", (index,)
                ).fetchone()

        timings = {
            name: _best(fn, repeat)
            for name, fn in (
                ("write_plain", write_plain),
                ("write_sealed", write_sealed),
                ("read_plain", read_plain),
                ("read_sealed", read_sealed),
                ("lookup_plain", lookup_plain),
                ("lookup_sealed", lookup_sealed),
            )
        }
        sizes = {
            "plain_bytes_per_row": db.execute(
                "SELECT avg(length(id) + length(value)) FROM plain"
            ).fetchone()[0],
            "sealed_bytes_per_row": db.execute(
                "SELECT avg(length(id) + length(value_ct) + length(value_index)) FROM sealed"
            ).fetchone()[0],
        }
        db.close()
    per = {name: seconds / rows * 1e6 for name, seconds in timings.items() if "lookup" not in name}
    per.update(
        {name: timings[name] / len(probes) * 1e6 for name in ("lookup_plain", "lookup_sealed")}
    )
    return {
        "rows": rows,
        "us_per_field": {name: round(value, 2) for name, value in per.items()},
        "ratio_write": round(timings["write_sealed"] / timings["write_plain"], 2),
        "ratio_read": round(timings["read_sealed"] / timings["read_plain"], 2),
        "ratio_lookup": round(timings["lookup_sealed"] / timings["lookup_plain"], 2),
        **{key: round(value, 1) for key, value in sizes.items()},
    }


def _fresh_database(tmp: Path) -> str:
    from migrations.runner import upgrade

    url = f"sqlite:///{tmp / 'privacy.db'}"
    upgrade(url)
    return url


def _seed_consents(url: str, rows: int) -> None:
    """One document, `rows` consents and one history row each, inserted in bulk (sync)."""
    from sqlalchemy import create_engine, insert

    from privacy.consent_models import Consent, ConsentChange, ConsentDocument

    start = datetime(2024, 1, 1, tzinfo=UTC)
    engine = create_engine(url)
    document = uuid.uuid4()
    purposes = ["MARKETING", "PROFILING", "LOYALTY_PARTICIPATION"]
    channels = ["SMS", "EMAIL", "PUSH", "CALL"]
    with engine.begin() as conn:
        conn.execute(
            insert(ConsentDocument.__table__),  # type: ignore[arg-type]
            [
                {
                    "id": document,
                    "purpose": "MARKETING",
                    "language": "ru",
                    "version": 1,
                    "title": "bench",
                    "text": "bench",
                    "text_hash": "0" * 64,
                    "valid_from": start,
                    "created_at": start,
                }
            ],
        )
    batch = 50_000
    for first in range(0, rows, batch):
        consents, changes = [], []
        for index in range(first, min(rows, first + batch)):
            purpose = purposes[index % 3]
            channel = channels[index % 4] if purpose == "MARKETING" else "ANY"
            at = start + timedelta(seconds=index * 37)
            consent_id = uuid.uuid4()
            subject = uuid.UUID(int=index + 1)
            status = "WITHDRAWN" if index % 7 == 0 else "GRANTED"
            consents.append(
                {
                    "id": consent_id,
                    "subject_id": subject,
                    "purpose": purpose,
                    "channel": channel,
                    "status": status,
                    "document_id": document,
                    "allowed_categories": [],
                    "granted_at": at,
                    "updated_at": at,
                }
            )
            changes.append(
                {
                    "id": uuid.uuid4(),
                    "consent_id": consent_id,
                    "subject_id": subject,
                    "purpose": purpose,
                    "channel": channel,
                    "status": status,
                    "document_id": document,
                    "allowed_categories": [],
                    "occurred_at": at,
                    "collected_channel": "WEB",
                    "method": "CHECKBOX",
                    "actor": "bench",
                    "details": {},
                }
            )
        with engine.begin() as conn:
            conn.execute(insert(Consent.__table__), consents)  # type: ignore[arg-type]
            conn.execute(insert(ConsentChange.__table__), changes)  # type: ignore[arg-type]
    engine.dispose()


def _baseline_export(path: Path, output: Path) -> int:
    """The same joined columns in the same order, one sqlite3 cursor, csv.writer."""
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT c.id, c.occurred_at, c.subject_id, c.purpose, c.channel, c.status,"
        " c.allowed_categories, d.id, d.purpose, d.language, d.version, d.text_hash,"
        " c.collected_channel, c.method, c.actor"
        " FROM consent_change c JOIN consent_document d ON d.id = c.document_id"
        " ORDER BY c.occurred_at, c.id"
    )
    count = 0
    with output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow(row)
            count += 1
    db.close()
    return count


def bench_export(rows: int, formats: list[str]) -> dict[str, Any]:
    from core.db import create_engine, session_factory
    from privacy.export_writers import ExportFormat
    from privacy.exports import ConsentAuditFilter, write_consent_audit

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = _fresh_database(tmp)
        started = time.perf_counter()
        _seed_consents(url, rows)
        seeded = time.perf_counter() - started

        start = time.perf_counter()
        baseline_rows = _baseline_export(tmp / "privacy.db", tmp / "baseline.csv")
        baseline = time.perf_counter() - start
        assert baseline_rows == rows

        async def export(fmt: str) -> tuple[int, float]:
            engine = create_engine(url)
            try:
                async with session_factory(engine)() as session:
                    begin = time.perf_counter()
                    count = await write_consent_audit(
                        session,
                        filters=ConsentAuditFilter.build(),
                        format=ExportFormat(fmt),
                        output=tmp / f"export.{fmt}",
                    )
                    return count, time.perf_counter() - begin
            finally:
                await engine.dispose()

        result: dict[str, Any] = {
            "rows": rows,
            "seed_seconds": round(seeded, 1),
            "baseline_csv_rows_per_s": round(rows / baseline),
        }
        for fmt in formats:
            count, seconds = asyncio.run(export(fmt))
            assert count == rows, (fmt, count)
            result[f"{fmt}_rows_per_s"] = round(rows / seconds)
            result[f"{fmt}_ratio_to_baseline"] = round(baseline / seconds, 3)
        return result


def bench_erasure(events: int) -> dict[str, Any]:
    import graph.privacy_sources
    import loyalty.privacy_sources
    from core.db import create_engine, session_factory, transaction
    from graph.customers import register_customer
    from graph.enums import Channel
    from graph.models import Event
    from privacy.fields import FieldCipher
    from privacy.keys import LocalKeyring
    from privacy.subject_rights import destroy_subject

    graph.privacy_sources.install()
    loyalty.privacy_sources.install()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = _fresh_database(tmp)
        keys = LocalKeyring(tmp / "keyring.json")

        async def run() -> dict[str, Any]:
            engine = create_engine(url)
            sessions = session_factory(engine)
            try:
                people = []
                for index in range(2):
                    async with transaction(sessions) as session:
                        registered = await register_customer(
                            session,
                            FieldCipher(session, keys),
                            channel=Channel.POS,
                            phone=f"+7916555000{index}",
                            email=f"p{index}@example.com",
                            first_name="Bench",
                            last_name=f"Person{index}",
                            address="Moscow",
                            loyalty_card=f"LC-BENCH-{index}",
                        )
                        people.append(registered.customer.id)
                        now = datetime.now(UTC)
                        session.add_all(
                            Event(
                                customer_id=registered.customer.id,
                                type="VISIT",
                                channel="POS",
                                occurred_at=now - timedelta(minutes=n),
                            )
                            for n in range(events)
                        )
                subject, twin = people
                async with transaction(sessions) as session:
                    begin = time.perf_counter()
                    certificate = await destroy_subject(
                        session,
                        FieldCipher(session, keys),
                        subject_id=subject,
                        actor="bench",
                        request_id=uuid.uuid4(),
                    )
                erase = time.perf_counter() - begin
                async with transaction(sessions) as session:
                    begin = time.perf_counter()
                    await session.execute(
                        text("DELETE FROM identity WHERE customer_id = :id"), {"id": twin.hex}
                    )
                    await session.execute(
                        text(
                            "UPDATE customer SET first_name_ct = NULL, last_name_ct = NULL,"
                            " birth_date_ct = NULL, address_ct = NULL WHERE id = :id"
                        ),
                        {"id": twin.hex},
                    )
                bare = time.perf_counter() - begin
                return {
                    "events": events,
                    "erase_ms": round(erase * 1000, 1),
                    "bare_delete_ms": round(bare * 1000, 1),
                    "ratio": round(erase / bare, 1),
                    "certificate_items": len(certificate.items),
                }
            finally:
                await engine.dispose()

        return asyncio.run(run())


PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "fields": lambda args: bench_fields(args.fields, args.repeat),
    "export": lambda args: bench_export(args.consents, args.formats.split(",")),
    "erasure": lambda args: bench_erasure(args.events),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="Comma-separated parts.")
    parser.add_argument("--fields", type=int, default=50_000)
    parser.add_argument("--consents", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="csv,json,xlsx", help="Export formats to time.")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    for part in args.parts.split(","):
        report[part] = PARTS[part](args)
        print(f"{part}: {json.dumps(report[part])}", file=sys.stderr)
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
