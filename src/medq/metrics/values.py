"""What the metrics take: numbers as float64 arrays, refused in one typed line otherwise.

Every metric reads its inputs through `as_values`: NumPy arrays, nested sequences of numbers and
torch tensors (any device, with or without grad) are read; None, text, ragged sequences and
complex numbers (a metric of magnitudes would silently drop the imaginary part) are refused
with `InvalidParameter`. `common_scale` keeps sums of squares of huge but finite values finite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.errors import InvalidParameter

HUGE = 2.0 ** 400
"""Largest magnitude whose square (and sums of many squares) float64 holds with room to spare;
larger inputs are scaled by a power of two first (`common_scale`)."""


def as_values(value: Any, what: str = "values") -> np.ndarray:
    """`value` as a float64 array; InvalidParameter naming `what` when it holds no numbers."""
    from medq.io.arrays import host_array

    if value is None:
        raise InvalidParameter(f"{what}: got None, expected an array or a sequence of numbers")
    try:
        array = np.asarray(host_array(value))
    except ValueError as e:  # a ragged sequence
        raise InvalidParameter(f"{what}: not an array of numbers ({e})") from None
    if np.iscomplexobj(array):
        raise InvalidParameter(f"{what}: complex values; pass the magnitude (np.abs) or the "
                               "real part")
    if array.dtype.kind not in "biuf":
        raise InvalidParameter(f"{what}: expected numbers, got {array.dtype} values "
                               f"(as {type(value).__name__})")
    return array.astype(np.float64)


def value_pair(value: Any, what: str = "value_range") -> tuple[float, float]:
    """`value` as two finite numbers (low, high) with high > low; InvalidParameter naming
    `what` otherwise (a value range, an intensity window)."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{what} must be two numbers (low, high), got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise InvalidParameter(f"{what} must be finite with high > low, got {value!r}")
    return lo, hi


def common_scale(*arrays: np.ndarray) -> float:
    """A power of two that brings the largest finite magnitude of `arrays` to at most 1 when it
    exceeds `HUGE` (exact: ratios and ranks unchanged), else 1."""
    top = max((float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0)) for a in arrays),
              default=0.0)
    return float(2.0 ** -np.ceil(np.log2(top))) if top > HUGE else 1.0
