"""GraphQL types of scores and influence. Readable by staff only, and only for customers who
may be profiled now (the loaders filter by consent and restriction in SQL)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from api.auth import STAFF_ROLES
from api.context import Info
from api.schema.access import require_roles
from api.schema.enums import Long
from api.schema.scoring.enums import ModelKind, RiskBand, ValueSegment
from scoring.features import DESCRIPTIONS
from scoring.kinds import INFLUENCER_PERCENTILE
from scoring.models import CustomerInfluence, CustomerScore
from scoring.registry import Champions

if TYPE_CHECKING:
    from api.schema.customer.types import Customer, Money


MoneyRef = Annotated["Money", strawberry.lazy("api.schema.customer.types")]
CustomerRef = Annotated["Customer", strawberry.lazy("api.schema.customer.types")]


def _money(amount_minor: int, currency: str) -> Money:
    from api.schema.customer.types import Money

    return Money(amount_minor=Long(amount_minor), currency=currency)


@strawberry.type(description="A feature that moved this score, with its SHAP contribution.")
class ScoreReason:
    feature: str
    description: str
    contribution: float = strawberry.field(
        description="On the model's raw scale (log-odds of churn, log of expected spend); "
        "positive raises the score."
    )
    value: float | None = strawberry.field(description="The feature's value at the cutoff.")


def _reasons(row: CustomerScore) -> list[ScoreReason]:
    return [
        ScoreReason(
            feature=item["feature"],
            description=DESCRIPTIONS.get(item["feature"], ""),
            contribution=float(item["contribution"]),
            value=None if item.get("value") is None else float(item["value"]),
        )
        for item in row.reasons
    ]


@strawberry.interface
class ModelScore:
    model_name: str
    model_version: str
    cutoff: dt.datetime = strawberry.field(description="Only data before it was used.")
    horizon_days: int
    scored_at: dt.datetime
    percentile: float = strawberry.field(description="Among the scored customers (0-100).")
    top_reasons: list[ScoreReason]


def _common(row: CustomerScore) -> dict[str, Any]:
    """The ModelScore fields of a stored score."""
    return {
        "model_name": row.model_name,
        "model_version": row.model_version,
        "cutoff": row.cutoff,
        "horizon_days": row.horizon_days,
        "scored_at": row.scored_at,
        "percentile": row.percentile,
        "top_reasons": _reasons(row),
    }


@strawberry.type(description="Probability of no purchase within the horizon.")
class ChurnScore(ModelScore):
    probability: float
    risk_band: RiskBand

    @classmethod
    def from_row(cls, row: CustomerScore) -> ChurnScore:
        return cls(probability=row.score, risk_band=RiskBand(row.band), **_common(row))


@strawberry.type(description="Expected net spend within the horizon, own and through others.")
class ValueScore(ModelScore):
    segment: ValueSegment
    row: strawberry.Private[CustomerScore]

    @classmethod
    def from_row(cls, row: CustomerScore) -> ValueScore:
        return cls(segment=ValueSegment(row.band), row=row, **_common(row))

    @strawberry.field(description="The customer's own expected spend.")
    def predicted(self) -> MoneyRef:
        return _money(round(self.row.score), self.row.currency)

    @strawberry.field(
        description="Value brought through the people they referred: half of each referee's "
        "expected value and half of what that referee brings."
    )
    def network_value(self) -> MoneyRef:
        return _money(self.row.network_value_minor or 0, self.row.currency)

    @strawberry.field(description="Own expected value plus the value brought through others.")
    def total_value(self) -> MoneyRef:
        own = round(self.row.score)
        return _money(own + (self.row.network_value_minor or 0), self.row.currency)


@strawberry.type
class CustomerScores:
    churn: ChurnScore | None
    value: ValueScore | None


def customer_scores(found: dict[ModelKind, CustomerScore]) -> CustomerScores | None:
    if not found:
        return None
    churn, value = found.get(ModelKind.CHURN), found.get(ModelKind.VALUE)
    return CustomerScores(
        churn=None if churn is None else ChurnScore.from_row(churn),
        value=None if value is None else ValueScore.from_row(value),
    )


async def scores_of(info: Info, owner: uuid.UUID) -> CustomerScores | None:
    require_roles(info, *STAFF_ROLES)
    return customer_scores(await info.context.loaders.scoring.scores.load(owner))


@strawberry.type(
    description="How much this customer moves others: referrals weighted by the referees' "
    "spend, propagated up referral chains, plus review helpfulness and social reach."
)
class Influence:
    score: float = strawberry.field(description="1.0 is the average customer's influence.")
    percentile: float
    reach: Long = strawberry.field(
        description="Social followers + distinct people who voted on their reviews + referees."
    )
    review_count: int
    helpful_votes: int
    referrals_made: int
    referrals_converted: int
    is_influencer: bool = strawberry.field(
        description=f"Influence percentile at least {INFLUENCER_PERCENTILE:g}."
    )
    own_spend_percentile: float = strawberry.field(
        description="Percentile of their own net spend over the last 365 days."
    )
    cutoff: dt.datetime
    computed_at: dt.datetime
    row: strawberry.Private[CustomerInfluence]

    @classmethod
    def from_row(cls, row: CustomerInfluence) -> Influence:
        return cls(
            score=row.score,
            percentile=row.percentile,
            reach=Long(row.reach),
            review_count=row.review_count,
            helpful_votes=row.helpful_votes,
            referrals_made=row.referrals_made,
            referrals_converted=row.referrals_converted,
            is_influencer=row.percentile >= INFLUENCER_PERCENTILE,
            own_spend_percentile=row.own_spend_percentile,
            cutoff=row.cutoff,
            computed_at=row.computed_at,
            row=row,
        )

    @strawberry.field(description="Net spend of the people they referred, before the cutoff.")
    def referred_spend(self) -> MoneyRef:
        return _money(self.row.referred_spend_minor, self.row.currency)

    @strawberry.field(description="Their own net spend over the 365 days before the cutoff.")
    def own_spend(self) -> MoneyRef:
        return _money(self.row.own_spend_minor, self.row.currency)


async def influence_of(info: Info, owner: uuid.UUID) -> Influence | None:
    require_roles(info, *STAFF_ROLES)
    row = await info.context.loaders.scoring.influence.load(owner)
    return None if row is None else Influence.from_row(row)


@strawberry.type
class Influencer:
    influence: Influence
    customer_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def customer(self, info: Info) -> CustomerRef | None:
        from api.schema.access import visible_customer
        from api.schema.customer.types import Customer

        row = await visible_customer(info, self.customer_id)
        return None if row is None else Customer.from_row(row)


@strawberry.type(description="A model this API process serves (its champion, loaded once).")
class ServedModel:
    kind: ModelKind
    name: str
    version: str
    horizon_days: int
    trained_cutoff: dt.datetime | None = strawberry.field(description="Trained on data before it.")
    features: list[str]


def served_models(champions: Champions | None) -> list[ServedModel]:
    if champions is None:
        return []
    served = []
    for kind in ModelKind:
        model = champions.get(kind)
        if model is not None:
            served.append(
                ServedModel(
                    kind=kind,
                    name=model.name,
                    version=model.version,
                    horizon_days=model.horizon_days,
                    trained_cutoff=None
                    if model.trained_cutoff is None
                    else dt.datetime.fromisoformat(model.trained_cutoff),
                    features=list(model.features),
                )
            )
    return served
