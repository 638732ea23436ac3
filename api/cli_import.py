"""CLI: `import customers|events|consents FILE` (bulk, resumable) and `consent-documents`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from api.cli_common import Sessions, console, load_settings
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
BatchRows = Annotated[
    int, typer.Option(min=1, max=5_000, help="Rows per batch (one transaction each).")
]


documents_app = typer.Typer(no_args_is_help=True, help="Consent documents kept as files.")


def register(app: typer.Typer) -> None:
    """Add this module's command groups to the `loyalgraph` app."""
    app.add_typer(import_app, name="import")
    app.add_typer(documents_app, name="consent-documents")


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


@import_app.command("consents")
def import_consents(file: FileArg, resume: Resume = False, batch_rows: BatchRows = 5_000) -> None:
    """Import consents given or withdrawn elsewhere (paper, another system) with evidence."""
    from graph.bulk_consents import bulk_import_consents

    settings = load_settings()
    report = asyncio.run(
        bulk_import_consents(
            settings,
            LocalKeyring(settings.keyring_path),
            file,
            console=console,
            resume=resume,
            batch_rows=batch_rows,
        )
    )
    _finish(report)


@documents_app.command("load")
def load_consent_documents(file: FileArg) -> None:
    """Publish the consent documents of a YAML/JSON file (see docs/import.md)."""
    from api.cli_common import with_sessions
    from core.db import transaction
    from core.errors import DomainError
    from privacy.consent_document_file import DocumentFileError, Loaded, load_documents

    settings = load_settings()
    keys = LocalKeyring(settings.keyring_path)

    async def run(sessions: Sessions) -> list[Loaded]:
        async with transaction(sessions) as session:
            return await load_documents(session, keys, file, actor="cli:consent-documents")

    try:
        loaded = with_sessions(settings, run)
    except (DocumentFileError, DomainError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    for item in loaded:
        outcome = "published" if item.published else "already the newest version"
        typer.echo(f"{item.purpose} {item.language} version {item.version}: {outcome}")
