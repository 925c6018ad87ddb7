"""Full-reference fidelity of a restored (or degraded) image `x` against a reference `ref`.

Both arrays must have the same shape; pixels where either is NaN/inf are ignored (PSNR, NRMSE) or
set to the reference's finite median (SSIM, which needs a full grid). CT results depend on the
intensity window: pass `window=(lo, hi)` (e.g. the abdominal window (−160, 240) HU) to clip both
images to it first, as low-dose CT papers do; the data range then defaults to the window width.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from medq.errors import InvalidParameter
from medq.metrics.values import as_values, common_scale, value_pair

Window = tuple[float, float]

SSIM_SIGMA = 1.5
"""Gaussian window σ of SSIM (Wang et al. 2004), with population covariances."""

SSIM_3D_SLICES = 11
"""Fewest slices a volume's SSIM takes the 3D Gaussian window over (its 11-px extent); thinner
volumes average their slices' 2D SSIM."""


def _prepare(x: np.ndarray, ref: np.ndarray, window: Window | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Return float64 copies (clipped to `window`, then scaled by `values.common_scale` so
    squares of huge values stay finite), the mask of pixels finite in both, and that scale."""
    a, b = as_values(x, "image"), as_values(ref, "reference")
    if a.shape != b.shape:
        raise InvalidParameter(f"image shape {a.shape} differs from reference shape {b.shape}")
    if window is not None:
        lo, hi = value_pair(window, "window")
        a, b = np.clip(a, lo, hi), np.clip(b, lo, hi)
    scale = common_scale(a, b)
    if scale != 1.0:
        a, b = a * scale, b * scale
    return a, b, np.isfinite(a) & np.isfinite(b), scale


def _data_range(ref: np.ndarray, valid: np.ndarray, window: Window | None,
                data_range: float | None, scale: float = 1.0) -> float:
    """Data range R (in `_prepare`'s scaled units): given, else the window width, else
    max − min of the (finite) reference."""
    if data_range is not None:
        given = as_values(data_range, "data_range")
        if given.size != 1:
            raise InvalidParameter(f"data_range must be one number, got {data_range!r}")
        return float(given.ravel()[0]) * scale
    if window is not None:
        lo, hi = value_pair(window, "window")
        return (hi - lo) * scale
    values = ref[valid]
    return float(values.max() - values.min()) if values.size else float("nan")


def psnr(x: np.ndarray, ref: np.ndarray, data_range: float | None = None,
         window: Window | None = None, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio PSNR = 10·log10(R² / MSE) in dB, MSE over the (masked) pixels.

    R = `data_range`, else the window width, else max(ref) − min(ref). inf when x == ref; nan when
    R is 0 or no pixel is usable.
    """
    a, b, valid, scale = _prepare(x, ref, window)
    if mask is not None:
        inside = as_values(mask, "mask") != 0
        if inside.shape != valid.shape:
            raise InvalidParameter(f"mask shape {inside.shape} differs from image shape "
                                   f"{valid.shape}")
        valid &= inside
    r = _data_range(b, valid, window, data_range, scale)
    if not valid.any() or not np.isfinite(r) or r <= 0:
        return float("nan")
    mse = float(np.mean((a[valid] - b[valid]) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(r * r / mse))


def nrmse(x: np.ndarray, ref: np.ndarray, normalization: str = "euclidean",
          window: Window | None = None) -> float:
    """Normalised RMSE: ‖x − ref‖/‖ref‖ ("euclidean", as skimage), RMSE/(max − min) of ref
    ("range") or RMSE/mean(ref) ("mean"); nan when the normaliser is 0."""
    a, b, valid, _ = _prepare(x, ref, window)  # a ratio: the common scale cancels
    if not valid.any():
        return float("nan")
    diff, b = a[valid] - b[valid], b[valid]
    rmse = float(np.sqrt(np.mean(diff * diff)))
    norms = {
        "euclidean": lambda: float(np.sqrt(np.mean(b * b))),
        "range": lambda: float(b.max() - b.min()),
        "mean": lambda: float(b.mean()),
    }
    if normalization not in norms:
        raise InvalidParameter(f"normalization must be one of {sorted(norms)}, "
                               f"got {normalization!r}")
    denom = norms[normalization]()
    return float(rmse / denom) if denom != 0 else float("nan")


def ssim(x: np.ndarray, ref: np.ndarray, data_range: float | None = None,
         window: Window | None = None, channel_axis: int | None = None) -> float:
    """Mean structural similarity (Wang et al. 2004) via skimage, 2D or 3D, RGB with channel_axis.

    SSIM = [(2μxμy + C1)(2σxy + C2)] / [(μx² + μy² + C1)(σx² + σy² + C2)], C1 = (0.01R)²,
    C2 = (0.03R)², local statistics under a Gaussian window (σ = 1.5, population covariances).
    R as in `psnr`. Images too small for the 11-px Gaussian window use a uniform window of the
    largest odd size that fits (≥ 3; population covariances too); 3D volumes (slices first)
    with fewer than `SSIM_3D_SLICES` slices are the mean of their 2D slices' SSIM, so a
    volume's SSIM does not jump when a slice is added (a uniform 3D window in between did).
    """
    a, b, valid, scale = _prepare(x, ref, window)
    r = _data_range(b, valid, window, data_range, scale)
    if not valid.any() or not np.isfinite(r) or r <= 0:
        return float("nan")
    if not valid.all():
        fill = float(np.median(b[valid]))
        a, b = np.where(valid, a, fill), np.where(valid, b, fill)
    if channel_axis is not None and not -a.ndim <= channel_axis < a.ndim:
        raise InvalidParameter(f"channel_axis {channel_axis} is not an axis of an image of "
                               f"shape {a.shape}")
    channel = None if channel_axis is None else channel_axis % a.ndim
    spatial = [n for i, n in enumerate(a.shape) if i != channel]
    if len(spatial) == 3 and spatial[0] < SSIM_3D_SLICES and channel_axis is None:
        return float(np.mean([ssim(a[i], b[i], data_range=r) for i in range(a.shape[0])]))
    side = min(spatial)
    if side < 3:
        return float("nan")
    options: dict = {"gaussian_weights": True, "sigma": SSIM_SIGMA, "use_sample_covariance": False}
    if side < 11:
        options = {"win_size": side if side % 2 else side - 1, "use_sample_covariance": False}
    return float(structural_similarity(a, b, data_range=r, channel_axis=channel_axis, **options))
