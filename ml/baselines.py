"""The classic models a data scientist compares with, scored on the same holdout rows.

- RFM rule: quintile scores for recency, frequency and monetary value at the cutoff, read as
  the cell code R-F-M (555 best). Churn risk orders by the code reversed; value by the code.
  A ranking only: no probabilities, no amounts.
- Run rate (value only): the last 365 days' net spend scaled to the horizon.
- BG/NBD with Gamma-Gamma (`scoring.btyd`, through the same summary of each customer that the
  models' classic features use, `scoring.classic.summary`: purchase days, the purchases of one
  day counting as one transaction, as the literature and `lifetimes` count them): fitted on the
  histories before the cutoff. Churn risk ranks by the expected purchases in the horizon, fewest
  first, as the reference implementation ranks (AUC and lift); its log loss and Brier score
  are those of the model's own probability of no purchase in the horizon. Value is the
  expected purchases times the expected average purchase.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.datasets import Window
from ml.metrics import churn_metrics, value_metrics
from scoring import btyd
from scoring.classic import ClassicParams, average_value, summary
from scoring.history import Floats
from scoring.kinds import ModelKind


def _quintile(values: Floats) -> Floats:
    """1-5 by rank (ties share the average rank), 5 for the highest values."""
    ranks = pd.Series(values).rank(method="average", pct=True).to_numpy(dtype=np.float64)
    result: Floats = np.ceil(ranks * 5).clip(1, 5)
    return result


def rfm_code(features: pd.DataFrame) -> Floats:
    recency = features["recency_days"].to_numpy(dtype=np.float64)
    r = _quintile(-recency)
    f = _quintile(features["frequency"].to_numpy(dtype=np.float64))
    m = _quintile(features["monetary"].to_numpy(dtype=np.float64))
    code: Floats = 100 * r + 10 * f + m
    return code


def run_rate(features: pd.DataFrame, horizon_days: int) -> Floats:
    spend = np.maximum(features["spend_365"].to_numpy(dtype=np.float64), 0.0)
    tenure = np.clip(features["tenure_days"].to_numpy(dtype=np.float64), 1.0, 365.0)
    result: Floats = spend / tenure * horizon_days
    return result


def btyd_churn(params: ClassicParams, item: Window, horizon_days: int) -> Floats:
    """Churn risk as a ranking: minus the expected purchases in the horizon, for every row (all
    of them bought before the cutoff)."""
    s = summary(item.features)
    expected = btyd.expected_purchases(params.bgnbd, horizon_days, s.frequency, s.recency, s.age)
    result: Floats = -expected
    return result


def btyd_no_purchase(params: ClassicParams, item: Window, horizon_days: int) -> Floats:
    """P(no purchase in the horizon) for every row: the model's probability of the label."""
    s = summary(item.features)
    return btyd.probability_no_purchase(params.bgnbd, horizon_days, s.frequency, s.recency, s.age)


def btyd_value(params: ClassicParams, item: Window, horizon_days: int) -> Floats:
    s = summary(item.features)
    purchases = btyd.expected_purchases(params.bgnbd, horizon_days, s.frequency, s.recency, s.age)
    if params.gamma_gamma is None:
        known = s.monetary[np.nan_to_num(s.monetary) > 0]
        average = np.full(s.rows.size, float(known.mean()) if known.size else 0.0)
    else:
        average = np.nan_to_num(average_value(params.gamma_gamma, s))
    result: Floats = purchases * average
    return result


def evaluate_baselines(
    holdout: Window, horizon_days: int, kind: ModelKind, fit: ClassicParams | None
) -> dict[str, dict[str, float]]:
    """The baselines of `kind` on the holdout rows, keyed by baseline name then metric.
    BG/NBD (+ Gamma-Gamma) is fitted on the holdout customers' histories before its cutoff;
    (`fit_classic(holdout.features)`); when the data cannot support the fit (`fit` None) it is
    left out of the table and of the comparison."""
    code = rfm_code(holdout.features)
    if kind is ModelKind.CHURN:
        table = {"rfm": churn_metrics(holdout.churned, -code, probabilities=False)}
        if fit is not None:
            ranked = churn_metrics(
                holdout.churned, btyd_churn(fit, holdout, horizon_days), probabilities=False
            )
            calibrated = churn_metrics(
                holdout.churned, btyd_no_purchase(fit, holdout, horizon_days), probabilities=True
            )
            table["bgnbd"] = {
                **ranked,
                "log_loss": calibrated["log_loss"],
                "brier": calibrated["brier"],
            }
        return table
    table = {
        "rfm": value_metrics(holdout.spend, code, amounts=False),
        "run_rate": value_metrics(
            holdout.spend, run_rate(holdout.features, horizon_days), amounts=True
        ),
    }
    if fit is not None:
        table["bgnbd_gg"] = value_metrics(
            holdout.spend, btyd_value(fit, holdout, horizon_days), amounts=True
        )
    return table
