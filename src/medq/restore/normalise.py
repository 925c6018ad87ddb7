"""Per-modality intensity normalisation for restoration, exactly invertible.

One network serves every modality because it always sees intensities on a comparable scale:

- **CT**: `(HU + 1000) / 1000` — air 0, water 1, dense bone ≈ 2–3. Fixed, so a noise level in HU
  means the same to the network on every scan.
- **everything else** (MR, PET, radiographs, photographs): a robust linear scale from the 0.5th
  and 99.5th percentiles of the image to 0 and 1.

`denormalise(normalise(x)) == x` up to float rounding; the network input is additionally clipped
to `INPUT_RANGE` (the residual is added to the unclipped values, so nothing is lost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INPUT_RANGE = (-0.5, 4.0)
"""Clip range of the normalised values fed to a network."""


@dataclass(frozen=True)
class Scale:
    """The linear map `x_norm = (x − offset) / scale` of one image (or channel)."""

    offset: float
    scale: float

    def forward(self, array: np.ndarray) -> np.ndarray:
        """Physical units → normalised units (float32)."""
        return ((np.asarray(array, dtype=np.float64) - self.offset) / self.scale).astype(np.float32)

    def inverse(self, array: np.ndarray) -> np.ndarray:
        """Normalised units → physical units (float32)."""
        return (np.asarray(array, dtype=np.float64) * self.scale + self.offset).astype(np.float32)


def scale_for(array: np.ndarray, modality: str) -> Scale:
    """The normalisation of `array` (one channel) for `modality`."""
    if modality == "CT":
        return Scale(-1000.0, 1000.0)
    finite = np.asarray(array, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return Scale(0.0, 1.0)
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if not hi > lo:
        lo, hi = float(finite.min()), float(finite.max())
    return Scale(float(lo), float(hi - lo) if hi > lo else 1.0)


def network_input(normalised: np.ndarray) -> np.ndarray:
    """Normalised values clipped to `INPUT_RANGE` (what a network sees)."""
    return np.clip(normalised, *INPUT_RANGE).astype(np.float32)
