"""Data consistency for super-resolution: the restored image, acquired again, gives the input.

A low-resolution input x is an acquisition A_f(c) of the true image c on a matrix f times
coarser. One iterative back-projection step makes the restoration y consistent with it:
y' = y + (x − A_f(y)). When y is right, A_f(y) = x and nothing changes; the network's own
errors in what the input measured (a shifted mean, broad structures bent, halos around the
strong edges of real scans) are in A_f(y) − x and are taken out; the detail it adds above the
coarse matrix's band is kept.

The acquisition is one of two families (`ACQUISITIONS`):

- `interpolated`: anti-aliased downsampling and linear interpolation back (a coarse matrix
  resampled onto a finer grid, as viewers and reconstructions do);
- `kspace`: only the central 1/f of the spatial frequencies kept, under a short raised-cosine
  roll-off (`KSPACE_TAPER`), zero-filled (an MR scanner's coarser acquisition matrix). A_f is
  then a projection: y' keeps the input's band exactly and the network's frequencies above it.

Family and factor are those that explain the input best (the smallest mean square of
x − A_f(y), `explain`), found on one plane of the image (its middle slice) for all of its
planes, the factor at most the description's (the low-resolution finding's continuous
severity, on the engine's scale) and at least two thirds of it. The description's estimate is
often a quarter off either way, and the errors are not alike: told too small a factor, the
step gives back to the input some of the detail the network added; told too large a one, it
adds the input's detail between the two cutoffs on top of the network's (edges doubled).
Never going above the description's estimate keeps the step's errors on the input's side.
`benchmarks/probes/lowres_simulators.py` measures the step on inputs made three ways, two of
them (SciPy's zoom with cubic interpolation, a Fermi-filtered k-space truncation) written
outside medq.

When the description also reports noise, the full step would put all the input's noise back.
The step then takes only the input's low-pass part, y + G_σ(x − y) (`back_project`), with a
Gaussian whose transfer is one half at the coarse matrix's Nyquist 1/(2f):
exp(−2π²σ²/(2f)²) = ½ → σ = f·√(2 ln 2)/π ≈ 0.375·f pixels, so only the noise below it returns.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage as ndi

HALF_POWER = math.sqrt(2.0 * math.log(2.0)) / math.pi
"""σ of the low-pass step's Gaussian per unit of the downsampling factor (≈ 0.375)."""

ACQUISITIONS = ("interpolated", "kspace")
"""The acquisition models a low-resolution input is explained by (see the module docstring)."""

KSPACE_TAPER = 0.1
"""Raised-cosine roll-off of the `kspace` acquisition, as a fraction of the kept band."""

BACK_PROJECTION = "back-projection"
"""The step's name (`back_project_step`) in what `consistent` reports."""

LOW_PASS = "low-pass"
"""The step's name when noise is also described (`back_project`)."""


def matrix_factor(report: Any) -> float | None:
    """The downsampling factor a description's low-resolution finding implies (its continuous
    severity on the engine's scale), or None when it reports no low resolution."""
    from medq.degrade import get_spec

    found = [f for f in report.findings if f.type == "low_resolution"]
    if not found:
        return None
    return float(get_spec("low_resolution").level_at(max(f.severity_value for f in found)))


def reports_noise(report: Any) -> bool:
    """Whether a description reports noise (the consistency step then only low-passes)."""
    return any(f.type == "noise" for f in report.findings)


def acquire(plane: np.ndarray, factor: float, acquisition: str) -> np.ndarray:
    """A 2D plane as `acquisition` (`ACQUISITIONS`) on a matrix `factor` times coarser, back on
    its own grid."""
    from medq.degrade.generic import coarse_matrix

    a = np.asarray(plane, dtype=np.float64)
    if acquisition == "interpolated":
        return coarse_matrix(a, factor)
    if acquisition == "kspace":
        return coarse_matrix(a, factor, reconstruction="kspace", taper=KSPACE_TAPER)
    raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")


FACTOR_GRID = tuple(float(f) for f in np.geomspace(1.2, 8.0, 16))
"""Downsampling factors `explain` tries (besides the description's own)."""

FACTOR_SPAN = 1.5
"""`explain` tries factors from the description's divided by this up to the description's:
below that range an output the network barely changed is "explained" by an acquisition close
to the identity (`benchmarks/probes/lowres_simulators.py --factor-scale 0.8 / 1 / 1.3`)."""


def back_project_step(restored: np.ndarray, measured: np.ndarray, factor: float,
                      acquisition: str) -> np.ndarray:
    """One back-projection step y + (x − A_f(y)) (the restored plane's dtype)."""
    y = np.asarray(restored, dtype=np.float64)
    x = np.asarray(measured, dtype=np.float64)
    return (y + (x - acquire(y, factor, acquisition))).astype(np.asarray(restored).dtype)


def explain(measured: np.ndarray, restored: np.ndarray, upto: float) -> tuple[float, str]:
    """The factor (`upto` or a `FACTOR_GRID` value from `upto`/`FACTOR_SPAN` up to `upto`) and
    acquisition whose A_f(restored) is closest to the measured plane (mean square)."""
    y = np.asarray(restored, dtype=np.float64)
    x = np.asarray(measured, dtype=np.float64)
    best, best_err = (float(upto), ACQUISITIONS[0]), math.inf
    for factor in sorted({f for f in FACTOR_GRID if upto / FACTOR_SPAN <= f < upto}
                         | {float(upto)}):
        for acquisition in ACQUISITIONS:
            err = float(np.mean((x - acquire(y, factor, acquisition)) ** 2))
            if err < best_err:
                best, best_err = (factor, acquisition), err
    return best


def consistent(measured: list[np.ndarray], restored: list[np.ndarray], factor: float | None,
               noisy: bool = False) -> tuple[list[np.ndarray], dict[str, Any] | None]:
    """Restored planes made consistent with the measured planes and what was done: one
    `back_project_step` with the factor and acquisition that `explain` the middle plane
    (`noisy`: the low-pass `back_project` at `factor`; `factor` None: the planes as they are)."""
    if factor is None or not restored:
        return restored, None
    pairs = list(zip(measured, restored, strict=True))
    if noisy:
        return [back_project(y, x, factor) for x, y in pairs], {"step": LOW_PASS,
                                                                 "factor": round(factor, 3)}
    used, acquisition = explain(*pairs[len(pairs) // 2], upto=factor)
    return ([back_project_step(y, x, used, acquisition) for x, y in pairs],
            {"step": BACK_PROJECTION, "acquisition": acquisition, "factor": round(used, 3)})


def back_project(restored: np.ndarray, measured: np.ndarray, factor: float) -> np.ndarray:
    """`restored` with its content below the coarse matrix's Nyquist taken from `measured`
    (2D planes, same units): `y + G_σ(x − y)`, σ = `HALF_POWER`·factor."""
    y = np.asarray(restored, dtype=np.float64)
    x = np.asarray(measured, dtype=np.float64)
    return (y + ndi.gaussian_filter(x - y, HALF_POWER * float(factor))).astype(
        np.asarray(restored).dtype)
