"""CLI: the customer graph (`loyalgraph graph verify`)."""

from __future__ import annotations

import asyncio

import typer

from api.cli_common import load_settings

graph_app = typer.Typer(no_args_is_help=True, help="The customer graph.")


def register(app: typer.Typer) -> None:
    """Add this module's command groups to the `loyalgraph` app."""
    app.add_typer(graph_app, name="graph")


@graph_app.command("verify")
def graph_verify() -> None:
    """Check the graph's invariants (survivor pointers, merge records, identities) in SQL;
    exit 1 naming the first breach."""
    from core.db import create_engine, session_factory
    from graph.verify import MAX_LISTED, GraphReport, verify_graph

    settings = load_settings()

    async def run() -> GraphReport:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                return await verify_graph(session)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    typer.echo(
        f"checked {report.customers:,} customers ({report.merged:,} merged)"
        f" and {report.identities:,} identities"
    )
    if report.ok:
        typer.echo("the customer graph is consistent")
        return
    first = report.breaches[0]
    typer.echo(f"first breach: {first.check} {first.subject}: {first.detail}")
    for breach in report.breaches[1:]:
        typer.echo(f"BREACH {breach.check} {breach.subject}: {breach.detail}")
    typer.echo(f"{len(report.breaches)} breaches (at most {MAX_LISTED} listed per check)", err=True)
    raise typer.Exit(1)
