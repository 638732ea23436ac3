"""Checks of a request's dates and horizon, cheap enough to run before any model is touched."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.clock import as_utc, utcnow
from scoring.errors import ScoringErrorCode, scoring_error
from scoring.kinds import MAX_HORIZON_DAYS

CLOCK_SKEW = timedelta(minutes=5)


def resolve_cutoff(cutoff: datetime | None, now: datetime | None = None) -> datetime:
    """The cutoff to use: now by default; a cutoff in the future is refused."""
    now = now or utcnow()
    if cutoff is None:
        return now
    cutoff = as_utc(cutoff)
    if cutoff > now + CLOCK_SKEW:
        raise scoring_error(
            ScoringErrorCode.CUTOFF_IN_FUTURE,
            f"the cutoff {cutoff.isoformat()} is in the future: only past data can be used",
            "cutoff",
        )
    return cutoff


def check_horizon(horizon_days: int) -> None:
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise scoring_error(
            ScoringErrorCode.INVALID_HORIZON,
            f"the horizon must be 1 to {MAX_HORIZON_DAYS} days, got {horizon_days}",
            "horizon",
        )


def check_training(
    *, horizon_days: int, train_cutoffs: int, step_days: int, max_rounds: int
) -> None:
    check_horizon(horizon_days)
    if not 1 <= train_cutoffs <= 36:
        raise scoring_error(ScoringErrorCode.INVALID_INPUT, "1 to 36 training cutoffs", "cutoffs")
    if not 1 <= step_days <= 365:
        raise scoring_error(ScoringErrorCode.INVALID_INPUT, "a step of 1 to 365 days", "step")
    if not 1 <= max_rounds <= 100_000:
        raise scoring_error(ScoringErrorCode.INVALID_INPUT, "1 to 100000 rounds", "rounds")
