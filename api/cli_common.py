"""What every CLI module shares: the error console and the configured settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings

T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

console = Console(stderr=True)


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
