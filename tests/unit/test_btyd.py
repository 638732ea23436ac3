"""The BG/NBD and Gamma-Gamma baselines in scoring.btyd: they reproduce the published CDNOW estimates
and prediction, obey the models' probability laws, reject bad input, and recover known
parameters from (and predict) data simulated from the models themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy.integrate import quad
from scipy.special import betaln

from scoring.btyd import (
    BgNbdParams,
    GammaGammaParams,
    bgnbd_log_likelihood,
    expected_average_value,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    probability_alive,
    probability_no_purchase,
)

Array = npt.NDArray[np.float64]
CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow_summary.csv"

# Fader, Hardie & Lee (2005), CDNOW, 39-week calibration period, time in weeks.
FHL05 = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
FHL05_LL = -9582.4
# Fader & Hardie (2013), the 946 CDNOW customers with at least one repeat purchase.
FH13 = GammaGammaParams(p=6.25, q=3.74, v=15.44)


@cache
def cdnow() -> tuple[Array, Array, Array, Array]:
    """frequency, recency, T (weeks) and mean repeat-purchase value of the 2357 customers."""
    data = np.loadtxt(CDNOW, delimiter=",", skiprows=1)
    assert data.shape == (2357, 5)
    return data[:, 1], data[:, 2], data[:, 3], data[:, 4]


@cache
def cdnow_bgnbd() -> BgNbdParams:
    x, t_x, big_t, _ = cdnow()
    return fit_bgnbd(x, t_x, big_t)


def as_tuple(params: BgNbdParams | GammaGammaParams) -> tuple[float, ...]:
    if isinstance(params, BgNbdParams):
        return (params.r, params.alpha, params.a, params.b)
    return (params.p, params.q, params.v)


# Published values are rounded to 3 significant figures or 3 decimals (so they carry up to
# +-0.2% rounding, for r = 0.243), and our optimiser stops within ~1e-6 of the maximum. 1% leaves
# room for a different optimiser while a wrong likelihood term moves the estimates much further.
PUBLISHED_REL = 0.01


def test_bgnbd_reproduces_fhl2005_cdnow_estimates() -> None:
    fitted = cdnow_bgnbd()
    assert as_tuple(fitted) == pytest.approx(as_tuple(FHL05), rel=PUBLISHED_REL)
    # The paper's log-likelihood at the optimum, printed to one decimal.
    x, t_x, big_t, _ = cdnow()
    assert bgnbd_log_likelihood(fitted, x, t_x, big_t).sum() == pytest.approx(FHL05_LL, abs=0.05)


def test_gamma_gamma_reproduces_fh2013_cdnow_estimates() -> None:
    x, _, _, monetary = cdnow()
    assert int(np.sum(x > 0)) == 946
    fitted = fit_gamma_gamma(x, monetary)
    assert as_tuple(fitted) == pytest.approx(as_tuple(FH13), rel=PUBLISHED_REL)


def test_fhl2005_prediction_for_customer_one() -> None:
    """FHL05: the customer with x = 2, t_x = 30.43, T = 38.86 (CDNOW customer 1) is expected to
    make 1.226 purchases in the next 39 weeks. The number is printed to 3 decimals, hence the
    5e-4 tolerance; it holds with the published (rounded) parameters and with our own fit."""
    for params in (FHL05, cdnow_bgnbd()):
        assert float(expected_purchases(params, 39.0, 2, 30.43, 38.86)) == pytest.approx(
            1.226, abs=5e-4
        )


TIMES = np.array([0.0, 1e-3, 0.5, 1.0, 5.0, 39.0, 100.0, 1e3, 1e5, 1e7])


def cdnow_grid(fn: Callable[..., Array], params: BgNbdParams) -> Array:
    """fn over every CDNOW customer (rows) and every horizon in TIMES (columns)."""
    x, t_x, big_t, _ = cdnow()
    return fn(params, TIMES[None, :], x[:, None], t_x[:, None], big_t[:, None])


def test_probability_no_purchase_is_a_decreasing_survival_curve() -> None:
    x, t_x, big_t, _ = cdnow()
    p0 = cdnow_grid(probability_no_purchase, FHL05)
    assert p0.shape == (2357, TIMES.size) and p0.dtype == np.float64
    assert np.all((p0 >= 0) & (p0 <= 1))
    assert p0[:, 0] == pytest.approx(1.0, abs=1e-15)
    # Non-increasing everywhere; strictly decreasing where nothing is lost to rounding (for
    # nearly-dead customers the changes are below the resolution of a number near 1).
    assert np.all(np.diff(p0, axis=1) <= 0)
    assert np.all(np.diff(p0[x == 0], axis=1) < 0) and np.all(np.diff(p0[:, :6], axis=1) < 0)
    # Dead customers never buy again, so at least P(dead) of them make no purchase; over a very
    # long horizon hardly any live repeat buyer stays silent.
    dead = 1 - probability_alive(FHL05, x, t_x, big_t)
    assert np.all(p0 >= dead[:, None] - 1e-15)
    assert p0[x > 0, -1] == pytest.approx(dead[x > 0], abs=1e-5)


def test_expected_purchases_start_at_zero_and_grow() -> None:
    x, t_x, big_t, _ = cdnow()
    expected = cdnow_grid(expected_purchases, FHL05)
    alive = probability_alive(FHL05, x, t_x, big_t)
    assert np.all(np.isfinite(expected)) and np.all(expected[:, 0] == 0)
    assert np.all(np.diff(expected, axis=1) > 0)
    # Over a short horizon t the rate is E[lambda | alive, history] = (r+x)/(alpha+T).
    rate = alive * (FHL05.r + x) / (FHL05.alpha + big_t)
    assert expected[:, 1] / TIMES[1] == pytest.approx(rate, rel=1e-3)
    # P(at least one purchase) <= E[number of purchases] (Markov's inequality).
    assert np.all(1 - cdnow_grid(probability_no_purchase, FHL05) <= expected + 1e-12)


def test_expected_purchases_match_direct_integration() -> None:
    """Independent of eq. (10) and hyp2f1: given alive, lambda ~ Gamma(r+x, alpha+T) and
    p ~ Beta(a, b+x), and the expected count in (T, T+t] is E[(1 - e^(-lambda p t)) / p]; the
    lambda expectation is closed-form, the p one is done by quadrature."""
    cases = [
        (FHL05, 0, 0.0, 38.86, 39.0),
        (FHL05, 2, 30.43, 38.86, 39.0),
        (FHL05, 29, 38.43, 38.86, 1e4),
        (FHL05, 5, 20.0, 32.0, 0.01),
        (BgNbdParams(2.0, 30.0, 3.5, 8.0), 120, 300.0, 365.0, 5e3),
        (BgNbdParams(2.0, 30.0, 3.0, 8.0), 100, 300.0, 365.0, 5e4),
    ]  # r - a is an integer
    for params, x, t_x, big_t, t in cases:
        want = if_alive_by_quadrature(params, x, t / (params.alpha + big_t))
        want *= float(probability_alive(params, x, t_x, big_t))
        assert float(expected_purchases(params, t, x, t_x, big_t)) == pytest.approx(want, rel=1e-7)


def if_alive_by_quadrature(params: BgNbdParams, x: int, u: float) -> float:
    """E[(1 - (1 + p u)^-(r+x)) / p] for p ~ Beta(a, b+x), with u = t/(alpha+T)."""
    k, log_b = params.r + x, float(betaln(params.a, params.b + x))

    def integrand(p: float) -> float:
        density = np.exp((params.a - 1) * np.log(p) + (params.b + x - 1) * np.log1p(-p) - log_b)
        return float(-np.expm1(-k * np.log1p(p * u)) / p * density)

    points = [1 / u] if u > 1 else None
    return float(quad(integrand, 0, 1, points=points, limit=200, epsabs=0, epsrel=1e-11)[0])


def test_expected_purchases_long_horizon_limit() -> None:
    # With a > 1 an alive customer makes E[1/p] = (a+b+x-1)/(a-1) more purchases in all.
    # The remainder decays like (t/(alpha+T))^-(a-1) here: about 1e-11 at t = 1e9.
    params = BgNbdParams(r=2.0, alpha=6.0, a=2.5, b=3.0)
    x, t_x, big_t = np.array([0, 1, 7, 400]), np.array([0, 10, 30, 51]), 52.0
    total = (
        (params.a + params.b + x - 1) / (params.a - 1) * probability_alive(params, x, t_x, big_t)
    )
    assert expected_purchases(params, 1e9, x, t_x, big_t) == pytest.approx(total, rel=1e-8)


def test_removable_singularities_are_smooth() -> None:
    # a = 1 and (for x = 0) a + b = 1 make eq. (10) 0/0; the values must join their neighbours.
    x, t_x, big_t, t = np.array([0, 3]), np.array([0, 20.0]), 30.0, 40.0
    for base, name in (
        (BgNbdParams(0.7, 5.0, 1.0, 2.0), "a"),
        (BgNbdParams(0.7, 5.0, 0.4, 0.6), "b"),
    ):
        at, below, above = (
            expected_purchases(replace(base, **{name: getattr(base, name) + e}), t, x, t_x, big_t)
            for e in (0.0, -1e-4, 1e-4)
        )
        assert np.all(np.isfinite(at))
        assert at == pytest.approx((below + above) / 2, rel=1e-6)
    # Next to a = 1 and over a short horizon, 1 - S in eq. (10) cancels to almost nothing; the
    # result must still be the short-horizon rate (r+x)/(alpha+T) P(alive) times t.
    for a in (1.0, 1.0 + 3e-7, 1.0 - 1e-5):
        params = BgNbdParams(0.7, 5.0, a, 2.0)
        rate = (params.r + x) / (params.alpha + big_t) * probability_alive(params, x, t_x, big_t)
        assert expected_purchases(params, 1e-5, x, t_x, big_t) / 1e-5 == pytest.approx(
            rate, rel=1e-5
        )


def test_probability_alive() -> None:
    # Nobody can drop out without a repeat purchase.
    assert np.all(probability_alive(FHL05, [0, 0], [0, 0], [1.0, 500.0]) == 1.0)
    alive = probability_alive(FHL05, 2, [10.0, 20.0, 30.43], 38.86)
    assert np.all((alive > 0) & (alive < 1)) and np.all(np.diff(alive) > 0)  # a later last buy
    longer = probability_alive(FHL05, 2, 30.43, [38.86, 50.0, 100.0])
    assert np.all(np.diff(longer) < 0)  # a longer silence since it
    assert probability_alive(FHL05, 2, 30.43, 38.86).shape == ()


def test_expected_average_value_shrinks_to_the_population_mean() -> None:
    population = FH13.p * FH13.v / (FH13.q - 1)
    value = expected_average_value(FH13, [0, 0, 1, 5, 100, 10**6], [np.nan, 50, 50, 50, 50, 50])
    assert value[:2] == pytest.approx([population, population])
    assert np.all(np.diff(value[1:]) > 0) and value[-1] == pytest.approx(50, rel=1e-5)
    x, _, _, monetary = cdnow()
    blend = expected_average_value(FH13, x, monetary)[x > 0]
    mine = monetary[x > 0]
    assert np.all(np.minimum(mine, population) <= blend + 1e-9)
    assert np.all(blend <= np.maximum(mine, population) + 1e-9)


def test_penalizer_shrinks_the_parameters() -> None:
    x, t_x, big_t, _ = cdnow()
    plain, shrunk = cdnow_bgnbd(), fit_bgnbd(x, t_x, big_t, penalizer=0.05)
    assert sum(v * v for v in as_tuple(shrunk)) < sum(v * v for v in as_tuple(plain))


BAD_CALLS: list[tuple[str, Callable[[], object]]] = [
    ("empty", lambda: fit_bgnbd([], [], [])),
    ("mismatched", lambda: fit_bgnbd([1, 2, 0], [3.0, 4.0, 0.0, 1.0], [5.0, 5.0, 5.0, 5.0])),
    ("negative", lambda: fit_bgnbd([1, -1], [3.0, 4.0], [5.0, 5.0])),
    ("negative", lambda: probability_alive(FHL05, [1], [-3.0], [5.0])),
    ("exceeds T", lambda: fit_bgnbd([1, 2], [3.0, 6.0], [5.0, 5.0])),
    ("NaN", lambda: fit_bgnbd([1, 2], [3.0, np.nan], [5.0, 5.0])),
    ("whole numbers", lambda: fit_bgnbd([1.5, 2], [3.0, 4.0], [5.0, 5.0])),
    ("recency must be 0", lambda: fit_bgnbd([0, 2], [3.0, 4.0], [5.0, 5.0])),
    ("no customer has a repeat", lambda: fit_bgnbd([0, 0], [0.0, 0.0], [5.0, 5.0])),
    ("penalizer", lambda: fit_bgnbd([1, 2], [3.0, 4.0], [5.0, 5.0], penalizer=-1.0)),
    ("negative", lambda: expected_purchases(FHL05, -1.0, 1, 3.0, 5.0)),
    ("mismatched", lambda: probability_no_purchase(FHL05, [1.0, 2.0, 3.0], [1, 2], 3.0, 5.0)),
    ("positive", lambda: BgNbdParams(r=-0.2, alpha=4.0, a=0.8, b=2.4)),
    ("positive", lambda: GammaGammaParams(p=6.0, q=np.inf, v=15.0)),
    ("monetary must be > 0", lambda: fit_gamma_gamma([1, 2], [0.0, 10.0])),
    ("NaN", lambda: fit_gamma_gamma([1, 2], [np.nan, 10.0])),
    ("nothing to fit", lambda: fit_gamma_gamma([0, 0], [0.0, 0.0])),
    ("mismatched", lambda: expected_average_value(FH13, [1, 2], [1.0, 2.0, 3.0])),
    ("infinite", lambda: expected_average_value(GammaGammaParams(1.0, 0.9, 1.0), [0], [0.0])),
    # 50 identical histories carry no heterogeneity to estimate: the search runs to its bounds.
    ("did not converge", lambda: fit_bgnbd([1] * 50, [5.0] * 50, [10.0] * 50)),
]


@pytest.mark.parametrize(("message", "call"), BAD_CALLS)
def test_bad_input_raises_value_error(message: str, call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def simulate_bgnbd(
    params: BgNbdParams, big_t: Array, horizon: float, rng: np.random.Generator
) -> tuple[Array, Array, Array, Array]:
    """The BG/NBD story, event by event: repeat purchases at Poisson rate lambda, and after
    each one the customer drops out with probability p. Returns x, t_x, the purchases made in
    (T, T+horizon], and whether the customer was still alive at T."""
    n = big_t.size
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    now, x, t_x, future = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    alive_at_t = np.ones(n, dtype=bool)
    active = np.ones(n, dtype=bool)
    while active.any():
        now[active] += rng.exponential(1 / lam[active])
        active &= now <= big_t + horizon
        calibration = active & (now <= big_t)
        x[calibration] += 1
        t_x[calibration] = now[calibration]
        future[active & (now > big_t)] += 1
        drop = active & (rng.random(n) < p)
        alive_at_t[drop & (now <= big_t)] = False
        active &= ~drop
    return x, t_x, future, alive_at_t.astype(np.float64)


def test_bgnbd_recovers_and_predicts_simulated_customers() -> None:
    truth = BgNbdParams(r=0.5, alpha=6.0, a=0.7, b=2.5)
    rng = np.random.default_rng(20240601)
    big_t = rng.uniform(52, 104, 4000)
    x, t_x, future, alive = simulate_bgnbd(truth, big_t, 39.0, rng)
    # Over 20 seeds of this design the estimates' relative spread (SD) was 3.4% for r, 5.4% for
    # alpha, 6.8% for a and 8.3% for b: the tolerances are about 4 SD.
    fitted = fit_bgnbd(x, t_x, big_t)
    for got, want, rel in zip(
        as_tuple(fitted), as_tuple(truth), (0.15, 0.2, 0.25, 0.3), strict=True
    ):
        assert got == pytest.approx(want, rel=rel)
    # Given the history, the predictions are conditional means of what the simulation then did,
    # so the mean residual must be within a few standard errors of 0.
    for observed, predicted in (
        (future, expected_purchases(truth, 39.0, x, t_x, big_t)),
        (future == 0, probability_no_purchase(truth, 39.0, x, t_x, big_t)),
        (alive, probability_alive(truth, x, t_x, big_t)),
    ):
        residual = observed - predicted
        assert abs(residual.mean()) < 4 * residual.std() / np.sqrt(residual.size)


def test_gamma_gamma_recovers_simulated_spend() -> None:
    truth = GammaGammaParams(p=2.0, q=4.0, v=15.0)
    rng = np.random.default_rng(7)
    x = 1.0 + rng.poisson(2.0, 3000)
    nu = rng.gamma(truth.q, 1 / truth.v, x.size)
    monetary = rng.gamma(truth.p * x, 1 / nu) / x  # the mean of x Gamma(p, nu) values
    fitted = fit_gamma_gamma(x, monetary)
    # Over 20 seeds the relative SD was 6% for p, 5% for q, 11% for v and 1.5% for the
    # population mean p v / (q - 1): the tolerances are about 4 SD.
    for got, want, rel in zip(as_tuple(fitted), as_tuple(truth), (0.25, 0.2, 0.4), strict=True):
        assert got == pytest.approx(want, rel=rel)
    mean = fitted.p * fitted.v / (fitted.q - 1)
    assert mean == pytest.approx(truth.p * truth.v / (truth.q - 1), rel=0.06)
