"""Radiograph (CR/DX) quantum noise at a detector dose.

Value convention (shared with `medq.data.phantoms.radiograph_from_volume`): a radiograph holds
the attenuation line integral p = ∫μ dl (dimensionless, ≥ 0), displayed as is, so dense or long
paths are bright like a processed radiograph; the detector saw I = I0·e^{−p}. Images marked
`meta["xr_domain"] == "line_integral"` are used directly (unless their values cannot be line
integrals: `MAX_LINE_INTEGRAL`); any other radiograph (e.g. a PNG) is mapped linearly from its
[min, max] onto p ∈ [0, 4] and mapped back afterwards.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.degrade.registry import register
from medq.image import MedImage

ASSUMED_P_RANGE = 4.0
"""Line-integral span assumed for radiographs of unknown value domain (e^−4 ≈ 2 % transmission)."""

MAX_LINE_INTEGRAL = 30.0
"""Largest value a radiograph marked as line integrals may hold and be read as one (e^−30: no
photon reaches the detector at any dose); one holding more (a detector's raw counts in a file
that kept the mark) is mapped as a radiograph of unknown domain, not darkened to one value."""


def holds_line_integrals(image: MedImage) -> bool:
    """Whether a radiograph's values are read as line integrals: marked so, and none over
    `MAX_LINE_INTEGRAL`."""
    return image.meta.get("xr_domain") == "line_integral" \
        and float(image.array.max()) <= MAX_LINE_INTEGRAL


def to_line_integral(image: MedImage, line: bool | None = None
                     ) -> tuple[np.ndarray, float, float]:
    """The radiograph as line integrals p, plus (offset, scale) so that value = offset + scale·p;
    `line`: whether it holds them (`holds_line_integrals`, asked here when not given)."""
    a = image.array
    if holds_line_integrals(image) if line is None else line:
        return np.clip(a, 0, None), 0.0, 1.0
    lo, hi = float(a.min()), float(a.max())
    scale = (hi - lo) / ASSUMED_P_RANGE if hi > lo else 1.0
    return (a - lo) / scale, lo, scale


@register("xr_quantum_noise", unit="detector photons per pixel (unattenuated)", worse="lower",
          bounds=(2e4, 3e3, 5e2), levels={"mild": 6e3, "moderate": 1e3, "severe": 1.5e2},
          modalities=("CR", "DX"), finding="noise", domain=(1.0, 1e12))
def xr_quantum_noise(image: MedImage, level: float, rng: np.random.Generator
                     ) -> tuple[MedImage, dict[str, Any]]:
    """Quantum (Poisson) noise of a radiograph acquired with `level` photons per unattenuated pixel.

    counts ~ Poisson(I0·e^{−p}) clipped at ≥ 1, p̂ = ln(I0/counts), back to the input's value
    domain; noise is strongest where attenuation is high (few photons). Level: I0, worse lower;
    none > 2e4 ≥ mild > 3e3 ≥ moderate > 500 ≥ severe (6e3 / 1e3 / 150 representative).
    """
    line = holds_line_integrals(image)  # one pass over the pixels for both
    p, offset, scale = to_line_integral(image, line)
    counts = np.maximum(rng.poisson(float(level) * np.exp(-p.astype(np.float64))), 1.0)
    p_hat = np.log(float(level) / counts)
    out = offset + scale * p_hat
    params = {"I0": float(level),
              "domain": "line_integral" if line else "display",
              "value_offset": offset, "value_scale": scale,
              "min_mean_counts": float(level * np.exp(-p.max())),
              "detector": "ideal photon counting, no electronic noise"}
    return image.with_array(out), params
