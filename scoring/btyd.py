"""Buy-till-you-die (BTYD) models: the BG/NBD model of repeat-purchase counts and the Gamma-Gamma
model of spend per transaction, the classic benchmarks for churn and customer-value models.

References:
    [FHL05] P. S. Fader, B. G. S. Hardie, K. L. Lee (2005), "Counting your customers" the easy
        way: an alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284.
    [FHL08] P. S. Fader, B. G. S. Hardie, K. L. Lee (2008), Computing P(alive) using the BG/NBD
        model. Research note 021 on Bruce Hardie's website.
    [FH13] P. S. Fader, B. G. S. Hardie (2013), The Gamma-Gamma model of monetary value.
        Research note 025 on Bruce Hardie's website.

Per customer, the calibration-period summary is: ``frequency`` x, the number of REPEAT purchases
(the first purchase is not counted); ``recency`` t_x, the time of the last purchase measured from
the first one (0 when x = 0); ``T``, the time from the first purchase to the end of the period;
and, for the Gamma-Gamma model, ``monetary`` m, the mean value of the repeat purchases. Any time
unit works (days, weeks) as long as it is the same everywhere; the BG/NBD ``alpha`` is in that
unit. Inputs are array-likes that broadcast against each other (a scalar ``T`` or ``t`` is
shared by every customer); every function returns float64 arrays of the broadcast shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1

Array = npt.NDArray[np.float64]

# The search is bounded to |log-parameter| <= this; ending at the bound means the likelihood has
# no interior maximum (a parameter ran off towards 0 or infinity). e**20 is about 5e8, far past
# what a real data set supports.
_MAX_LOG_PARAM = 20.0


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """BG/NBD parameters [FHL05]: while alive a customer buys at Poisson rate lambda, with
    lambda ~ Gamma(shape r, rate alpha) across customers; after each repeat purchase the customer
    drops out for good with probability p, with p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        _check_params(self)


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Gamma-Gamma parameters [FH13]: a transaction's value is Gamma(shape p, rate nu), with the
    customer's nu ~ Gamma(shape q, rate v); the population mean value is p * v / (q - 1)."""

    p: float
    q: float
    v: float

    def __post_init__(self) -> None:
        _check_params(self)


def _check_params(params: BgNbdParams | GammaGammaParams) -> None:
    values = np.asarray(astuple(params), dtype=np.float64)
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(f"every parameter must be finite and positive, got {params}")


def _nonnegative(name: str, values: npt.ArrayLike) -> Array:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(arr < 0):
        raise ValueError(f"{name} contains negative values")
    return arr


def _broadcast(named: dict[str, Array]) -> list[Array]:
    try:
        return [np.array(v) for v in np.broadcast_arrays(*named.values())]
    except ValueError:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in named.items())
        raise ValueError(f"mismatched input shapes: {shapes}") from None


