"""CLI: `identity resolve` (the whole base) and `identity review` (the queue)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli_common import Sessions, console, load_settings, with_sessions
from graph.resolution import queries
from graph.resolution.job import ResolveReport, resolve_base
from graph.resolution.service import AUTOMATIC_DEFAULT, REVIEW_DEFAULT, Thresholds
from privacy.keys import LocalKeyring

identity_app = typer.Typer(no_args_is_help=True, help="Probabilistic identity resolution.")
STAGES = {
    "decrypt": "customers read",
    "train": "model trained",
    "score": "pairs scored",
    "merge": "automatic merges",
}


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")


@identity_app.command("resolve")
def resolve(
    automatic: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Merge pairs at or above this probability.")
    ] = AUTOMATIC_DEFAULT,
    review: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Queue pairs at or above this probability.")
    ] = REVIEW_DEFAULT,
    merge: Annotated[bool, typer.Option(help="Merge above the automatic threshold.")] = True,
    spark_master: Annotated[
        str | None,
        typer.Option(
            envvar="LOYALGRAPH_SPARK_MASTER",
            help="Run Splink on this Spark master (local[2], spark://host:7077) instead of "
            "DuckDB in memory.",
        ),
    ] = None,
) -> None:
    """Match the whole base: merge what is above the automatic threshold, queue the rest.

    Resumable: every stage is committed in batches and idempotent, so a run that stopped is
    continued by running the command again."""
    if review > automatic or review <= 0:
        raise typer.BadParameter("need 0 < --review <= --automatic")
    settings = load_settings()
    keyring = LocalKeyring(settings.keyring_path)
    thresholds = Thresholds(automatic=automatic, review=review)

    async def work(sessions: Sessions) -> ResolveReport:
        db_api: Any = None
        if spark_master:
            from graph.resolution.spark import spark_api

            db_api = spark_api(spark_master)
        columns = (
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as bar:
            tasks = {stage: bar.add_task(label, total=None) for stage, label in STAGES.items()}

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(tasks[stage], completed=done, total=max(total, done))

            return await resolve_base(
                sessions,
                keyring,
                thresholds=thresholds,
                progress=progress,
                db_api=db_api,
                merge=merge,
            )

    report = with_sessions(settings, work)
    typer.echo(
        f"{report.customers:,} customers, {report.pairs:,} scored pairs above {review}: "
        f"{report.automatic_merges:,} merged automatically (>= {automatic}), "
        f"{report.pending:,} waiting for review"
    )


@identity_app.command("review")
def review_queue(
    first: Annotated[int, typer.Option(min=1, max=100)] = 20,
    min_score: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.0,
) -> None:
    """List the review queue, best score first (ids, score and evidence; no personal data)."""
    settings = load_settings()

    async def work(sessions: Sessions) -> list[Any]:
        async with sessions() as session:
            return await queries.candidates_page(session, first=first, min_score=min_score)

    rows = with_sessions(settings, work)[:first]
    if not rows:
        typer.echo("the review queue is empty")
        return
    table = Table("candidate", "score", "customers", "evidence (field: agreement, weight)")
    for row in rows:
        evidence = "; ".join(
            f"{item['field']}: {item['agreement']} ({item['weight']:+.1f})"
            for item in row.evidence
            if item["weight"] != 0
        )
        table.add_row(
            str(row.id), f"{row.probability:.4f}", f"{row.left_id}\n{row.right_id}", evidence
        )
    console.print(table)
