"""Agreement between predicted quality scores and subjective (or reference) scores.

All functions take two 1D sequences of equal length (`pred`, `target`), drop pairs where either is
NaN or ±inf, and return `nan` — never raise — when the statistic is undefined: fewer than 3 pairs
left, or a constant input. A length mismatch is a caller's mistake and raises `InvalidParameter`.

Definitions (n pairs, ranks by `scipy.stats`):

* SRCC — Spearman's ρ: Pearson correlation of the ranks (ties get average ranks).
* KRCC — Kendall's τ_b: (concordant − discordant) / sqrt((n0 − n1)(n0 − n2)), ties corrected.
* PLCC — Pearson's r = cov(p, t) / (σ_p σ_t), on the raw predictions.
* PLCC after the VQEG 4-parameter logistic map (VQEG FR-TV Phase II, 2003):
  f(x) = (β1 − β2) / (1 + exp(−(x − β3)/|β4|)) + β2, fitted by least squares (`fit_logistic`).
* RMSE = sqrt(mean((p − t)²)), raw or after the logistic map.
* LDCTIQAC score (MICCAI 2023 low-dose CT IQA challenge) = |PLCC| + |SRCC| + |KRCC|, raw PLCC.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit

from medq.errors import InvalidParameter
from medq.metrics.values import as_values, common_scale

ArrayLike = Sequence[float] | np.ndarray

MIN_PAIRS = 3
"""Fewest finite pairs for which a correlation is reported."""
INIT_WIDTHS = (1.0, 0.25, 0.0625)
"""Starting widths β4 of the logistic fit, as shares of std(p); the best fit of them is kept."""
STEEPEST = 0.2
"""The steeper starts' fits are kept only when |β4| is at least this share of the median gap
between neighbouring distinct scores (a steeper one is a step between two neighbours, which on
a small set fits noise and inflates PLCC)."""


def finite_rows(*columns: ArrayLike) -> list[np.ndarray]:
    """The columns as 1D float64 arrays, keeping the rows where every column is finite
    (`InvalidParameter` when their lengths differ, or for an array with more than one axis
    longer than 1: a table, not one value per item)."""
    arrays = [as_values(c, f"column {k + 1} of {len(columns)}") for k, c in enumerate(columns)]
    for k, a in enumerate(arrays):
        if sum(n > 1 for n in a.shape) > 1:  # (n,), (n, 1) and (1, n) are one value per item
            raise InvalidParameter(f"column {k + 1} of {len(columns)}: an array of shape "
                                   f"{a.shape}; give one value per item (a 1D sequence)")
    arrays = [a.ravel() for a in arrays]
    if len({a.size for a in arrays}) > 1:
        raise InvalidParameter("columns of unequal length: "
                               + " and ".join(f"{a.size} values" for a in arrays))
    keep = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    return [a[keep] for a in arrays]


def _pairs(pred: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Flatten to float64 and keep the pairs where both values are finite."""
    p, t = finite_rows(pred, target)
    return p, t


def _usable(p: np.ndarray, t: np.ndarray) -> bool:
    """True when a correlation is defined: ≥ 3 pairs and neither side constant."""
    return p.size >= MIN_PAIRS and np.ptp(p) > 0 and np.ptp(t) > 0


def _statistic(func: Callable[..., Any], pred: ArrayLike, target: ArrayLike) -> float:
    """Run a scipy.stats correlation on the clean pairs; nan where undefined."""
    p, t = _pairs(pred, target)
    if not _usable(p, t):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(func(p, t)[0])
    return value if np.isfinite(value) else float("nan")


def srcc(pred: ArrayLike, target: ArrayLike) -> float:
    """Spearman rank-order correlation ρ (Pearson r of the average ranks)."""
    return _statistic(stats.spearmanr, pred, target)


def krcc(pred: ArrayLike, target: ArrayLike) -> float:
    """Kendall rank correlation τ_b = (C − D) / sqrt((n0 − n1)(n0 − n2)), ties corrected."""
    return _statistic(stats.kendalltau, pred, target)


def plcc(pred: ArrayLike, target: ArrayLike) -> float:
    """Pearson linear correlation r = cov(p, t) / (σ_p·σ_t) of the raw predictions."""
    return _statistic(stats.pearsonr, pred, target)


