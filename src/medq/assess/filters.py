"""Faster equivalents of two SciPy filters that dominated the evidence features' cost.

- `median_filter`: exactly what `scipy.ndimage.median_filter` gives with its default
  `mode="reflect"` (half-sample symmetric padding).
- `gaussian_filter`: `scipy.ndimage.gaussian_filter` (`mode="reflect"`, `truncate=4`) computed
  by FFT convolution for wide kernels, equal up to float rounding.

They exist only for speed (`benchmarks/assess_speed.py` reports the evidence cost per slice)
and are tested against SciPy.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.signal import fftconvolve


def median_filter(x: np.ndarray, size: int) -> np.ndarray:
    """2D median over `size`×`size` windows (odd size), equal to `ndimage.median_filter(x, size)`.

    Every window is a strided view of the padded image, and one `np.partition` along the window
    axis picks the middle value: about 2.5× faster than SciPy's per-pixel rank filter at 256².
    """
    if size % 2 == 0 or size < 1:
        raise ValueError(f"median size must be odd and positive, got {size}")
    x = np.asarray(x)
    half = size // 2
    padded = np.pad(x, half, mode="symmetric")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    flat = windows.reshape(*x.shape, size * size)
    middle = size * size // 2
    return np.partition(flat, middle, axis=-1)[..., middle]


FFT_MIN_RADIUS = 12
"""Kernel radius (pixels) from which `gaussian_filter` convolves by FFT instead of directly."""


def gaussian_filter(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """2D Gaussian smoothing equal to `ndimage.gaussian_filter(x, sigma)` (reflect mode).

    Each axis is padded by the kernel radius r = ⌊truncate·σ + ½⌋ with half-sample symmetric
    reflection (SciPy's "reflect") and convolved with the same normalised 1D kernel SciPy uses;
    for r ≥ `FFT_MIN_RADIUS` the convolution runs by FFT (σ = 20 px on a 256² view: ≈ 8× faster
    than SciPy's direct 161-tap correlation), below it SciPy itself runs.
    """
    x = np.asarray(x, dtype=np.float64)
    radius = int(truncate * float(sigma) + 0.5)
    if x.ndim != 2 or radius < FFT_MIN_RADIUS:
        return ndi.gaussian_filter(x, sigma, truncate=truncate)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / float(sigma)) ** 2)
    kernel /= kernel.sum()
    out = x
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        # reflection past a whole image width falls back to SciPy, which tiles it differently
        if radius > out.shape[axis]:
            return ndi.gaussian_filter(x, sigma, truncate=truncate)
        shape = [1, 1]
        shape[axis] = kernel.size
        out = fftconvolve(np.pad(out, pad, mode="symmetric"), kernel.reshape(shape), mode="valid")
    return out
