"""`loyalgraph loyalty run-scheduled`: the run itself, a progress bar on a terminal, and its
report for people (a summary; the customers with points expiring soon only on request, so cron
mail stays short) and for programs (`--json`: the summary and the list)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.cli_common import Sessions, console

if TYPE_CHECKING:
    from loyalty.scheduled import ScheduledReport

PROGRESS_FROM = 10_000  # accounts; fewer are done before a bar would be worth drawing


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    program: dict[str, Any] | None  # code and version, None when no program is loaded
    report: ScheduledReport
    seconds: float


async def run_with_progress(sessions: Sessions, *, at: datetime, days: int) -> ScheduledRun:
    from loyalty.program import active_program
    from loyalty.scheduled import run_scheduled

    async with sessions() as session:
        program = await active_program(session)
    started = time.perf_counter()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("accounts", total=None, rate="", visible=False)

        def advance(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            rate = f"{done / elapsed:,.0f} accounts/s" if done and elapsed > 0 else ""
            bar.update(task, completed=done, total=total, rate=rate, visible=total >= PROGRESS_FROM)

        report = await run_scheduled(sessions, at=at, expiring_within_days=days, progress=advance)
    code = {"code": program.row.code, "version": program.row.version} if program else None
    return ScheduledRun(code, report, time.perf_counter() - started)


def as_json(run: ScheduledRun, days: int) -> dict[str, Any]:
    report = run.report
    return {
        "at": report.at.isoformat(),
        "program": run.program,
        "accounts": report.accounts,
        "released_holds": report.released_holds,
        "activated_lots": report.activated_lots,
        "expired_lots": report.expired_lots,
        "expired_points": report.expired_points,
        "tier_reviews": report.tier_reviews,
        "tier_changes": report.tier_changes,
        "seconds": round(run.seconds, 3),
        "expiring_within_days": days,
        "expiring_customers": len(report.expiring),
        "expiring_points": sum(item.points for item in report.expiring),
        "expiring": [
            {
                "customer_id": str(item.customer_id),
                "points": item.points,
                "first_expiry": item.first_expiry.isoformat(),
            }
            for item in report.expiring
        ],
    }


def as_text(run: ScheduledRun, days: int, *, list_expiring: bool) -> str:
    report = run.report
    changes = ", ".join(f"{n:,} {kind.lower()}" for kind, n in sorted(report.tier_changes.items()))
    program = run.program
    name = f"program {program['code']} version {program['version']}" if program else "no program"
    rate = f", {report.accounts / run.seconds:,.0f} accounts/s" if report.accounts else ""
    points = sum(item.points for item in report.expiring)
    lines = [
        f"Scheduled run as of {report.at.isoformat()} ({name}): {report.accounts:,} accounts"
        " had work due",
        f"  holds released: {report.released_holds:,}",
        f"  pending lots activated: {report.activated_lots:,}",
        f"  lots expired: {report.expired_lots:,} ({report.expired_points:,} points)",
        f"  tiers reviewed: {report.tier_reviews:,} ({changes or 'no changes'})",
        f"  took {run.seconds:,.1f} s{rate}",
        f"Customers with points expiring within {days} days: {len(report.expiring):,}"
        f" ({points:,} points)"
        + ("" if list_expiring or not report.expiring else "; list them with --list-expiring"),
    ]
    if list_expiring:
        lines += [
            f"  {item.customer_id}  {item.points} points  first expiry"
            f" {item.first_expiry.isoformat()}"
            for item in report.expiring
        ]
    return "\n".join(lines)
