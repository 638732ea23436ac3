"""The BG/NBD and Gamma-Gamma baselines against the reference implementation, `lifetimes`, on
one shared synthetic transaction log: customers drawn from the models themselves, with some
purchases paid in two receipts on the same day. Both read the log as the literature does
(purchase days: frequency = repeat purchase days, the day's receipts one transaction worth
their sum), fit by maximum likelihood, rank churn by the expected purchases in the horizon and
value by expected purchases times expected average value; the holdout metrics must agree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

from graph.enums import EventType
from ml.baselines import evaluate_baselines
from ml.datasets import Window, window
from ml.metrics import churn_metrics, value_metrics
from scoring.classic import ClassicParams, fit_classic, summary
from scoring.kinds import ModelKind
from tests.unit.test_scoring_units import CUTOFF, history

CUSTOMERS = 1500
CALIBRATION = 420  # days of purchases before the cutoff
HORIZON = 90  # days after it: the holdout labels


@dataclass(frozen=True)
class Shared:
    # (customer, type, days before the cutoff, amount)
    events: list[tuple[int, EventType, float, float | None]]
    transactions: pd.DataFrame  # the same purchases before the cutoff, as `lifetimes` takes them


@cache
def shared() -> Shared:
    """BG/NBD purchasing (r 0.6, alpha 25 days, a 0.9, b 3), Gamma-Gamma spend (p 3, q 4,
    v 3000); a quarter of the purchases are paid in two receipts a few hours apart that day."""
    rng = np.random.default_rng(20261207)
    rate = rng.gamma(0.6, 1 / 25, CUSTOMERS)
    dropout = rng.beta(0.9, 3.0, CUSTOMERS)
    nu = rng.gamma(4.0, 1 / 3000, CUSTOMERS)
    events: list[tuple[int, EventType, float, float | None]] = []
    for customer in range(CUSTOMERS):
        t = rng.uniform(0, CALIBRATION - 30)
        times = [t]
        while True:
            t += rng.exponential(1 / rate[customer])
            if t >= CALIBRATION + HORIZON:
                break
            times.append(t)
            if rng.random() < dropout[customer]:
                break
        for at in times:
            amount = round(float(rng.gamma(3.0, 1 / nu[customer])), 2)
            day_end = np.floor(at) + 1 - 1e-6
            if rng.random() < 0.25 and at + 0.1 < day_end:
                later = float(rng.uniform(at + 0.01, day_end))
                share = round(amount * 0.6, 2)
                events.append((customer, EventType.PURCHASE, CALIBRATION - at, share))
                events.append((customer, EventType.PURCHASE, CALIBRATION - later, amount - share))
            else:
                events.append((customer, EventType.PURCHASE, CALIBRATION - at, amount))
    start = pd.Timestamp(CUTOFF.replace(tzinfo=None))
    before = sorted((e for e in events if e[2] > 0), key=lambda e: -e[2])
    transactions = pd.DataFrame(
        {
            "customer": [e[0] for e in before],
            "date": [start - pd.to_timedelta(e[2], unit="D") for e in before],
            "amount": [e[3] for e in before],
        }
    )
    return Shared(events, transactions)


@cache
def ours() -> tuple[Window, ClassicParams]:
    h = history(customers=CUSTOMERS, events=shared().events)
    holdout = window(h, CUTOFF, HORIZON, np.ones(CUSTOMERS, dtype=np.bool_))
    fit = fit_classic(holdout.features)
    assert fit is not None and fit.gamma_gamma is not None
    return holdout, fit


@cache
def reference() -> dict[str, Any]:
    last_day = pd.Timestamp((CUTOFF - timedelta(days=1)).replace(tzinfo=None))
    data = summary_data_from_transaction_data(
        shared().transactions, "customer", "date", monetary_value_col="amount",
        observation_period_end=last_day, freq="D",
    )  # fmt: skip
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(data["frequency"], data["recency"], data["T"])
    repeat = data[data["frequency"] > 0]
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"])
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(
        HORIZON, data["frequency"], data["recency"], data["T"]
    )
    average = ggf.conditional_expected_average_profit(data["frequency"], data["monetary_value"])
    return {"summary": data, "bgf": bgf, "ggf": ggf, "expected": expected, "average": average}


def test_the_summary_counts_purchase_days_as_lifetimes_does():
    holdout, _ = ours()
    mine = summary(holdout.features)
    ref = reference()["summary"].loc[holdout.cids[mine.rows]]
    assert mine.rows.size == holdout.rows == len(reference()["summary"])
    # The log has same-day receipts: counting receipts would give more repeat purchases.
    receipts = holdout.features["frequency"].to_numpy()[mine.rows] - 1
    assert (receipts > mine.frequency).sum() > 50
    np.testing.assert_array_equal(mine.frequency, ref["frequency"].to_numpy())
    np.testing.assert_array_equal(mine.recency, ref["recency"].to_numpy())
    np.testing.assert_array_equal(mine.age, ref["T"].to_numpy())
    repeat = mine.frequency > 0
    np.testing.assert_allclose(
        mine.monetary[repeat], ref["monetary_value"].to_numpy()[repeat], rtol=1e-9
    )


def test_the_fits_agree_with_lifetimes():
    _, fit = ours()
    bgf, ggf = reference()["bgf"], reference()["ggf"]
    mine = [fit.bgnbd.r, fit.bgnbd.alpha, fit.bgnbd.a, fit.bgnbd.b]
    assert mine == pytest.approx([bgf.params_[k] for k in ("r", "alpha", "a", "b")], rel=2e-3)
    assert fit.gamma_gamma is not None
    spend = [fit.gamma_gamma.p, fit.gamma_gamma.q, fit.gamma_gamma.v]
    assert spend == pytest.approx([ggf.params_[k] for k in ("p", "q", "v")], rel=2e-3)


def test_holdout_metrics_agree_with_lifetimes():
    holdout, fit = ours()
    churn = evaluate_baselines(holdout, HORIZON, ModelKind.CHURN, fit)["bgnbd"]
    value = evaluate_baselines(holdout, HORIZON, ModelKind.VALUE, fit)["bgnbd_gg"]
    ref = reference()
    expected = ref["expected"].loc[holdout.cids].to_numpy()
    average = ref["average"].loc[holdout.cids].to_numpy()
    ref_churn = churn_metrics(holdout.churned, -expected, probabilities=False)
    ref_value = value_metrics(holdout.spend, expected * average, amounts=True)
    assert 0.6 < ref_churn["auc"] < 0.95  # the data carry signal, and not a trivial one
    assert churn["auc"] == pytest.approx(ref_churn["auc"], abs=1e-3)
    assert churn["top_decile_lift"] == pytest.approx(ref_churn["top_decile_lift"], abs=0.02)
    for metric in ("normalised_gini", "spearman", "top_decile_capture", "bias"):
        assert value[metric] == pytest.approx(ref_value[metric], abs=2e-3), metric
