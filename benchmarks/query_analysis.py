"""Query analysis is linear in the document: fragment bombs against plain queries.

For each level n (2^n copies of a field through n fragments that each spread the next twice,
`{ me { ...F0 } } fragment F0 on Customer { ...F1 ...F1 } ... fragment Fn on Customer { id }`)
this measures, in one run and one process:

- bomb: what the server does before execution: parse, then the analysis
  (`api.schema.analysis.analyse`), which refuses the bomb once its expanded cost (2^n + 1)
  is over the limit (n >= 16: `QUERY_TOO_COSTLY`), else graphql-core validates it against
  the schema (the rules the server runs, without the validation cache);
- plain: the same for a plain query of the same byte size (`{ me { id id id ... } }`), which
  is accepted and validated.

Each figure is the median of `--repeats` timings. The ratio bomb/plain stays flat as n
grows (the analysis visits each fragment once), and a bomb is refused in about the time a
normal query is validated. Prints JSON; nothing asserts on timing.

    .venv/bin/python benchmarks/query_analysis.py                 # levels 10, 12, ..., 24
    .venv/bin/python benchmarks/query_analysis.py --levels 10 24 --repeats 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphql import parse, validate

from api.schema.analysis import AnalysisError, analyse
from api.schema.build import build_schema


def bomb(levels: int) -> str:
    fragments = " ".join(
        f"fragment F{i} on Customer {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return f"{{ me {{ ...F0 }} }} {fragments} fragment F{levels} on Customer {{ id }}"


def plain(size: int) -> str:
    """`{ me { id id ... } }` padded with spaces to exactly `size` bytes."""
    head, tail = "{ me { ", " } }"
    count = (size - len(head) - len(tail)) // 3
    body = " ".join(["id"] * count)
    return head + body + " " * (size - len(head) - len(body) - len(tail)) + tail


def median_ms(work: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs=2, default=[10, 24], metavar=("FROM", "TO"))
    parser.add_argument("--step", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    schema = build_schema(production=False)._schema

    def process(query: str) -> str:
        """What the server does before execution: parse, analyse, validate what is accepted."""
        document = parse(query)
        try:
            cost = analyse(document, None, {}).cost
        except AnalysisError as error:
            return f"refused: {error.message}"
        errors = validate(schema, document)
        assert not errors, errors
        return f"validated: cost {cost}"

    rows = []
    for levels in range(args.levels[0], args.levels[1] + 1, args.step):
        bad = bomb(levels)
        good = plain(len(bad))
        outcome = process(bad)
        assert process(good).startswith("validated")
        bomb_ms = median_ms(lambda q=bad: process(q), args.repeats)  # type: ignore[misc]
        plain_ms = median_ms(lambda q=good: process(q), args.repeats)  # type: ignore[misc]
        rows.append(
            {
                "levels": levels,
                "copies": 2**levels,
                "bytes": len(bad),
                "plain_bytes": len(good),
                "bomb": outcome,
                "bomb_ms": round(bomb_ms, 3),
                "plain_ms": round(plain_ms, 3),
                "ratio": round(bomb_ms / plain_ms, 3),
            }
        )
    ratios = [row["ratio"] for row in rows]
    report = {
        "repeats": args.repeats,
        "rows": rows,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }
    print(json.dumps(report, indent=2))
    summary = " ".join(f"2^{r['levels']}:{r['ratio']}" for r in rows)
    print(f"bomb/plain ratio by fan-out: {summary}", file=sys.stderr)


if __name__ == "__main__":
    main()
