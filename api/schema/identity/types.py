"""The review queue's types. A candidate carries its score and per-field evidence (agreement
label and weight), never a value: the two customers are `Customer` nodes whose personal data
is guarded as everywhere else (FORBIDDEN to a role that may not read it)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import strawberry

from api.context import Info
from api.schema.common import to_global_id
from api.schema.customer.types import Customer
from graph.resolution import models


@strawberry.enum(description="An operator's decision on a duplicate candidate.")
class DuplicateDecision(StrEnum):
    MERGE = "MERGE"
    DISTINCT = "DISTINCT"


CandidateStatusEnum = strawberry.enum(models.CandidateStatus, name="DuplicateCandidateStatus")


@strawberry.type(description="How one field compared: its agreement level and its weight.")
class MatchEvidence:
    field: str
    agreement: str
    weight: float = strawberry.field(description="log2 Bayes factor (+ agrees, - disagrees).")


@strawberry.type(description="Two customers that may be one person.")
class DuplicateCandidate:
    id: strawberry.ID
    score: float = strawberry.field(description="Match probability, 0..1.")
    match_weight: float
    status: CandidateStatusEnum  # type: ignore[valid-type]
    evidence: list[MatchEvidence]
    created_at: dt.datetime
    decided_at: dt.datetime | None
    row: strawberry.Private[models.DuplicateCandidate]

    @classmethod
    def from_row(cls, row: models.DuplicateCandidate) -> DuplicateCandidate:
        return cls(
            id=to_global_id("DuplicateCandidate", row.id),
            score=row.probability,
            match_weight=row.match_weight,
            status=models.CandidateStatus(row.status),
            evidence=[
                MatchEvidence(
                    field=str(item["field"]),
                    agreement=str(item["agreement"]),
                    weight=float(item["weight"]),
                )
                for item in row.evidence
            ],
            created_at=row.created_at,
            decided_at=row.decided_at,
            row=row,
        )

    @strawberry.field(description="The two customers (their survivors when merged since).")
    async def customers(self, info: Info) -> list[Customer]:
        loader = info.context.loaders.customer
        found = await loader.load_many([self.row.left_id, self.row.right_id])
        return [Customer.from_row(row) for row in found if row is not None]
