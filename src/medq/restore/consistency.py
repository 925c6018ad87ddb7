"""Data consistency for super-resolution: the input keeps the frequencies it measured.

A low-resolution acquisition measured the image up to the Nyquist frequency of its coarser
matrix, 1/(2f) cycles per pixel for a downsampling factor f; everything below that is in the
input, and only what lies above is for the network to supply. One back-projection step
(`back_project`) enforces this: the restored plane's low-pass part is replaced by the input's,
`y + G_σ(x − y)`, with a Gaussian whose transfer falls to one half at 1/(2f):
exp(−2π²σ²/(2f)²) = ½ → σ = f·√(2 ln 2)/π ≈ 0.375·f pixels. The factor comes from the
description (the low-resolution finding's continuous severity, on the engine's scale). The
network's own errors in what the input already shows (a shifted mean, broad structures
smoothed or bent) are undone; the detail it adds is kept.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage as ndi

HALF_POWER = math.sqrt(2.0 * math.log(2.0)) / math.pi
"""σ of the back-projection's Gaussian per unit of the downsampling factor (≈ 0.375)."""


def matrix_factor(report: Any) -> float | None:
    """The downsampling factor a description's low-resolution finding implies (its continuous
    severity on the engine's scale), or None when it reports no low resolution."""
    from medq.degrade import get_spec

    found = [f for f in report.findings if f.type == "low_resolution"]
    if not found:
        return None
    return float(get_spec("low_resolution").level_at(max(f.severity_value for f in found)))


def consistent(measured: list[np.ndarray], restored: list[np.ndarray], factor: float | None
               ) -> list[np.ndarray]:
    """Restored planes back-projected onto what the measured planes hold (`back_project`;
    `factor` None: as they are)."""
    if factor is None:
        return restored
    return [back_project(y, x, factor) for x, y in zip(measured, restored, strict=True)]


def back_project(restored: np.ndarray, measured: np.ndarray, factor: float) -> np.ndarray:
    """`restored` with its content below the coarse matrix's Nyquist taken from `measured`
    (2D planes, same units): `y + G_σ(x − y)`, σ = `HALF_POWER`·factor."""
    y = np.asarray(restored, dtype=np.float64)
    x = np.asarray(measured, dtype=np.float64)
    return (y + ndi.gaussian_filter(x - y, HALF_POWER * float(factor))).astype(
        np.asarray(restored).dtype)
