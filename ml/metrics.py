"""Holdout metrics a data scientist reads: churn (AUC, log loss, Brier, top-decile lift) and
value (normalised Gini, Spearman, top-decile capture, bias).

A metric needs probabilities (log loss, Brier) or amounts (bias) only where it says so: a
ranking baseline such as the RFM rule is measured by the ranking metrics alone.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from scoring.history import Bools, Floats

EPSILON = 1e-6


def top_decile(scores: Floats) -> Bools:
    """The tenth of rows with the highest scores (ties broken by position)."""
    count = max(1, int(np.ceil(scores.size / 10)))
    mask = np.zeros(scores.size, dtype=np.bool_)
    mask[np.argsort(-scores, kind="stable")[:count]] = True
    return mask


def top_decile_lift(churned: Bools, scores: Floats) -> float:
    """Churn rate among the top-scored tenth over the overall churn rate."""
    overall = float(churned.mean())
    if overall == 0:
        return float("nan")
    return float(churned[top_decile(scores)].mean()) / overall


def churn_metrics(churned: Bools, scores: Floats, *, probabilities: bool) -> dict[str, float]:
    out = {
        "auc": float(roc_auc_score(churned, scores)),
        "top_decile_lift": top_decile_lift(churned, scores),
    }
    if probabilities:
        clipped = np.clip(scores, EPSILON, 1 - EPSILON)
        out["log_loss"] = float(log_loss(churned, clipped, labels=[False, True]))
        out["brier"] = float(brier_score_loss(churned, clipped))
    return out


def _gini(actual: Floats, predicted: Floats) -> float:
    # Order by prediction (highest first, ties kept in row order), then measure how far the
    # cumulative share of actual value runs above the diagonal.
    order = np.argsort(-predicted, kind="stable")
    cumulative = np.cumsum(actual[order]) / actual.sum()
    diagonal = np.arange(1, actual.size + 1) / actual.size
    return float((cumulative - diagonal).sum() / actual.size)


def normalised_gini(actual: Floats, predicted: Floats) -> float:
    """Gini of the prediction's ordering over the Gini of the perfect ordering (1 = perfect)."""
    if actual.sum() <= 0:
        return float("nan")
    return _gini(actual, predicted) / _gini(actual, actual)


def top_decile_capture(actual: Floats, predicted: Floats) -> float:
    """Share of all actual value that the top-predicted tenth brought."""
    total = actual.sum()
    return float(actual[top_decile(predicted)].sum() / total) if total > 0 else float("nan")


def value_metrics(actual: Floats, predicted: Floats, *, amounts: bool) -> dict[str, float]:
    rho = spearmanr(actual, predicted).statistic
    out = {
        "normalised_gini": normalised_gini(actual, predicted),
        "spearman": float(rho),
        "top_decile_capture": top_decile_capture(actual, predicted),
    }
    if amounts:
        total = actual.sum()
        out["bias"] = float((predicted.sum() - total) / total) if total > 0 else float("nan")
    return out
