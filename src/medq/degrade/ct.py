"""CT degradations from sinogram physics: low dose (Poisson + electronic noise) and sparse views.

Both convert HU to linear attenuation at ~70 keV, forward-project line integrals in mm with the
shared parallel-beam projector (`medq.degrade.projection`) and reconstruct by FBP. Volumes are
processed slice by slice (each axial slice is an independent 2D acquisition, batched together).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.degrade import projection
from medq.degrade.registry import register
from medq.errors import InvalidParameter
from medq.image import MedImage

MU_WATER = 0.0192
"""Linear attenuation of water at ~70 keV, per mm."""

ELECTRONIC_NOISE = 5.0
"""Standard deviation of the detector's electronic (Gaussian) noise, in counts."""

WINDOW = "hann"
"""Apodisation window of the FBP ramp filter used by the CT kinds."""


def hu_to_mu(hu: np.ndarray) -> np.ndarray:
    """Hounsfield units → linear attenuation per mm, μ = μ_water·(1 + HU/1000), clipped at 0."""
    return np.clip(MU_WATER * (1.0 + np.asarray(hu, dtype=np.float32) / 1000.0), 0.0, None)


def _slices(image: MedImage) -> np.ndarray:
    """The image as a `(slices, y, x)` batch."""
    return image.array[None] if image.array.ndim == 2 else image.array


def _pixel_mm(image: MedImage) -> float:
    """In-plane pixel size in mm (geometric mean of the two in-plane spacings)."""
    sy, sx = image.spacing[-2:]
    return float(np.sqrt(sy * sx))


def _common(image: MedImage, geom: projection.Geometry) -> dict[str, Any]:
    return {**geom.describe(), "detector_spacing_mm": _pixel_mm(image), "filter": "ramp",
            "window": WINDOW, "mu_water_per_mm": MU_WATER, "effective_energy_keV": 70,
            "slicewise": image.is_volume}


def transmission_counts(line_integrals: np.ndarray, i0: float, rng: np.random.Generator,
                        electronic_sigma: float = ELECTRONIC_NOISE) -> np.ndarray:
    """Detector counts: Poisson(I0·exp(−p)) + Gaussian electronic noise, clipped at ≥ 1."""
    mean = i0 * np.exp(-line_integrals.astype(np.float64))
    counts = rng.poisson(mean) + rng.normal(0.0, electronic_sigma, size=mean.shape)
    return np.maximum(counts, 1.0)


@register("ct_low_dose", unit="photons per detector bin per view (I0)", worse="lower",
          bounds=(3e5, 5e4, 5e3), levels={"mild": 1e5, "moderate": 1.5e4, "severe": 1e3},
          modalities=("CT",), finding="noise", domain=(1.0, 1e10))
def ct_low_dose(image: MedImage, level: float, rng: np.random.Generator
                ) -> tuple[MedImage, dict[str, Any]]:
    """Low-dose CT: Poisson photon counts at incident flux I0 plus electronic noise, then FBP.

    Physics: HU → μ (water 0.0192/mm at ~70 keV, μ ≥ 0) → parallel-beam line integrals p in mm
    (bin = pixel size, ≈ π/2·N views up to 360) → counts ~ Poisson(I0·e^−p) + N(0, 5²) clipped to
    ≥ 1 → p̂ = ln(I0/counts) → FBP (ramp × Hann). Linearity trick: the output is the input plus
    FBP(p̂ − p) converted to HU, so the full-dose anatomy stays crisp and only the dose-dependent
    noise (and photon starvation streaks) is added. Level: I0, worse lower; full dose ≈ 1e6;
    severity none > 3e5 ≥ mild > 5e4 ≥ moderate > 5e3 ≥ severe (1e5 / 1.5e4 / 1e3 representative:
    ≈ 8 / 20 / 85 HU noise on pydicom's CT_small; more on larger bodies).
    """
    hu = _slices(image)
    pix = _pixel_mm(image)
    geom = projection.geometry(hu.shape)
    p = projection.forward(hu_to_mu(hu), geom) * np.float32(pix)
    counts = transmission_counts(p, float(level), rng)
    p_hat = np.log(float(level) / counts).astype(np.float32)
    dmu = projection.fbp(p_hat - p, geom, hu.shape[-2:], WINDOW) / np.float32(pix)
    out = hu + dmu * np.float32(1000.0 / MU_WATER)
    params = {**_common(image, geom), "I0": float(level),
              "electronic_noise_counts": ELECTRONIC_NOISE,
              "recon": "fbp_linearity", "photon_starved_fraction": float(np.mean(counts <= 1.0)),
              "max_line_integral": float(p.max())}
    return image.with_array(out.reshape(image.shape)), params


@register("ct_sparse_view", unit="projection views over 180°", worse="lower",
          bounds=(180, 90, 45), levels={"mild": 120, "moderate": 60, "severe": 24},
          modalities=("CT",), finding="streak", domain=(2.0, 1e4))
def ct_sparse_view(image: MedImage, level: float, rng: np.random.Generator
                   ) -> tuple[MedImage, dict[str, Any]]:
    """Sparse-view CT: FBP from only `level` evenly spaced views → angular-undersampling streaks.

    Physics: HU → μ → noiseless line integrals at `level` views over 180° → FBP (ramp × Hann).
    The streak component is FBP_sparse(p) − FBP_reference(p) with the reference at ≈ π/2·N
    views, added to the input so anatomy keeps its resolution and only the undersampling error
    is new (deterministic: the rng is not used). Level: number of views, worse lower; severity
    none > 180 ≥ mild > 90 ≥ moderate > 45 ≥ severe (120 / 60 / 24 representative).
    """
    hu = _slices(image)
    mu = hu_to_mu(hu)
    ref = projection.geometry(hu.shape)
    try:
        sparse = projection.geometry(hu.shape, max(2, int(round(level))))
    except ValueError as e:
        raise InvalidParameter(str(e), image.source) from None
    recon = [projection.fbp(projection.forward(mu, g), g, hu.shape[-2:], WINDOW)
             for g in (sparse, ref)]
    out = hu + (recon[0] - recon[1]) * np.float32(1000.0 / MU_WATER)
    params = {**_common(image, sparse), "reference_views": ref.n_views, "recon": "fbp_difference"}
    return image.with_array(out.reshape(image.shape)), params
