"""The program definition: what a YAML file (and the database copy of it) may say.

Validated with pydantic, so a mistake in a program file is named by its path
(`earn.rules.2.priority`) before anything is stored. Amounts of money are integer minor units,
points are integers, multipliers are decimals written as strings or numbers ("1.5").
"""

from __future__ import annotations

import calendar
import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from graph.enums import Channel

CODE_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
MAX_POINTS = 10**12


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        for value in (self.valid_from, self.valid_to):
            if value is not None and value.tzinfo is None:
                raise ValueError("validity times need a time zone (2026-01-01T00:00:00+03:00)")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self

    def covers(self, when: datetime) -> bool:
        return (self.valid_from is None or when >= self.valid_from) and (
            self.valid_to is None or when < self.valid_to
        )


class Match(Strict):
    """Which purchase lines a rule applies to; an empty list matches everything."""

    categories: list[str] = []
    skus: list[str] = []
    channels: list[Channel] = []
    tiers: list[str] = []


class EarnRule(Window):
    """A multiplier on the base points of matching lines. Rules are applied in descending
    `priority`; a matching rule with `stop` ends the evaluation for that line."""

    code: str = Field(pattern=CODE_PATTERN)
    description: str = ""
    priority: int
    when: Match = Match()
    multiplier: Decimal = Field(gt=0, le=100)
    stop: bool = False


class BonusEvent(StrEnum):
    REGISTRATION = "registration"
    FIRST_PURCHASE = "first_purchase"
    BIRTHDAY_MONTH = "birthday_month"
    REVIEW_ACCEPTED = "review_accepted"


class Bonus(Window):
    code: str = Field(pattern=CODE_PATTERN)
    description: str = ""
    event: BonusEvent
    points: int = Field(gt=0, le=MAX_POINTS)
    pending: bool = Field(
        default=False, description="Wait the pending period (for bonuses a return can undo)."
    )


class Caps(Strict):
    per_day: int | None = Field(default=None, gt=0)
    per_month: int | None = Field(default=None, gt=0)


class Earn(Strict):
    points: int = Field(default=1, gt=0, description="Points per `per_minor` of spend.")
    per_minor: int = Field(default=10_000, gt=0, description="Spend in minor units (100.00).")
    rules: list[EarnRule] = []
    bonuses: list[Bonus] = []
    caps: Caps = Caps()

    @field_validator("rules")
    @classmethod
    def _explicit_order(cls, rules: list[EarnRule]) -> list[EarnRule]:
        seen: dict[int, str] = {}
        for rule in rules:
            if rule.priority in seen:
                raise ValueError(
                    f"rules {seen[rule.priority]} and {rule.code} share priority {rule.priority};"
                    " give every rule its own priority so the order is explicit"
                )
            seen[rule.priority] = rule.code
        codes = [rule.code for rule in rules]
        if len(set(codes)) != len(codes):
            raise ValueError("rule codes must be unique")
        return sorted(rules, key=lambda rule: -rule.priority)


class ExpiryPolicy(StrEnum):
    DAYS = "days"
    END_OF_MONTH = "end_of_month"
    END_OF_YEAR = "end_of_year"
    NEVER = "never"


class Expiry(Strict):
    """`days`: N days after earning. `end_of_month`: the end of the month N months after the
    month of earning (N=0: this month). `end_of_year`: the end of the year N years after."""

    policy: ExpiryPolicy = ExpiryPolicy.DAYS
    days: int = Field(default=365, gt=0, le=36_500)
    months: int = Field(default=12, ge=0, le=1200)
    years: int = Field(default=1, ge=0, le=100)


class Redemption(Strict):
    point_value_minor: int = Field(default=100, gt=0, description="What one point pays.")
    max_share_percent: int = Field(default=30, gt=0, le=100)
    min_balance: int = Field(default=0, ge=0)
    hold_minutes: int = Field(default=15, gt=0, le=7 * 24 * 60)


class ReturnPolicy(StrEnum):
    ALLOW_NEGATIVE = "allow_negative"
    CLAW_BACK_REMAINING = "claw_back_remaining"


class TierMetric(StrEnum):
    POINTS_EARNED = "points_earned"
    SPEND = "spend"


