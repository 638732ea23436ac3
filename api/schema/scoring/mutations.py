"""scoresRefresh: score one customer now, online, with the champions this process serves."""

from __future__ import annotations

import strawberry

from api.auth import Role
from api.context import Info
from api.schema.access import require_roles
from api.schema.common import customer_uuid
from api.schema.scoring.errors import ScoringUserError, scoring_user_error
from api.schema.scoring.types import CustomerScores, scores_of
from api.schema.transaction import in_transaction
from core.errors import DomainError
from scoring.batch import store_scores
from scoring.online import score_now

REFRESHERS = (Role.OPERATOR, Role.ANALYST, Role.ADMIN)


@strawberry.input
class ScoresRefreshInput:
    customer_id: strawberry.ID


@strawberry.type
class ScoresRefreshPayload:
    scores: CustomerScores | None = None
    errors: list[ScoringUserError] = strawberry.field(default_factory=list)


@strawberry.type
class ScoringMutation:
    @strawberry.mutation(
        description="Score a customer now with the served champions (features as of now) and "
        "store the result; the customer must be permitted for profiling."
    )
    async def scores_refresh(self, info: Info, input: ScoresRefreshInput) -> ScoresRefreshPayload:
        require_roles(info, *REFRESHERS)
        context, customer_id = info.context, customer_uuid(input.customer_id)
        try:  # reads first, outside the write transaction
            scores = await score_now(
                context.session,
                champions=context.champions,
                customer_id=customer_id,
                currency=context.settings.currency,
            )
        except DomainError as error:
            return ScoresRefreshPayload(errors=[scoring_user_error(error)])
        actor = context.principal.subject
        result, errors = await in_transaction(
            info, lambda session: store_scores(session, scores, actor=actor),
            as_error=scoring_user_error,
        )  # fmt: skip
        if result is None:
            return ScoresRefreshPayload(errors=errors)
        return ScoresRefreshPayload(scores=await scores_of(info, scores.owners[0]))
