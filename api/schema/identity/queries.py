"""`duplicateCandidates`: the review queue, best score first (operators and admins)."""

from __future__ import annotations

import uuid

import strawberry

from api.auth import Role
from api.context import Info
from api.schema.access import require_roles
from api.schema.common import ApiErrorCode, api_error, page_size
from api.schema.identity.types import DuplicateCandidate
from api.schema.node import Connection, connection
from graph.resolution import queries

REVIEWERS = (Role.OPERATOR, Role.ADMIN)
DEFAULT_PAGE = 20


def _after(info: Info, cursor: str | None) -> tuple[float, uuid.UUID] | None:
    parts = info.context.cursors.decode_parts("duplicate", cursor)
    if parts is None:
        return None
    try:
        score, row_id = parts
        return float(score), uuid.UUID(row_id)
    except ValueError:
        raise api_error(ApiErrorCode.BAD_USER_INPUT, "invalid cursor") from None


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="Pending duplicate candidates, best score first.")
    async def duplicate_candidates(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
        min_score: float = 0.0,
    ) -> Connection[DuplicateCandidate]:
        require_roles(info, *REVIEWERS)
        if not 0.0 <= min_score <= 1.0:
            raise api_error(ApiErrorCode.BAD_USER_INPUT, "minScore is a probability, 0..1")
        size = page_size(first)
        rows = await queries.candidates_page(
            info.context.session, first=size, after=_after(info, after), min_score=min_score
        )
        page = rows[:size]
        cursors = info.context.cursors
        return connection(
            [DuplicateCandidate.from_row(row) for row in page],
            [cursors.encode_parts("duplicate", repr(row.probability), str(row.id)) for row in page],
            more=len(rows) > size,
        )
