"""Scoring's vocabulary as GraphQL enums, registered once before any type uses them."""

from __future__ import annotations

import strawberry

from scoring.errors import ScoringErrorCode
from scoring.kinds import ModelKind, RiskBand, ValueSegment

strawberry.enum(RiskBand, description="Churn risk by calibrated probability: <0.4, 0.4-0.7, 0.7+.")
strawberry.enum(ValueSegment, description="Predicted value by percentile: <30, 30-70, 70-90, 90+.")
strawberry.enum(ModelKind)
strawberry.enum(ScoringErrorCode)

__all__ = ["ModelKind", "RiskBand", "ScoringErrorCode", "ValueSegment"]
