"""Training data with a strict time split, from one history loaded up to the scoring cutoff.

For a scoring cutoff D and a horizon H the windows are, newest first:

- holdout: features at D - H, labels from [D - H, D);
- validation (early stopping, calibration): features at D - H - g, labels from the H days after;
- training: features at D - H - 2g, then back by `step` days, stacked, each labelled by the H
  days after its cutoff.

The gap g is H when the history allows it (then no training label is observed after the
validation cutoff, nor a validation label after the holdout cutoff). When the history is short,
g is less than a horizon: a third of the room between the earliest useful cutoff (the first
purchase plus LEAD_DAYS of history to compute features from) and the holdout cutoff, so a
9-month horizon trains on 18 months. Then the label windows of the splits overlap one another,
but none reaches past D, and the holdout's labels end at D. Training cutoffs before the earliest
useful one are not used.

Nothing on or after D is loaded, so a model trained "as of" D could have been trained on D.
Labels: churn = no purchase in the H days after the cutoff; value = net spend in them (purchases
less returns, floored at 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from graph.enums import EventType
from scoring.errors import ScoringErrorCode, scoring_error
from scoring.features import compute_features, eligible, net_spend, purchase_counts
from scoring.history import EVENT_TYPES, SECONDS_PER_DAY, Bools, Floats, History, days

DEFAULT_TRAIN_CUTOFFS = 12
DEFAULT_STEP_DAYS = 30
LEAD_DAYS = 90  # history before the earliest training cutoff that its features are computed on
MIN_GAP_DAYS = 7  # splits closer than this are not distinct windows
MIN_ROWS = 50  # fewer rows than this in a window is not a training window


@dataclass(frozen=True, slots=True)
class CutoffPlan:
    scoring_cutoff: datetime
    horizon_days: int
    train: tuple[datetime, ...]
    validation: datetime
    holdout: datetime
    gap_days: float = 0.0  # between holdout and validation, and validation and training
    first_purchase: datetime | None = None

    @property
    def overlapping(self) -> bool:
        """True when the splits' label windows overlap (a history shorter than 3 horizons)."""
        return self.gap_days < self.horizon_days

    def as_json(self) -> dict[str, object]:
        return {
            "scoring_cutoff": self.scoring_cutoff.isoformat(),
            "horizon_days": self.horizon_days,
            "train_cutoffs": [cutoff.isoformat() for cutoff in self.train],
            "validation_cutoff": self.validation.isoformat(),
            "holdout_cutoff": self.holdout.isoformat(),
            "gap_days": self.gap_days,
            "labels_overlap": self.overlapping,
            "first_purchase": None
            if self.first_purchase is None
            else self.first_purchase.isoformat(),
        }


def first_purchase(history: History) -> datetime | None:
    """The earliest purchase in the loaded history (None without one)."""
    bought = history.ev_at[history.ev_type == EVENT_TYPES.index(EventType.PURCHASE)]
    if bought.size == 0:
        return None
    return datetime.fromtimestamp(float(bought.min()) * SECONDS_PER_DAY, tz=UTC)


def _too_short(scoring_cutoff: datetime, horizon_days: int, start: datetime | None) -> Exception:
    have = "no purchase" if start is None else f"purchases from {start.date().isoformat()}"
    return scoring_error(
        ScoringErrorCode.EMPTY_TRAINING_WINDOW,
        f"the history before {scoring_cutoff.date().isoformat()} has {have}: a "
        f"{horizon_days}-day horizon needs at least {horizon_days + LEAD_DAYS + 2 * MIN_GAP_DAYS}"
        " days of purchases (the horizon, and history for the features): the history is too "
        "short for this cutoff and horizon",
        "cutoff",
    )


