"""The active program as GraphQL types: "how to earn and spend" for frontends."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from api.schema.enums import Long
from api.schema.loyalty.enums import BonusEvent, Downgrade, ExpiryPolicy, ReturnPolicy, TierMetric
from api.schema.loyalty.types import LoyaltyTier
from graph.enums import Channel
from loyalty import definition
from loyalty.program import ActiveProgram


@strawberry.type(description="`points` per `perMinor` of spend, before rules and tiers.")
class EarnBase:
    points: Long
    per_minor: Long


@strawberry.type(
    description="A multiplier on the base points of matching lines; an empty list matches all."
)
class EarnRule:
    code: str
    description: str
    priority: int = strawberry.field(description="Rules apply in descending priority.")
    multiplier: Decimal
    categories: list[str]
    skus: list[str]
    channels: list[Channel]
    tiers: list[str]
    valid_from: dt.datetime | None
    valid_to: dt.datetime | None
    stop: bool = strawberry.field(description="A matching rule with `stop` ends the list.")

    @classmethod
    def from_rule(cls, rule: definition.EarnRule) -> EarnRule:
        return cls(
            code=rule.code,
            description=rule.description,
            priority=rule.priority,
            multiplier=rule.multiplier,
            categories=list(rule.when.categories),
            skus=list(rule.when.skus),
            channels=list(rule.when.channels),
            tiers=list(rule.when.tiers),
            valid_from=rule.valid_from,
            valid_to=rule.valid_to,
            stop=rule.stop,
        )


@strawberry.type(description="Fixed points for an event (registration, first purchase, ...).")
class EarnBonus:
    code: str
    description: str
    event: BonusEvent
    points: Long
    pending: bool = strawberry.field(description="Waits the pending period before it counts.")
    valid_from: dt.datetime | None
    valid_to: dt.datetime | None


@strawberry.type(description="The most purchase points a customer earns per day and per month.")
class EarnCaps:
    per_day: Long | None
    per_month: Long | None


@strawberry.type(description="When earned points expire.")
class ExpiryRules:
    policy: ExpiryPolicy
    days: int | None = strawberry.field(description="For DAYS: days after earning.")
    months: int | None = strawberry.field(
        description="For END_OF_MONTH: the end of the month this many months later."
    )
    years: int | None = strawberry.field(
        description="For END_OF_YEAR: the end of the year this many years later."
    )


@strawberry.type
class RedemptionRules:
    point_value_minor: Long = strawberry.field(description="What one point pays.")
    max_share_percent: int = strawberry.field(description="Of an order payable with points.")
    min_balance: Long = strawberry.field(description="Points can be spent from this balance.")
    hold_minutes: int = strawberry.field(description="How long a reservation holds points.")


@strawberry.type
class TierRules:
    metric: TierMetric
    window_days: int
    review_every_days: int
    downgrade: Downgrade
    grace_days: int
    levels: list[LoyaltyTier] = strawberry.field(description="Lowest first.")


@strawberry.type
class ReferralRewards:
    referrer_points: Long
    referee_points: Long
    max_rewarded_per_referrer: int | None
    pending: bool


def _expiry(rules: definition.Expiry) -> ExpiryRules:
    policy = rules.policy
    return ExpiryRules(
        policy=policy,
        days=rules.days if policy is ExpiryPolicy.DAYS else None,
        months=rules.months if policy is ExpiryPolicy.END_OF_MONTH else None,
        years=rules.years if policy is ExpiryPolicy.END_OF_YEAR else None,
    )


@strawberry.type(description="The active loyalty program's rules.")
class LoyaltyProgram:
    code: str
    version: int
    name: str
    currency: str
    timezone: str
    pending_days: int = strawberry.field(description="The return window before points count.")
    returns: ReturnPolicy
    loaded_at: dt.datetime
    spec: strawberry.Private[definition.ProgramDefinition]

    @classmethod
    def from_active(cls, active: ActiveProgram) -> LoyaltyProgram:
        rules = active.rules
        return cls(
            code=rules.code,
            version=active.row.version,
            name=rules.name,
            currency=rules.currency,
            timezone=rules.timezone,
            pending_days=rules.pending_days,
            returns=rules.returns,
            loaded_at=active.row.loaded_at,
            spec=rules,
        )

    @strawberry.field
    def earn(self) -> EarnBase:
        return EarnBase(
            points=Long(self.spec.earn.points), per_minor=Long(self.spec.earn.per_minor)
        )

    @strawberry.field(name="rules", description="Earn rules in the order they apply.")
    def earn_rules(self) -> list[EarnRule]:
        return [EarnRule.from_rule(rule) for rule in self.spec.earn.rules]

    @strawberry.field
    def bonuses(self) -> list[EarnBonus]:
        return [
            EarnBonus(
                code=bonus.code,
                description=bonus.description,
                event=bonus.event,
                points=Long(bonus.points),
                pending=bonus.pending,
                valid_from=bonus.valid_from,
                valid_to=bonus.valid_to,
            )
            for bonus in self.spec.earn.bonuses
        ]

    @strawberry.field
    def caps(self) -> EarnCaps:
        caps = self.spec.earn.caps
        return EarnCaps(
            per_day=None if caps.per_day is None else Long(caps.per_day),
            per_month=None if caps.per_month is None else Long(caps.per_month),
        )

    @strawberry.field
    def expiry(self) -> ExpiryRules:
        return _expiry(self.spec.expiry)

    @strawberry.field
    def redemption(self) -> RedemptionRules:
        rules = self.spec.redemption
        return RedemptionRules(
            point_value_minor=Long(rules.point_value_minor),
            max_share_percent=rules.max_share_percent,
            min_balance=Long(rules.min_balance),
            hold_minutes=rules.hold_minutes,
        )

    @strawberry.field
    def tiers(self) -> TierRules:
        tiers = self.spec.tiers
        return TierRules(
            metric=tiers.metric,
            window_days=tiers.window_days,
            review_every_days=tiers.review_every_days,
            downgrade=tiers.downgrade,
            grace_days=tiers.grace_days,
            levels=[LoyaltyTier.from_level(level) for level in tiers.levels],
        )

    @strawberry.field
    def referral(self) -> ReferralRewards:
        referral = self.spec.referral
        return ReferralRewards(
            referrer_points=Long(referral.referrer_points),
            referee_points=Long(referral.referee_points),
            max_rewarded_per_referrer=referral.max_rewarded_per_referrer,
            pending=referral.pending,
        )