def _history(frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> list[Array]:
    named = {"frequency": frequency, "recency": recency, "T": T}
    x, t_x, big_t = _broadcast({k: _nonnegative(k, v) for k, v in named.items()})
    if np.any(x != np.floor(x)):
        raise ValueError("frequency must be whole numbers (counts of repeat purchases)")
    if np.any(t_x > big_t):
        raise ValueError("recency exceeds T for some customers")
    if np.any((x == 0) & (t_x > 0)):
        raise ValueError("recency must be 0 where frequency is 0")
    return [x, t_x, big_t]


def _fit(objective: Callable[[Array], float], x0: Array, model: str) -> Array:
    """Minimise over log-parameters with bounded Nelder-Mead (derivative-free: the objectives are
    cheap and smooth, and this avoids finite-difference gradient noise), then check the result."""
    with np.errstate(all="ignore"):
        res = minimize(
            objective,
            x0,
            method="Nelder-Mead",
            bounds=[(-_MAX_LOG_PARAM, _MAX_LOG_PARAM)] * len(x0),
            options={"xatol": 1e-7, "fatol": 1e-10, "maxfev": 10_000, "adaptive": True},
        )
    if not res.success or not np.isfinite(res.fun):
        raise ValueError(f"{model} fit did not converge: {res.message}")
    if np.any(np.abs(res.x) > _MAX_LOG_PARAM - 0.1):
        raise ValueError(
            f"{model} fit did not converge: a parameter ran off towards 0 or infinity (log-"
            f"parameters {np.round(res.x, 1)}); the data do not identify the model (too few "
            "customers, or no sign of dropout or heterogeneity); a penalizer > 0 may help"
        )
    return np.exp(res.x)


def _check_penalizer(penalizer: float) -> None:
    if not (np.isfinite(penalizer) and penalizer >= 0):
        raise ValueError(f"penalizer must be a finite number >= 0, got {penalizer}")


def _bgnbd_ll(theta: Array, x: Array, t_x: Array, big_t: Array) -> Array:
    r, alpha, a, b = theta
    # [FHL05] eq. (6): L = B(a, b+x)/B(a, b) Gamma(r+x) alpha^r / Gamma(r) *
    #   [(alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x)],
    # using B(a+1, b+x-1)/B(a, b+x) = a/(b+x-1); the bracket is summed in log space.
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + big_t)
    dropped = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x)
    out: Array = common + np.where(x > 0, np.logaddexp(alive, dropped), alive)
    return out


