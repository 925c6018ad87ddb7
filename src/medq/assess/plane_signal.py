"""Signal statistics of one greyscale plane that the evidence features are made of.

Noise from the finest undecimated Haar details (a trimmed RMS that Gaussian noise reads as its
σ), the windowed power spectrum (radial bands, anisotropy, angular irregularity, top peak), the
autocorrelation peaks along each axis, and the span of a smooth quadratic field over the body.
`medq.assess.evidence` assembles them, with the classical measures, into feature rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage as ndi

from medq.assess.filters import power_spectrum, wide_gaussian
from medq.assess.iqms import haar_details, haar_diagonal, inner_blocks, noise_sigma_flat
from medq.assess.masks import body_threshold
from medq.assess.morphology import erode_cross

BANDS = (0.0, 0.02, 0.04, 0.07, 0.1, 0.14, 0.2, 0.28, 0.36, 0.5)
"""Radial frequency band edges of the power spectrum, cycles per pixel."""

EPS = 1e-6

LOG_FLOOR = 1e-4
"""Smallest ratio kept by the log features (a noise-free phantom is not infinitely clean)."""

TRIMMED_RMS_GAUSSIAN = 0.6068
"""RMS of |N(0, 1)| below its 75th percentile: divides the trimmed RMS into a Gaussian σ."""


def log_floored(x: float) -> float:
    """ln x, floored at LOG_FLOOR (also for nan)."""
    return float(np.log(max(float(x), LOG_FLOOR))) if np.isfinite(x) else float(np.log(LOG_FLOOR))


def _robust_sigma(coeffs: np.ndarray) -> float:
    """σ of detail coefficients: RMS of the smallest 75 % (edges excluded; no zero for flat
    quantised areas, unlike the MAD), scaled so Gaussian noise gives its σ."""
    if coeffs.size == 0:
        return float("nan")
    mags = np.abs(coeffs)
    kept = mags[mags <= np.quantile(mags, 0.75)]
    return float(np.sqrt(np.mean(kept * kept)) / TRIMMED_RMS_GAUSSIAN)


def diagonal_sigma(a: np.ndarray, fg: np.ndarray) -> float:
    """σ of a plane's finest Haar diagonal details over the 2×2 blocks inside `fg`
    (`_robust_sigma`): Gaussian white noise reads as its σ."""
    return _robust_sigma(haar_diagonal(a)[inner_blocks(fg)])


def body_contrast(body: np.ndarray) -> float:
    """The robust contrast C = P99 − P1 of a body's pixel values (floored above 0), which the
    noise features are divided by."""
    lo, hi = np.percentile(body, [1.0, 99.0])
    return max(float(hi - lo), EPS * (1.0 + abs(float(hi))))


def fine_noise(a: np.ndarray, modality: str) -> float:
    """A whole plane's finest noise, cheaply: ln(σ of its finest Haar diagonal details over its
    thresholded body (`masks.body_threshold`, no clean-up; the whole plane for a body under 64
    px) / that body's contrast), about 5 ms on a 512² plane where the `noise_hh` feature's
    cleaned body mask takes as long again (the two masks can read a plane with structure
    outside its body up to about 0.2 apart); `a` as the features read it (`evidence.read_plane`)."""
    fg = a > body_threshold(a, modality)
    if fg.sum() < 64:
        fg = np.ones_like(fg)
    return log_floored(diagonal_sigma(a, fg) / body_contrast(a[fg]))


def noise_stats(a: np.ndarray, fg: np.ndarray, contrast: float,
                flat: float | None = None) -> dict[str, float]:
    """Noise level, its spectrum (scale ratio) and direction (detail anisotropy); `flat`: the
    plane's `noise_sigma_flat` when already taken."""
    inside = inner_blocks(fg)
    lh, hl, hh = (c[inside] for c in haar_details(a))
    s_hh, s_lh, s_hl = _robust_sigma(hh), _robust_sigma(lh), _robust_sigma(hl)
    h, w = (n // 2 * 2 for n in a.shape)
    pooled = a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    fg2 = fg[:h, :w].reshape(h // 2, 2, w // 2, 2).all(axis=(1, 3))
    s2 = diagonal_sigma(pooled, fg2) if fg2.sum() > 16 else s_hh
    return {"noise_hh": log_floored(s_hh / contrast),
            "noise_flat": log_floored((noise_sigma_flat(a, fg) if flat is None else flat)
                                      / contrast),
            "noise_scale_ratio": log_floored(s2 / max(s_hh, EPS * contrast)),
            "detail_anisotropy": abs(log_floored(s_lh) - log_floored(s_hl)),
            "detail_hh_ratio": log_floored(s_hh / max(0.5 * (s_lh + s_hl), EPS * contrast))}


@dataclass(frozen=True)
class _Grid:
    """What `spectrum_stats` needs of a plane's frequency grid besides the power (one per shape)."""

    window: np.ndarray
    positive: np.ndarray
    band: np.ndarray
    along_y: np.ndarray
    along_x: np.ndarray
    ring_bins: np.ndarray
    ring: np.ndarray
    far: np.ndarray


GRID_CACHE_PIXELS = 1024 * 1024
"""Largest plane whose frequency grid is kept for the next plane of its shape (a batch of
slices); a larger one (a full-size radiograph's, several hundred MB) is built for its call."""


def _grid(ny: int, nx: int) -> _Grid:
    """`_frequency_grid`, cached for planes up to `GRID_CACHE_PIXELS`."""
    return _cached_grid(ny, nx) if ny * nx <= GRID_CACHE_PIXELS else _frequency_grid(ny, nx)


def _frequency_grid(ny: int, nx: int) -> _Grid:
    """The Hann window, radial band of each frequency (`len(BANDS) − 1` outside every band) and
    the angular masks and bins of an ny×nx centred spectrum."""
    fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(ny)), np.fft.fftshift(np.fft.fftfreq(nx)),
                         indexing="ij")
    r = np.hypot(fy, fx)
    high = (r > 0.25) & (r <= 0.5)
    angle = np.mod(np.arctan2(fy, fx), np.pi)
    ring = (r > 0.12) & (r <= 0.45)
    return _Grid(
        window=np.outer(np.hanning(ny), np.hanning(nx)), positive=r > 0,
        band=_radial_band(r),
        along_y=high & (np.abs(angle - np.pi / 2) < np.pi / 9),
        along_x=high & ((angle < np.pi / 9) | (angle > np.pi - np.pi / 9)),
        ring_bins=np.minimum((angle[ring] / np.pi * 90).astype(int), 89), ring=ring,
        far=r > 0.08)


