"""CLI: `import customers|events|consents FILE` (bulk, resumable) and `consent-documents`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from api.cli_common import console, load_settings
from graph.importer import ImportReport, OnBadField
from privacy.keys import LocalKeyring

import_app = typer.Typer(
    no_args_is_help=True, help="Import customers, events or consents from CSV/JSONL in bulk."
)
FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False)]
Resume = Annotated[
    bool,
    typer.Option("--resume", help="Continue after the last batch that committed (after a crash)."),
]
BatchRows = Annotated[int, typer.Option(min=1, help="Rows per batch (one transaction each).")]


def register(app: typer.Typer) -> None:
    """Add this module's command groups to the `loyalgraph` app."""
    app.add_typer(import_app, name="import")


def _finish(report: ImportReport) -> None:
    console.print(report.summary())
    if report.seconds > 0:
        console.print(f"{report.lines / report.seconds:,.0f} lines/s over {report.seconds:,.1f} s")
    if report.failed:
        raise typer.Exit(1)


@import_app.command("customers")
def import_customers(
    file: FileArg,
    on_bad_field: Annotated[
        OnBadField,
        typer.Option(
            "--on-bad-field",
            help="skip-field: import the customer without an invalid optional field (a birth "
            "date, a name) and report the line; skip-row: reject the whole row.",
        ),
    ] = OnBadField.SKIP_FIELD,
    resume: Resume = False,
    batch_rows: BatchRows = 5_000,
) -> None:
    """Import customers from CSV or JSONL (columns: docs/import.md)."""
    from graph.bulk_customers import bulk_import_customers
    from loyalty import install as install_loyalty

    settings = load_settings()
    install_loyalty()  # registration bonuses, as for customers registered through the API
    report = asyncio.run(
        bulk_import_customers(
            settings,
            LocalKeyring(settings.keyring_path),
            file,
            console=console,
            on_bad_field=on_bad_field,
            resume=resume,
            batch_rows=batch_rows,
        )
    )
    _finish(report)


@import_app.command("events")
def import_events(file: FileArg, resume: Resume = False, batch_rows: BatchRows = 5_000) -> None:
    """Import events (purchases, returns, visits, contacts, campaign responses)."""
    from graph.bulk_events import bulk_import_events
    from loyalty import install as install_loyalty

    settings = load_settings()
    install_loyalty()  # purchases earn points and returns take them back, as through the API
    report = asyncio.run(
        bulk_import_events(
            settings,
            LocalKeyring(settings.keyring_path),
            file,
            console=console,
            resume=resume,
            batch_rows=batch_rows,
        )
    )
    _finish(report)
