"""What privacy costs: field encryption, consent-audit exports, erasure.

Prints JSON (stdout) and one summary line per part (stderr). Every figure that matters is a
ratio against a baseline measured in the same run; absolute numbers depend on the machine.
Nothing here asserts on timing.

    .venv/bin/python benchmarks/privacy.py                       # all parts, full size
    .venv/bin/python benchmarks/privacy.py --parts fields --fields 20000

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

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "fields": lambda args: bench_fields(args.fields, args.repeat),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="Comma-separated parts.")
    parser.add_argument("--fields", type=int, default=50_000)
    parser.add_argument("--consents", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    for part in args.parts.split(","):
        report[part] = PARTS[part](args)
        print(f"{part}: {json.dumps(report[part])}", file=sys.stderr)
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
