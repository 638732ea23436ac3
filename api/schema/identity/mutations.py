"""`duplicateDecide`: MERGE through the ordinary merge, or DISTINCT (remembered)."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.schema.access import require_roles
from api.schema.common import UserError, from_global_id
from api.schema.customer.types import Customer
from api.schema.identity.queries import REVIEWERS
from api.schema.identity.types import DuplicateCandidate, DuplicateDecision
from api.schema.transaction import in_transaction
from graph.resolution.models import CandidateStatus
from graph.resolution.service import decide

DECISIONS = {
    DuplicateDecision.MERGE: CandidateStatus.MERGED,
    DuplicateDecision.DISTINCT: CandidateStatus.DISTINCT,
}


@strawberry.input
class DuplicateDecideInput:
    candidate_id: strawberry.ID
    decision: DuplicateDecision


@strawberry.type
class DuplicateDecidePayload:
    candidate: DuplicateCandidate | None = None
    survivor: Customer | None = strawberry.field(
        default=None, description="After MERGE: the customer both records now are."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(description="Decide a duplicate candidate (operators and admins).")
    async def duplicate_decide(
        self, info: Info, input: DuplicateDecideInput
    ) -> DuplicateDecidePayload:
        require_roles(info, *REVIEWERS)
        _, candidate_id = from_global_id(input.candidate_id, expected="DuplicateCandidate")
        ctx = info.context
        row, errors = await in_transaction(
            info,
            lambda session: decide(
                session,
                ctx.cipher,
                candidate_id=candidate_id,
                decision=DECISIONS[input.decision],
                actor=ctx.principal.actor,
            ),
        )
        if row is None:
            return DuplicateDecidePayload(errors=errors)
        survivor = None
        if input.decision is DuplicateDecision.MERGE:
            found = await ctx.loaders.customer.load(row.left_id)
            survivor = Customer.from_row(found) if found is not None else None
        return DuplicateDecidePayload(candidate=DuplicateCandidate.from_row(row), survivor=survivor)
