"""Payload errors of scoring mutations: `ScoringUserError` with a `ScoringErrorCode`."""

from __future__ import annotations

import strawberry

from api.schema.scoring.enums import ScoringErrorCode
from core.errors import DomainError


@strawberry.type(description="An expected failure of a scoring operation: nothing was changed.")
class ScoringUserError:
    code: ScoringErrorCode
    message: str
    field: list[str] | None = strawberry.field(description="Path of the input field at fault.")


def scoring_user_error(error: DomainError) -> ScoringUserError:
    """A scoring error, or a graph one the service met (both map by value; an unknown code is
    a bug and fails loudly)."""
    field = ["input", *error.field] if error.field else None
    return ScoringUserError(
        code=ScoringErrorCode(str(error.code)), message=error.message, field=field
    )
