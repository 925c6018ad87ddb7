"""PET low-count degradation: Poisson counts in projection space, MLEM reconstruction.

Uses the shared parallel-beam projector (`medq.degrade.projection`); volumes are 2D slices
(rebinned direct planes) reconstructed together as one batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.degrade import projection
from medq.degrade.registry import register
from medq.image import MedImage

MU_WATER_511 = 0.0096
"""Linear attenuation of water at 511 keV, per mm."""

MLEM_ITERATIONS = 10
"""MLEM iterations of the low-count reconstruction."""

BODY_THRESHOLD = 0.05
"""Activity fraction of the maximum above which a pixel is body (water attenuation)."""


def attenuation_factors(activity: np.ndarray, geom: projection.Geometry, pixel_mm: float
                        ) -> np.ndarray:
    """Survival probability e^{−∫μ} per line of response for a water-filled body mask."""
    peak = activity.reshape(activity.shape[0], -1).max(axis=1)[:, None, None]
    body = (activity > BODY_THRESHOLD * np.maximum(peak, 1e-12)).astype(np.float32)
    return np.exp(-projection.forward(body * MU_WATER_511 * pixel_mm, geom)).astype(np.float32)


def pet_counts(activity: np.ndarray, counts_per_slice: float, rng: np.random.Generator,
               pixel_mm: float = 2.0, attenuation: bool = True) -> dict[str, Any]:
    """Sinogram counts for `(slices, y, x)` activity with ≈ `counts_per_slice` mean counts each.

    Expected counts ȳ = s·a·A x (a = attenuation survival, s scales the mean total of all slices
    to counts_per_slice × slices, so hotter slices get more), counts ~ Poisson(ȳ). Returns a dict
    with counts, expected, weights (s·a), geometry.
    """
    act = np.clip(np.asarray(activity, dtype=np.float32), 0, None)
    geom = projection.geometry(act.shape)
    att = (attenuation_factors(act, geom, pixel_mm) if attenuation
           else np.ones((act.shape[0], geom.n_views, geom.n_det), np.float32))
    ideal = att * projection.forward(act, geom)
    scale = float(counts_per_slice) * act.shape[0] / max(float(ideal.sum()), 1e-12)
    expected = ideal * np.float32(scale)
    counts = rng.poisson(expected).astype(np.float32)
    return {"counts": counts, "expected": expected, "weights": att * np.float32(scale),
            "geometry": geom, "scale": scale}


@register("pet_low_count", unit="true counts per slice", worse="lower", bounds=(2e6, 3e5, 5e4),
          levels={"mild": 8e5, "moderate": 1e5, "severe": 1.5e4}, modalities=("PT",),
          finding="noise", domain=(1.0, 1e12))
def pet_low_count(image: MedImage, level: float, rng: np.random.Generator
                  ) -> tuple[MedImage, dict[str, Any]]:
    """Low-count PET: Poisson counts of the (attenuated) projections, then MLEM.

    Physics: activity (≥ 0) → parallel-beam projections → × survival e^{−∫μ} of a water body
    (0.0096/mm at 511 keV inside activity > 5 % max) → scaled to `level` true counts per slice
    (volumes: level × slices in total, shared by activity) → Poisson → 10 MLEM iterations with the
    same attenuation-weighted model. Noise-only output: input + MLEM(counts) − MLEM(expected), so
    the recon's resolution loss is not added, then clipped at 0 and rescaled to preserve the mean
    (input activity units). Level: counts/slice, worse lower; none > 2e6 ≥ mild > 3e5 ≥ moderate
    > 5e4 ≥ severe (8e5 / 1e5 / 1.5e4 representative).
    """
    act = image.array[None] if image.array.ndim == 2 else image.array
    pix = float(np.sqrt(image.spacing[-2] * image.spacing[-1]))
    sim = pet_counts(act, level, rng, pixel_mm=pix)
    geom, w = sim["geometry"], sim["weights"]
    noisy, clean = projection.mlem(np.stack([sim["counts"], sim["expected"]]), geom,
                                   act.shape[-2:], MLEM_ITERATIONS, w)  # one pass for both
    out = np.clip(act + noisy - clean, 0, None)
    mean_in = float(act.mean())
    out *= np.float32(mean_in / max(float(out.mean()), 1e-12)) if mean_in > 0 else np.float32(1)
    params = {**geom.describe(), "counts_per_slice": float(level),
              "total_counts": float(sim["counts"].sum()), "attenuation": "water body mask",
              "mu_511_per_mm": MU_WATER_511, "recon": "mlem_noise_difference",
              "mlem_iterations": MLEM_ITERATIONS, "scatter": "none", "randoms": "none",
              "slicewise": image.is_volume}
    return image.with_array(out.reshape(image.shape)), params
