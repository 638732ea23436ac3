"""The bulk path's own promises: a crash resumes from the last committed batch, and the
progress and summary account for every line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

import graph.bulk_customers as bulk_customers
from core.db import create_engine, session_factory
from core.settings import Settings
from graph.bulk_customers import bulk_import_customers
from graph.models import Customer, Identity
from privacy.keys import LocalKeyring


def _people(count: int) -> str:
    rows = ["channel,phone,first_name,registered_at"]
    for number in range(count):
        rows.append(f"POS,+7916700{number:04d},Person{number},2024-01-{1 + number % 28:02d}")
    rows.insert(4, ",,,")  # a line of nothing but delimiters counts too
    return "\n".join(rows) + "\n"


async def _count(settings: Settings, model: type) -> int:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            result = await session.execute(select(func.count()).select_from(model))
            return int(result.scalar_one())
    finally:
        await engine.dispose()


class Crash(RuntimeError):
    pass


async def test_a_crash_resumes_after_the_last_committed_batch(
    settings: Settings, provider: LocalKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(_people(20), encoding="utf-8")
    console = Console(file=io.StringIO())
    real = bulk_customers.load_customers
    calls = 0

    async def crashing(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            await real(*args, **kwargs)  # type: ignore[arg-type]
            raise Crash  # the third batch wrote its rows, then the process died
        await real(*args, **kwargs)  # type: ignore[arg-type]

    # given an import that dies in its third batch of 5 lines
    monkeypatch.setattr(bulk_customers, "load_customers", crashing)
    with pytest.raises(Crash):
        await bulk_import_customers(settings, provider, path, console=console, batch_rows=5)
    monkeypatch.undo()
    # then only the two committed batches are in
    assert await _count(settings, Customer) == 9  # 10 lines, one of them empty
    # when it resumes
    report = await bulk_import_customers(
        settings, provider, path, console=console, batch_rows=5, resume=True
    )
    # then it continues after line 11 and the summary covers the whole file, every line once
    assert (report.imported, report.skipped, report.empty, report.failed) == (20, 0, 1, [])
    assert report.lines == 21
    assert await _count(settings, Customer) == 20
    assert await _count(settings, Identity) == 20
    # and a second full run of the same file (not resumed) changes nothing
    again = await bulk_import_customers(settings, provider, path, console=console, batch_rows=7)
    assert (again.imported, again.skipped) == (0, 20)
    assert await _count(settings, Customer) == 20
