"""The bulk path: `loyalgraph import customers|events FILE` in set-based batches.

A file is read in batches of `batch_rows` records. Each batch is one transaction: the rows are
validated and normalised by the services' own pure functions, identifiers are looked up by
blind index for the whole batch in one query, new rows are encrypted together and written with
one `COPY` (PostgreSQL) or `executemany` (SQLite) per table. A row the set-based step cannot
settle alone (an identifier that already belongs to someone, a return) goes through its service
under a savepoint, in file order, in the same transaction. A bad row is reported by its line and
skipped; its neighbours still load. Each batch also records a checkpoint, so `--resume` after a
crash starts after the last batch that committed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from itertools import islice
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from core.db import create_engine, session_factory, transaction
from core.settings import Settings
from graph.importer import PROGRESS_FROM_LINES, ImportReport, Record, open_source
from graph.models import ImportCheckpoint
from privacy.keys import KeyProvider

BATCH_ROWS = 5_000
BatchLoader = Callable[[AsyncSession, list[Record], ImportReport], Awaitable[None]]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _restore(saved: dict[str, object]) -> ImportReport:
    report = ImportReport()
    report.imported = int(saved.get("imported", 0))  # type: ignore[call-overload]
    report.skipped = int(saved.get("skipped", 0))  # type: ignore[call-overload]
    report.empty = int(saved.get("empty", 0))  # type: ignore[call-overload]
    for name in ("failed", "partial"):
        pairs = saved.get(name) or []
        assert isinstance(pairs, list)
        getattr(report, name).extend((int(line), str(reason)) for line, reason in pairs)
    return report


class _Rate(ProgressColumn):
    """Rows per second so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} rows/s")


async def run_bulk(
    settings: Settings,
    provider: KeyProvider,
    path: Path,
    console: Console,
    *,
    what: str,
    columns: frozenset[str],
    required: tuple[str, ...],
    loader: Callable[[KeyProvider, Settings], BatchLoader],
    resume: bool = False,
    batch_rows: int = BATCH_ROWS,
) -> ImportReport:
    """Load `path` batch by batch with `loader`; see the module docstring."""
    source = open_source(path, columns, required)
    checkpoint_id = f"{what}:{file_digest(path)}"
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        async with transaction(sessions) as session:
            saved = await session.get(ImportCheckpoint, checkpoint_id)
            start = saved.last_line if (resume and saved is not None) else 0
            report = _restore(saved.report) if (resume and saved is not None) else ImportReport()
        load = loader(provider, settings)
        progress = Progress(
            TextColumn(f"importing {what}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Rate(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            disable=source.lines < PROGRESS_FROM_LINES,
        )
        began = time.perf_counter()
        with progress:
            task = progress.add_task(what, total=source.lines)
            records = (record for record in source.records() if record[0] > start)
            progress.advance(task, max(start - (0 if source.kind == "jsonl" else 1), 0))
            while batch := list(islice(records, batch_rows)):
                async with transaction(sessions) as session:
                    trial = _restore(asdict(report))
                    await load(session, batch, trial)
                    trial.failed.sort()
                    trial.partial.sort()
                    row = await session.get(ImportCheckpoint, checkpoint_id)
                    if row is None:
                        row = ImportCheckpoint(id=checkpoint_id)
                        session.add(row)
                    row.last_line = batch[-1][0]
                    row.report = asdict(trial)
                    row.updated_at = utcnow()
                    row.done = False
                report = trial
                progress.advance(task, len(batch))
            async with transaction(sessions) as session:
                row = await session.get(ImportCheckpoint, checkpoint_id)
                if row is not None:
                    row.done = True
        report.seconds = time.perf_counter() - began
    finally:
        await engine.dispose()
    return report
