"""Training data with a strict time split, from one history loaded up to the scoring cutoff.

For a scoring cutoff D and a horizon H the windows are, newest first:

- holdout: features at D - H, labels from [D - H, D);
- validation (early stopping, calibration): features at D - 2H, labels from [D - 2H, D - H);
- training: features at D - 3H, D - 3H - step, ... stacked, each labelled by the H days after
  its cutoff, so no training label is observed after the validation cutoff.

Nothing on or after D is loaded, so a model trained "as of" D could have been trained on D.
Labels: churn = no purchase in the H days after the cutoff; value = net spend in them (purchases
less returns, floored at 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from scoring.errors import ScoringErrorCode, scoring_error
from scoring.features import compute_features, eligible, net_spend, purchase_counts
from scoring.history import Bools, Floats, History, days

DEFAULT_TRAIN_CUTOFFS = 12
DEFAULT_STEP_DAYS = 30
MIN_ROWS = 50  # fewer rows than this in a window is not a training window


@dataclass(frozen=True, slots=True)
class CutoffPlan:
    scoring_cutoff: datetime
    horizon_days: int
    train: tuple[datetime, ...]
    validation: datetime
    holdout: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "scoring_cutoff": self.scoring_cutoff.isoformat(),
            "horizon_days": self.horizon_days,
            "train_cutoffs": [cutoff.isoformat() for cutoff in self.train],
            "validation_cutoff": self.validation.isoformat(),
            "holdout_cutoff": self.holdout.isoformat(),
        }


def plan_cutoffs(
    scoring_cutoff: datetime,
    horizon_days: int,
    *,
    train_cutoffs: int = DEFAULT_TRAIN_CUTOFFS,
    step_days: int = DEFAULT_STEP_DAYS,
) -> CutoffPlan:
    horizon = timedelta(days=horizon_days)
    holdout = scoring_cutoff - horizon
    validation = holdout - horizon
    newest = validation - horizon
    train = tuple(newest - timedelta(days=step_days * k) for k in range(train_cutoffs))
    return CutoffPlan(scoring_cutoff, horizon_days, train, validation, holdout)


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


def build_datasets(history: History, plan: CutoffPlan, allowed: Bools) -> Datasets:
    """All windows of the plan; EMPTY_TRAINING_WINDOW when a split has too few customers."""
    train = [window(history, cutoff, plan.horizon_days, allowed) for cutoff in plan.train]
    train = [item for item in train if item.rows > 0]
    validation = window(history, plan.validation, plan.horizon_days, allowed)
    holdout = window(history, plan.holdout, plan.horizon_days, allowed)
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
