"""Transport-level rules of the GraphQL endpoint: what a malformed body is, and what counts as
the database being unavailable (a 503 with no driver text, whatever the credential)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from cross_web import HTTPException
from sqlalchemy import exc as sa_exc

UNAVAILABLE_MESSAGE = "the service is temporarily unavailable; retry later"

# Failures that say the database cannot be reached now (not that a statement is wrong).
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, DNS (ConnectionError, socket.gaierror)
    TimeoutError,
    sa_exc.DisconnectionError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
)


def database_unavailable(error: BaseException | None) -> bool:
    """Whether `error`, or anything that caused it, says the database cannot be reached."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, _UNAVAILABLE):
            return True
        original = getattr(error, "original_error", None)  # a GraphQLError wrapping it
        error = original or error.__cause__ or error.__context__
    return False


def decode_request_json(data: str | bytes) -> dict[str, Any]:
    """The body of a GraphQL POST: one JSON object in UTF-8. Anything else is a 400 (never a
    RecursionError from deep nesting, never a UnicodeDecodeError)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except UnicodeDecodeError:
        raise HTTPException(400, "the request body is not valid UTF-8") from None
    except RecursionError:
        raise HTTPException(400, "the request body is nested too deeply") from None
    except ValueError:
        raise HTTPException(400, "unable to parse the request body as JSON") from None
    if not isinstance(value, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    return value