def bgnbd_log_likelihood(
    params: BgNbdParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> Array:
    """Per-customer BG/NBD log-likelihood, [FHL05] eq. (6); its sum is the fit's LL."""
    return _bgnbd_ll(np.array(astuple(params)), *_history(frequency, recency, T))


def fit_bgnbd(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike, *, penalizer: float = 0.0
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters [FHL05] (likelihood eq. 6).

    Minimises mean(-log L) + penalizer * (r^2 + alpha^2 + a^2 + b^2) over the log-parameters (the
    same L2 penalty convention as the ``lifetimes`` package; 0 gives the plain MLE). Raises
    ValueError on invalid input, on data with no repeat purchase (a and b are then not
    identified) and when the optimiser does not converge to an interior maximum.
    """
    _check_penalizer(penalizer)
    x, t_x, big_t = (v.ravel() for v in _history(frequency, recency, T))
    if not np.any(x > 0):
        raise ValueError(
            "no customer has a repeat purchase: the dropout parameters a and b cannot be estimated"
        )

    # Customers with the same history add the same term: sum over distinct histories, weighted.
    histories, counts = np.unique(np.stack([x, t_x, big_t]), axis=1, return_counts=True)
    weight = counts / counts.sum()

    def objective(log_theta: Array) -> float:
        theta = np.exp(log_theta)
        ll = _bgnbd_ll(theta, histories[0], histories[1], histories[2])
        value = -np.sum(weight * ll) + penalizer * np.sum(theta**2)
        return float(value) if np.isfinite(value) else np.inf

    # Start at r = a = b = 1 with alpha matching the mean purchase rate (r/alpha = sum x / sum T),
    # which puts the start on the data's time scale whatever the unit.
    alpha0 = max(float(np.sum(big_t)) / max(float(np.sum(x)), 1.0), 1e-6)
    return BgNbdParams(
        *(float(v) for v in _fit(objective, np.log([1.0, alpha0, 1.0, 1.0]), "BG/NBD"))
    )


def probability_alive(
    params: BgNbdParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> Array:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)),
    [FHL08] (the denominator of [FHL05] eq. 10). It is 1 for x = 0: in BG/NBD a customer can
    drop out only right after a repeat purchase."""
    x, t_x, big_t = _history(frequency, recency, T)
    return _p_alive(params, x, t_x, big_t)


def _p_alive(params: BgNbdParams, x: Array, t_x: Array, big_t: Array) -> Array:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = (
        np.log(a)
        - np.log(b + np.maximum(x, 1.0) - 1.0)
        + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
    )
    out: Array = np.where(x > 0, expit(-log_odds_dead), 1.0)
    return out


def _horizon(
    t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> list[Array]:
    x, t_x, big_t = _history(frequency, recency, T)
    return _broadcast({"t": _nonnegative("t", t), "frequency": x, "recency": t_x, "T": big_t})


def expected_purchases(
    params: BgNbdParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> Array:
    """E[purchases in (T, T+t] | x, t_x, T], [FHL05] eq. (10):

        (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]
        * P(alive),  with z = t/(alpha+T+t).

    Numerics: scipy's hyp2f1 overflows or loses accuracy when its first two arguments are big
    (large x) and z is near 1 (long horizons). ``lifetimes`` then falls back on Euler's
    transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z); we always use it, as it
    absorbs the power term and leaves arguments that do not grow with x:
    ((alpha+T)/(alpha+T+t))^(r+x) 2F1(...) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z) =: S.
    For short horizons 1 - S cancels, so where u = t/(alpha+T) is small we sum the power series
    of (1 - S)/(a - 1) in u instead (by Pfaff's transformation S = 2F1(a-1, r+x; a+b+x-1; -u)).
    Where the formula is 0/0 (a = 1; a + b = 1 when x = 0) or hyp2f1 is degenerate (r - a an
    integer, so C-A-B is one, where scipy returns NaN) we evaluate at theta + h and theta + 2h,
    h = 1e-5, and extrapolate linearly. Against mpmath (40 digits) over random parameters, x up
    to 1000 and u from 1e-4 to 1e6, the relative error was ~1e-11 typically and 1e-8 at worst
    (next to those special points).
    """
    t, x, t_x, big_t = _horizon(t, frequency, recency, T)
    out: Array = _expected_if_alive(params.r, params.a, params.b, t / (params.alpha + big_t), x)
    return out * _p_alive(params, x, t_x, big_t)


def _expected_if_alive(r: float, a: float, b: float, u: Array, x: Array) -> Array:
    """(a+b+x-1)/(a-1) (1 - S), S as in expected_purchases, u = t/(alpha+T)."""
    h = 1e-5

    def step(dr: float, da: float, db: float) -> Array:
        one = _expected_if_alive(r + dr, a + da, b + db, u, x)
        return 2.0 * one - _expected_if_alive(r + 2 * dr, a + 2 * da, b + 2 * db, u, x)

    if abs(a - 1.0) < 1e-7:
        return step(0.0, h, 0.0)
    if abs(a + b - 1.0) < 1e-7 and np.any(x == 0):
        return step(0.0, 0.0, h)
    if abs(r - a - round(r - a)) < 1e-6:
        return step(h, 0.0, 0.0)
    k, c = r + x, a + b + x - 1.0
    with np.errstate(all="ignore"):
        survivor = np.exp(-(a - 1.0) * np.log1p(u)) * hyp2f1(
            a + b - 1.0 - r, a - 1.0, c, u / (1 + u)
        )
        closed = c / (a - 1.0) * (1.0 - survivor)
    # Short horizons: c (1 - S)/(a - 1) = k u sum_m tau_m, tau_0 = 1, with the term ratio
    # tau_m / tau_(m-1) = -u (a+m-1)(k+m) / ((c+m)(m+1)), whose size is at most q over m >= 1.
    # Where q <= 1/2, 60 terms reach 1e-18 and the alternating sum does not cancel.
    q = u * max(1.0, a / 2.0) * np.maximum(1.0, (k + 1.0) / (c + 1.0))
    short = q <= 0.5
    term, total, us = np.ones_like(u), np.ones_like(u), np.where(short, u, 0.0)
    for m in range(1, 61):
        term = -term * us * (a + m - 1.0) * (k + m) / ((c + m) * (m + 1.0))
        total += term
    out: Array = np.where(short, k * u * total, closed)
    return out


def probability_no_purchase(
    params: BgNbdParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> Array:
    """P(no purchase in (T, T+t] | x, t_x, T)
        = 1 - P(alive) + P(alive) * ((alpha+T)/(alpha+T+t))^(r+x).

    A customer who is dead at T never buys again; one who is alive has lambda | history ~
    Gamma(r+x, alpha+T) [FHL05 sec. 3] and buys nothing in the next t with probability
    E[exp(-lambda t)]. No dropout can happen before that next purchase (BG/NBD customers drop
    out only right after buying), so nothing else enters.
    """
    t, x, t_x, big_t = _horizon(t, frequency, recency, T)
    alive = _p_alive(params, x, t_x, big_t)
    stay = np.exp(-(params.r + x) * np.log1p(t / (params.alpha + big_t)))
    out: Array = 1.0 - alive + alive * stay
    return out


def _spend(frequency: npt.ArrayLike, monetary: npt.ArrayLike) -> list[Array]:
    named = {"frequency": _nonnegative("frequency", frequency), "monetary": np.asarray(monetary)}
    x, m = _broadcast({k: v.astype(np.float64) for k, v in named.items()})
    # The mean of no repeat purchases is often stored as NaN; it is never used.
    m = _nonnegative("monetary", np.where((x == 0) & np.isnan(m), 0.0, m))
    if np.any(x != np.floor(x)):
        raise ValueError("frequency must be whole numbers (counts of repeat purchases)")
    if np.any((x > 0) & (m == 0)):
        raise ValueError("monetary must be > 0 for customers with frequency > 0")
    return [x, m]


def fit_gamma_gamma(
    frequency: npt.ArrayLike, monetary: npt.ArrayLike, *, penalizer: float = 0.0
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters [FH13] (likelihood eq. 1a), from the customers
    with frequency > 0 (the others carry no spend information and are dropped):

        f(m | x) = Gamma(px+q) / (Gamma(px) Gamma(q)) * v^q m^(px-1) x^(px) / (v + x m)^(px+q).

    The penalty is as in ``fit_bgnbd``. The model assumes that spend per transaction is
    independent of purchase frequency; check that on your data before relying on it.
    """
    _check_penalizer(penalizer)
    x, m = (v.ravel() for v in _spend(frequency, monetary))
    x, m = x[x > 0], m[x > 0]
    if x.size == 0:
        raise ValueError("no customer has frequency > 0: nothing to fit the Gamma-Gamma model on")

    def objective(log_theta: Array) -> float:
        p, q, v = theta = np.exp(log_theta)
        px = p * x
        ll = gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + px * np.log(x)
        ll += (px - 1.0) * np.log(m) - (px + q) * np.log(v + x * m)
        value = -np.mean(ll) + penalizer * np.sum(theta**2)
        return float(value) if np.isfinite(value) else np.inf

    # Start at p = 1, q = 2, with v making the population mean p v / (q - 1) the sample mean.
    start = np.log([1.0, 2.0, float(np.mean(m))])
    return GammaGammaParams(*(float(v) for v in _fit(objective, start, "Gamma-Gamma")))


def expected_average_value(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> Array:
    """E[mean transaction value | x, m] = (v + x m) p / (p x + q - 1), [FH13] eq. (5): a weighted
    average of the population mean p v / (q - 1) and the customer's own mean m, with weight
    p x / (p x + q - 1) on m. Customers with x = 0 get the population mean (their m is ignored),
    which needs q > 1."""
    x, m = _spend(frequency, monetary)
    p, q, v = params.p, params.q, params.v
    if q <= 1 and np.any(x == 0):
        raise ValueError(f"q = {q} <= 1: the population mean spend is infinite")
    out: Array = (v + x * m) * p / (p * x + q - 1.0)
    return out