class Downgrade(StrEnum):
    ONE_LEVEL = "one_level"
    RECALCULATE = "recalculate"


class TierLevel(Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str
    threshold: int = Field(ge=0)
    multiplier: Decimal = Field(default=Decimal(1), gt=0, le=100)


class Tiers(Strict):
    metric: TierMetric = TierMetric.POINTS_EARNED
    window_days: int = Field(default=365, gt=0, le=3650)
    review_every_days: int = Field(default=30, gt=0, le=3650)
    downgrade: Downgrade = Downgrade.ONE_LEVEL
    grace_days: int = Field(default=0, ge=0, le=3650)
    levels: list[TierLevel]

    @field_validator("levels")
    @classmethod
    def _ladder(cls, levels: list[TierLevel]) -> list[TierLevel]:
        if not levels:
            raise ValueError("at least one tier")
        ordered = sorted(levels, key=lambda level: level.threshold)
        if ordered[0].threshold != 0:
            raise ValueError("the lowest tier must have threshold 0")
        thresholds = [level.threshold for level in ordered]
        if len(set(thresholds)) != len(thresholds):
            raise ValueError("tier thresholds must differ")
        if len({level.code for level in levels}) != len(levels):
            raise ValueError("tier codes must be unique")
        return ordered


class ReferralRewards(Strict):
    referrer_points: int = Field(default=0, ge=0, le=MAX_POINTS)
    referee_points: int = Field(default=0, ge=0, le=MAX_POINTS)
    max_rewarded_per_referrer: int | None = Field(
        default=None, gt=0, description="How many referrals of one referrer are rewarded."
    )
    budget_points: int | None = Field(default=None, gt=0, description="Total for the program.")
    pending: bool = True


class ProgramDefinition(Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = "Europe/Moscow"
    pending_days: int = Field(default=14, ge=0, le=365)
    earn: Earn = Earn()
    expiry: Expiry = Expiry()
    redemption: Redemption = Redemption()
    returns: ReturnPolicy = ReturnPolicy.CLAW_BACK_REMAINING
    tiers: Tiers = Tiers(levels=[TierLevel(code="base", name="Base", threshold=0)])
    referral: ReferralRewards = ReferralRewards()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON: the same rules give the same digest."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def expires_at(self, earned_at: datetime) -> datetime | None:
        """When points earned at `earned_at` expire (calendar policies in the program's zone)."""
        policy = self.expiry
        if policy.policy is ExpiryPolicy.NEVER:
            return None
        if policy.policy is ExpiryPolicy.DAYS:
            return earned_at + timedelta(days=policy.days)
        local = earned_at.astimezone(self.zone)
        if policy.policy is ExpiryPolicy.END_OF_MONTH:
            month_index = local.year * 12 + (local.month - 1) + policy.months + 1
            year, month = divmod(month_index, 12)
            boundary = datetime(year, month + 1, 1, tzinfo=self.zone)
        else:
            boundary = datetime(local.year + policy.years + 1, 1, 1, tzinfo=self.zone)
        return boundary.astimezone(earned_at.tzinfo)

    def available_at(self, earned_at: datetime, *, pending: bool) -> datetime:
        return earned_at + timedelta(days=self.pending_days) if pending else earned_at

    def tier(self, code: str | None) -> TierLevel:
        for level in self.tiers.levels:
            if level.code == code:
                return level
        return self.tiers.levels[0]

    def day_bounds(self, when: datetime) -> tuple[datetime, datetime]:
        local = when.astimezone(self.zone)
        start = datetime(local.year, local.month, local.day, tzinfo=self.zone)
        return start, start + timedelta(days=1)

    def month_bounds(self, when: datetime) -> tuple[datetime, datetime]:
        local = when.astimezone(self.zone)
        start = datetime(local.year, local.month, 1, tzinfo=self.zone)
        days = calendar.monthrange(local.year, local.month)[1]
        return start, start + timedelta(days=days)


def parse_definition(data: Any) -> ProgramDefinition:
    """Validate a mapping (from YAML or the database) into a definition."""
    return ProgramDefinition.model_validate(data)
