"""The `loyalgraph` command line."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from graphql import GraphQLError

from api import (
    cli_apikeys,
    cli_doctor,
    cli_exports,
    cli_graph,
    cli_identity,
    cli_import,
    cli_keys,
    cli_mlflow,
    cli_requests,
    cli_scoring,
)
from api.auth import Role, issue_token
from api.cli_common import console, load_settings, parse_instant, require_migrated, with_sessions
from api.schema.common import customer_uuid
from core.db import UnsupportedDatabase
from core.settings import Settings, SettingsError
from privacy.keys import KeyProviderError, LocalKeyring

app = typer.Typer(no_args_is_help=True, help="loyalgraph: customer graph, loyalty and privacy.")
apikey_app = typer.Typer(no_args_is_help=True, help="API keys for apps (web, mobile, POS).")
loyalty_app = typer.Typer(no_args_is_help=True, help="The loyalty program and its schedule.")
ledger_app = typer.Typer(no_args_is_help=True, help="The points ledger.")
app.add_typer(apikey_app, name="apikey")
cli_apikeys.extend(apikey_app)
app.add_typer(loyalty_app, name="loyalty")
app.add_typer(ledger_app, name="ledger")
for module in (
    cli_doctor,
    cli_exports,
    cli_graph,
    cli_identity,
    cli_import,
    cli_keys,
    cli_mlflow,
    cli_requests,
    cli_scoring,
):
    module.register(app)


def _settings() -> Settings:
    return load_settings()


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic) to the configured database."""
    from migrations.runner import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    console.print("[green]database is at the latest migration[/green]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the GraphQL API (GraphiQL at /graphql in dev mode)."""
    import uvicorn

    from api.app import create_app

    settings = _settings()
    if not settings.is_prod:
        token = issue_token(
            LocalKeyring(settings.keyring_path).secret("jwt"),
            role=Role.OPERATOR,
            subject="dev-operator",
            ttl=timedelta(hours=12),
        )
        console.print(
            f"\nGraphiQL: http://{host}:{port}/graphql\n"
            "Paste into GraphiQL's Headers tab (an operator token valid 12 hours):\n"
            f'{{"Authorization": "Bearer {token}"}}\n',
            soft_wrap=True,  # one line, however narrow the terminal: it is pasted whole
        )
    from api.observability import configure_logging

    configure_logging(os.environ.get("LOYALGRAPH_LOG_FORMAT", "text"))
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=False)


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="Role the token carries.")],
    customer: Annotated[
        str | None, typer.Option(help="Customer id, global or UUID (role customer).")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Staff subject name.")] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a signed dev JWT for a role (and a customer, for role `customer`)."""
    settings = _settings()
    try:
        customer_id = customer_uuid(customer) if customer else None
        value = issue_token(
            LocalKeyring(settings.keyring_path).secret("jwt"),
            role=role,
            subject=subject,
            customer_id=customer_id,
            ttl=timedelta(seconds=ttl),
            issuer=settings.jwt_issuer,
        )
    except (ValueError, GraphQLError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    typer.echo(value)


@apikey_app.command("create")
def apikey_create(app_name: Annotated[str, typer.Option("--app", help="The app's name.")]) -> None:
    """Create an API key for an app; it is printed once and stored only as a hash."""
    from api.apikeys import create_api_key
    from core.db import create_engine, session_factory, transaction

    settings = _settings()

    async def run() -> str:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                _, plaintext = await create_api_key(session, app_name=app_name)
                return plaintext
        finally:
            await engine.dispose()

    try:
        typer.echo(asyncio.run(run()))
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


@app.command("seed-demo")
def seed_demo(
    customers: Annotated[int, typer.Option(help="How many people to generate.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing if customers exist.")
    ] = False,
) -> None:
    """Generate a believable retailer: two years of customers, purchases, reviews, referrals,
    and their points under the demo loyalty program (loyalty/programs/demo.yaml)."""
    from graph.demo import seed_demo as run_seed
    from loyalty.demo import DEMO_PROGRAM, seed_demo_ledger
    from loyalty.program import read_program_file

    settings = _settings()
    provider = LocalKeyring(settings.keyring_path)
    program = read_program_file(DEMO_PROGRAM)  # a broken program file stops us before writing

    async def run() -> list[str]:
        empty = await _customer_count(settings) == 0
        summary = await run_seed(
            settings,
            provider,
            customers=customers,
            seed=seed,
            if_empty=if_empty,
            console=console,
        )
        if not empty:  # nothing was seeded, so there is no history to give points for
            return [summary]
        ledger = await seed_demo_ledger(settings, provider, seed=seed, definition=program)
        return [summary, ledger.summary()]

    for line in asyncio.run(run()):
        console.print(line)


async def _customer_count(settings: Settings) -> int:
    from sqlalchemy import func, select

    from core.db import create_engine, session_factory
    from graph.models import Customer

    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            count = await session.execute(select(func.count()).select_from(Customer))
            return int(count.scalar_one())
    finally:
        await engine.dispose()


@loyalty_app.command("load-program")
def loyalty_load_program(
    file: Annotated[Path, typer.Argument(help="A program definition in YAML.")],
) -> None:
    """Validate a program file and make it the active program. A changed file becomes the
    next version; the same file again changes nothing."""
    from core.db import create_engine, session_factory, transaction
    from loyalty.program import load_program, read_program_file

    settings = _settings()
    definition = read_program_file(file)  # a mistake: one line naming the field, exit 2

    async def run() -> tuple[str, int, bool]:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                row, new = await load_program(session, definition, actor="cli")
                return row.code, row.version, new
        finally:
            await engine.dispose()

    code, version, new = asyncio.run(run())
    outcome = "stored as a new version, now active" if new else "unchanged, already active"
    typer.echo(f"program {code} version {version}: {outcome}")


def _instant(value: str | None) -> datetime:
    from core.clock import utcnow

    return utcnow() if value is None else parse_instant(value, "--at")


@loyalty_app.command("run-scheduled")
def loyalty_run_scheduled(
    at: Annotated[
        str | None,
        typer.Option(help="Run as of this ISO 8601 time (default now; without a zone, UTC)."),
    ] = None,
    expiring_within: Annotated[
        int,
        typer.Option(
            "--expiring-within", min=1, max=3650, help="Count points expiring within DAYS."
        ),
    ] = 30,
    list_expiring: Annotated[
        bool,
        typer.Option("--list-expiring", help="List the customers whose points expire soon."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary and the list as JSON.")
    ] = False,
) -> None:
    """The scheduled work: release holds that ran out, activate pending points, expire points,
    review tiers, and count customers whose points expire soon. Prints a summary; safe to run
    twice or at once."""
    from api import cli_scheduled
    from loyalty import install as install_loyalty

    settings = _settings()
    when = _instant(at)
    install_loyalty()
    done = with_sessions(
        settings,
        lambda sessions: cli_scheduled.run_with_progress(sessions, at=when, days=expiring_within),
    )
    if done.program is None:
        console.print(
            "no loyalty program is loaded (loyalgraph loyalty load-program FILE): nothing to do"
        )
    if as_json:
        typer.echo(json.dumps(cli_scheduled.as_json(done, expiring_within), indent=2))
    else:
        typer.echo(cli_scheduled.as_text(done, expiring_within, list_expiring=list_expiring))


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check every invariant of the points ledger over all accounts; exit 1 on a breach."""
    from core.db import create_engine, session_factory
    from loyalty.verify import MAX_LISTED, VerifyReport, verify_ledger

    settings = load_settings(read_only=True)
    require_migrated(settings)

    async def run() -> VerifyReport:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                return await verify_ledger(session)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    typer.echo(
        f"checked {report.accounts:,} accounts, {report.lots:,} lots and {report.entries:,} entries"
    )
    if report.ok:
        typer.echo("the ledger is consistent")
        return
    for breach in report.breaches:
        typer.echo(f"BREACH {breach.check} {breach.subject}: {breach.detail}")
    typer.echo(f"{len(report.breaches)} breaches (at most {MAX_LISTED} listed per check)", err=True)
    raise typer.Exit(1)


@app.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL (the repository keeps it in schema.graphql)."""
    from api.schema.build import build_schema

    typer.echo(str(build_schema(production=False)).rstrip())


def main() -> None:
    """Run the CLI; a mistake in the input or the environment is one clear line, exit 2."""
    from graph.demo import DemoRefused
    from graph.importer import ImportFileError
    from loyalty.program import ProgramFileError
    from privacy.calendar import CalendarError

    try:
        app()
    except (
        SettingsError,
        KeyProviderError,
        ImportFileError,
        DemoRefused,
        UnsupportedDatabase,
        ProgramFileError,
        CalendarError,
    ) as error:
        console.print(f"[red]error:[/red] {error}")
        raise SystemExit(2) from None
