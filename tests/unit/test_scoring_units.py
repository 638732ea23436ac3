"""The pure parts of scoring: features on a hand-built history, influence propagation, the
time split, metrics and the promotion rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from core.errors import DomainError
from graph.enums import CampaignAction, Channel, CustomerStatus, EventType
from ml.datasets import LEAD_DAYS, plan_cutoffs
from ml.metrics import normalised_gini, top_decile_capture, top_decile_lift
from ml.training import decide
from scoring.btyd import BgNbdParams, GammaGammaParams
from scoring.classic import DERIVED_FEATURES, ClassicParams, derive
from scoring.errors import ScoringErrorCode
from scoring.features import FEATURE_NAMES, compute_features, eligible
from scoring.history import ACTIONS, CHANNELS, EVENT_TYPES, STATUSES, History, days, voter_key
from scoring.influence import influence, network_value, percentiles, propagate
from scoring.kinds import ModelKind, RiskBand, ValueSegment, risk_band, value_segment

CUTOFF = datetime(2026, 6, 1, tzinfo=UTC)
EPOCH = days(CUTOFF)


def _at(days_before: float) -> float:
    return EPOCH - days_before


def history(
    *,
    customers: int,
    events: list[tuple[int, EventType, float, float | None]] = (),  # type: ignore[assignment]
    referrals: list[tuple[int, int, float, float | None]] = (),  # type: ignore[assignment]
    reviews: list[tuple[int, float]] = (),  # type: ignore[assignment]
    votes: list[tuple[int, int, float, bool]] = (),  # type: ignore[assignment]
    tiers: list[tuple[int, float, float]] = (),  # type: ignore[assignment]
    followers: list[tuple[int, float, float]] = (),  # type: ignore[assignment]
    recounts: list[tuple[int, float, float]] = (),  # type: ignore[assignment]
    profiled: np.ndarray | None = None,
) -> History:
    """A history from tuples; times are days before CUTOFF (negative: after it)."""
    owners = [uuid.UUID(int=n + 1) for n in range(customers)]

    def ints(values: Any) -> np.ndarray:
        return np.array(list(values), dtype=np.int64)

    def floats(values: Any) -> np.ndarray:
        return np.array(list(values), dtype=np.float64)

    ordered = sorted(events, key=lambda e: -e[2])
    # Each linked profile is counted when linked; `recounts` (profile, count, when) add more.
    counts = sorted(
        [(n, f[1], f[2]) for n, f in enumerate(followers)] + list(recounts), key=lambda c: -c[2]
    )
    return History(
        owners=owners,
        until=EPOCH + 400,
        currency="RUB",
        registered_at=np.full(customers, _at(700)),
        status=np.full(customers, STATUSES.index(CustomerStatus.ACTIVE), dtype=np.int64),
        profiled=np.ones(customers, dtype=np.bool_) if profiled is None else profiled,
        ev_cid=ints(e[0] for e in ordered),
        ev_type=ints(EVENT_TYPES.index(e[1]) for e in ordered),
        ev_channel=ints(CHANNELS.index(Channel.POS) for _ in ordered),
        ev_at=floats(_at(e[2]) for e in ordered),
        ev_amount=floats(np.nan if e[3] is None else e[3] for e in ordered),
        ev_satisfaction=floats(np.nan for _ in ordered),
        ev_action=ints(
            ACTIONS.index(CampaignAction.OPENED) if e[1] is EventType.CAMPAIGN_RESPONSE else -1
            for e in ordered
        ),
        rv_cid=ints(r[0] for r in reviews),
        rv_at=floats(_at(r[1]) for r in reviews),
        vote_review=ints(v[0] for v in votes),
        vote_voter=ints(voter_key(owners[v[1]]) for v in votes),
        vote_at=floats(_at(v[2]) for v in votes),
        vote_helpful=np.array([v[3] for v in votes], dtype=np.bool_),
        vote_profiled=np.array(
            [True if profiled is None else bool(profiled[v[1]]) for v in votes], dtype=np.bool_
        ),
        ref_referrer=ints(r[0] for r in referrals),
        ref_referee=ints(r[1] for r in referrals),
        ref_created_at=floats(_at(r[2]) for r in referrals),
        ref_registered_at=floats(_at(r[2]) for r in referrals),
        ref_converted_at=floats(np.nan if r[3] is None else _at(r[3]) for r in referrals),
        so_cid=ints(f[0] for f in followers),
        so_linked_at=floats(_at(f[2]) for f in followers),
        fc_profile=ints(c[0] for c in counts),
        fc_followers=floats(c[1] for c in counts),
        fc_at=floats(_at(c[2]) for c in counts),
        le_cid=ints([]),
        le_kind=np.array([], dtype=np.str_),
        le_points=floats([]),
        le_at=floats([]),
        tc_cid=ints(t[0] for t in tiers),
        tc_rank=floats(t[1] for t in tiers),
        tc_at=floats(_at(t[2]) for t in tiers),
    )


P, R = EventType.PURCHASE, EventType.RETURN


def test_features_see_only_what_happened_before_the_cutoff():
    h = history(
        customers=2,
        events=[(0, P, 200, 1000.0), (0, P, 50, 3000.0), (0, R, 40, 500.0), (0, P, 0, 9999.0),
                (0, P, -5, 7777.0), (1, EventType.CAMPAIGN_RESPONSE, 10, None)],
        tiers=[(0, 1, 100), (0, 2, -1)],
    )  # fmt: skip
    f = compute_features(h, CUTOFF).iloc[0]
    # The purchase at the cutoff itself and the one after it are not seen.
    assert f["frequency"] == 2
    assert f["monetary"] == 1000 + 3000 - 500
    assert f["recency_days"] == pytest.approx(50)
    assert f["lifetime_days"] == pytest.approx(200)
    assert f["avg_interpurchase_days"] == pytest.approx(150)
    assert f["frequency_90"] == 1 and f["spend_90"] == 2500
    assert f["returns_share"] == pytest.approx(500 / 4000)
    assert f["tier_rank"] == 1  # the change after the cutoff is not known yet
    assert compute_features(h, CUTOFF).iloc[1]["campaign_opened_365"] == 1
    assert list(eligible(h, CUTOFF)) == [True, False]
    assert list(compute_features(h, CUTOFF).columns) == list(FEATURE_NAMES)


def test_influence_features_count_referees_spend_two_levels_down_and_distinct_voters():
    h = history(
        customers=4,
        events=[(1, P, 100, 2000.0), (2, P, 90, 500.0), (3, P, 10, 100.0)],
        referrals=[(0, 1, 150, 100), (1, 2, 120, 90), (0, 3, 5, None)],
        reviews=[(0, 60)],
        votes=[(0, 1, 50, True), (0, 1, 40, True), (0, 2, 30, False), (0, 3, -3, True)],
    )  # fmt: skip
    f = compute_features(h, CUTOFF)
    first = f.iloc[0]
    assert first["referrals_made"] == 2 and first["referrals_converted"] == 1
    # Referee 3 joined 5 days before the cutoff and spent 100: counted, though not converted.
    assert first["referred_spend"] == 2000 + 100
    assert first["referred_spend_2"] == 500
    assert first["helpful_votes"] == 2  # the vote after the cutoff is not counted
    assert first["review_voters"] == 2  # customer 1 voted twice, customer 2 once (unhelpful)
    assert f.iloc[1]["referred_spend"] == 500


def test_a_referee_or_voter_who_may_not_be_profiled_counts_for_nobody():
    # 0 referred 1 and 2; 1 referred 3; 1 and 2 found 0's review helpful. 1 permitted profiling.
    permitted = np.array([True, False, True, True])
    spec: dict[str, Any] = {
        "customers": 4,
        "events": [(1, P, 100, 2000.0), (2, P, 90, 500.0), (3, P, 80, 300.0)],
        "referrals": [(0, 1, 150, 100), (0, 2, 140, 90), (1, 3, 120, 80)],
        "reviews": [(0, 60)],
        "votes": [(0, 1, 50, True), (0, 2, 40, True)],
    }
    everyone = compute_features(history(**spec), CUTOFF)
    h = history(**spec, profiled=permitted)
    f = compute_features(h, CUTOFF)
    assert (
        everyone.iloc[0]["referred_spend"] == 2500 and everyone.iloc[0]["referred_spend_2"] == 300
    )
    # Nothing of customer 1, and nothing that reaches 0 through them.
    assert f.iloc[0]["referrals_made"] == 2  # 0's own invitations still count
    assert f.iloc[0]["referrals_converted"] == 1
    assert f.iloc[0]["referred_spend"] == 500 and f.iloc[0]["referred_spend_2"] == 0
    assert f.iloc[1]["referred_spend"] == 300  # 1's own features are not this rule's concern
    assert everyone.iloc[0]["helpful_votes"] == 2 and everyone.iloc[0]["review_voters"] == 2
    assert f.iloc[0]["helpful_votes"] == 1 and f.iloc[0]["review_voters"] == 1
    result = influence(h, CUTOFF, f, permitted)
    assert result.reach[0] == 1 + 1  # one voter, one referee
    assert result.score[permitted].mean() == pytest.approx(1.0)  # scaled over the permitted
    value = network_value(h, CUTOFF, np.array([0.0, 1000.0, 100.0, 40.0]))
    assert value[0] == pytest.approx(50.0)


def test_follower_counts_are_the_ones_observed_before_the_cutoff():
    h = history(
        customers=2,
        followers=[(0, 100, 300), (0, 50, 200), (1, 7, -5)],  # 1 links after the cutoff
        recounts=[(0, 400, 100), (0, 9000, -10), (2, 70, -20)],
    )
    f = compute_features(h, CUTOFF)
    assert f.iloc[0]["social_followers"] == 400 + 50  # not the 9000 counted after the cutoff
    assert f.iloc[0]["social_profiles"] == 2
    assert f.iloc[1]["social_followers"] == 0 and f.iloc[1]["social_profiles"] == 0
    earlier = compute_features(h, CUTOFF - timedelta(days=150))
    assert earlier.iloc[0]["social_followers"] == 100 + 50


def test_influence_propagates_up_referral_chains_with_damping():
    referrer, referee = np.array([0, 1]), np.array([1, 2])
    own = np.array([1.0, 1.0, 1.0])
    gift = np.array([0.0, 2.0, 4.0])
    result = propagate(referrer, referee, own, gift)
    # 2 brings 0.5 * (4 + 1) to 1; 1 brings 0.5 * (2 + 3.5) to 0.
    assert result.tolist() == pytest.approx([1 + 0.5 * (2 + 3.5), 3.5, 1.0])
    one_round = propagate(referrer, referee, np.zeros(3), gift, rounds=1)
    assert one_round.tolist() == pytest.approx([1.0, 2.0, 0.0])


def test_network_value_is_half_of_what_referees_bring():
    h = history(customers=3, referrals=[(0, 1, 100, 50), (1, 2, 80, 40)])
    predicted = np.array([10.0, 100.0, 40.0])
    assert network_value(h, CUTOFF, predicted).tolist() == pytest.approx([60.0, 20.0, 0.0])


def test_an_influencer_who_buys_little_outranks_a_big_spender():
    h = history(
        customers=6,
        events=[(0, P, 30, 50_000.0)] + [(n, P, 20, 8000.0) for n in (2, 3, 4, 5)],
        referrals=[(1, n, 100, 50) for n in (2, 3, 4, 5)],
        reviews=[(1, 60)],
        votes=[(0, n, 50, True) for n in (0, 2, 3)],
        followers=[(1, 20_000, 100)],
    )  # fmt: skip
    features = compute_features(h, CUTOFF)
    everyone = np.ones(6, dtype=np.bool_)
    result = influence(h, CUTOFF, features, everyone)
    assert result.score[1] > result.score[0] > 0
    assert result.percentile[1] == 100
    assert result.score.mean() == pytest.approx(1.0)
    assert result.reach[1] == 20_000 + 3 + 4  # followers, distinct voters, referees


def test_percentiles_rank_within_the_population_only():
    values = np.array([5.0, 1.0, 3.0, 100.0])
    population = np.array([True, True, True, False])
    ranked = percentiles(values, population)
    assert ranked[:3].tolist() == pytest.approx([100.0, 100 / 3, 200 / 3])
    assert np.isnan(ranked[3])


def test_derived_classic_features_are_a_pure_function_of_the_frame():
    h = history(customers=2, events=[(0, P, 300, 100.0), (0, P, 100, 300.0), (1, P, 10, 50.0)])
    frame = compute_features(h, CUTOFF)
    params = ClassicParams(BgNbdParams(0.5, 20.0, 0.8, 2.5), GammaGammaParams(6.0, 4.0, 15.0))
    first, again = derive(frame, params), derive(frame.copy(), params)
    assert first[list(DERIVED_FEATURES)].equals(again[list(DERIVED_FEATURES)])
    assert 0 < first.loc[0, "bgnbd_p_alive"] <= 1
    assert first.loc[1, "bgnbd_p_alive"] == 1  # no repeat purchase: alive by definition
    assert derive(frame, None)[list(DERIVED_FEATURES)].isna().all().all()


def test_the_time_split_never_labels_past_the_next_window():
    cutoff = datetime(2026, 12, 1, tzinfo=UTC)
    plan = plan_cutoffs(cutoff, 90, train_cutoffs=4, step_days=30)
    horizon = timedelta(days=90)
    assert plan.holdout + horizon == cutoff
    assert plan.validation + horizon == plan.holdout
    assert all(train + horizon <= plan.validation for train in plan.train)
    assert list(plan.train) == sorted(plan.train, reverse=True)


@pytest.mark.parametrize(("horizon", "months"), [(270, 18), (90, 8), (180, 12), (90, 36), (30, 5)])
def test_cutoffs_fit_in_the_history_there_is(horizon, months):
    cutoff = datetime(2026, 12, 1, tzinfo=UTC)
    start = cutoff - timedelta(days=round(months * 30.44))
    plan = plan_cutoffs(cutoff, horizon, train_cutoffs=12, step_days=30, first_purchase=start)
    h = timedelta(days=horizon)
    assert plan.holdout + h == cutoff  # the holdout's labels end at D
    assert plan.validation + h <= cutoff and all(train + h <= cutoff for train in plan.train)
    assert plan.train and all(train >= start + timedelta(days=LEAD_DAYS) for train in plan.train)
    assert max(plan.train) < plan.validation < plan.holdout
    assert list(plan.train) == sorted(plan.train, reverse=True)
    if start + 3 * h + timedelta(days=LEAD_DAYS) <= cutoff:  # room for the strict split
        assert not plan.overlapping
        assert plan.validation + h == plan.holdout
        assert all(train + h <= plan.validation for train in plan.train)
    else:
        assert plan.overlapping and plan.gap_days < horizon


def test_a_history_too_short_for_the_horizon_is_refused():
    cutoff = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(DomainError) as refused:
        plan_cutoffs(cutoff, 270, first_purchase=cutoff - timedelta(days=300))
    assert refused.value.code == ScoringErrorCode.EMPTY_TRAINING_WINDOW
    assert "too short" in refused.value.message


def test_metrics_on_known_orderings():
    actual = np.array([0.0, 0, 0, 10, 0, 0, 5, 0, 0, 85])
    assert normalised_gini(actual, actual) == pytest.approx(1.0)
    assert normalised_gini(actual, -actual) < 0
    assert top_decile_capture(actual, actual) == pytest.approx(0.85)
    churned = np.array([True] + [False] * 9)
    assert top_decile_lift(churned, churned.astype(float)) == pytest.approx(10.0)


def test_the_promotion_rule():
    kind = ModelKind.CHURN
    baselines = {"rfm": {"auc": 0.80}, "bgnbd": {"auc": 0.85, "log_loss": 0.4}}
    assert decide(kind, {"auc": 0.86}, baselines, None, None).promote
    assert not decide(kind, {"auc": 0.85}, baselines, None, None).promote  # a tie is no win
    assert not decide(kind, {"auc": 0.84}, baselines, None, None).promote
    assert decide(kind, {"auc": 0.87}, baselines, {"auc": 0.86}, "3").promote
    worse = decide(kind, {"auc": 0.86}, baselines, {"auc": 0.87}, "3")
    assert not worse.promote and "champion v3" in worse.reason
    odd = decide(kind, {"auc": 0.9}, baselines, None, "3", incomparable="predicts 30 days")
    assert not odd.promote
    gini = decide(ModelKind.VALUE, {"normalised_gini": 0.7}, {"rfm": {"normalised_gini": 0.6}},
                  None, None)  # fmt: skip
    assert gini.promote


def test_bands_and_segments():
    assert [risk_band(p) for p in (0.0, 0.39, 0.4, 0.69, 0.7, 1.0)] == [
        RiskBand.LOW, RiskBand.LOW, RiskBand.MEDIUM, RiskBand.MEDIUM, RiskBand.HIGH, RiskBand.HIGH
    ]  # fmt: skip
    assert [value_segment(p) for p in (0, 29.9, 30, 70, 90, 100)] == [
        ValueSegment.LOW, ValueSegment.LOW, ValueSegment.MEDIUM, ValueSegment.HIGH,
        ValueSegment.TOP, ValueSegment.TOP,
    ]  # fmt: skip


def test_classic_features_survive_purchases_without_amounts():
    h = history(
        customers=2,
        events=[(0, P, 300, None), (0, P, 100, None), (1, P, 200, 100.0), (1, P, 50, 300.0),
                (1, P, 20, 500.0)],
    )  # fmt: skip
    frame = compute_features(h, CUTOFF)
    assert np.isnan(frame.loc[0, "repeat_average"]) and np.isnan(frame.loc[0, "average_check"])
    assert frame.loc[1, "repeat_average"] == 400 and frame.loc[1, "average_check"] == 300
    params = ClassicParams(BgNbdParams(0.5, 20.0, 0.8, 2.5), GammaGammaParams(6.0, 4.0, 15.0))
    derived = derive(frame, params)
    # No amount to read: the population mean p * v / (q - 1), not an error.
    assert derived.loc[0, "gg_average_value"] == pytest.approx(6.0 * 15.0 / 3.0)
    assert derived.loc[1, "gg_average_value"] > derived.loc[0, "gg_average_value"]
