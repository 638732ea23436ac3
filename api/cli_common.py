"""What every CLI module shares: the error console and the configured settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings, SettingsError, sqlite_path

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

console = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow


def parse_instant(value: str, option: str) -> datetime:
    """An ISO 8601 date or time from the command line (no zone: UTC); a mistake is one line
    naming the option, and exit status 2."""
    from core.clock import as_utc

    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        console.print(
            f"[red]error:[/red] {option} takes an ISO 8601 date or time such as 2026-06-30 or "
            "2026-06-30T03:00:00+03:00 (without a zone it is UTC)"
        )
        raise typer.Exit(2) from None


class DatabaseNotReady(SettingsError):
    """The configured database is missing or not at the latest migration (exit 2, one line)."""


def load_settings(*, read_only: bool = False) -> Settings:
    """The settings; a command that writes creates the data home's folders, one that only
    reads creates nothing (and finds its database with `require_migrated`)."""
    settings = Settings.from_env()
    if not read_only:
        settings.ensure_dirs()
    return settings


def describe_database(url: str) -> str:
    """Where the database is, for messages: the file, or the URL without its password."""
    from sqlalchemy.engine import make_url

    if url.startswith("sqlite"):
        return str(sqlite_path(url) or ":memory:")
    return make_url(url).render_as_string(hide_password=True)


async def migration_state(url: str) -> tuple[str | None, str]:
    """(the database's Alembic revision or None when it has none, the code's head)."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from core.db import create_engine
    from migrations.runner import alembic_config

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head() or ""
    path = sqlite_path(url) if url.startswith("sqlite") else None
    if url.startswith("sqlite") and (path is None or not path.exists()):
        return None, head  # never connect: SQLite would create an empty file
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except (SQLAlchemyError, OSError):
        return None, head
    finally:
        await engine.dispose()
    return (str(revision) if revision else None), head


def require_migrated(settings: Settings) -> None:
    """Raise DatabaseNotReady (one line, exit 2) unless the database is at the latest migration."""
    revision, head = asyncio.run(migration_state(settings.database_url))
    if revision != head:
        where = describe_database(settings.database_url)
        state = "is not migrated" if revision is None else f"is at migration {revision}, not {head}"
        raise DatabaseNotReady(f"database at {where} {state}: run loyalgraph migrate")


def with_sessions(settings: Settings, work: Callable[[Sessions], Awaitable[T]]) -> T:
    """Run `work` with a session factory on the configured database, then dispose of it."""
    from core.db import create_engine, session_factory

    require_migrated(settings)

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())