def plan_cutoffs(
    scoring_cutoff: datetime,
    horizon_days: int,
    *,
    train_cutoffs: int = DEFAULT_TRAIN_CUTOFFS,
    step_days: int = DEFAULT_STEP_DAYS,
    first_purchase: datetime | None = None,
) -> CutoffPlan:
    """The cutoffs of the splits within the history that starts at `first_purchase` (None:
    as if it were unbounded). EMPTY_TRAINING_WINDOW when the history cannot hold them."""
    horizon = timedelta(days=horizon_days)
    holdout = scoring_cutoff - horizon
    gap = horizon
    earliest: datetime | None = None
    if first_purchase is not None:
        earliest = first_purchase + timedelta(days=LEAD_DAYS)
        room = holdout - earliest
        if room < timedelta(days=2 * MIN_GAP_DAYS):
            raise _too_short(scoring_cutoff, horizon_days, first_purchase)
        # A third of the room each: validation, then the newest training cutoff, leaving a
        # third for stacking older training cutoffs.
        gap = min(horizon, max(timedelta(days=MIN_GAP_DAYS), room / 3))
    validation = holdout - gap
    newest = validation - gap
    train = tuple(
        cutoff
        for cutoff in (newest - timedelta(days=step_days * k) for k in range(train_cutoffs))
        if earliest is None or cutoff >= earliest
    ) or (newest,)
    return CutoffPlan(
        scoring_cutoff,
        horizon_days,
        train,
        validation,
        holdout,
        gap_days=gap / timedelta(days=1),
        first_purchase=first_purchase,
    )


@dataclass(frozen=True, slots=True)
class Window:
    """The rows of one cutoff: owner codes, their features and both labels."""

    cutoff: datetime
    cids: np.ndarray
    features: pd.DataFrame
    churned: Bools
    spend: Floats

    @property
    def rows(self) -> int:
        return int(self.cids.size)


def window(history: History, cutoff: datetime, horizon_days: int, allowed: Bools) -> Window:
    """Features of the eligible, allowed owners at `cutoff` with labels from the horizon."""
    start = days(cutoff)
    end = start + horizon_days
    if end > history.until + 1e-9:
        raise ValueError("the label window ends after the loaded history")
    mask = eligible(history, cutoff) & allowed
    cids = np.flatnonzero(mask)
    features = compute_features(history, cutoff).iloc[cids].reset_index(drop=True)
    bought = purchase_counts(history, start, end)[cids]
    spend = np.maximum(net_spend(history, start, end)[cids], 0.0)
    return Window(cutoff, cids, features, bought == 0, spend)


@dataclass(frozen=True, slots=True)
class Datasets:
    plan: CutoffPlan
    train: list[Window]
    validation: Window
    holdout: Window

    @property
    def train_rows(self) -> int:
        return sum(item.rows for item in self.train)

    def stacked(self) -> Window:
        """The training windows as one (the cutoff is not a feature)."""
        return Window(
            cutoff=self.plan.train[0],
            cids=np.concatenate([item.cids for item in self.train]),
            features=pd.concat([item.features for item in self.train], ignore_index=True),
            churned=np.concatenate([item.churned for item in self.train]),
            spend=np.concatenate([item.spend for item in self.train]),
        )


def build_datasets(
    history: History,
    plan: CutoffPlan,
    allowed: Bools,
    progress: Callable[[str, int, int], None] | None = None,
) -> Datasets:
    """All windows of the plan; EMPTY_TRAINING_WINDOW when a split has too few customers.
    `progress(what, done, total)` hears of each window."""
    cutoffs = [*plan.train, plan.validation, plan.holdout]
    built: list[Window] = []
    for done, cutoff in enumerate(cutoffs):
        if progress is not None:
            progress(f"features and labels at {cutoff.date().isoformat()}", done, len(cutoffs))
        built.append(window(history, cutoff, plan.horizon_days, allowed))
    *train, validation, holdout = built
    train = [item for item in train if item.rows > 0]
    for name, rows, cutoff in (
        ("training", sum(item.rows for item in train), plan.train[0]),
        ("validation", validation.rows, plan.validation),
        ("holdout", holdout.rows, plan.holdout),
    ):
        if rows < MIN_ROWS:
            raise scoring_error(
                ScoringErrorCode.EMPTY_TRAINING_WINDOW,
                f"the {name} window has {rows} customers with a purchase before "
                f"{cutoff.date().isoformat()} (at least {MIN_ROWS} needed): the history is "
                f"too short for this cutoff and horizon",
                "cutoff",
            )
    for name, item in (("validation", validation), ("holdout", holdout)):
        if item.churned.all() or not item.churned.any() or item.spend.sum() <= 0:
            raise scoring_error(
                ScoringErrorCode.EMPTY_TRAINING_WINDOW,
                f"in the {name} window ({item.cutoff.date().isoformat()} + "
                f"{plan.horizon_days} days) every customer churned, or none did: there is "
                "nothing to learn from or measure on",
                "cutoff",
            )
    return Datasets(plan, train, validation, holdout)
