"""The classic models' view of a customer, as features the LightGBM models build on.

BG/NBD and Gamma-Gamma (`scoring.btyd`), fitted once at training time on the newest training
window, turn each customer's recency, frequency and average check into a probability of being
alive, expected purchases and expected spend over 90 days. The fitted parameters travel with the
model (its MLflow metadata), and `derive` is a pure function of the feature frame and those
parameters, so training and serving compute exactly the same columns. The boosted trees then
only have to learn what the classic model misses (complaints, seasons, loyalty, influence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring import btyd
from scoring.history import Floats

HORIZON_DAYS = 90
DERIVED_FEATURES: tuple[str, ...] = (
    "bgnbd_p_alive",
    "bgnbd_expected_90",
    "bgnbd_no_purchase_90",
    "gg_average_value",
    "bgnbd_expected_spend_90",
)
DERIVED_DESCRIPTIONS = {
    "bgnbd_p_alive": "BG/NBD probability that the customer is still active",
    "bgnbd_expected_90": "BG/NBD expected purchases in the next 90 days",
    "bgnbd_no_purchase_90": "BG/NBD probability of no purchase in the next 90 days",
    "gg_average_value": "Gamma-Gamma expected average purchase",
    "bgnbd_expected_spend_90": "BG/NBD x Gamma-Gamma expected spend in the next 90 days",
}


@dataclass(frozen=True, slots=True)
class ClassicParams:
    bgnbd: btyd.BgNbdParams
    gamma_gamma: btyd.GammaGammaParams | None

    def as_json(self) -> dict[str, Any]:
        spend = self.gamma_gamma
        return {
            "bgnbd": [self.bgnbd.r, self.bgnbd.alpha, self.bgnbd.a, self.bgnbd.b],
            "gamma_gamma": None if spend is None else [spend.p, spend.q, spend.v],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClassicParams:
        r, alpha, a, b = data["bgnbd"]
        spend = data.get("gamma_gamma")
        return cls(
            bgnbd=btyd.BgNbdParams(r, alpha, a, b),
            gamma_gamma=None if spend is None else btyd.GammaGammaParams(*spend),
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """The BG/NBD and Gamma-Gamma view of the customers of a feature frame who bought, in whole
    days with the purchases of one day as one transaction (as [FHL05] and `lifetimes` count)."""

    rows: np.ndarray  # positions in the frame of the customers with a purchase
    frequency: Floats  # repeat purchase days
    recency: Floats  # days from the first purchase day to the last
    age: Floats  # days from the first purchase day to the last day observed (T)
    monetary: Floats  # mean spend of the repeat purchase days (NaN without one)


def summary(frame: pd.DataFrame) -> Summary:
    purchase_days = frame["purchase_days"].to_numpy(dtype=np.float64)
    rows = np.flatnonzero(purchase_days >= 1)
    repeats = purchase_days[rows] - 1
    age = np.maximum(frame["purchase_day_age"].to_numpy(dtype=np.float64)[rows], 0.0)
    span = frame["purchase_day_span"].to_numpy(dtype=np.float64)[rows]
    recency = np.where(repeats > 0, np.clip(span, 0.0, age), 0.0)
    monetary = frame["repeat_day_average"].to_numpy(dtype=np.float64)[rows]
    return Summary(rows, repeats, recency, age, monetary)


def _priced(s: Summary) -> np.ndarray:
    """Repeat buyers whose repeat purchases have amounts: the ones Gamma-Gamma can read."""
    result: np.ndarray = (s.frequency > 0) & (np.nan_to_num(s.monetary) > 0)
    return result


def fit_classic(frame: pd.DataFrame) -> ClassicParams | None:
    """Fit both models on a window's customers; None when the data cannot support a BG/NBD fit
    (a Gamma-Gamma that cannot be fitted is left out)."""
    s = summary(frame)
    try:
        bgnbd = btyd.fit_bgnbd(s.frequency, s.recency, s.age)
    except ValueError:
        return None
    priced = _priced(s)
    spend: btyd.GammaGammaParams | None = None
    if priced.sum() >= 20:
        try:
            spend = btyd.fit_gamma_gamma(s.frequency[priced], s.monetary[priced])
        except ValueError:
            spend = None
    return ClassicParams(bgnbd, spend)


def average_value(params: btyd.GammaGammaParams, s: Summary) -> Floats:
    """Gamma-Gamma expected mean purchase: the customer's own evidence where there is some,
    the population mean where there is none (NaN when that mean is infinite, q <= 1)."""
    p, q, v = params.p, params.q, params.v
    out = np.full(s.rows.size, p * v / (q - 1) if q > 1 else np.nan)
    priced = _priced(s)
    if priced.any():
        out[priced] = btyd.expected_average_value(params, s.frequency[priced], s.monetary[priced])
    return out


def derive(frame: pd.DataFrame, params: ClassicParams | None) -> pd.DataFrame:
    """`frame` with the DERIVED_FEATURES columns added (NaN without parameters, and for
    customers without a purchase)."""
    out = frame.copy()
    columns = {name: np.full(len(frame), np.nan) for name in DERIVED_FEATURES}
    s = summary(frame)
    if params is not None and s.rows.size:
        f, r, t, rows = s.frequency, s.recency, s.age, s.rows
        columns["bgnbd_p_alive"][rows] = btyd.probability_alive(params.bgnbd, f, r, t)
        expected = btyd.expected_purchases(params.bgnbd, HORIZON_DAYS, f, r, t)
        columns["bgnbd_expected_90"][rows] = expected
        columns["bgnbd_no_purchase_90"][rows] = btyd.probability_no_purchase(
            params.bgnbd, HORIZON_DAYS, f, r, t
        )
        if params.gamma_gamma is not None:
            average = average_value(params.gamma_gamma, s)
            columns["gg_average_value"][rows] = average
            columns["bgnbd_expected_spend_90"][rows] = expected * average
    for name in DERIVED_FEATURES:
        out[name] = columns[name]
    return out
