"""Noise discrepancy: a denoiser's residual may be no larger than the input's noise.

When the description's only restorable finding is noise, the network's residual r = x − y
(input minus output) should be the noise alone. When it is larger, the network also took out
anatomy: texture of a small or real matrix read as noise (trabecular bone and muscle on a 128²
small-field CT, for one). With r = n + s, the noise n and the removed structure s uncorrelated,
the output x − α·r closest to the clean image has α = σ_n² / σ_r²; the step uses
α = min(1, σ̂² / var(r)) per plane, so a residual no larger than the noise is kept as it is.

σ̂ is the noise of the input in its flattest windows (`iqms.noise_sigma_flat`), which counts
all of a correlated noise's power: CT noise is coloured by the reconstruction kernel, and the
finest wavelet details (the blind estimate of white noise) see about half of its σ. Windows
without any variation (padding outside a CT's reconstruction circle) are left out of both σ̂
and var(r). The step runs on the modalities in `MODALITIES` (CT: measured with
`medq bench restore` and on the bundled CT, see the README's restoration section).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

MODALITIES = ("CT",)
"""Modalities whose noise-only restorations get the step."""

NAME = "noise discrepancy"
"""The step's name in what the pipeline reports (`consistency`)."""

WINDOW = 7
"""Side of the windows σ̂ is measured in (`iqms.noise_sigma_flat`'s default)."""


def applies(report: Any, modality: str) -> bool:
    """Whether the step runs: `modality` in `MODALITIES` and noise the only restorable finding."""
    from medq.restore.condition import RESTORABLE

    found = {f.type for f in report.findings if f.type in RESTORABLE}
    return modality in MODALITIES and found == {"noise"}


def _live(x: np.ndarray) -> np.ndarray:
    """Pixels whose `WINDOW`² neighbourhood varies at all (not constant padding)."""
    mean = ndi.uniform_filter(x, WINDOW)
    return ndi.uniform_filter(x * x, WINDOW) - mean * mean > 1e-12 * max(float(np.abs(x).max()),
                                                                          1.0) ** 2


def alpha(measured: np.ndarray, restored: np.ndarray) -> float:
    """The share α of the residual x − y the step keeps (1: all of it)."""
    from medq.assess.iqms import noise_sigma_flat

    x = np.asarray(measured, dtype=np.float64)
    live = _live(x)
    if live.sum() < 4 * WINDOW * WINDOW:
        return 1.0
    sigma = noise_sigma_flat(x, live)
    spread = float((x - np.asarray(restored, dtype=np.float64))[live].var())
    if not (np.isfinite(sigma) and spread > 0):
        return 1.0
    return min(1.0, sigma * sigma / spread)


def discrepancy_step(measured: list[np.ndarray], restored: list[np.ndarray]
                     ) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Each restored plane y moved back towards its measured plane x: x − α(x − y), α per plane
    (`alpha`); what was done (the step's name and the mean α)."""
    out, alphas = [], []
    for x, y in zip(measured, restored, strict=True):
        a = alpha(x, y)
        alphas.append(a)
        x64 = np.asarray(x, dtype=np.float64)
        out.append(y if a >= 1.0 else
                   (x64 - a * (x64 - np.asarray(y, dtype=np.float64))).astype(np.asarray(y).dtype))
    return out, {"step": NAME, "alpha": round(float(np.mean(alphas)), 3) if alphas else 1.0}
