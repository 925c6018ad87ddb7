"""Parallel-beam tomographic projector shared by CT and PET: forward, back, FBP and MLEM.

Design: a distance-driven system matrix (each square pixel's footprint, approximated by a box of
width |cos θ| + |sin θ|, is split over the ≤ 3 detector bins it overlaps; the backprojector is its
exact adjoint) held as one `scipy.sparse` CSR matrix per geometry, cached with
`functools.lru_cache`. The D4 symmetry of the square pixel grid keeps it small: with views
θ_k = kπ/V and V divisible by 4 only the views in [0°, 45°] are stored; the others are the same
matrix applied to the image rotated by 90° and/or mirrored (pixel permutations), so one sparse
product over a stack of transformed images gives the whole sinogram. A 256² grid with 360 views
takes ~145 MB (512²: ~570 MB); a forward plus filtered back projection runs in ~0.15 s on 2 CPU
cores (512²: ~0.45 s). Images are `(..., y, x)` batches (slices of a volume ride along as extra
columns); non-square images are zero-padded to a centred square. Geometry is in pixel units: the
detector bin equals the pixel size, and callers scale line integrals by the pixel spacing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

WINDOWS = ("ram-lak", "shepp-logan", "cosine", "hann", "hamming")
"""Apodisation windows of the FBP ramp filter."""


@dataclass(frozen=True)
class Geometry:
    """Parallel-beam geometry: square `size`² grid, `n_views` over 180°, `n_det` unit-width bins."""

    size: int
    n_views: int
    n_det: int

    def describe(self) -> dict[str, object]:
        """Parameters recorded in a Degradation: beam, views, bins, angular range."""
        return {"geometry": "parallel", "n_views": self.n_views, "n_detectors": self.n_det,
                "angular_range_deg": 180.0, "grid_size": self.size, "projector": "distance-driven"}


def default_views(size: int) -> int:
    """Views for a `size`² grid: ≈ π/2·size (angular Nyquist), multiple of 4, capped at 360."""
    return int(min(4 * math.ceil(math.pi * size / 8), 360))


def geometry(shape: tuple[int, ...], n_views: int | None = None) -> Geometry:
    """Geometry for `(..., y, x)` images: square of the larger side, bins span its diagonal.
    ValueError for `n_views` whose matrix needs over `PROJECTOR_BUDGET` and more than the
    grid's default views do (9,999 views of a 256² image asked for 15 GB and died of it)."""
    size = int(max(shape[-2:]))
    n_det = int(math.ceil(size * math.sqrt(2))) + 4
    geom = Geometry(size, int(n_views or default_views(size)), n_det)
    need = matrix_bytes(geom)
    if n_views and need > max(PROJECTOR_BUDGET, matrix_bytes(geometry(shape))):
        quarter = "" if _symmetric(geom) else " (or a multiple of 4, which needs a quarter)"
        raise ValueError(f"{geom.n_views} views of a {size}² grid would need "
                         f"{need / 2 ** 30:.1f} GiB for the projector; use fewer views{quarter}")
    return geom


PROJECTOR_BUDGET = 4 << 30
"""Bytes a projector matrix may take beyond what its grid's default views need (`geometry`)."""


def matrix_bytes(geom: Geometry) -> int:
    """Memory of the geometry's system matrix while it is built: per pixel, 3 taps of a value
    and an index for every stored view (a quarter of them and one when `n_views` divides by 4)."""
    stored = geom.n_views // 4 + 1 if _symmetric(geom) else geom.n_views
    return geom.size ** 2 * stored * 3 * 8


def _symmetric(geom: Geometry) -> bool:
    return geom.n_views % 4 == 0 and geom.n_views >= 4


