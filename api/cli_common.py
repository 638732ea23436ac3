"""What every CLI module shares: the error console and the configured settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

console = Console(stderr=True)


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


def load_settings() -> Settings:
    settings = Settings.from_env()
    settings.ensure_dirs()
    return settings


def with_sessions(settings: Settings, work: Callable[[Sessions], Awaitable[T]]) -> T:
    """Run `work` with a session factory on the configured database, then dispose of it."""
    from core.db import create_engine, session_factory

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())
