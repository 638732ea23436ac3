"""CLI: keys (rotate-root, reencrypt) and the breach register."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn

from api.cli_common import Sessions, console, load_settings, with_sessions
from core.clock import as_utc
from core.db import transaction
from core.errors import DomainError
from privacy.breaches import NoticeStage, list_breaches, mark_notified, record_breach
from privacy.keys import LocalKeyring
from privacy.rotation import (
    ReencryptReport,
    RewrapReport,
    reencrypt,
    retire_unused_roots,
    rewrap_data_keys,
)

keys_app = typer.Typer(no_args_is_help=True, help="Root keys and data keys.")
breach_app = typer.Typer(no_args_is_help=True, help="The register of personal-data breaches.")
ACTOR = "cli"
STAMP = "%Y-%m-%d %H:%MZ"


def register(app: typer.Typer) -> None:
    """Add this module's command groups to the `loyalgraph` app."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(breach_app, name="breach")


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}: {task.completed:,}"), console=console
    )


@keys_app.command("rotate-root")
def rotate_root(
    retire_old: Annotated[
        bool, typer.Option(help="Then drop the old root keys no data key uses any more.")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
) -> None:
    """Make a new root key active and re-wrap every data key under it, in batches.

    The server keeps running: it reads the keyring again when the file changes, and old roots
    stay until --retire-old (run it again after a crash: it continues where it stopped)."""
    settings = load_settings()
    keyring = LocalKeyring(settings.keyring_path)
    root = keyring.rotate_root()
    console.print(f"new active root key: {root}")

    async def work(sessions: Sessions) -> tuple[RewrapReport, list[str]]:
        with _progress() as bar:
            task = bar.add_task("data keys re-wrapped", total=None)
            report = await rewrap_data_keys(
                sessions,
                keyring,
                actor=ACTOR,
                batch=batch,
                progress=lambda _phase, n: bar.advance(task, n),
            )
        retired = await retire_unused_roots(sessions, keyring) if retire_old else []
        return report, retired

    report, retired = with_sessions(settings, work)
    typer.echo(f"re-wrapped {report.rewrapped:,} data keys under {report.root_key_id}")
    if retired:
        typer.echo(f"retired root keys: {', '.join(retired)}")


@keys_app.command("reencrypt")
def reencrypt_command(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 500,
) -> None:
    """Give every subject a new data-key version and rewrite all ciphertext under it.

    Resumable: an interrupted run is continued by running the command again."""
    settings = load_settings()
    keyring = LocalKeyring(settings.keyring_path)

    async def work(sessions: Sessions) -> ReencryptReport:
        with _progress() as bar:
            tasks: dict[str, TaskID] = {}

            def advance(phase: str, count: int) -> None:
                if phase not in tasks:
                    label = "new data keys" if phase == "new_versions" else "rows re-encrypted"
                    tasks[phase] = bar.add_task(label, total=None)
                bar.advance(tasks[phase], count)

            return await reencrypt(sessions, keyring, actor=ACTOR, batch=batch, progress=advance)

    report = with_sessions(settings, work)
    typer.echo(
        f"{'resumed' if report.resumed else 'ran'} job {report.job_id}: "
        f"{report.keys_created:,} new data keys, {report.rows_rewritten:,} rows re-encrypted "
        f"in {report.passes} passes, {report.keys_retired:,} old keys retired"
    )


def _instant(value: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise typer.BadParameter("use ISO 8601, e.g. 2026-11-22T10:30:00+03:00") from None


@breach_app.command("record")
def breach_record(
    detected_at: Annotated[str, typer.Option(help="When it was detected (ISO 8601).")],
    description: Annotated[
        str, typer.Option(help="What happened (about the incident: no personal data).")
    ],
    categories: Annotated[str, typer.Option(help="Categories of data, e.g. 'phone, e-mail'.")],
    subjects: Annotated[int | None, typer.Option(help="Estimated number of subjects.")] = None,
) -> None:
    """Record an incident; prints its 24-hour and 72-hour notification deadlines."""
    settings = load_settings()
    keyring = LocalKeyring(settings.keyring_path)
    detected = _instant(detected_at)

    async def work(sessions: Sessions) -> tuple[uuid.UUID, datetime, datetime]:
        async with transaction(sessions) as session:
            row = await record_breach(
                session,
                keyring,
                detected_at=detected,
                description=description,
                data_categories=categories,
                subjects_affected=subjects,
                actor=ACTOR,
            )
            return row.id, row.initial_due_at, row.final_due_at

    try:
        breach_id, initial, final = with_sessions(settings, work)
    except DomainError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from None
    typer.echo(f"breach {breach_id}\n  notify within 24 h: by {initial.isoformat()}")
    typer.echo(f"  results within 72 h: by {final.isoformat()}")


@breach_app.command("notify")
def breach_notify(
    breach_id: Annotated[str, typer.Argument(help="The breach id.")],
    stage: Annotated[NoticeStage, typer.Option(help="initial (24 h) or final (72 h).")],
    at: Annotated[str | None, typer.Option(help="When it was sent (default now).")] = None,
) -> None:
    """Record that the regulator was notified."""
    settings = load_settings()
    keyring = LocalKeyring(settings.keyring_path)
    when = _instant(at) if at else None
    try:
        parsed = uuid.UUID(breach_id)
    except ValueError:
        raise typer.BadParameter("not a breach id") from None

    async def work(sessions: Sessions) -> bool:
        async with transaction(sessions) as session:
            row = await mark_notified(
                session, keyring, breach_id=parsed, stage=stage, actor=ACTOR, at=when
            )
            due = row.initial_due_at if stage is NoticeStage.INITIAL else row.final_due_at
            sent = (
                row.initial_notified_at if stage is NoticeStage.INITIAL else row.final_notified_at
            )
            return sent is not None and sent > due

    try:
        late = with_sessions(settings, work)
    except DomainError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from None
    typer.echo(f"{stage.value} notice recorded" + (" (LATE)" if late else ""))


@breach_app.command("list")
def breach_list(
    all_: Annotated[bool, typer.Option("--all", help="Closed breaches too.")] = False,
) -> None:
    """Breaches with their deadlines; exit 1 if a notice is overdue."""
    settings = load_settings()

    async def work(sessions: Sessions) -> list[str]:
        async with sessions() as session:
            rows = await list_breaches(session, open_only=not all_)
        lines = []
        for item in rows:
            b = item.breach
            flags = [f"OVERDUE {s.value}" for s in item.overdue] + [
                f"late {s.value}" for s in item.late
            ]
            lines.append(
                f"{b.id}  detected {b.detected_at:{STAMP}}  24h by {b.initial_due_at:{STAMP}}"
                f"  72h by {b.final_due_at:{STAMP}}  {' '.join(flags) or 'on time'}"
            )
        return lines

    lines = with_sessions(settings, work)
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("no breaches recorded" if all_ else "no open breaches")
    if any("OVERDUE" in line for line in lines):
        raise typer.Exit(1)
