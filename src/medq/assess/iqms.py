"""Classical, reference-free image quality measures (IQMs) on arrays and masks, 2D and 3D.

Conventions: `array` is a 2D `(y, x)` or 3D `(z, y, x)` array in physical units (HU for CT); RGB
photographs go through `compute_measures`, which turns them into luminance. Masks are boolean
arrays of the same shape. Every function is pure (NumPy in, Python float out) and expects finite
values; `compute_measures` takes care of NaN/inf. Spatial filters act in-plane (the last two axes)
because slice spacing and in-plane resolution rarely match. A measure that is undefined for the
input (empty mask, 0/0) is `nan`, never an exception; a ratio whose denominator alone is 0 (a
background of exact zeros, as skull-stripped or synthetic images have) is ±inf.

Where MRIQC (Esteban et al. 2017, PLoS One 12:e0184661) has a measure, the name and the formula
follow it: snr, snr_dietrich, cnr, cjv, efc, fber, wm2max, qi_1 (and `medq.assess.inu`'s
inu_range). Differences are stated in the function's docstring.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import blur_effect

from medq.assess.masks import background_mask
from medq.assess.morphology import erode_square
from medq.errors import InvalidImage
from medq.metrics.values import value_pair

MAD_TO_SIGMA = 0.6745
"""Median of |N(0, 1)|: σ = median(|d|) / 0.6745 for zero-mean Gaussian d (Donoho & Johnstone)."""


def mad_sigma(values: np.ndarray) -> tuple[float, float]:
    """(median, σ) of values, σ = median |v − median| / 0.6745: the Gaussian σ the median absolute
    deviation gives, robust to the outliers it is used to find."""
    v = np.asarray(values, dtype=np.float64)
    median = float(np.median(v))
    return median, float(np.median(np.abs(v - median))) / MAD_TO_SIGMA

DIETRICH_FACTOR = float(np.sqrt(2.0 / (4.0 - np.pi)))
"""σ_noise = σ_air·sqrt(2/(4−π)): from the std of Rayleigh (magnitude) air to the Gaussian σ."""

CT_OFFSET_HU = 1024.0
"""Added to HU before energy measures (EFC, FBER) so that air ≈ 0, like attenuation."""


# ---------------------------------------------------------------------------------------- helpers
def _f64(array: np.ndarray) -> np.ndarray:
    """Return `array` as float64 (2D or 3D); complex values are refused, not cast to their real
    part."""
    if np.iscomplexobj(array):
        raise InvalidImage("measures need real values, got complex ones (pass np.abs of them)")
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim not in (2, 3):
        raise InvalidImage(f"measures need a 2D or 3D array, got shape {arr.shape}")
    return arr


def _mask(array: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Return `mask` as bool of `array`'s shape (all True when None)."""
    if mask is None:
        return np.ones(array.shape, dtype=bool)
    m = np.asarray(mask, dtype=bool)
    if m.shape != array.shape:
        raise InvalidImage(f"mask shape {m.shape} does not match image shape {array.shape}")
    return m


def _inplane(ndim: int, size: float) -> tuple[float, ...]:
    """Per-axis filter size/sigma acting on the last two axes only."""
    return (0,) * (ndim - 2) + (size, size)


def _ratio(num: float, den: float) -> float:
    """num / den as float; nan when undefined (0/0, nan), ±inf when only den is 0."""
    if not (np.isfinite(num) and np.isfinite(den)) or (den == 0 and num == 0):
        return float("nan")
    if den == 0:
        return float(np.copysign(np.inf, num))
    return float(num / den)


