"""Influence: how much a customer moves others, from the referral and review graphs.

The score propagates credit up the referral graph, PageRank-style (a damped walk, as in Katz
centrality): a customer's influence is their own reach plus half of what each person they
referred brought, that person's spend and influence included:

    influence(i) = own(i) + 1/2 * sum, over i's referees r, of (spend(r) / mean + influence(r))
    own(i)       = 1 + log(1 + social followers) + log(1 + helpful votes on their reviews)

so bringing a big spender or a prolific reviewer counts, and so does bringing someone who brings
others. Review helpfulness and social reach enter on a log scale (a thousand followers is not a
thousand referrals). Scores are scaled to average 1.0 over the customers being ranked (2.0:
twice the average influence) and ranked into percentiles among them.

`network_value` is the money side: the value a customer brings through others, half of each
referee's predicted value plus half of what that referee brings in turn.

A referee who may not be profiled brings nothing to anyone here (`joined_referrals`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from scoring.history import Bools, Floats, History, days, joined_referrals

DAMPING = 0.5  # of what a referee brings, credited to whoever referred them
MAX_ITERATIONS = 100
TOLERANCE = 1e-10


@dataclass(frozen=True, slots=True)
class Influence:
    score: Floats
    percentile: Floats  # NaN outside the ranked population
    reach: Floats


def propagate(
    referrer: np.ndarray,
    referee: np.ndarray,
    own: Floats,
    gift: Floats,
    *,
    rounds: int = MAX_ITERATIONS,
) -> Floats:
    """own + DAMPING * sum over referees of (gift + result), by fixed-point iteration: exact
    after as many rounds as the longest referral chain (capped, for cycles that merges made).
    One round takes `gift` as already holding what each referee brings."""
    result = own.copy()
    for _ in range(rounds):
        flow = np.bincount(referrer, weights=gift[referee] + result[referee], minlength=own.size)
        updated: Floats = own + DAMPING * flow.astype(np.float64)
        if np.abs(updated - result).sum() < TOLERANCE * max(1.0, float(np.abs(own).sum())):
            return updated
        result = updated
    return result


def percentiles(values: Floats, population: Bools) -> Floats:
    """Percentile rank (0-100, ties averaged) within `population`; NaN elsewhere."""
    out = np.full(values.size, np.nan)
    if population.any():
        ranked = pd.Series(values[population]).rank(method="average", pct=True)
        out[population] = ranked.to_numpy(dtype=np.float64) * 100
    return out


def influence(
    history: History, cutoff: datetime, features: pd.DataFrame, population: Bools
) -> Influence:
    """Scores for every owner of the history, percentiles among `population`."""
    h = history
    column = {name: features[name].to_numpy(dtype=np.float64) for name in _USED}
    joined = _joined(h, cutoff)
    referrer, referee = h.ref_referrer[joined], h.ref_referee[joined]
    monetary = np.maximum(column["monetary"], 0.0)
    # Both scales are averages over the ranked population only: nobody outside it (who may
    # not be profiled) moves anyone's score.
    buyers = monetary[population & (monetary > 0)]
    gift = monetary / (float(buyers.mean()) if buyers.size else 1.0)
    own = 1.0 + np.log1p(column["social_followers"]) + np.log1p(column["helpful_votes"])
    raw = propagate(referrer, referee, own, gift)
    score = raw / raw[population].mean() if population.any() else raw
    referees = np.bincount(referrer, minlength=h.size).astype(np.float64)
    reach = column["social_followers"] + column["review_voters"] + referees
    return Influence(score=score, percentile=percentiles(score, population), reach=reach)


_USED = ("monetary", "social_followers", "helpful_votes", "review_voters")


def _joined(h: History, cutoff: datetime) -> Bools:
    return joined_referrals(h, days(cutoff))


def network_value(
    history: History, cutoff: datetime, predicted: Floats, *, rounds: int = MAX_ITERATIONS
) -> Floats:
    """Per owner: the value brought through the people they referred (see module doc)."""
    joined = _joined(history, cutoff)
    referrer, referee = history.ref_referrer[joined], history.ref_referee[joined]
    return propagate(referrer, referee, np.zeros(history.size), predicted, rounds=rounds)
