"""Expected failures of scoring, training and serving (GraphQL `ScoringErrorCode`)."""

from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError


class ScoringErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    CUTOFF_IN_FUTURE = "CUTOFF_IN_FUTURE"
    INVALID_HORIZON = "INVALID_HORIZON"
    EMPTY_TRAINING_WINDOW = "EMPTY_TRAINING_WINDOW"
    UNKNOWN_MODEL_ALIAS = "UNKNOWN_MODEL_ALIAS"
    MODEL_NOT_AVAILABLE = "MODEL_NOT_AVAILABLE"
    MODEL_INCOMPATIBLE = "MODEL_INCOMPATIBLE"
    CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND"
    PROFILING_NOT_PERMITTED = "PROFILING_NOT_PERMITTED"
    NOT_SCORABLE = "NOT_SCORABLE"
    CONFLICT = "CONFLICT"  # a concurrent run wrote the same customer's scores: retry


class ScoringError(DomainError):
    """A scoring failure with a code; the message names no person."""


def scoring_error(code: ScoringErrorCode, message: str, *field: str) -> ScoringError:
    return ScoringError(code, message, list(field) if field else None)
