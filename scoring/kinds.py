"""What a model predicts, and the bands scores fall into."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

DEFAULT_HORIZON_DAYS = 90
MAX_HORIZON_DAYS = 730
CHAMPION = "champion"
# A customer counts as an influencer from this influence percentile on.
INFLUENCER_PERCENTILE = 90.0


B = TypeVar("B", bound=StrEnum)


class ModelKind(StrEnum):
    CHURN = "churn"  # probability of no purchase within the horizon
    VALUE = "value"  # net spend within the horizon

    @property
    def registered_name(self) -> str:
        return f"loyalgraph-{self.value}"


class RiskBand(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"

    @property
    def rank(self) -> int:
        return list(RiskBand).index(self)


# Calibrated churn probability at which each band starts.
RISK_BANDS: tuple[tuple[RiskBand, float], ...] = (
    (RiskBand.LOW, 0.0),
    (RiskBand.MEDIUM, 0.4),
    (RiskBand.HIGH, 0.7),
)


def _band(value: float, table: tuple[tuple[B, float], ...]) -> B:
    """The last entry of `table` (ordered by start) whose start `value` reaches."""
    found = table[0][0]
    for candidate, start in table:
        if value >= start:
            found = candidate
    return found


def risk_band(probability: float) -> RiskBand:
    return _band(probability, RISK_BANDS)


class ValueSegment(StrEnum):
    LOW = "LOW"  # below the 30th percentile of predicted value
    MEDIUM = "MEDIUM"  # 30th to 70th
    HIGH = "HIGH"  # 70th to 90th
    TOP = "TOP"  # the top decile


VALUE_SEGMENTS: tuple[tuple[ValueSegment, float], ...] = (
    (ValueSegment.LOW, 0.0),
    (ValueSegment.MEDIUM, 30.0),
    (ValueSegment.HIGH, 70.0),
    (ValueSegment.TOP, 90.0),
)


def value_segment(percentile: float) -> ValueSegment:
    return _band(percentile, VALUE_SEGMENTS)
