"""Scoring queries: topInfluencers and the models this process serves."""

from __future__ import annotations

import uuid

import strawberry

from api.auth import STAFF_ROLES
from api.context import Info
from api.schema.access import require_roles
from api.schema.common import DEFAULT_PAGE, MAX_PAGE, ApiErrorCode, api_error, page_size
from api.schema.node import Connection, connection
from api.schema.scoring.types import Influence, Influencer, ServedModel, served_models
from scoring import queries

KIND = "influencer"


def _position(parts: list[str] | None) -> tuple[float, uuid.UUID] | None:
    if parts is None:
        return None
    try:
        score, customer = parts
        return float(score), uuid.UUID(customer)
    except ValueError:
        raise api_error(ApiErrorCode.INVALID_CURSOR, "the cursor is invalid") from None


@strawberry.type
class ScoringQuery:
    @strawberry.field(
        description="Customers whose influence far exceeds their own spend (influence "
        f"percentile 90+, at least {queries.INFLUENCE_OVER_SPEND:g} points above their spend "
        f"percentile), most influential first; pages of at most {MAX_PAGE}."
    )
    async def top_influencers(
        self, info: Info, first: int | None = DEFAULT_PAGE, after: str | None = None
    ) -> Connection[Influencer]:
        require_roles(info, *STAFF_ROLES)
        size, cursors = page_size(first), info.context.cursors
        rows = await queries.top_influencers(
            info.context.session, first=size, after=_position(cursors.decode_parts(KIND, after))
        )
        page = rows[:size]
        return connection(
            [Influencer(influence=Influence.from_row(row), customer_id=row.customer_id)
             for row in page],
            [cursors.encode_parts(KIND, repr(row.score), str(row.customer_id)) for row in page],
            more=len(rows) > size,
        )  # fmt: skip

    @strawberry.field(description="The champion models this API process has loaded.")
    def scoring_models(self, info: Info) -> list[ServedModel]:
        require_roles(info, *STAFF_ROLES)
        return served_models(info.context.champions)
