"""CLI: data subject requests for compliance officers (`loyalgraph requests due`)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

import typer

from api.cli_common import console, load_settings, parse_instant
from privacy.calendar import MOSCOW, CalendarError, work_calendar
from privacy.request_queries import MAX_DUE_WITHIN, DueRequest, due_requests

requests_app = typer.Typer(no_args_is_help=True, help="Data subject requests (152-FZ).")


def register(app: typer.Typer) -> None:
    """Add this module's command groups to the `loyalgraph` app."""
    app.add_typer(requests_app, name="requests")


def _instant(value: str | None) -> datetime:
    from core.clock import utcnow

    return utcnow() if value is None else parse_instant(value, "--at")


def _row(item: DueRequest) -> dict[str, Any]:
    request = item.request
    return {
        "id": str(request.id),
        "customer_id": str(request.subject_id),
        "kind": request.kind,
        "status": request.status,
        "received_at": request.received_at.isoformat(),
        "due_at": request.due_at.isoformat(),
        "due_moscow": request.due_at.astimezone(MOSCOW).strftime("%Y-%m-%d %H:%M"),
        "extended": request.extended,
        "overdue": item.overdue,
        "working_days_left": item.working_days_left,
    }


def _table(rows: list[dict[str, Any]], within: int, at: datetime) -> str:
    header = f"Requests overdue or due within {within} working days (as of {at.isoformat()}):"
    if not rows:
        return f"{header}\n  none"
    lines = [header, f"  {'STATE':8} {'DUE (MOSCOW)':17} {'LEFT':>4}  {'KIND':19} {'STATUS':18} ID"]
    for row in rows:
        state = "OVERDUE" if row["overdue"] else "due"
        lines.append(
            f"  {state:8} {row['due_moscow']:17} {row['working_days_left']:>4}  "
            f"{row['kind']:19} {row['status']:18} {row['id']}"
        )
    overdue = sum(row["overdue"] for row in rows)
    lines.append(f"{len(rows):,} requests, {overdue:,} overdue")
    return "\n".join(lines)


@requests_app.command("due")
def requests_due(
    within: Annotated[
        int,
        typer.Option(
            "--within", min=0, max=MAX_DUE_WITHIN, help="Also list requests due within N days."
        ),
    ] = 3,
    at: Annotated[
        str | None, typer.Option(help="As of this ISO 8601 time (default now; no zone: UTC).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List open requests past their legal deadline, or due within N Moscow working days
    (0: by the end of today), soonest first. Exit 1 when any is overdue."""
    from core.db import create_engine, session_factory

    settings = load_settings()
    when = _instant(at)
    try:
        calendar = work_calendar()
    except CalendarError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None

    async def run() -> list[DueRequest]:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                return await due_requests(
                    session, within_working_days=within, now=when, calendar=calendar
                )
        finally:
            await engine.dispose()

    rows = [_row(item) for item in asyncio.run(run())]
    if as_json:
        report = {"at": when.isoformat(), "within_working_days": within, "requests": rows}
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(_table(rows, within, when))
    if any(row["overdue"] for row in rows):
        raise typer.Exit(1)
