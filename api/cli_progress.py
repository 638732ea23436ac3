"""Progress bars for long commands (`train`, `score --all`): a step's name, how far it is, and
the time spent, on the error console so that `--json` output stays clean."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from api.cli_common import console

Report = Callable[[str, int, int], None]  # what is being done, how far of how much (0: unknown)


@contextmanager
def progress_bar(title: str) -> Iterator[Report]:
    """A bar whose steps report through the yielded function; it disappears when done."""
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[title]}[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None, title=title)

        def report(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total or None)

        yield report
