"""The `loyalgraph` command line."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from graphql import GraphQLError
from rich.console import Console

from api.auth import Role, issue_token
from api.schema.common import customer_uuid
from core.db import UnsupportedDatabase
from core.settings import Settings, SettingsError
from privacy.keys import KeyProviderError, LocalKeyring

if TYPE_CHECKING:
    pass

app = typer.Typer(no_args_is_help=True, help="loyalgraph: customer graph, loyalty and privacy.")
apikey_app = typer.Typer(no_args_is_help=True, help="API keys for apps (web, mobile, POS).")
import_app = typer.Typer(no_args_is_help=True, help="Import customers or events from CSV/JSONL.")
app.add_typer(apikey_app, name="apikey")
app.add_typer(import_app, name="import")
console = Console(stderr=True)


def _settings() -> Settings:
    settings = Settings.from_env()
    settings.ensure_dirs()
    return settings


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
            f'{{"Authorization": "Bearer {token}"}}\n'
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
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
    """Generate a believable retailer: two years of customers, purchases, reviews, referrals."""
    from graph.demo import seed_demo as run_seed

    settings = _settings()
    summary = asyncio.run(
        run_seed(
            settings,
            LocalKeyring(settings.keyring_path),
            customers=customers,
            seed=seed,
            if_empty=if_empty,
            console=console,
        )
    )
    console.print(summary)


@import_app.command("customers")
def import_customers(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import customers from CSV or JSONL (see the README for the columns)."""
    from graph.importer import import_customers as run_import

    settings = _settings()
    report = asyncio.run(
        run_import(settings, LocalKeyring(settings.keyring_path), file, console=console)
    )
    console.print(report.summary())
    if report.failed:
        raise typer.Exit(1)


@import_app.command("events")
def import_events(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import events (purchases, returns, visits, contacts, campaign responses)."""
    from graph.importer import import_events as run_import

    settings = _settings()
    report = asyncio.run(
        run_import(settings, LocalKeyring(settings.keyring_path), file, console=console)
    )
    console.print(report.summary())
    if report.failed:
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

    try:
        app()
    except (
        SettingsError,
        KeyProviderError,
        ImportFileError,
        DemoRefused,
        UnsupportedDatabase,
    ) as error:
        console.print(f"[red]error:[/red] {error}")
        raise SystemExit(2) from None
