"""How sure a benchmark number is: percentile bootstrap confidence intervals.

A benchmark's items are a sample; another draw of items would give another SRCC. The
percentile bootstrap resamples the items with replacement (`n_resamples` times from a
fixed `seed`, so the interval is reproducible) and reports the central `level` range of
the statistic:

* `srcc_interval(pred, target)` — the interval of one model's SRCC;
* `srcc_gain_interval(pred_a, pred_b, target)` — of SRCC(a) − SRCC(b) on the *same* resampled
  items (paired), the fair way to ask whether model a ranks better than model b: the two
  models' own intervals overlap far more than their difference varies;
* `mean_interval(values)` — of a mean (a description total /8, a type accuracy).

Pairs where a value is NaN or ±inf are dropped first, by the correlations' own
`medq.metrics.correlation.finite_rows`; fewer than 3 pairs (or a constant side) give `(nan, nan)`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import stats

from medq.errors import InvalidParameter
from medq.metrics.correlation import MIN_PAIRS, ArrayLike, finite_rows

N_RESAMPLES = 2000
"""Bootstrap resamples per interval."""

LEVEL = 0.95
"""Confidence level of the intervals."""

Interval = tuple[float, float]

NAN_INTERVAL: Interval = (float("nan"), float("nan"))


def _spearman(pred: np.ndarray, target: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman ρ along `axis` (vectorised: Pearson r of the average ranks); nan where a side
    is constant within a resample."""
    rp = stats.rankdata(pred, axis=axis)
    rt = stats.rankdata(target, axis=axis)
    rp = rp - rp.mean(axis=axis, keepdims=True)
    rt = rt - rt.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rp * rt).sum(axis=axis) / np.sqrt((rp * rp).sum(axis=axis)
                                                  * (rt * rt).sum(axis=axis))


def _interval(data: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray],
              n_resamples: int, level: float, seed: int) -> Interval:
    """Percentile bootstrap interval of a vectorised statistic of paired columns: the rows are
    resampled together, reproducibly from `seed`, and resamples where the statistic is undefined
    (a constant side among a few items) are left out — which `scipy.stats.bootstrap` cannot do,
    so the resampling is done here; `(nan, nan)` when fewer than half are defined."""
    if not 0.0 < level < 1.0:
        raise InvalidParameter(f"level must be between 0 and 1, got {level}")
    rows = np.random.default_rng(seed).integers(0, data[0].size, (int(n_resamples), data[0].size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample with a constant side gives nan
        values = np.asarray(statistic(*(column[rows] for column in data), axis=-1), dtype=float)
    values = values[np.isfinite(values)]
    if values.size < n_resamples / 2:
        return NAN_INTERVAL
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _gain(a: np.ndarray, b: np.ndarray, t: np.ndarray, axis: int = -1) -> np.ndarray:
    """SRCC(a, t) − SRCC(b, t) along `axis`."""
    return _spearman(a, t, axis) - _spearman(b, t, axis)


def srcc_interval(pred: ArrayLike, target: ArrayLike, n_resamples: int = N_RESAMPLES,
                  level: float = LEVEL, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of SRCC(pred, target) over resampled items."""
    p, t = finite_rows(pred, target)
    if p.size < MIN_PAIRS or np.ptp(p) == 0 or np.ptp(t) == 0:
        return NAN_INTERVAL
    return _interval((p, t), _spearman, n_resamples, level, seed)


def srcc_gain_interval(pred_a: ArrayLike, pred_b: ArrayLike, target: ArrayLike,
                       n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of SRCC(a) − SRCC(b), both on the same resampled items."""
    a, b, t = finite_rows(pred_a, pred_b, target)
    if a.size < MIN_PAIRS or np.ptp(t) == 0 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return NAN_INTERVAL
    return _interval((a, b, t), _gain, n_resamples, level, seed)


def mean_interval(values: ArrayLike, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                  seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean of `values`."""
    (v,) = finite_rows(values)
    if v.size < 2:
        return NAN_INTERVAL
    if np.ptp(v) == 0:
        return float(v[0]), float(v[0])
    return _interval((v,), np.mean, n_resamples, level, seed)

