"""Evidence features: cheap, contrast-normalised measurements that tell finding types apart.

The description's finding detector (`medq.assess.detector`) reads these, never raw pixels,
and the quality model takes them per slice as its measure input (`evidence_rows`).
Every feature is computed in-plane on a 2D greyscale slice (photographs on luminance; volumes
on their salient slices, averaged) and is, where it can be, independent of the intensity scale
and of which image axis was the phase-encode direction:

- **noise**: the finest Haar diagonal detail σ (MAD), the flattest-window σ and the background σ,
  each divided by the robust contrast C = P99 − P1 of the body; the scale-2/scale-1 σ ratio
  (white noise halves, structure does not) and the detail anisotropy |ln σ_LH/σ_HL|;
- **sharpness**: the radial power spectrum in nine bands (fraction of the power, log), the
  normalised gradient and Laplacian energies and Crété's blur;
- **structured artefacts**: the high-/low-pass autocorrelation peaks along each axis (ghost and
  alias copies), the N/2 peak, the ghosting ratio, the spectral peak (k-space spike), the angular
  irregularity of the high-frequency spectrum and the CT streak index;
- **intensity**: the floor and range relative to the modality's zero (contrast loss lifts the
  floor), for CT the body's median and P99 in HU (calibrated units: contrast loss pulls soft
  tissue and bone towards the image mean) and the span of a smooth (quadratic) field fitted to
  the body (bias, illumination);
- **context**: modality, pixel size, matrix size, 2D/3D.

A full-resolution detector can also read `DETECTOR_EXTRAS` (the MR spike contrast of
`medq.assess.artifacts` and the N4 bias-field spread of `medq.assess.inu`), appended to the
full-plane vector when its calibration lists them (`python -m medq.describe.calibrate
--extras`); the quality model's evidence rows never have them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from medq.assess.artifacts import ghosting_ratio, spike_contrast, streak_index
from medq.assess.filters import shrink, wide_gaussian
from medq.assess.iqms import blur, laplacian_variance, noise_sigma_flat, sharpness
from medq.assess.masks import background_mask, body_and_anatomy, to_gray
from medq.assess.morphology import erode_cross

FEATURES_VERSION = 3
"""Bumped whenever a feature's computation changes (cached calibration data is keyed by it;
3: anatomy outside the main body, such as the arms, is no longer read as ghosting)."""

MODALITY_GROUPS = ("CT", "MR", "PT", "XR", "OP")
"""Modality one-hot of the features (CR/DX are XR; anything else has all zeros)."""

BANDS = (0.0, 0.02, 0.04, 0.07, 0.1, 0.14, 0.2, 0.28, 0.36, 0.5)
"""Radial frequency band edges of the power spectrum, cycles per pixel."""

ZERO_LEVEL = {"CT": -1024.0}
"""The value of "no signal" per modality (air in HU for CT; 0 for magnitude images)."""

CT_PADDING_HU = -1500.0
"""CT values below this are padding outside the reconstruction circle (−2000, −3024, …): they
are set to air (−1024 HU) before any feature is computed."""

EPS = 1e-6

LOG_FLOOR = 1e-4
"""Smallest ratio kept by the log features (a noise-free phantom is not infinitely clean)."""

TRIMMED_RMS_GAUSSIAN = 0.6068
"""RMS of |N(0, 1)| below its 75th percentile: divides the trimmed RMS into a Gaussian σ."""

SLICE_NAMES = (
    "noise_hh", "noise_flat", "noise_bg", "noise_scale_ratio", "detail_anisotropy",
    "detail_hh_ratio", *(f"band_{i}" for i in range(len(BANDS) - 1)), "spectral_anisotropy",
    "angular_cv", "spectral_peak", "sharpness", "laplacian", "crete_blur", "ac_high_max",
    "ac_high_half", "ac_low_max", "ac_low_half", "ghosting", "bg_level", "floor", "span",
    "field_span", "field_cv", "streak", "has_background", "ct_tissue", "ct_top",
)
"""Per-slice features, in vector order."""

CONTEXT_NAMES = (*(f"is_{m.lower()}" for m in MODALITY_GROUPS), "log_spacing", "log_matrix",
                 "is_3d")
"""Image-level context features appended after the slice features."""

FEATURE_NAMES = SLICE_NAMES + CONTEXT_NAMES
"""Every feature of an evidence row (what the quality model and the view detector read), in
vector order."""

DETECTOR_EXTRAS = ("spike_contrast", "inu_range")
"""Full-plane features a full-resolution detector may read besides the evidence features (the
quality model's rows do not have them), in vector order: `artifacts.spike_contrast` and
`inu.inu_range` (inside the body mask) of MR planes, 0 for other modalities. Tried for the
shipped calibration, not shipped: the README's description section."""


def ordered_extras(extras: tuple[str, ...]) -> tuple[str, ...]:
    """The detector extras asked for, in vector order (`DETECTOR_EXTRAS`'s); ValueError for a
    name medq does not compute."""
    unknown = sorted(set(extras) - set(DETECTOR_EXTRAS))
    if unknown:
        raise ValueError(f"unknown detector extras {unknown}; medq has {DETECTOR_EXTRAS}")
    return tuple(name for name in DETECTOR_EXTRAS if name in extras)


def feature_names(width: int) -> tuple[str, ...]:
    """The feature names of a full-plane vector of this width: the evidence features, then the
    first extras."""
    extra = width - len(FEATURE_NAMES)
    if not 0 <= extra <= len(DETECTOR_EXTRAS):
        raise ValueError(f"{width} features: medq computes {len(FEATURE_NAMES)} evidence features"
                         f" and up to {len(DETECTOR_EXTRAS)} extras")
    return FEATURE_NAMES + DETECTOR_EXTRAS[:extra]


def modality_group(modality: str) -> str:
    """CT, MR, PT, XR (CR/DX) or OP; other modalities map to themselves."""
    return "XR" if modality in ("CR", "DX") else modality


def _log(x: float) -> float:
    """ln x, floored at LOG_FLOOR (also for nan)."""
    return float(np.log(max(float(x), LOG_FLOOR))) if np.isfinite(x) else float(np.log(LOG_FLOOR))


def _haar_details(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undecimated finest Haar details (LH: across rows, HL: across columns, HH: diagonal)."""
    p, q, r, s = a[:-1, :-1], a[:-1, 1:], a[1:, :-1], a[1:, 1:]
    return (p + q - r - s) / 2.0, (p - q + r - s) / 2.0, (p - q - r + s) / 2.0


def _robust_sigma(coeffs: np.ndarray) -> float:
    """σ of detail coefficients: RMS of the smallest 75 % (edges excluded; no zero for flat
    quantised areas, unlike the MAD), scaled so Gaussian noise gives its σ."""
    if coeffs.size == 0:
        return float("nan")
    mags = np.abs(coeffs)
    kept = mags[mags <= np.quantile(mags, 0.75)]
    return float(np.sqrt(np.mean(kept * kept)) / TRIMMED_RMS_GAUSSIAN)


def _inner(mask: np.ndarray) -> np.ndarray:
    """The 2×2 blocks wholly inside a mask (shape − 1 per axis)."""
    return mask[:-1, :-1] & mask[:-1, 1:] & mask[1:, :-1] & mask[1:, 1:]


def _noise(a: np.ndarray, fg: np.ndarray, contrast: float) -> dict[str, float]:
    """Noise level, its spectrum (scale ratio) and direction (detail anisotropy)."""
    inside = _inner(fg)
    lh, hl, hh = (c[inside] for c in _haar_details(a))
    s_hh, s_lh, s_hl = _robust_sigma(hh), _robust_sigma(lh), _robust_sigma(hl)
    h, w = (n // 2 * 2 for n in a.shape)
    pooled = a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    fg2 = fg[:h, :w].reshape(h // 2, 2, w // 2, 2).all(axis=(1, 3))
    s2 = _robust_sigma(_haar_details(pooled)[2][_inner(fg2)]) if fg2.sum() > 16 else s_hh
    return {"noise_hh": _log(s_hh / contrast),
            "noise_flat": _log(noise_sigma_flat(a, fg) / contrast),
            "noise_scale_ratio": _log(s2 / max(s_hh, EPS * contrast)),
            "detail_anisotropy": abs(_log(s_lh) - _log(s_hl)),
            "detail_hh_ratio": _log(s_hh / max(0.5 * (s_lh + s_hl), EPS * contrast))}


@dataclass(frozen=True)
class _Grid:
    """What `_spectrum` needs of a plane's frequency grid besides the power (one per shape)."""

    window: np.ndarray
    positive: np.ndarray
    bands: tuple[np.ndarray, ...]
    along_y: np.ndarray
    along_x: np.ndarray
    ring_bins: np.ndarray
    ring: np.ndarray
    far: np.ndarray


@lru_cache(maxsize=8)
def _grid(ny: int, nx: int) -> _Grid:
    """The Hann window, band masks and angular bins of an ny×nx centred spectrum (cached)."""
    fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(ny)), np.fft.fftshift(np.fft.fftfreq(nx)),
                         indexing="ij")
    r = np.hypot(fy, fx)
    high = (r > 0.25) & (r <= 0.5)
    angle = np.mod(np.arctan2(fy, fx), np.pi)
    ring = (r > 0.12) & (r <= 0.45)
    return _Grid(
        window=np.outer(np.hanning(ny), np.hanning(nx)), positive=r > 0,
        bands=tuple((r > lo) & (r <= hi) for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True)),
        along_y=high & (np.abs(angle - np.pi / 2) < np.pi / 9),
        along_x=high & ((angle < np.pi / 9) | (angle > np.pi - np.pi / 9)),
        ring_bins=np.minimum((angle[ring] / np.pi * 90).astype(int), 89), ring=ring,
        far=r > 0.08)


