"""LightGBM fitting: early stopping and calibration on the validation slice, a `ScoringModel`.

Churn is a binary objective, calibrated by Platt scaling of its log-odds on the validation
window (a later time slice than every training row). Value is a Tweedie objective (many zeros,
a long right tail) on spend in major units, with its level corrected on the same slice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ml.datasets import Datasets, Window
from ml.metrics import churn_metrics, value_metrics
from scoring.classic import DERIVED_FEATURES, derive, fit_classic
from scoring.features import FEATURE_NAMES, INFLUENCE_FEATURES
from scoring.history import Floats
from scoring.kinds import ModelKind
from scoring.model import ScoringModel

BASE_PARAMS: dict[str, Any] = {
    "learning_rate": 0.03,
    # Small trees: as good on the holdout as 31 leaves, and TreeSHAP contributions (stored with
    # every score) cost time in leaves x depth squared.
    "num_leaves": 15,
    "max_depth": 6,
    "min_data_in_leaf": 100,  # leaves of 100+ customers: steadier on a few thousand
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "seed": 7,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbose": -1,
}
OBJECTIVES: dict[ModelKind, dict[str, Any]] = {
    ModelKind.CHURN: {"objective": "binary", "metric": "binary_logloss"},
    ModelKind.VALUE: {
        "objective": "tweedie",
        "tweedie_variance_power": 1.5,
        "metric": "tweedie",
    },
}
MAX_ROUNDS = 2000
EARLY_STOPPING_ROUNDS = 50
PRIMARY_METRIC = {ModelKind.CHURN: "auc", ModelKind.VALUE: "normalised_gini"}


def feature_list(*, include_influence: bool, include_classic: bool = True) -> tuple[str, ...]:
    names = FEATURE_NAMES + (DERIVED_FEATURES if include_classic else ())
    if include_influence:
        return names
    return tuple(name for name in names if name not in INFLUENCE_FEATURES)


def target(kind: ModelKind, item: Window) -> Floats:
    return item.churned.astype(np.float64) if kind is ModelKind.CHURN else item.spend


@dataclass(frozen=True, slots=True)
class Fitted:
    model: ScoringModel
    params: dict[str, Any]
    best_iteration: int
    validation: dict[str, float]


def _rounds(progress: Callable[[str, int, int], None], max_rounds: int) -> Callable[[Any], None]:
    def callback(env: Any) -> None:
        done = int(env.iteration) + 1
        if done % 10 == 0:
            progress(f"fitting LightGBM, round {done}", done, max_rounds)

    return callback


def fit(
    kind: ModelKind,
    data: Datasets,
    *,
    features: tuple[str, ...],
    params: dict[str, Any] | None = None,
    max_rounds: int = MAX_ROUNDS,
    progress: Callable[[str, int, int], None] | None = None,
) -> Fitted:
    """Train on the stacked training windows, stop early on the validation window.
    `progress(what, round, max_rounds)` hears of every 10th boosting round."""
    merged = {**BASE_PARAMS, **OBJECTIVES[kind], **(params or {})}
    # The classic models are fitted on the newest training window, never on later data.
    uses_classic = bool(set(DERIVED_FEATURES) & set(features))
    classic = fit_classic(data.train[0].features) if uses_classic else None

    def frame(item: Window) -> pd.DataFrame:
        return derive(item.features, classic) if uses_classic else item.features

    train = data.stacked()
    columns = list(features)
    train_set = lgb.Dataset(frame(train)[columns], label=target(kind, train), feature_name=columns)
    valid_set = lgb.Dataset(
        frame(data.validation)[columns],
        label=target(kind, data.validation),
        reference=train_set,
    )
    booster = lgb.train(
        merged,
        train_set,
        num_boost_round=max_rounds,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False),
            *([] if progress is None else [_rounds(progress, max_rounds)]),
        ],
    )
    best = booster.best_iteration or booster.current_iteration()
    booster = booster.model_from_string(booster.model_to_string(num_iteration=best))
    uncalibrated = ScoringModel(
        kind=kind,
        name=kind.registered_name,
        version="candidate",
        booster=booster,
        features=features,
        horizon_days=data.plan.horizon_days,
        trained_cutoff=data.plan.scoring_cutoff.isoformat(),
        classic=classic,
    )
    calibration = _calibrate(kind, uncalibrated.raw(data.validation.features), data.validation)
    model = replace(uncalibrated, calibration=calibration)
    return Fitted(model, merged, best, evaluate(model, data.validation))


def _calibrate(kind: ModelKind, raw: Floats, item: Window) -> tuple[float, float]:
    if kind is ModelKind.CHURN:
        if item.churned.all() or not item.churned.any():
            return (1.0, 0.0)
        platt = LogisticRegression(C=1e6, max_iter=1000)
        platt.fit(raw.reshape(-1, 1), item.churned)
        return (float(platt.coef_[0][0]), float(platt.intercept_[0]))
    predicted = float(np.exp(raw).sum())
    actual = float(item.spend.sum())
    if predicted <= 0 or actual <= 0:
        return (1.0, 0.0)
    return (1.0, math.log(actual / predicted))


def evaluate(model: ScoringModel, item: Window) -> dict[str, float]:
    """The model's holdout (or validation) metrics on `item`."""
    predicted = model.predict(item.features)
    if model.kind is ModelKind.CHURN:
        return churn_metrics(item.churned, predicted, probabilities=True)
    return value_metrics(item.spend, predicted, amounts=True)


def ranking_metrics(model: ScoringModel, item: Window) -> dict[str, float]:
    """The model's ranking metrics alone on `item` (labels for another horizon than the
    model's, where its probabilities and amounts are not comparable with the labels)."""
    predicted = model.predict(item.features)
    if model.kind is ModelKind.CHURN:
        return churn_metrics(item.churned, predicted, probabilities=False)
    return value_metrics(item.spend, predicted, amounts=False)
