"""Data consistency: the restored image, acquired again, gives the input.

A low-resolution or blurred input x is an acquisition A(c) of the true image c. One iterative
back-projection step makes the restoration y consistent with it: y' = y + (x − A(y)). When y
is right, A(y) = x and nothing changes; the network's own errors in what the input measured (a
shifted mean, broad structures bent, halos around the strong edges of real scans) are in
A(y) − x and are taken out; the detail it adds where A passes nothing is kept.

The acquisitions (`ACQUISITIONS`), each with one parameter:

- `interpolated` (factor f): anti-aliased downsampling to a matrix f times coarser and linear
  interpolation back (a coarse matrix resampled onto a finer grid, as viewers and
  reconstructions do);
- `kspace` (factor f): only the central 1/f of the spatial frequencies kept, under a short
  raised-cosine roll-off (`KSPACE_TAPER`), zero-filled (an MR scanner's coarser acquisition
  matrix). A is then a projection: y' keeps the input's band exactly and the network's
  frequencies above it;
- `psf` (σ, pixels): a Gaussian point-spread function (a soft reconstruction kernel, focal
  spot or detector blur).

The description says which apply (`described`): a low-resolution finding the first two, at the
factor its continuous severity implies on the engine's scale; a blur finding the third, at the
σ its severity implies (the engine's FWHM in mm over the in-plane pixel size). Of those, the
acquisition and parameter that explain the input best (the smallest mean square of x − A(y),
`explain`) are chosen on one plane of the image (its middle slice) for all of its planes, the
parameter searched from two thirds of the described one up to it (`SPAN`). The description's
estimate is often a quarter off either way, and the errors are not alike: told too small a
parameter, the step gives back to the input some of the detail the network added; told too
large a one, it adds the input's detail between the two cutoffs on top of the network's
(edges doubled). Never going above the description's estimate keeps the step's errors on the
input's side. When the best coarse matrix is the gentlest one tried, the fit is being pulled
towards the identity: no coarse matrix of the output explains the input (the network has
damaged it beyond that, as on zero-filled MR magnitude images), and the step falls back to
the low-pass step below. `benchmarks/probes/lowres_simulators.py` measures the step on
low-resolution inputs made three ways, two of them written outside medq;
`benchmarks/probes/consistency_split.py` on held-out and on training sources.

When the description also reports noise, the full step would put all the input's noise back.
For low resolution the step then (and in the case above) takes only the input's low-pass
part, y + G_σ(x − y) (`back_project`), with a Gaussian whose transfer is one half at the
coarse matrix's Nyquist 1/(2f): exp(−2π²σ²/(2f)²) = ½ → σ = f·√(2 ln 2)/π ≈ 0.375·f pixels,
so only the noise below it returns; a blur finding with noise gets no step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage as ndi

HALF_POWER = math.sqrt(2.0 * math.log(2.0)) / math.pi
"""σ of the low-pass step's Gaussian per unit of the downsampling factor (≈ 0.375)."""

ACQUISITIONS = ("interpolated", "kspace", "psf")
"""The acquisition models an input is explained by (see the module docstring)."""

KSPACE_TAPER = 0.1
"""Raised-cosine roll-off of the `kspace` acquisition, as a fraction of the kept band."""

SPAN = 1.5
"""`explain` tries parameters from the described one divided by this up to the described one:
below that range an output the network barely changed is "explained" by an acquisition close
to the identity (`benchmarks/probes/lowres_simulators.py --factor-scale 0.8 / 1 / 1.3`)."""

STEPS_IN_SPAN = 6
"""Parameters `explain` tries per acquisition (geometric, across the `SPAN`)."""

BACK_PROJECTION = "back-projection"
"""The step's name (`back_project_step`) in what `consistent` reports."""

LOW_PASS = "low-pass"
"""The step's name when noise is also described (`back_project`)."""

PARAMETER = {"interpolated": "factor", "kspace": "factor", "psf": "sigma_px"}
"""What each acquisition's parameter is, as `consistent` reports it."""


def _level(report: Any, finding: str, degradation: str) -> float | None:
    """The engine level of `degradation` that a description's `finding` implies (its continuous
    severity), or None when the finding is not reported."""
    from medq.degrade import get_spec

    found = [f.severity_value for f in report.findings if f.type == finding]
    return float(get_spec(degradation).level_at(max(found))) if found else None


def matrix_factor(report: Any) -> float | None:
    """The downsampling factor a description's low-resolution finding implies (its continuous
    severity on the engine's scale), or None when it reports no low resolution."""
    return _level(report, "low_resolution", "low_resolution")


def reports_noise(report: Any) -> bool:
    """Whether a description reports noise (the consistency step then only low-passes)."""
    return any(f.type == "noise" for f in report.findings)