def _spectrum(a: np.ndarray, fg: np.ndarray) -> dict[str, float]:
    """Radial band powers, high-frequency anisotropy, angular irregularity and the top peak."""
    grid = _grid(*a.shape)
    centred = np.where(fg, a - a[fg].mean(), 0.0)
    power = np.abs(np.fft.fftshift(np.fft.fft2(centred * grid.window))) ** 2
    total = float(power[grid.positive].sum()) + EPS
    out = {f"band_{i}": _log(power[band].sum() / total) for i, band in enumerate(grid.bands)}
    out["spectral_anisotropy"] = abs(_log(power[grid.along_y].mean())
                                     - _log(power[grid.along_x].mean()))
    bins = grid.ring_bins
    per_angle = np.bincount(bins, power[grid.ring], 90) / np.maximum(np.bincount(bins, None, 90), 1)
    per_angle = ndi.uniform_filter1d(per_angle, 3, mode="wrap")
    out["angular_cv"] = float(np.std(np.log(per_angle + EPS)))
    far = power[grid.far]
    out["spectral_peak"] = _log(far.max() / (np.median(far) + EPS))
    return out


def _autocorrelation(x: np.ndarray) -> tuple[float, float]:
    """Largest normalised autocorrelation at lags N/8 … N/2 along either axis, and at N/2."""
    x = x - x.mean()
    ac = np.real(np.fft.ifft2(np.abs(np.fft.fft2(x)) ** 2))
    zero = ac[0, 0] + EPS
    best = half = -1.0
    for axis, n in ((0, x.shape[0]), (1, x.shape[1])):
        line = ac[:, 0] if axis == 0 else ac[0, :]
        lags = np.arange(max(2, n // 8), n // 2 + 1)
        if lags.size:
            best = max(best, float(line[lags].max() / zero))
            half = max(half, float(line[n // 2] / zero))
    return best, half


def _field(a: np.ndarray, fg: np.ndarray, zero: float) -> tuple[float, float]:
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
    y, x = ys / a.shape[0] - 0.5, xs / a.shape[1] - 0.5
    design = np.stack([np.ones_like(y), y, x, y * y, x * x, y * x], axis=1)
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    fitted = design @ coef
    values = smooth[ys, xs]
    cv = float(values.std() / (values.mean() + EPS)) if values.mean() > 0 else 0.0
    return float(np.percentile(fitted, 95) - np.percentile(fitted, 5)), cv


def read_plane(array: np.ndarray, modality: str) -> np.ndarray:
    """A greyscale plane (or volume) as the features and the classical measures read it: float64,
    non-finite pixels set to the median, CT padding outside the reconstruction circle (below
    `CT_PADDING_HU`) set to air."""
    a = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, np.median(a[finite]) if finite.any() else 0.0)
    if modality == "CT":
        a = np.where(a < CT_PADDING_HU, ZERO_LEVEL["CT"], a)
    return a


def slice_features(array: np.ndarray, modality: str) -> dict[str, float]:
    """The per-slice features of one 2D greyscale slice (see the module docstring), and under
    `streak_index` (not a feature) the raw CT streak index the `streak` feature is the log of."""
    a = read_plane(array, modality)
    finite = np.isfinite(array)
    fg, anatomy = body_and_anatomy(a, modality)
    if fg.sum() < 64:
        fg = np.ones_like(fg)
    lo, hi = np.percentile(a[fg], [1.0, 99.0])
    contrast = max(float(hi - lo), EPS * (1.0 + abs(float(hi))))
    zero = ZERO_LEVEL.get(modality, 0.0)
    p_lo, p_hi = np.percentile(a, [0.5, 99.5])
    out: dict[str, float] = _noise(a, fg, contrast)
    out.update(_spectrum(a, fg))
    bg = background_mask(fg) & finite
    has_bg = bg.sum() >= 64
    out["noise_bg"] = _log(a[bg].std() / contrast) if has_bg else _log(0.0)
    out["bg_level"] = float((np.median(a[bg]) - zero) / contrast) if has_bg else 0.0
    out["has_background"] = float(has_bg)
    out["sharpness"] = _log(sharpness(a, fg))
    out["laplacian"] = _log(laplacian_variance(a, fg))
    crete = blur(a)
    out["crete_blur"] = float(crete) if np.isfinite(crete) else 0.5
    high = a - ndi.gaussian_filter(a, 1.5)
    low = ndi.gaussian_filter(a, 2.0)
    out["ac_high_max"], out["ac_high_half"] = _autocorrelation(high)
    out["ac_low_max"], out["ac_low_half"] = _autocorrelation(low)
    ghost = ghosting_ratio(a, fg, tissue=anatomy) if has_bg else float("nan")
    out["ghosting"] = float(np.clip(ghost, -1, 1)) if np.isfinite(ghost) else 0.0
    span = max(float(p_hi - zero), EPS)
    out["floor"] = float(np.clip((p_lo - zero) / span, -1, 1))
    out["span"] = _log((p_hi - p_lo) / span)
    out["field_span"], out["field_cv"] = _field(a, fg, zero)
    out["streak_index"] = streak_index(a) if modality == "CT" else float("nan")
    out["streak"] = _log(out["streak_index"]) if np.isfinite(out["streak_index"]) else 0.0
    body = np.percentile(a[fg], [50.0, 99.0]) / 1000.0 if modality == "CT" else (0.0, 0.0)
    out["ct_tissue"], out["ct_top"] = float(body[0]), float(body[1])
    return out


def _planes(image: Any, indices: list[int] | None) -> list[np.ndarray]:
    """The greyscale 2D planes features are computed on (volumes: `indices` or salient)."""
    from medq.assess.slices import salient_slices

    array = to_gray(image.array) if image.is_rgb else np.asarray(image.array, dtype=np.float64)
    if not image.is_volume:
        return [array]
    picked = indices if indices else salient_slices(array, modality=image.modality)
    return [array[i] for i in picked]


def _context(image: Any, plane: np.ndarray) -> list[float]:
    """Image-level context features (CONTEXT_NAMES order)."""
    group = modality_group(image.modality)
    spacing = float(np.mean(image.spacing[-2:]))
    return [*(float(group == m) for m in MODALITY_GROUPS), float(np.log(spacing)),
            float(np.log(min(plane.shape))), float(image.is_volume)]


def feature_vector(image: Any, indices: list[int] | None = None,
                   extras: tuple[str, ...] = ()) -> np.ndarray:
    """The full-plane feature vector of a MedImage (FEATURE_NAMES, then the `extras` of
    `DETECTOR_EXTRAS` asked for); volumes on `indices` (salient), each feature the mean over
    the planes."""
    wanted = ordered_extras(extras)
    planes = _planes(image, indices)
    rows = [slice_features(p, image.modality) for p in planes]
    slice_part = [float(np.mean([r[k] for r in rows])) for k in SLICE_NAMES]
    extra_part = [_extra(name, planes, image.modality) for name in wanted]
    return np.asarray(slice_part + _context(image, planes[0]) + extra_part, dtype=np.float32)


def _extra(name: str, planes: list[np.ndarray], modality: str) -> float:
    """One detector extra of an image: its mean over the planes (MR only, else 0)."""
    from medq.assess.inu import inu_range

    if modality_group(modality) != "MR":
        return 0.0
    values = []
    for plane in planes:
        a = read_plane(plane, modality)
        values.append(spike_contrast(a) if name == "spike_contrast"
                      else inu_range(a, body_and_anatomy(a, modality)[0]))
    return float(np.mean([v for v in values if np.isfinite(v)] or [0.0]))


EVIDENCE_SIZE = 256
"""Longest side of the view the quality model's measure input is computed on (speed)."""


def _view_efc(view: np.ndarray, modality: str) -> float:
    """MRIQC's entropy focus criterion of a view (`iqms.efc`; CT offset by +1024 HU, as
    `compute_measures` takes it); 1 (fully spread) when undefined."""
    from medq.assess.iqms import efc

    value = efc(view, None, -ZERO_LEVEL["CT"] if modality == "CT" else None)
    return float(value) if np.isfinite(value) else 1.0


ROW_EXTRA_FUNCTIONS = {"efc": _view_efc}
"""Features an evidence row may carry after `FEATURE_NAMES`, for a quality model trained on them
(a benchmark plan's `evidence_extras`, recorded in the checkpoint), each a function of the view
(as `read_plane` gives it) and the modality: `efc`, which rises with ghosts, aliases, blur and
noise alike within one image (`benchmarks/probes/ladder_features.py`). The detectors read the
leading `FEATURE_NAMES` columns (`evidence_features`), so rows with extras serve them unchanged."""

ROW_EXTRAS = tuple(ROW_EXTRA_FUNCTIONS)
"""The names of the row extras, in row order."""


def ordered_row_extras(extras: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The row extras asked for, in `ROW_EXTRAS` order; ValueError for one medq does not take."""
    unknown = sorted(set(extras) - set(ROW_EXTRAS))
    if unknown:
        raise ValueError(f"unknown evidence row extras {unknown}; medq has {ROW_EXTRAS}")
    return tuple(name for name in ROW_EXTRAS if name in extras)


def evidence_features(rows: np.ndarray) -> np.ndarray:
    """The `FEATURE_NAMES` columns of evidence rows `[slices, features (+ extras)]`."""
    return np.asarray(rows)[..., :len(FEATURE_NAMES)]


def view_features(rows: np.ndarray) -> np.ndarray:
    """The feature vector of an image's views: its evidence rows `[slices, features]` averaged
    over the slices (what the view calibration of the finding detector reads; row extras left
    out)."""
    return np.asarray(evidence_features(rows), dtype=np.float64).mean(axis=0).astype(np.float32)


def plane_streak(plane: np.ndarray, longest: int = EVIDENCE_SIZE) -> float:
    """The CT streak index of a plane as its evidence row reads it: `streak_index` of its view
    of at most `longest` px (`read_plane`); `evidence_views` gives it for free beside the rows."""
    return streak_index(read_plane(shrink(np.asarray(plane, dtype=np.float64), longest), "CT"))


def evidence_views(image: Any, indices: list[int] | None = None, longest: int = EVIDENCE_SIZE,
                   extras: tuple[str, ...] = ()) -> tuple[np.ndarray, list[float]]:
    """`evidence_rows` and each plane's raw CT streak index (`plane_streak`, nan for other
    modalities), so the classical measures need not take it again (`compute_measures(streak=…)`)."""
    wanted = ordered_row_extras(extras)
    rows, streaks = [], []
    for plane in _planes(image, indices):
        view = shrink(plane, longest)
        found = slice_features(view, image.modality)
        tail = [ROW_EXTRA_FUNCTIONS[name](read_plane(view, image.modality), image.modality)
                for name in wanted]
        rows.append([found[k] for k in SLICE_NAMES] + _context(image, plane) + tail)
        streaks.append(found["streak_index"])
    return np.asarray(rows, dtype=np.float32), streaks


def evidence_rows(image: Any, indices: list[int] | None = None,
                  longest: int = EVIDENCE_SIZE, extras: tuple[str, ...] = ()) -> np.ndarray:
    """Per-slice feature rows `[n, len(FEATURE_NAMES) + len(extras)]` on views of at most
    `longest` pixels (`extras`: of `ROW_EXTRAS`, after the features)."""
    return evidence_views(image, indices, longest, extras)[0]
