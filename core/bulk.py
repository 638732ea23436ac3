"""Set-based writes for the bulk paths: `COPY` on PostgreSQL, `executemany` on SQLite.

Rows are plain dicts holding every column of the table (the caller fills defaults), written on
the session's own connection, so they commit or roll back with the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession


async def dialect_name(session: AsyncSession) -> str:
    return (await session.connection()).dialect.name


async def write_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` into `table` in one statement (COPY) or one executemany."""
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg: binary COPY inside our transaction
        names = [column.name for column in table.columns]
        records = [tuple(row[name] for name in names) for row in rows]
        await driver.copy_records_to_table(table.name, records=records, columns=names)
        return
    await session.execute(insert(table), list(rows))
