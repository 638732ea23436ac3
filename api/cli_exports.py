"""CLI: compliance exports (export consent-audit, export verify) and `audit verify`."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from api.cli_common import console, load_settings, require_migrated
from core.errors import DomainError
from privacy.export_writers import ExportFormat
from privacy.keys import LocalKeyring

if TYPE_CHECKING:
    from privacy.audit import ChainReport
    from privacy.exports import ConsentAuditFilter

export_app = typer.Typer(no_args_is_help=True, help="Signed compliance exports.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
CLI_ACTOR = "cli"
PROGRESS_FROM = 10_000  # rows; smaller exports finish before a bar would be worth drawing


def register(app: typer.Typer) -> None:
    """Add this module's command groups to the `loyalgraph` app."""
    app.add_typer(export_app, name="export")
    app.add_typer(audit_app, name="audit")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(2)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option} takes a date such as 2026-01-31") from None


@export_app.command("consent-audit")
def export_consent_audit(
    format: Annotated[ExportFormat, typer.Option("--format", help="File format.")],
    output: Annotated[Path, typer.Option("--output", help="The file to write (and FILE.sig).")],
    date_from: Annotated[
        str | None, typer.Option("--from", help="First day, inclusive (Moscow calendar).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last day, inclusive (Moscow calendar).")
    ] = None,
    purpose: Annotated[str | None, typer.Option(help="Only this purpose.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel (or ANY).")] = None,
    status: Annotated[str | None, typer.Option(help="GRANTED or WITHDRAWN.")] = None,
    document_version: Annotated[
        int | None, typer.Option("--document-version", help="Only this document version.")
    ] = None,
) -> None:
    """Export the consent history (every grant and withdrawal with its evidence) and sign it."""
    from privacy.exports import ConsentAuditFilter

    try:
        filters = ConsentAuditFilter.build(
            date_from=_day(date_from, "--from"),
            date_to=_day(date_to, "--to"),
            purpose=purpose,
            channel=channel,
            status=status,
            document_version=document_version,
        )
    except DomainError as error:
        raise _fail(error.message) from None
    if output.is_dir() or not output.parent.is_dir():
        raise _fail(f"--output {output} must be a file in an existing directory")
    settings = load_settings()
    rows = asyncio.run(
        _export(settings.database_url, settings.keyring_path, filters, format, output)
    )
    typer.echo(f"wrote {rows:,} rows to {output} and its signature to {output}.sig")


async def _export(
    url: str, keyring: Path, filters: ConsentAuditFilter, format: ExportFormat, output: Path
) -> int:
    from core.db import create_engine, session_factory, transaction
    from privacy.exports import (
        count_consent_audit,
        record_export_created,
        write_signed_consent_audit,
    )

    keys = LocalKeyring(keyring)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        async with sessions() as session:  # a reader: writers are not held up meanwhile
            total = await count_consent_audit(session, filters)
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                disable=total < PROGRESS_FROM,
            ) as bar:
                task = bar.add_task("consent audit", total=total)
                written = await write_signed_consent_audit(
                    session,
                    keys,
                    filters=filters,
                    format=format,
                    output=output,
                    progress=lambda done: bar.update(task, completed=done),
                )
        async with transaction(sessions) as session:
            await record_export_created(session, keys, written=written, actor=CLI_ACTOR)
        return written.rows
    finally:
        await engine.dispose()


@export_app.command("verify")
def export_verify(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The export.")],
    signature: Annotated[
        Path | None, typer.Option("--signature", help="The signature (default FILE.sig).")
    ] = None,
) -> None:
    """Check an export against its detached Ed25519 signature; exit 1 if it does not hold."""
    from privacy.signing import SignatureFileError, verify_file

    settings = load_settings(read_only=True)
    needed = signing_key_of(file, signature)
    if not settings.keyring_path.exists():
        raise _fail(
            f"export verify needs the signing key{needed}, kept in the keyring of the data home "
            f"that signed the export; there is no keyring at {settings.keyring_path}: set "
            "LOYALGRAPH_HOME (or LOYALGRAPH_KEYRING) to that data home (`loyalgraph doctor`)"
        )
    try:
        result = verify_file(file, LocalKeyring(settings.keyring_path, create=False), signature)
    except SignatureFileError as error:
        raise _fail(str(error)) from None
    if not result.ok:
        typer.echo(f"FAILED {file}: {result.reason}")
        if "another key" in result.reason:
            typer.echo(
                f"the keyring used was {settings.keyring_path}; if the export was signed by "
                "another data home of yours, point LOYALGRAPH_HOME at it before calling it forged"
            )
        raise typer.Exit(1)
    rows = result.metadata.get("rows")
    what = f"{rows:,} rows, " if isinstance(rows, int) else ""
    typer.echo(
        f"OK {file}: signature valid ({what}sha256 {result.sha256}, "
        f"signed {result.created_at} by key {str(result.key_fingerprint)[:16]})"
    )


def signing_key_of(file: Path, signature: Path | None) -> str:
    """ " (Ed25519 key <fingerprint>)" as named in the export's signature file, or ""."""
    import base64
    import json

    from privacy.signing import fingerprint, signature_path

    try:
        document = json.loads((signature or signature_path(file)).read_text())
        embedded = base64.b64decode(document["public_key"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return f" (Ed25519 key {fingerprint(embedded)[:16]})"


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 naming the first broken entry."""
    settings = load_settings(read_only=True)
    require_migrated(settings)
    report, action = asyncio.run(_verify_chain(settings.database_url))
    if report.ok:
        typer.echo(f"audit log: {report.entries:,} entries, the hash chain is intact")
        return
    typer.echo(
        f"BROKEN audit entry seq {report.first_broken} ({action or 'unknown action'}): "
        f"{report.reason}; {report.entries:,} entries before it verify"
    )
    raise typer.Exit(1)


async def _verify_chain(url: str) -> tuple[ChainReport, str | None]:
    from sqlalchemy import select
    from sqlmodel import col

    from core.db import create_engine, session_factory
    from privacy.audit import verify_chain
    from privacy.models import AuditEntry

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            report = await verify_chain(session)
            if report.ok:
                return report, None
            action = await session.scalar(
                select(col(AuditEntry.action)).where(col(AuditEntry.seq) == report.first_broken)
            )
            return report, action
    finally:
        await engine.dispose()