def described(report: Any, spacing: tuple[float, ...]) -> dict[str, float]:
    """The acquisitions a description implies, each with its parameter (see the module
    docstring); `spacing`: the image's pixel size in mm (its last two values are in-plane)."""
    from medq.degrade.generic import FWHM_PER_SIGMA

    found: dict[str, float] = {}
    factor = matrix_factor(report)
    if factor is not None:
        found.update(interpolated=factor, kspace=factor)
    fwhm = _level(report, "blur", "blur")
    if fwhm is not None:
        found["psf"] = fwhm / FWHM_PER_SIGMA / float(np.mean(spacing[-2:]))
    return found


def acquire(plane: np.ndarray, parameter: float, acquisition: str) -> np.ndarray:
    """A 2D plane as `acquisition` (`ACQUISITIONS`) with its parameter acquires it."""
    from medq.degrade.generic import coarse_matrix

    a = np.asarray(plane, dtype=np.float64)
    if acquisition == "interpolated":
        return coarse_matrix(a, parameter)
    if acquisition == "kspace":
        return coarse_matrix(a, parameter, reconstruction="kspace", taper=KSPACE_TAPER)
    if acquisition == "psf":
        return ndi.gaussian_filter(a, parameter, mode="nearest")
    raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")


def back_project_step(restored: np.ndarray, measured: np.ndarray, parameter: float,
                      acquisition: str) -> np.ndarray:
    """One back-projection step y + (x − A(y)) (the restored plane's dtype)."""
    y = np.asarray(restored, dtype=np.float64)
    x = np.asarray(measured, dtype=np.float64)
    return (y + (x - acquire(y, parameter, acquisition))).astype(np.asarray(restored).dtype)


def tried(upto: float) -> list[float]:
    """The parameters `explain` tries for a described one, gentlest first."""
    return [float(p) for p in upto * np.geomspace(1.0 / SPAN, 1.0, STEPS_IN_SPAN)]


def explain(measured: np.ndarray, restored: np.ndarray, acquisitions: dict[str, float]
            ) -> tuple[str, float]:
    """The acquisition (of `acquisitions`) and parameter (of `tried` for its value) whose
    A(restored) is closest to the measured plane (mean square)."""
    y = np.asarray(restored, dtype=np.float64)
    x = np.asarray(measured, dtype=np.float64)
    best, best_err = next(iter(acquisitions.items())), math.inf
    for acquisition, upto in acquisitions.items():
        for parameter in tried(upto):
            err = float(np.mean((x - acquire(y, parameter, acquisition)) ** 2))
            if err < best_err:
                best, best_err = (acquisition, float(parameter)), err
    return best


def consistent(measured: list[np.ndarray], restored: list[np.ndarray],
               acquisitions: dict[str, float], noisy: bool = False
               ) -> tuple[list[np.ndarray], dict[str, Any] | None]:
    """Restored planes made consistent with the measured planes and what was done: one
    `back_project_step` with the acquisition and parameter that `explain` the middle plane
    (`noisy`: the low-pass `back_project` at the low-resolution factor, or nothing without
    one; no `acquisitions`: the planes as they are)."""
    if not acquisitions or not restored:
        return restored, None
    pairs = list(zip(measured, restored, strict=True))
    if noisy:
        return _low_pass(pairs, acquisitions.get("interpolated"))
    acquisition, parameter = explain(*pairs[len(pairs) // 2], acquisitions)
    if PARAMETER[acquisition] == "factor" and parameter == tried(acquisitions[acquisition])[0]:
        # the best fit sits at the gentlest end of the search, where it pulls towards the
        # identity: no coarse matrix of this output explains the input
        return _low_pass(pairs, acquisitions[acquisition])
    return ([back_project_step(y, x, parameter, acquisition) for x, y in pairs],
            {"step": BACK_PROJECTION, "acquisition": acquisition,
             PARAMETER[acquisition]: round(parameter, 3)})


def _low_pass(pairs: list[tuple[np.ndarray, np.ndarray]], factor: float | None
              ) -> tuple[list[np.ndarray], dict[str, Any] | None]:
    """The low-pass step (`back_project`) on (measured, restored) pairs at a low-resolution
    `factor`; the restored planes as they are without one."""
    if factor is None:
        return [y for _, y in pairs], None
    return ([back_project(y, x, factor) for x, y in pairs],
            {"step": LOW_PASS, "factor": round(factor, 3)})


def back_project(restored: np.ndarray, measured: np.ndarray, factor: float) -> np.ndarray:
    """`restored` with its content below the coarse matrix's Nyquist taken from `measured`
    (2D planes, same units): `low_pass_step` with σ = `HALF_POWER`·factor."""
    return low_pass_step(restored, measured, HALF_POWER * float(factor))


def low_pass_step(restored: np.ndarray, measured: np.ndarray, sigma: float) -> np.ndarray:
    """`y + G_σ(x − y)`: the restored plane with the measured plane's content below a Gaussian
    of σ pixels (2D planes, same units; the restored plane's dtype)."""
    y = np.asarray(restored, dtype=np.float64)
    x = np.asarray(measured, dtype=np.float64)
    return (y + ndi.gaussian_filter(x - y, float(sigma))).astype(np.asarray(restored).dtype)
