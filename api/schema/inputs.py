"""One boundary rule for every string and instant a client sends, applied to every field's
arguments before its resolver runs (so no resolver, service or database ever sees them):

- a string holds no NUL character and no lone surrogate (PostgreSQL refuses the first, UTF-8
  cannot encode the second), and at most `MAX_CHARS` characters for its field
  (`DEFAULT_MAX_CHARS` when the field is not listed);
- a date or instant lies in the years `EARLIEST_YEAR` to `LATEST_YEAR` (in its own offset,
  so converting it to UTC cannot overflow).

A breach is a top-level `BAD_USER_INPUT` error whose `extensions.field` is the path into the
arguments (`["input", "lines", "0", "sku"]`); the message names the field, never the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLResolveInfo,
)
from strawberry.extensions import SchemaExtension

from api.schema.common import ApiErrorCode
from privacy.consent import MAX_USER_AGENT

DEFAULT_MAX_CHARS = 256
# Per field: `InputType.field` first, then the bare field or argument name.
MAX_CHARS: Mapping[str, int] = {
    "ReviewSubmitInput.text": 5_000,
    "ConsentDocumentPublishInput.text": 200_000,
    "ConsentDocumentPublishInput.title": 500,
    "reason": 2_000,
    "address": 500,
    "userAgent": MAX_USER_AGENT,
    "after": 1_024,  # a signed cursor
}
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200


class InputRejected(Exception):
    def __init__(self, path: list[str], reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason

    def graphql_error(self) -> GraphQLError:
        field = ".".join(self.path)
        return GraphQLError(
            f"`{field}` {self.reason}",
            extensions={"code": ApiErrorCode.BAD_USER_INPUT.value, "field": self.path},
        )


def max_chars(owner: str, name: str) -> int:
    return MAX_CHARS.get(f"{owner}.{name}", MAX_CHARS.get(name, DEFAULT_MAX_CHARS))


def check_string(value: str, path: list[str], limit: int) -> None:
    if "\x00" in value:
        raise InputRejected(path, "must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputRejected(path, "must be valid Unicode (a lone surrogate is not)") from None
    if len(value) > limit:
        raise InputRejected(path, f"must have at most {limit} characters")


def check_value(value: Any, kind: GraphQLInputType, path: list[str], limit: int) -> None:
    if value is None:
        return
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    if isinstance(kind, GraphQLList):
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            check_value(item, kind.of_type, [*path, str(index)], limit)
    elif isinstance(kind, GraphQLInputObjectType):
        if isinstance(value, Mapping):
            for name, item in value.items():
                field = kind.fields.get(name)
                if field is not None:
                    check_value(item, field.type, [*path, name], max_chars(kind.name, name))
    elif isinstance(value, str):
        check_string(value, path, limit)
    elif isinstance(value, date) and not EARLIEST_YEAR <= value.year < LATEST_YEAR:
        # `datetime` is a `date`: instants and calendar dates alike.
        raise InputRejected(path, f"must lie between {EARLIEST_YEAR} and {LATEST_YEAR}")


def check_arguments(info: GraphQLResolveInfo[Any], arguments: Mapping[str, Any]) -> None:
    definition = info.parent_type.fields[info.field_name]
    for name, value in arguments.items():
        argument = definition.args.get(name)
        if argument is not None:
            check_value(value, argument.type, [name], max_chars(info.parent_type.name, name))


class InputBoundary(SchemaExtension):
    """Checks every field's arguments against the boundary rule before it resolves."""

    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: str,
        **kwargs: Any,
    ) -> Any:
        if kwargs:
            try:
                check_arguments(info, kwargs)
            except InputRejected as rejected:
                raise rejected.graphql_error() from None
        return _next(root, info, *args, **kwargs)