def logistic4(x: ArrayLike, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG logistic f(x) = (β1 − β2) / (1 + exp(−(x − β3)/|β4|)) + β2, overflow-free."""
    x = np.asarray(x, dtype=np.float64)
    scale = max(abs(b4), np.finfo(np.float64).tiny)  # β4 = 0: the step function
    with np.errstate(over="ignore"):
        return (b1 - b2) * expit((x - b3) / scale) + b2


def _unit(values: np.ndarray) -> tuple[float, float]:
    """(low, spread) that map `values` onto [0, 1] as (v − low) / spread, without squares, so
    neither tiny (1e-300) nor huge (1e300) units overflow or underflow. (Not centred on 0: the
    fit's finite differences step relative to each β, and a β3 of 1e-17 would never move.)"""
    low, high = float(values.min()), float(values.max())
    spread = high - low if np.isfinite(high - low) else 2.0 * (high / 2 - low / 2)
    return low, spread


def fit_logistic(pred: ArrayLike, target: ArrayLike) -> tuple[float, float, float, float] | None:
    """Least-squares β of `logistic4` mapping pred → target; None when there is nothing to fit.

    The fit runs on both sides mapped to unit range (`_unit`), so its result does not depend
    on the units of the scores, and β is mapped back. Init: β1 = max(t), β2 = min(t) (swapped
    when PLCC < 0), β3 = median(p), β4 = std(p) and two steeper starts (`INIT_WIDTHS`, not
    steeper than `STEEPEST` allows), the least-squares best kept. With four points or fewer,
    when curve_fit fails, or when its fit is worse than the straight line (a logistic with
    large |β4| is linear, so a proper optimum is never worse), the returned β describe that
    least-squares line instead: the logistic with very large |β4| around β3 = mean(p), i.e. a
    linear fallback.
    """
    p, t = _pairs(pred, target)
    if not _usable(p, t):
        return None
    (pc, ps), (tc, ts) = _unit(p), _unit(t)
    if not (ps > 0 and ts > 0):  # a range below the smallest float: nothing to fit
        return None
    b1, b2, b3, b4 = _fit_unit((p - pc) / ps, (t - tc) / ts)
    return tc + ts * b1, tc + ts * b2, pc + ps * b3, ps * abs(b4)  # back in the scores' units


def _fit_unit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """`fit_logistic`'s β for scores already in unit range."""
    slope, intercept = np.polyfit(x, y, 1)
    linear_sse = float(np.sum((slope * x + intercept - y) ** 2))
    rising = slope >= 0
    high, low = (y.max(), y.min()) if rising else (y.min(), y.max())
    if x.size <= 4:  # four parameters need more points than that: the line
        return _linear_as_logistic(slope, intercept, x)
    best, best_sse = None, linear_sse * (1 + 1e-9)
    width = float(np.std(x)) or 1.0
    gaps = np.diff(np.unique(x))
    least = STEEPEST * float(np.median(gaps)) if gaps.size else 0.0
    for share in INIT_WIDTHS:  # several starts: a steep relation's optimum lies far from std(x)
        beta = _curve_fit([high, low, float(np.median(x)), width * share], x, y)
        if beta is None or (share != INIT_WIDTHS[0] and abs(beta[3]) < least):
            continue  # a steeper start's step between two neighbours fits noise
        sse = float(np.sum((logistic4(x, *beta) - y) ** 2))
        if sse <= best_sse:
            best, best_sse = beta, sse
    return best if best is not None else _linear_as_logistic(slope, intercept, x)


def _curve_fit(init: list[float], x: np.ndarray, y: np.ndarray) -> tuple[float, ...] | None:
    """curve_fit's β of `logistic4` from `init`; None when it fails or leaves a non-finite β."""
    try:
        with warnings.catch_warnings():  # "covariance could not be estimated" comes with
            warnings.simplefilter("ignore", OptimizeWarning)  # steep fits; it is not used
            warnings.simplefilter("ignore", RuntimeWarning)
            beta, _ = curve_fit(logistic4, x, y, p0=init, maxfev=20000)
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return None
    return tuple(float(b) for b in beta) if np.all(np.isfinite(beta)) else None


def _linear_as_logistic(slope: float, intercept: float,
                        p: np.ndarray) -> tuple[float, float, float, float]:
    """β of a logistic that equals the line slope·x + intercept (to < 1e-6 relative) on p's range.

    Around its centre the logistic is linear with slope (β1 − β2)/(4|β4|); with |β4| = 1e4·range
    the curvature over the data is negligible.
    """
    b3 = float(np.mean(p))
    b4 = 1e4 * float(np.ptp(p))
    height = 4.0 * b4 * slope
    centre = slope * b3 + intercept
    return centre + height / 2, centre - height / 2, b3, b4


def plcc_logistic(pred: ArrayLike, target: ArrayLike) -> float:
    """PLCC between f(pred) and target, f the fitted VQEG 4-parameter logistic (`fit_logistic`)."""
    p, t = _pairs(pred, target)
    beta = fit_logistic(p, t)
    if beta is None:
        return float("nan")
    return plcc(logistic4(p, *beta), t)


def rmse(pred: ArrayLike, target: ArrayLike, logistic: bool = False) -> float:
    """Root-mean-square error sqrt(mean((p − t)²)); with `logistic`, p is first mapped by f."""
    p, t = _pairs(pred, target)
    if p.size == 0:
        return float("nan")
    if logistic:
        beta = fit_logistic(p, t)
        if beta is None:
            return float("nan")
        p = logistic4(p, *beta)
    scale = common_scale(p, t)  # exact: huge but finite scores do not overflow the squares
    return float(np.sqrt(np.mean((p * scale - t * scale) ** 2)) / scale)


def ldctiqac_score(pred: ArrayLike, target: ArrayLike) -> float:
    """LDCTIQAC 2023 overall score |PLCC| + |SRCC| + |KRCC| (raw PLCC; at most 3)."""
    return abs(plcc(pred, target)) + abs(srcc(pred, target)) + abs(krcc(pred, target))


def correlation_report(pred: ArrayLike, target: ArrayLike) -> dict[str, float]:
    """Every statistic: n, srcc, krcc, plcc, plcc_logistic, rmse, rmse_logistic, ldctiqac."""
    p, t = _pairs(pred, target)
    return {
        "n": float(p.size),
        "srcc": srcc(p, t),
        "krcc": krcc(p, t),
        "plcc": plcc(p, t),
        "plcc_logistic": plcc_logistic(p, t),
        "rmse": rmse(p, t),
        "rmse_logistic": rmse(p, t, logistic=True),
        "ldctiqac": ldctiqac_score(p, t),
    }
