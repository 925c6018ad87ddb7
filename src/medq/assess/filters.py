"""Plane filters shared by the measures and the evidence features: shrinking, a fast median, a
fast wide Gaussian and the power spectrum.

`median_filter` gives exactly what `scipy.ndimage.median_filter` gives, and `wide_gaussian` what
`scipy.ndimage.gaussian_filter` gives up to float rounding, both with SciPy's default
`mode="reflect"` (half-sample symmetric padding). They exist only for speed
(`benchmarks/assess_speed.py` reports the evidence cost per slice) and are tested against SciPy.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage

from medq.assess.sorting import window_medians

CHUNK_PIXELS = 8192
"""Output pixels per partition call: the copied windows (size² values each) of a band of rows
stay in cache (one call over a whole 512² slice copies 100 MB and ran 2.5× slower at size 7)."""

NETWORK_PIXELS = 16384
"""Output pixels per band of the selection networks: each comparator's arrays stay in cache."""

NETWORK_SIZES = (3, 5, 7)
"""Window sizes whose median runs as a selection network (`medq.assess.sorting`); larger
windows, and planes with a non-finite value, take the partition path."""


def median_filter(x: np.ndarray, size: int) -> np.ndarray:
    """2D median over `size`×`size` windows (odd size), equal to `ndimage.median_filter(x, size)`.

    Every window is a strided view of the padded image, a band of rows at a time. Sizes 3–7 on
    finite planes run a selection network of element-wise min/max (`medq.assess.sorting`; the
    CT streak index of a 256² view, which takes a 5×5 and a 7×7 median, fell from 27 to 22 ms);
    otherwise one `np.partition` along the window axis picks the middle value (3–4× faster
    than SciPy's per-pixel rank filter at 512²).
    """
    if size % 2 == 0 or size < 1:
        raise ValueError(f"median size must be odd and positive, got {size}")
    x = np.asarray(x)
    half = size // 2
    padded = np.pad(x, half, mode="symmetric")
    middle = size * size // 2
    out = np.empty(x.shape, dtype=padded.dtype)
    network = size in NETWORK_SIZES and bool(np.isfinite(x).all())
    rows = max(1, (NETWORK_PIXELS if network else CHUNK_PIXELS) // max(1, x.shape[1]))
    for top in range(0, x.shape[0], rows):
        band = padded[top:top + rows + 2 * half]
        if network:
            out[top:top + rows] = window_medians(band, size)
            continue
        windows = np.lib.stride_tricks.sliding_window_view(band, (size, size))
        flat = windows.reshape(*windows.shape[:2], size * size)
        out[top:top + rows] = np.partition(flat, middle, axis=-1)[..., middle]
    return out


def shrink(array: np.ndarray, longest: int) -> np.ndarray:
    """A 2D plane shrunk (area-antialiased) so its longer side is at most `longest` pixels;
    the plane itself when it is already that small."""
    from skimage.transform import resize

    h, w = array.shape
    f = longest / max(h, w)
    if f >= 1.0:
        return array
    shape = (max(8, round(h * f)), max(8, round(w * f)))
    return resize(array, shape, order=1, anti_aliasing=True, preserve_range=True)


def power_spectrum(x: np.ndarray, half: bool = False) -> np.ndarray:
    """|FFT(x)|² over the last two axes of a real plane (or stack of planes), unshifted
    (SciPy's FFT: 2–3× NumPy's on these sizes); `half`: the real FFT's half plane
    (x // 2 + 1 columns), which holds all of a real plane's power."""
    spectrum = sp_fft.rfft2(x) if half else sp_fft.fft2(x)
    return spectrum.real ** 2 + spectrum.imag ** 2


MATRIX_SIDE = 512
"""Largest side `wide_gaussian` smooths by matrix products: up to here two dense n×n products
beat two FFT passes (4× at 256², 2× at 512²); beyond, their n³ cost does not."""


@lru_cache(maxsize=16)
def _gaussian_matrix(n: int, sigma: float, truncate: float) -> np.ndarray:
    """The n×n matrix of SciPy's 1D Gaussian filter with reflect padding (column j is the
    filter's response to an impulse at j), read-only and cached per (n, σ)."""
    matrix = ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0, mode="reflect",
                                       truncate=truncate)
    matrix.setflags(write=False)
    return matrix


def wide_gaussian(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """2D Gaussian smoothing equal to `ndimage.gaussian_filter(x, sigma)` (same kernel, truncated
    at `truncate`·σ, same reflect padding) up to rounding, faster for wide kernels (σ ≈ 20 px on
    256²): planes up to `MATRIX_SIDE` are two products with the filter's matrices, larger ones
    one real-FFT filtering per axis (the direct cost grows with σ, these do not)."""
    out = np.asarray(x, dtype=np.float64)
    if max(out.shape) <= MATRIX_SIDE:
        ny, nx = out.shape
        return _gaussian_matrix(ny, float(sigma), truncate) @ out @ \
            _gaussian_matrix(nx, float(sigma), truncate).T
    radius = int(truncate * float(sigma) + 0.5)
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / float(sigma)) ** 2)
    kernel /= kernel.sum()
    return _fft_filter_axis(_fft_filter_axis(out, kernel, 0), kernel, 1)


FFT_ROWS = 64
"""Lines filtered per real-FFT call of `wide_gaussian`'s large-plane path: the padded lines
and their spectra stay small (a 3000×2500 plane held about 300 MB of them at once)."""


def _fft_filter_axis(x: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """`x` filtered along `axis` by the odd, symmetric `kernel` with half-sample symmetric
    padding, by real FFTs of the padded length, `FFT_ROWS` lines at a time (overlap-save: the
    circular wrap reaches only the first len(kernel) − 1 outputs, which are the padding's and
    dropped)."""
    lines = np.moveaxis(x, axis, -1)
    out = np.empty(lines.shape)
    radius, length = kernel.size // 2, lines.shape[-1]
    n = sp_fft.next_fast_len(length + 2 * radius, real=True)
    response = sp_fft.rfft(kernel, n)
    for start in range(0, lines.shape[0], FFT_ROWS):
        block = np.pad(lines[start:start + FFT_ROWS], [(0, 0), (radius, radius)],
                       mode="symmetric")
        filtered = sp_fft.irfft(sp_fft.rfft(block, n, axis=-1) * response, n, axis=-1)
        out[start:start + FFT_ROWS] = filtered[:, 2 * radius:2 * radius + length]
    return np.moveaxis(out, -1, axis)
