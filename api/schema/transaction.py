"""The mutation boundary: one transaction per mutation, business failures as payload errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Info
from api.schema.common import UserError, user_error
from core.db import begin_write
from core.errors import DomainError
from graph.errors import GraphErrorCode

T = TypeVar("T")
RETRYABLE = {"40P01", "40001"}  # deadlock detected, serialization failure
E = TypeVar("E")


@overload
async def in_transaction(
    info: Info, work: Callable[[AsyncSession], Awaitable[T]]
) -> tuple[T | None, list[UserError]]: ...


@overload
async def in_transaction(
    info: Info,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    as_error: Callable[[DomainError], E],
) -> tuple[T | None, list[E]]: ...


async def in_transaction(
    info: Info,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    as_error: Callable[[DomainError], Any] = user_error,
) -> tuple[T | None, list[Any]]:
    """Run `work` and commit; on a DomainError roll back and return it as a payload error,
    built by `as_error` (a domain's own error type; the graph's `UserError` by default).

    Anything else (a bug, a lost connection) also rolls back and propagates as a top-level error.
    Loaders and the cipher's key cache are renewed either way, so the payload reads what was
    committed and never a key from a rolled-back transaction.
    """
    session = info.context.session
    try:
        await begin_write(session)
        result = await work(session)
        await session.commit()
    except DomainError as error:
        await session.rollback()
        return None, [as_error(error)]
    except IntegrityError as error:
        await session.rollback()
        if not _unique_violation(error):
            raise  # a foreign key or check failed: a bug, not a race; top-level and logged
        # A unique constraint caught a race the service's own checks could not see (two
        # registrations of one phone at the same instant): nothing was written, retry.
        conflict = DomainError(
            GraphErrorCode.CONFLICT, "a concurrent request changed the same data; retry"
        )
        return None, [as_error(conflict)]
    except DBAPIError as error:
        await session.rollback()
        if getattr(error.orig, "sqlstate", None) not in RETRYABLE:
            raise
        # PostgreSQL broke a lock cycle (two referral rewards locking the same two accounts
        # in opposite orders) or a serialisation conflict: nothing was written, retry.
        conflict = DomainError(
            GraphErrorCode.CONFLICT, "a concurrent request changed the same data; retry"
        )
        return None, [as_error(conflict)]
    except BaseException:
        await session.rollback()
        raise
    finally:
        info.context.reset()
    return result, []


def _unique_violation(error: IntegrityError) -> bool:
    original = error.orig
    if getattr(original, "sqlstate", None) == "23505":  # asyncpg (PostgreSQL)
        return True
    return "UNIQUE constraint failed" in str(original)  # sqlite3


def as_graphql_error(error: DomainError) -> GraphQLError:
    """A domain error raised by a query, as a top-level error with its code."""
    return GraphQLError(
        error.message, extensions={"code": str(error.code), "field": error.field or []}
    )
