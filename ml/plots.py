"""The figures a training run logs: calibration, lift, feature importance, SHAP summary."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display: figures are files in the MLflow run

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve

from ml.datasets import Window
from ml.metrics import top_decile
from scoring.history import Floats
from scoring.kinds import ModelKind
from scoring.model import ScoringModel

SHAP_ROWS = 2_000
SHAP_FEATURES = 15


def calibration(churned: np.ndarray, probability: Floats) -> Figure:
    observed, predicted = calibration_curve(churned, probability, n_bins=10, strategy="quantile")
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axis.plot(predicted, observed, marker="o", label="model")
    axis.set_xlabel("predicted churn probability")
    axis.set_ylabel("observed churn rate")
    axis.set_title("Calibration on the holdout (deciles)")
    axis.legend()
    figure.tight_layout()
    return figure


def lift(actual: Floats, rankings: dict[str, Floats], *, what: str) -> Figure:
    """Cumulative share of `actual` captured by each ranking, best-ranked first."""
    figure, axis = plt.subplots(figsize=(6, 5))
    share = np.arange(1, actual.size + 1) / actual.size
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    for name, scores in rankings.items():
        order = np.argsort(-scores, kind="stable")
        captured = np.cumsum(actual[order]) / max(actual.sum(), 1e-12)
        decile = float(actual[top_decile(scores)].sum() / max(actual.sum(), 1e-12))
        axis.plot(share, captured, label=f"{name} (top decile {decile:.0%})")
    axis.set_xlabel("share of customers, highest score first")
    axis.set_ylabel(f"share of {what} captured")
    axis.set_title("Cumulative gains on the holdout")
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def importance(model: ScoringModel) -> Figure:
    gain = np.asarray(model.booster.feature_importance(importance_type="gain"), dtype=float)
    order = np.argsort(gain)[-20:]
    figure, axis = plt.subplots(figsize=(6, 6))
    axis.barh([model.features[i] for i in order], gain[order])
    axis.set_xlabel("total gain")
    axis.set_title("Feature importance (gain)")
    figure.tight_layout()
    return figure


def shap_summary(model: ScoringModel, item: Window) -> Figure:
    """SHAP values (LightGBM pred_contrib) of a sample of holdout rows, one row per feature,
    coloured by the feature's value (rank within the sample)."""
    rows = item.features.iloc[:SHAP_ROWS]
    matrix = model.matrix(rows)
    contrib = np.asarray(model.booster.predict(matrix, pred_contrib=True))[:, :-1]
    order = np.argsort(np.abs(contrib).mean(axis=0))[-SHAP_FEATURES:]
    figure, axis = plt.subplots(figsize=(7, 6))
    rng = np.random.default_rng(0)
    for position, column in enumerate(order):
        values = matrix[:, column]
        ranks = np.argsort(np.argsort(np.nan_to_num(values, nan=-np.inf))) / max(len(values), 1)
        jitter = rng.uniform(-0.3, 0.3, size=len(values))
        axis.scatter(
            contrib[:, column], position + jitter, c=ranks, cmap="coolwarm", s=4, alpha=0.6
        )
    axis.set_yticks(range(len(order)), [model.features[i] for i in order])
    axis.axvline(0, color="grey", linewidth=0.8)
    scale = "log-odds of churn" if model.kind is ModelKind.CHURN else "log of expected spend"
    axis.set_xlabel(f"SHAP value ({scale}); colour: feature value, blue low, red high")
    axis.set_title("SHAP summary on the holdout")
    figure.tight_layout()
    return figure


def close(figure: Figure) -> None:
    plt.close(figure)