_cached_grid = lru_cache(maxsize=8)(_frequency_grid)


def _radial_band(r: np.ndarray) -> np.ndarray:
    """The index i of the band BANDS[i] < r ≤ BANDS[i + 1] of each radius (int8), and
    len(BANDS) − 1 for r = 0 and r > BANDS[−1]."""
    outside = len(BANDS) - 1
    band = np.full(r.shape, outside, dtype=np.int8)
    for i, (lo, hi) in enumerate(zip(BANDS[:-1], BANDS[1:], strict=True)):
        band[(r > lo) & (r <= hi)] = i
    return band


def spectrum_stats(a: np.ndarray, fg: np.ndarray) -> dict[str, float]:
    """Radial band powers, high-frequency anisotropy, angular irregularity and the top peak."""
    grid = _grid(*a.shape)
    centred = np.where(fg, a - a[fg].mean(), 0.0)
    power = np.fft.fftshift(power_spectrum(centred * grid.window))
    total = float(power[grid.positive].sum()) + EPS
    out = {f"band_{i}": log_floored(power[grid.band == i].sum() / total)
           for i in range(len(BANDS) - 1)}
    out["spectral_anisotropy"] = abs(log_floored(power[grid.along_y].mean())
                                     - log_floored(power[grid.along_x].mean()))
    bins = grid.ring_bins
    per_angle = np.bincount(bins, power[grid.ring], 90) / np.maximum(np.bincount(bins, None, 90), 1)
    per_angle = ndi.uniform_filter1d(per_angle, 3, mode="wrap")
    out["angular_cv"] = float(np.std(np.log(per_angle + EPS)))
    far = power[grid.far]
    out["spectral_peak"] = log_floored(far.max() / (np.median(far) + EPS))
    return out


def autocorrelation_peaks(x: np.ndarray) -> tuple[float, float]:
    """Largest normalised autocorrelation at lags N/8 … N/2 along either axis, and at N/2."""
    x = x - x.mean()
    spectrum = sp_fft.rfft2(x)
    ac = sp_fft.irfft2(spectrum.real ** 2 + spectrum.imag ** 2, s=x.shape)
    zero = ac[0, 0] + EPS
    best = half = -1.0
    for axis, n in ((0, x.shape[0]), (1, x.shape[1])):
        line = ac[:, 0] if axis == 0 else ac[0, :]
        lags = np.arange(max(2, n // 8), n // 2 + 1)
        if lags.size:
            best = max(best, float(line[lags].max() / zero))
            half = max(half, float(line[n // 2] / zero))
    return best, half


def quadratic_design(ys: np.ndarray, xs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Design matrix [1, y, x, y², x², yx] of pixels (ys, xs), coordinates centred on the plane
    and in units of its sides: a least-squares fit on it is the plane's smooth quadratic trend."""
    y, x = ys / shape[0] - 0.5, xs / shape[1] - 0.5
    return np.stack([np.ones_like(y), y, x, y * y, x * x, y * x], axis=1)


def smooth_field(a: np.ndarray, fg: np.ndarray, zero: float) -> tuple[float, float]:
    """Span (P95 − P5 of a quadratic fit) and CV of the smooth intensity field over the body."""
    body = erode_cross(fg, 2) if fg.sum() > 400 else fg
    if body.sum() < 16:
        return 0.0, 0.0
    sigma = 0.08 * max(a.shape)
    signal = np.maximum(a - zero, 0.0)
    smooth = wide_gaussian(signal * fg, sigma) / (wide_gaussian(fg * 1.0, sigma) + EPS)
    ys, xs = np.nonzero(body)
    step = max(1, ys.size // 4000)
    ys, xs = ys[::step], xs[::step]
    v = np.log(smooth[ys, xs] + EPS * (1 + smooth.max()))
    design = quadratic_design(ys, xs, a.shape)
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    fitted = design @ coef
    values = smooth[ys, xs]
    cv = float(values.std() / (values.mean() + EPS)) if values.mean() > 0 else 0.0
    return float(np.percentile(fitted, 95) - np.percentile(fitted, 5)), cv
