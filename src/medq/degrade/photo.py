"""Photograph (OP) degradations: camera sensor noise of a fundus photograph.

A fundus camera's sensor counts photons, so its noise is signal-dependent (shot noise, Poisson)
plus a floor (read noise, Gaussian), both on the *linear* light the sensor saw; the file holds
that light gamma-encoded (sRGB-like) and colour-balanced, so the noise seen in the file is
stronger in the shadows than in the highlights, and in the channels the white balance amplifies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from medq.degrade.registry import register
from medq.errors import UnsupportedImage
from medq.image import MedImage

GAMMA = 2.2
"""Display encoding assumed for a photograph: value = linear light^(1/GAMMA)."""

DARK = 0.04
"""Display values (of a [0, 1] range) below this, averaged over the channels, are the black
surround of a fundus photograph, not the retina."""

REFERENCE_RANGE = (0.1, 0.9)
"""The retina's brightness levels (`retina_levels`) are clipped to this display range."""

READ_SHARE = (0.1, 0.5)
"""Range of the read noise's share of the noise variance at the retina's median brightness (the
rest is shot noise)."""

CHANNEL_GAIN = ((1.0, 1.6), (1.0, 1.0), (1.2, 2.2))
"""Ranges of the white-balance gains on the shot noise's variance of R, G and B (green, sampled
twice in a Bayer mosaic and least amplified, is the reference)."""

CORRELATION_PX = (0.0, 0.8)
"""Range of the σ (px) of the Gaussian that correlates the noise of neighbouring pixels
(demosaicking and in-camera denoising)."""


POISSON_LIMIT = 1e7
"""Photon counts above this are drawn from the Gaussian the Poisson law tends to (a tiny level
asks for counts NumPy's Poisson sampler refuses)."""


def display_scale(image: MedImage) -> float:
    """The full scale of a photograph's values: a grey one's stated bit depth (its file's
    values), else the smallest of 1, 255 and 65535 its largest value fits, up to 5 % over 1
    read as 1 (MedImage holds a colour picture read from a file in 0–1)."""
    bits = image.meta.get("bit_depth")
    if not image.is_rgb and isinstance(bits, (int, np.integer)) and 1 < int(bits) <= 32:
        return float(2 ** int(bits) - 1)
    finite = image.array[np.isfinite(image.array)]
    top = float(finite.max()) if finite.size else 1.0
    return next((s for s in (1.0, 255.0, 65535.0) if top <= s * (1.05 if s == 1.0 else 1.0)),
                top)


def retina_levels(display: np.ndarray) -> tuple[float, float]:
    """The median and the robust maximum (99th percentile) of the green channel (a grey
    photograph's values) over the retina, display values of [0, 1] clipped to
    `REFERENCE_RANGE`: where the level states the noise σ, and what it is a fraction of."""
    grey = display.mean(axis=-1) if display.ndim == 3 else display
    green = display[..., 1] if display.ndim == 3 else display
    lit = green[grey > DARK]
    if not lit.size:
        return 0.5, 0.5
    median, top = np.percentile(lit, [50.0, 99.0])
    return float(np.clip(median, *REFERENCE_RANGE)), float(np.clip(top, *REFERENCE_RANGE))


def _correlated(noise: np.ndarray, sigma_px: float) -> np.ndarray:
    """Noise smoothed by a Gaussian of `sigma_px` per channel and rescaled to its own σ."""
    if sigma_px <= 0.05:
        return noise
    spatial = (sigma_px, sigma_px, 0.0) if noise.ndim == 3 else sigma_px
    smooth = ndimage.gaussian_filter(noise, spatial)
    return smooth * (noise.std() / max(float(smooth.std()), 1e-12))


@register("fundus_noise", unit="noise sigma / the retina's robust max", worse="higher",
          bounds=(0.015, 0.04, 0.1), levels={"mild": 0.025, "moderate": 0.065, "severe": 0.15},
          modalities=("OP",), finding="noise", domain=(0.0, 1.0))
def fundus_noise(image: MedImage, level: float, rng: np.random.Generator
                 ) -> tuple[MedImage, dict[str, Any]]:
    """Camera sensor noise: Poisson shot noise plus Gaussian read noise on linear light.

    The display values d (full scale `display_scale`) are linearised, L = d^GAMMA; the sensor's
    noise variance at L is a·g_c·L + b (shot noise scaled by each channel's white-balance gain
    g_c, read noise b), drawn as Poisson counts of L/(a·g_c) plus a Gaussian, mostly correlated
    between neighbouring pixels (demosaicking, σ up to `CORRELATION_PX`); the result is clipped
    to [0, 1] and encoded back (so, as in a camera whose black level is clipped, the read noise
    lifts a black surround by a few hundredths of full scale). a and b are set so that the
    display noise σ of a green pixel at the retina's median brightness is `level` × the retina's
    robust maximum (`retina_levels`; as `mr_noise` scales σ to the brightest tissue), the read
    noise taking a drawn share of it; darker pixels get more, brighter ones less. Level: σ as
    that fraction, worse higher; none < 0.015 ≤ mild < 0.04 ≤ moderate < 0.1 ≤ severe
    (0.025 / 0.065 / 0.15).
    """
    if image.is_volume:
        raise UnsupportedImage("fundus_noise applies to 2D photographs, not a volume",
                               image.source)
    scale = display_scale(image)
    d = np.clip(image.array.astype(np.float64) / scale, 0.0, 1.0)
    linear = d ** GAMMA
    ref, top = retina_levels(d)
    l_ref = ref ** GAMMA
    slope = l_ref ** (1.0 / GAMMA - 1.0) / GAMMA  # d(display)/d(linear) at the reference
    variance = (float(level) * top / slope) ** 2  # on linear light at the reference
    read = float(rng.uniform(*READ_SHARE))
    gains = [float(rng.uniform(*g)) for g in CHANNEL_GAIN] if image.is_rgb else [1.0]
    corr = float(rng.uniform(*CORRELATION_PX))
    a = (1.0 - read) * variance / l_ref  # shot-noise variance per unit of linear light
    gain = np.asarray(gains) if image.is_rgb else 1.0
    step = a * gain  # linear light per counted photon, per channel
    mean = linear / step  # photons counted; beyond POISSON_LIMIT a Gaussian draws them
    counts = rng.poisson(np.minimum(mean, POISSON_LIMIT)).astype(np.float64)
    if (mean > POISSON_LIMIT).any():  # drawn only then, so other draws stay as they were
        gaussian = mean + np.sqrt(mean) * rng.standard_normal(mean.shape)
        counts = np.where(mean > POISSON_LIMIT, gaussian, counts)
    noise = counts * step - linear + rng.normal(0.0, np.sqrt(read * variance), linear.shape)
    noisy = np.clip(linear + _correlated(noise, corr), 0.0, 1.0)
    out = (noisy ** (1.0 / GAMMA) * scale).astype(np.float32)
    params = {"sigma": float(level) * top, "sigma_fraction": float(level),
              "reference_brightness": ref, "robust_max": top, "read_share": read,
              "channel_gains": gains, "correlation_px": corr, "gamma": GAMMA,
              "full_scale": scale, "photons_at_reference": float(l_ref / a)}
    return image.with_array(out), params
