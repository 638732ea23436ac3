"""Shared GraphQL building blocks: global ids, signed keyset cursors, page limits, errors."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError

from core.errors import DomainError
from graph.errors import GraphErrorCode

DEFAULT_PAGE = 20
MAX_PAGE = 100


class ApiErrorCode(StrEnum):
    """`extensions.code` of top-level errors (payload errors use a domain's enum instead)."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    INVALID_CURSOR = "INVALID_CURSOR"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


def api_error(code: ApiErrorCode, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code.value})


def tag_error(error: GraphQLError) -> str:
    """Give an error without a code the code of its phase; return the error's code."""
    extensions: dict[str, Any] = dict(error.extensions or {})
    if "code" not in extensions:
        if isinstance(error, GraphQLSyntaxError):
            code = ApiErrorCode.GRAPHQL_PARSE_FAILED
        elif error.path is None:
            code = ApiErrorCode.GRAPHQL_VALIDATION_FAILED
        else:
            code = ApiErrorCode.INTERNAL_SERVER_ERROR
        extensions["code"] = code.value
        error.extensions = extensions
    return str(extensions["code"])


GraphErrorCodeEnum = strawberry.enum(GraphErrorCode, name="GraphErrorCode")


@strawberry.type(description="An expected business failure: nothing was changed.")
class UserError:
    code: GraphErrorCodeEnum  # type: ignore[valid-type]
    message: str
    field: list[str] | None = strawberry.field(description="Path of the input field at fault.")


def user_error(error: DomainError) -> UserError:
    field = ["input", *error.field] if error.field else None
    return UserError(code=error.code, message=error.message, field=field)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def page_size(first: int | None) -> int:
    size = DEFAULT_PAGE if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise api_error(ApiErrorCode.BAD_USER_INPUT, f"`first` must be between 1 and {MAX_PAGE}")
    return size


# --- global ids ---------------------------------------------------------------------------


def to_global_id(type_name: str, raw_id: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{raw_id}".encode()).decode())


def from_global_id(value: str, *, expected: str | None = None) -> tuple[str, uuid.UUID]:
    """Decode a global id; a plain UUID is accepted for the expected type (CLI convenience)."""
    try:
        return expected or "", uuid.UUID(value)
    except ValueError:
        pass
    try:
        type_name, _, raw = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
        parsed = uuid.UUID(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise api_error(ApiErrorCode.BAD_USER_INPUT, "malformed id") from None
    if expected is not None and type_name != expected:
        raise api_error(ApiErrorCode.BAD_USER_INPUT, f"expected a {expected} id")
    return type_name, parsed


def customer_uuid(value: str) -> uuid.UUID:
    return from_global_id(value, expected="Customer")[1]


# --- keyset cursors -----------------------------------------------------------------------


class CursorCodec:
    """Opaque keyset cursors, HMAC-signed so a tampered cursor is refused, not executed."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, kind: str, at: datetime, row_id: uuid.UUID) -> str:
        return self.encode_parts(kind, at.isoformat(), str(row_id))

    def decode(self, kind: str, cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
        parts = self.decode_parts(kind, cursor)
        if parts is None:
            return None
        try:
            at, row_id = parts
            return datetime.fromisoformat(at), uuid.UUID(row_id)
        except (ValueError, TypeError):
            raise _invalid_cursor() from None

    def encode_parts(self, kind: str, *parts: str) -> str:
        """A cursor over any sort key (its parts as strings), signed like the others."""
        body = json.dumps([kind, *parts], separators=(",", ":")).encode()
        tag = hmac.new(self._secret, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(tag + body).decode()

    def decode_parts(self, kind: str, cursor: str | None) -> list[str] | None:
        if cursor is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(cursor.encode())
        except (ValueError, binascii.Error):
            raise _invalid_cursor() from None
        tag, body = raw[:16], raw[16:]
        if not hmac.compare_digest(tag, hmac.new(self._secret, body, hashlib.sha256).digest()[:16]):
            raise _invalid_cursor()
        try:
            found_kind, *parts = json.loads(body)
        except (ValueError, TypeError):
            raise _invalid_cursor() from None
        if found_kind != kind or not all(isinstance(part, str) for part in parts):
            raise _invalid_cursor()
        return [str(part) for part in parts]


def _invalid_cursor() -> GraphQLError:
    return api_error(ApiErrorCode.INVALID_CURSOR, "the cursor is invalid or was altered")


def require(condition: bool, message: str = "you are not allowed to do this") -> None:
    if not condition:
        raise api_error(ApiErrorCode.FORBIDDEN, message)
