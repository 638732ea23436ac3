"""Payload errors of the loyalty mutations: `LoyaltyUserError` with a `LoyaltyErrorCode`."""

from __future__ import annotations

import strawberry

from api.schema.loyalty.enums import LoyaltyErrorCode
from core.errors import DomainError


@strawberry.type(description="An expected failure of a points operation: nothing was changed.")
class LoyaltyUserError:
    code: LoyaltyErrorCode
    message: str
    field: list[str] | None = strawberry.field(description="Path of the input field at fault.")


def loyalty_user_error(error: DomainError) -> LoyaltyUserError:
    """A DomainError of the loyalty engine, or of the graph under it (a customer not found, a
    malformed idempotency key): the graph's codes that can occur here exist in
    `LoyaltyErrorCode` under the same names, so the code maps by value. A code without a
    counterpart is a bug, and fails loudly as a top-level error."""
    field = ["input", *error.field] if error.field else None
    return LoyaltyUserError(
        code=LoyaltyErrorCode(str(error.code)), message=error.message, field=field
    )