@lru_cache(maxsize=4)
def _matrix(size: int, n_views: int, n_det: int, symmetric: bool) -> sp.csr_matrix:
    """Pixel-major CSR matrix B (size², K·n_det) of the stored views; forward = Bᵀx, back = By."""
    n_stored = n_views // 4 + 1 if symmetric else n_views
    theta = np.arange(n_stored) * np.pi / n_views
    centre = (size - 1) / 2.0
    cos, sin = np.cos(theta), np.sin(theta)
    half = (np.abs(cos) + np.abs(sin)) / 2.0  # footprint half-width
    width, first_bin = 2.0 * half, np.arange(n_stored, dtype=np.int32) * n_det
    data = np.empty((size * size, n_stored, 3), dtype=np.float32)
    indices = np.empty((size * size, n_stored, 3), dtype=np.int32)
    # pixel rows in blocks of ≈ 2¹⁸ entries, so that each block's temporaries stay in cache
    rows = max(1, (1 << 18) // (size * n_stored))
    for top in range(0, size, rows):
        yy, xx = np.mgrid[top:min(size, top + rows), 0:size].astype(np.float64) - centre
        u = xx.reshape(-1, 1) * cos + yy.reshape(-1, 1) * sin + (n_det - 1) / 2.0
        j0 = np.rint(u).astype(np.int32) - 1
        # tap k: overlap of the footprint [u − half, u + half] with bin j0 + k, [e + k, e + k + 1]
        # (e = j0 − ½), over the footprint's width
        lo, hi, edge = u - half, u + half, j0 - 0.5
        block = slice(top * size, top * size + len(u))
        for k in range(3):
            tap = np.minimum(hi, edge + (k + 1)) - np.maximum(lo, edge + k)
            data[block, :, k] = np.clip(tap, 0, None, out=tap) / width
            indices[block, :, k] = first_bin + j0 + k  # bins j0, j0 + 1, j0 + 2 of each view
    indptr = np.arange(0, size * size * 3 * n_stored + 1, 3 * n_stored, dtype=np.int64)
    return sp.csr_matrix((data.reshape(-1), indices.reshape(-1), indptr),
                         shape=(size * size, n_stored * n_det))


def _pad_square(images: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    ny, nx = images.shape[-2:]
    oy, ox = (size - ny) // 2, (size - nx) // 2
    if (ny, nx) == (size, size):
        return images, (0, 0)
    out = np.zeros((*images.shape[:-2], size, size), dtype=images.dtype)
    out[..., oy:oy + ny, ox:ox + nx] = images
    return out, (oy, ox)


def _transforms(x: np.ndarray) -> list[np.ndarray]:
    """The 4 pixel permutations whose stored-view projections tile the 180° of views."""
    flip = x[..., ::-1]
    return [x, np.rot90(x, 1, axes=(-2, -1)), flip, np.rot90(flip, 1, axes=(-2, -1))]


def _inverse_transforms(z: list[np.ndarray]) -> np.ndarray:
    return (z[0] + np.rot90(z[1], -1, axes=(-2, -1)) + z[2][..., ::-1]
            + np.rot90(z[3], -1, axes=(-2, -1))[..., ::-1])


def _slots(geom: Geometry) -> list[tuple[slice, np.ndarray]]:
    """For each transform: which stored views feed which sinogram views."""
    q, v = geom.n_views // 4, geom.n_views
    k0, k1 = np.arange(0, q), np.arange(1, q + 1)
    return [(slice(0, q), k0), (slice(0, q), v // 2 + k0), (slice(1, q + 1), v - k1),
            (slice(1, q + 1), v // 2 - k1)]


def forward(images: np.ndarray, geom: Geometry) -> np.ndarray:
    """Line integrals (pixel units) of `(..., y, x)` images → sinograms `(..., n_views, n_det)`."""
    images = np.asarray(images, dtype=np.float32)
    lead = images.shape[:-2]
    x, _ = _pad_square(images.reshape(-1, *images.shape[-2:]), geom.size)
    sym = _symmetric(geom)
    mat = _matrix(geom.size, geom.n_views, geom.n_det, sym)
    stack = _transforms(x) if sym else [x]
    b, npix = x.shape[0], geom.size * geom.size
    cols = np.stack([t.reshape(b, npix) for t in stack], axis=0).reshape(-1, npix).T
    proj = np.asarray(mat.T @ np.ascontiguousarray(cols))  # (K·n_det, T·b)
    proj = proj.T.reshape(len(stack), b, -1, geom.n_det)
    if not sym:
        sino = proj[0]
    else:
        sino = np.empty((b, geom.n_views, geom.n_det), dtype=np.float32)
        for t, (stored, views) in enumerate(_slots(geom)):
            sino[:, views] = proj[t][:, stored]
    return sino.reshape(*lead, geom.n_views, geom.n_det)


def back(sino: np.ndarray, geom: Geometry, shape: tuple[int, int]) -> np.ndarray:
    """Adjoint of `forward`: unfiltered backprojection of `(..., V, D)` onto `(..., *shape)`."""
    sino = np.asarray(sino, dtype=np.float32)
    lead = sino.shape[:-2]
    s = sino.reshape(-1, geom.n_views, geom.n_det)
    b = s.shape[0]
    sym = _symmetric(geom)
    mat = _matrix(geom.size, geom.n_views, geom.n_det, sym)
    if sym:
        n_stored = geom.n_views // 4 + 1
        y = np.zeros((4, b, n_stored, geom.n_det), dtype=np.float32)
        for t, (stored, views) in enumerate(_slots(geom)):
            y[t][:, stored] = s[:, views]
    else:
        y = s[None]
    cols = y.reshape(y.shape[0] * b, -1).T
    z = np.asarray(mat @ np.ascontiguousarray(cols)).T.reshape(y.shape[0], b, geom.size, geom.size)
    img = _inverse_transforms(list(z)) if sym else z[0]
    oy, ox = (geom.size - shape[0]) // 2, (geom.size - shape[1]) // 2
    img = img[:, oy:oy + shape[0], ox:ox + shape[1]]
    return np.ascontiguousarray(img).reshape(*lead, *shape)


def ramp_filter(n_det: int, window: str = "hann") -> np.ndarray:
    """Frequency response of the discrete (Kak–Slaney) ramp filter times an apodisation window."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; choose from {WINDOWS}")
    size = max(64, int(2 ** math.ceil(math.log2(2 * n_det))))
    n = np.concatenate([np.arange(1, size // 2 + 1, 2), np.arange(size // 2 - 1, 0, -2)])
    h = np.zeros(size)
    h[0] = 0.25
    h[1::2] = -1.0 / (np.pi * n) ** 2
    filt = 2.0 * np.real(np.fft.fft(h))
    f = np.fft.fftfreq(size)  # cycles per bin, |f| ≤ 0.5
    win = {"ram-lak": np.ones_like(f), "shepp-logan": np.sinc(f),
           "cosine": np.cos(np.pi * f), "hann": 0.5 + 0.5 * np.cos(2 * np.pi * f),
           "hamming": 0.54 + 0.46 * np.cos(2 * np.pi * f)}[window]
    return (filt * win).astype(np.float32)


def fbp(sino: np.ndarray, geom: Geometry, shape: tuple[int, int], window: str = "hann"
        ) -> np.ndarray:
    """Filtered backprojection (pixel units): inverse of `forward` up to the window's blur."""
    filt = ramp_filter(geom.n_det, window)
    spec = np.fft.rfft(sino, n=filt.size, axis=-1) * filt[: filt.size // 2 + 1]
    q = np.fft.irfft(spec, n=filt.size, axis=-1)[..., : geom.n_det].astype(np.float32)
    return back(q, geom, shape) * np.float32(np.pi / (2 * geom.n_views))


def mlem(counts: np.ndarray, geom: Geometry, shape: tuple[int, int], n_iter: int,
         weights: np.ndarray | None = None) -> np.ndarray:
    """MLEM for counts ~ Poisson(w·Ax): `n_iter` multiplicative updates from a uniform image.

    `weights` may have fewer leading axes than `counts` (one system for several sinograms, e.g.
    noisy and noise-free counts reconstructed together: each sparse product then reads the
    system matrix once for all of them, and each comes out as it would alone).
    """
    counts = np.asarray(counts, dtype=np.float32)
    w = np.ones_like(counts) if weights is None else np.asarray(weights, dtype=np.float32)
    sens = back(w, geom, shape)
    support = sens > 1e-6 * sens.max()
    lead = counts.shape[:-2]
    total = counts.reshape(*lead, -1).sum(-1)
    area = support.reshape(*support.shape[:-2], -1).sum(-1) * geom.n_views
    x = np.where(support, (total / np.maximum(area, 1))[..., None, None], 0).astype(np.float32)
    for _ in range(n_iter):
        est = w * forward(x, geom)
        ratio = np.where(est > 0, counts / np.maximum(est, 1e-12), 0).astype(np.float32)
        x = np.where(support, x * back(w * ratio, geom, shape) / np.where(support, sens, 1), 0)
    return x.astype(np.float32)
