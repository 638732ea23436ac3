"""Database engine, sessions and column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import SQLModel

from core.clock import as_utc

# Stable constraint names: Alembic can compare and drop them on both databases.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = SQLModel.metadata


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, also on SQLite (which stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class UnsupportedDatabase(ValueError):
    """The database URL names a backend we do not run on."""


def async_url(url: str) -> str:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick our async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise UnsupportedDatabase(
            f"unsupported database backend {backend!r}: use sqlite:/// or postgresql://"
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver begins transactions lazily, before the first DML, so a SAVEPOINT that
    # comes first opens (and its RELEASE commits) a transaction of its own: an outer rollback
    # would no longer undo it. We take BEGIN into our own hands (SQLAlchemy's aiosqlite recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Freed pages and deleted cells are zeroed, so erased rows leave no bytes behind.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


WRITE_INTENT = "loyalgraph_write"


def _sqlite_begin(connection: Any) -> None:
    # A unit of work that will write takes SQLite's write lock up front (waiting up to
    # busy_timeout for it); a deferred transaction that reads first and writes later would
    # fail at once with "database is locked" when another writer got there in between.
    immediate = connection.get_execution_options().get(WRITE_INTENT, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # Statement parameters stay out of exception messages and logs (they may be identifiers).
    engine = create_async_engine(async_url(url), hide_parameters=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


class SerialSession(AsyncSession):
    """An AsyncSession whose database calls take turns.

    An AsyncSession must not run two operations at once, but GraphQL resolves sibling fields
    concurrently, so two DataLoaders of one request may dispatch their batches in the same tick.
    Each call that reaches the connection holds a per-session lock; `scalars` and friends go
    through `execute`, so they are covered without being wrapped (the lock is not re-entrant).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = asyncio.Lock()

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().scalar(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().get(*args, **kwargs)

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        async with self._turn:
            await super().flush(objects)

    async def commit(self) -> None:
        async with self._turn:
            await super().commit()

    async def rollback(self) -> None:
        async with self._turn:
            await super().rollback()

    async def close(self) -> None:
        async with self._turn:
            await super().close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=SerialSession, expire_on_commit=False, autoflush=False)


async def begin_write(session: AsyncSession) -> None:
    """Start the session's next transaction as a writer (BEGIN IMMEDIATE on SQLite).

    Ends a read-only transaction the session may have open (committing it writes nothing) and
    expires what it loaded, so the unit of work re-reads it inside the write transaction.
    """
    if session.in_transaction():
        await session.commit()
    # Rows read before (authentication, access checks) may have changed while we waited for
    # the write lock: a unit of work must decide on what the database holds now.
    session.expire_all()
    await session.connection(execution_options={WRITE_INTENT: True})


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for an advisory lock named `name`."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


async def take_turns(session: AsyncSession, name: str) -> None:
    """Writers that call this with the same name run one after the other until their
    transactions end. PostgreSQL: a transaction-scoped advisory lock (the second writer waits,
    then sees what the first committed). SQLite: nothing to do, a writing transaction there
    already holds the database's one write lock (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(lock_key(name))))


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One writing unit of work: commit on success, roll back on any error."""
    async with sessions() as session:
        await begin_write(session)
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