def _mean_std(array: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean and population std of `array[mask]` (nan for an empty mask)."""
    values = array[mask]
    if values.size == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std())


def _energy_offset(array: np.ndarray, offset: float | None) -> float:
    """Offset that makes values non-negative for energy measures: given, or max(0, −min)."""
    if offset is not None:
        return float(offset)
    return max(0.0, -float(array.min())) if array.size else 0.0


# ------------------------------------------------------------------------------------------ noise
def _corners(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four corners of every 2×2 block in-plane: top-left, top-right, bottom-left,
    bottom-right (each shaped as `a` minus one on the last two axes)."""
    return a[..., :-1, :-1], a[..., :-1, 1:], a[..., 1:, :-1], a[..., 1:, 1:]


def haar_diagonal(array: np.ndarray) -> np.ndarray:
    """Undecimated finest Haar diagonal (HH) coefficients in-plane: (a − b − c + d) / 2 per 2×2.

    The orthonormal Haar HH filter has unit norm, so white noise of std σ gives coefficients of
    std σ, while smooth structure (constant or linear ramps) gives 0. Shape: last two axes − 1.
    """
    p, q, r, s = _corners(_f64(array))
    return (p - q - r + s) / 2.0


def haar_details(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undecimated finest Haar details in-plane (LH: across rows, HL: across columns, HH:
    diagonal, as `haar_diagonal`), each of unit norm. Shape: last two axes − 1."""
    p, q, r, s = _corners(_f64(array))
    return (p + q - r - s) / 2.0, (p - q + r - s) / 2.0, (p - q - r + s) / 2.0


def inner_blocks(mask: np.ndarray) -> np.ndarray:
    """The in-plane 2×2 blocks lying wholly inside `mask` (the Haar coefficients it owns)."""
    p, q, r, s = _corners(np.asarray(mask, dtype=bool))
    return p & q & r & s


def noise_sigma_wavelet(array: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Donoho's MAD noise estimate: σ = median(|HH|) / 0.6745 over 2×2 blocks inside `mask`.

    Equivalent to PyWavelets' `db1` level-1 diagonal detail, undecimated (more samples for small
    masks). Edges only occupy a few coefficients, so the median ignores them. It reads the
    finest-scale (white) part of the noise only: noise a smooth reconstruction kernel correlated
    reads low (CT filtered back-projection with a Hann filter: about 60 % below the std of a
    uniform ROI; with a ramp filter, 10–20 % below), as does `snr`, which divides by it; on
    integer-stored values it moves in steps of 0.5 / 0.6745 stored units.
    """
    a = _f64(array)
    coeffs = haar_diagonal(a)[inner_blocks(_mask(a, mask))]
    if coeffs.size == 0:
        return float("nan")
    return float(np.median(np.abs(coeffs)) / MAD_TO_SIGMA)


def noise_sigma_flat(array: np.ndarray, mask: np.ndarray | None = None, window: int = 7,
                     fraction: float = 0.1) -> float:
    """Noise σ from the flattest windows: sqrt(median local variance) in the flattest `fraction`.

    Local variance: unbiased variance in `window`×`window` in-plane windows lying wholly inside the
    mask. Flatness is ranked on the Gaussian-smoothed image (σ = 2 px), whose local variance is
    mostly structure rather than noise; the smoothed noise left in it still favours quieter
    windows a little, so on white noise the estimate is about 3 % low. On correlated noise
    (CT's filtered back-projection) a 7-px window misses the noise's coarse grain: the estimate
    is then about a quarter below the std a reader measures in a large uniform ROI.
    """
    a = _f64(array)
    m = _mask(a, mask)
    size = _inplane(a.ndim, window)
    size = tuple(int(s) if s else 1 for s in size)
    n = window * window

    def local_var(x: np.ndarray) -> np.ndarray:
        mean = ndi.uniform_filter(x, size)
        return np.maximum(ndi.uniform_filter(x * x, size) - mean * mean, 0.0) * n / (n - 1)

    valid = erode_square(m, window // 2)  # windows wholly inside the mask
    if not valid.any():
        valid = m
    if not valid.any():
        return float("nan")
    flatness = local_var(ndi.gaussian_filter(a, _inplane(a.ndim, 2.0)))[valid]
    chosen = flatness <= np.quantile(flatness, fraction)
    return float(np.sqrt(np.median(local_var(a)[valid][chosen])))


# ------------------------------------------------------------------------------ signal and contrast
def snr(array: np.ndarray, mask: np.ndarray, sigma: float | None = None,
        offset: float | None = None) -> float:
    """Signal-to-noise ratio SNR = (μ_fg + offset) / σ, σ = `sigma` or `noise_sigma_wavelet`
    inside the mask.

    `offset` makes the signal a quantity above zero where the unit's zero is not "no signal":
    `compute_measures` passes +1024 for CT, so the signal is attenuation above air, not the
    distance from water (in HU a water phantom's SNR would be 0, a fatty body's negative).
    MRIQC's `snr` divides by the std inside a *tissue* mask instead (see `snr_tissue`); over a
    whole-body mask that std is anatomy, not noise, hence the noise estimator here.
    """
    a = _f64(array)
    m = _mask(a, mask)
    mu, _ = _mean_std(a, m)
    s = noise_sigma_wavelet(a, m) if sigma is None else float(sigma)
    return _ratio(mu + (offset or 0.0), s)


def snr_tissue(array: np.ndarray, mask: np.ndarray) -> float:
    """MRIQC's tissue SNR: μ / (σ·sqrt(n/(n−1))), i.e. mean / sample std inside one tissue mask."""
    values = _f64(array)[_mask(array, mask)]
    if values.size < 2:
        return float("nan")
    return _ratio(float(values.mean()), float(values.std(ddof=1)))


def snr_dietrich(array: np.ndarray, fg: np.ndarray, bg: np.ndarray | None = None) -> float:
    """Dietrich's SNR for magnitude MR: μ_fg / (σ_bg · sqrt(2/(4−π))), σ_bg = std of air.

    Air in a magnitude image is Rayleigh distributed; its std is σ·sqrt((4−π)/2), hence the factor.
    `bg` defaults to the complement of `fg` dilated by 2 px. MRIQC uses the air MAD when > 1.
    """
    a = _f64(array)
    f = _mask(a, fg)
    b = background_mask(f) if bg is None else _mask(a, bg)
    mu, _ = _mean_std(a, f)
    _, sigma_bg = _mean_std(a, b)
    return _ratio(mu, sigma_bg * DIETRICH_FACTOR)


def cnr(array: np.ndarray, a_mask: np.ndarray, b_mask: np.ndarray,
        noise_sigma: float = 0.0) -> float:
    """Contrast-to-noise ratio CNR = |μa − μb| / sqrt(σa² + σb² + σn²).

    With `noise_sigma` = σ_air and masks WM, GM this is MRIQC's `cnr`; without it, the classical
    two-region form.
    """
    a = _f64(array)
    mu_a, sd_a = _mean_std(a, _mask(a, a_mask))
    mu_b, sd_b = _mean_std(a, _mask(a, b_mask))
    return _ratio(abs(mu_a - mu_b), float(np.sqrt(sd_a**2 + sd_b**2 + noise_sigma**2)))


def cjv(array: np.ndarray, wm: np.ndarray, gm: np.ndarray) -> float:
    """Coefficient of joint variation CJV = (σ_wm + σ_gm) / |μ_wm − μ_gm| (lower is better).

    μ and σ are the tissues' means and population stds; MRIQC's workflow passes its formula
    their medians and median absolute deviations instead (robust to partial-volume voxels,
    lower on the same image)."""
    a = _f64(array)
    mu_w, sd_w = _mean_std(a, _mask(a, wm))
    mu_g, sd_g = _mean_std(a, _mask(a, gm))
    return _ratio(sd_w + sd_g, abs(mu_w - mu_g))


def wm2max(array: np.ndarray, wm: np.ndarray) -> float:
    """White-matter-to-max ratio: median(x[wm]) / P99.95(x) over the whole image (MRIQC)."""
    a = _f64(array)
    values = a[_mask(a, wm)]
    if values.size == 0:
        return float("nan")
    return _ratio(float(np.median(values)), float(np.percentile(a, 99.95)))


def efc(array: np.ndarray, mask: np.ndarray | None = None, offset: float | None = None) -> float:
    """Entropy focus criterion, normalised as MRIQC: EFC = Σ (x/B)·ln(x/B) / E_max.

    Over the n voxels of `mask` (all when None), after adding `offset` (default max(0, −min), so
    values are ≥ 0; `compute_measures` uses +1024 for CT, and values still below 0 — the noise of
    air below −1024 HU — count as 0): B = sqrt(Σ x²) is the total energy and
    E_max = n·(1/√n)·ln(1/√n) = −√n·ln√n is the value when all voxels are equal. EFC is 1 for a
    constant image (maximum entropy, i.e. maximal ghosting/blurring of energy) and → 0 when the
    energy is focused in one voxel. Higher is worse.
    """
    a = _f64(array)
    x = a[_mask(a, mask)]
    n = x.size
    if n < 2:
        return float("nan")
    x = np.maximum(x + _energy_offset(x, offset), 0.0)  # CT air below −1024 HU: no energy
    energy = float(np.sqrt(np.sum(x * x)))
    if energy == 0:
        return float("nan")
    e_max = n * (1.0 / np.sqrt(n)) * np.log(1.0 / np.sqrt(n))
    p = x / energy
    return float(np.sum(p * np.log(p + 1e-16)) / e_max)


def fber(array: np.ndarray, fg: np.ndarray, bg: np.ndarray | None = None,
         offset: float | None = None) -> float:
    """Foreground-to-background energy ratio FBER = mean(x_fg²) / mean(x_bg²) (higher is better).

    Values are shifted by `offset` first (as in `efc`). `bg` defaults to the complement of `fg`
    dilated by 2 px. MRIQC's code uses medians of the energies; means are used here, so a faint
    structured artefact in the air (ghost, streak) lowers FBER even where it covers few voxels.
    """
    a = _f64(array)
    f = _mask(a, fg)
    b = background_mask(f) if bg is None else _mask(a, bg)
    if not f.any() or not b.any():
        return float("nan")
    x = a + _energy_offset(a, offset)
    return _ratio(float(np.mean(x[f] ** 2)), float(np.mean(x[b] ** 2)))


# ------------------------------------------------------------------------------------- sharpness
def _normalised_energy(filtered: np.ndarray, a: np.ndarray, m: np.ndarray) -> float:
    """mean(filtered²) over the mask divided by the variance of `a` over the mask."""
    if not m.any():
        return float("nan")
    return _ratio(float(np.mean(filtered[m] ** 2)), float(np.var(a[m])))


def sharpness(array: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Normalised gradient energy mean(|∇x|²) / var(x) over the mask, in-plane, 1/px².

    Blur removes high frequencies from the numerator faster than from the variance, so the value
    falls monotonically with Gaussian blur; it is invariant to intensity scale and offset. Noise
    raises it: read it together with the noise measures. nan for a plane less than 2 px on a side
    (no gradient is defined there).
    """
    a = _f64(array)
    if a.ndim < 2 or min(a.shape[-2:]) < 2:
        return float("nan")
    gy, gx = (np.gradient(a, axis=ax) for ax in (-2, -1))
    return _normalised_energy(np.sqrt(gy * gy + gx * gx), a, _mask(a, mask))


def laplacian_variance(array: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Normalised Laplacian energy mean((∇²x)²) / var(x) over the mask, in-plane, 1/px⁴."""
    a = _f64(array)
    lap = ndi.laplace(a, axes=(a.ndim - 2, a.ndim - 1))
    return _normalised_energy(lap, a, _mask(a, mask))


def blur(array: np.ndarray) -> float:
    """Crété-Roffet perceptual blur (0 sharp … 1 blurred), max over the in-plane axes (skimage);
    nan for a plane under 12 px on a side or a constant image."""
    a = _f64(array)
    if min(a.shape[-2:]) < 12 or float(np.ptp(a)) == 0.0:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):  # a volume's z axis: read, then dropped
        per_axis = blur_effect(a, reduce_func=None)
    return float(max(per_axis[-2:]))


# ------------------------------------------------------------------------------------- histogram
def dynamic_range(array: np.ndarray, mask: np.ndarray | None = None,
                  value_range: tuple[float, float] | None = None) -> float:
    """Robust dynamic range P99.5 − P0.5 over the mask; a fraction of the width of `value_range`
    (e.g. (0, 1) for photographs) when given, else in image units (HU for CT)."""
    a = _f64(array)
    values = a[_mask(a, mask)]
    if values.size == 0:
        return float("nan")
    lo, hi = np.percentile(values, [0.5, 99.5])
    if value_range is None:
        return float(hi - lo)
    low, high = value_pair(value_range)
    return _ratio(float(hi - lo), high - low)


def clipping_fraction(array: np.ndarray, mask: np.ndarray | None = None,
                      value_range: tuple[float, float] | None = None, rtol: float = 1e-3) -> float:
    """Fraction of (masked) pixels within rtol·(hi − lo) of lo or hi: saturated or clipped pixels.

    (lo, hi) = `value_range` (the nominal range, e.g. (0, 1) or the stored dtype's range mapped to
    physical units) or the image's own min and max. Restrict to the body mask so that a legitimate
    air floor (0 in MR, padding in CT) is not counted. A constant image is entirely clipped (1.0).
    """
    a = _f64(array)
    values = a[_mask(a, mask)]
    if values.size == 0:
        return float("nan")
    lo, hi = (float(a.min()), float(a.max())) if value_range is None else value_pair(value_range)
    tol = rtol * (hi - lo)
    return float(np.mean((values <= lo + tol) | (values >= hi - tol)))
