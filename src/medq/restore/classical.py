"""Classical restoration baselines: BM3D, non-local means and total variation, blind.

Each works on one normalised 2D plane (`medq.restore.normalise`) and estimates the noise level
itself (`estimate_sigma`), as a user without a noise model would: BM3D (the `bm3d` package,
σ = the estimate), non-local means (scikit-image, fast mode, h = 0.8 σ, 5×5 patches in an 13×13
search window) and total variation (Chambolle, weight = σ). They are denoisers: on blur,
aliasing or streaks they change little. Non-local means and total variation repeat bit for bit;
the `bm3d` package's own arithmetic does not quite: two runs on the same plane differ in the last
digits (about 1e-6 of a unit-scale plane on one machine, as little as that after medq scales the
result back).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medq.errors import InvalidParameter

SIGMA_FLOOR = 1e-4
"""Smallest σ `estimate_sigma` gives: the σ of a plane without noise or detail."""


def estimate_sigma(plane: np.ndarray) -> float:
    """Blind noise σ of a plane: the larger of two estimates, each short in its own way
    (floor `SIGMA_FLOOR`, also for a plane without any detail, such as an empty slice of a
    volume, where both are undefined).

    The wavelet median-absolute-deviation estimate (scikit-image's) reads the finest scale
    only: CT's filtered back-projection noise, whose grain is coarser, reads about a third of
    its std there, and BM3D given that left a low-dose CT as it was (+0.08 dB). The flattest
    7-px windows' std (`iqms.noise_sigma_flat`) reads most of that noise, but less than the
    wavelet estimate where the flattest windows are an MR image's quieter background."""
    import warnings

    from skimage.restoration import estimate_sigma as skimage_sigma

    from medq.assess.iqms import noise_sigma_flat

    a = np.asarray(plane, np.float64)
    with warnings.catch_warnings():  # no detail at all: the median of nothing, nan
        warnings.simplefilter("ignore", RuntimeWarning)
        found = [float(skimage_sigma(a)), noise_sigma_flat(a)]
    found = [s for s in found if np.isfinite(s)]
    return max(max(found), SIGMA_FLOOR) if found else SIGMA_FLOOR


def bm3d_plane(plane: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """BM3D of one plane with σ given or estimated."""
    import bm3d

    s = estimate_sigma(plane) if sigma is None else float(sigma)
    return np.asarray(bm3d.bm3d(np.asarray(plane, np.float64), sigma_psd=s), np.float32)


def nlm_plane(plane: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Non-local means of one plane (h = 0.8 σ) with σ given or estimated."""
    from skimage.restoration import denoise_nl_means

    s = estimate_sigma(plane) if sigma is None else float(sigma)
    out = denoise_nl_means(np.asarray(plane, np.float64), h=0.8 * s, sigma=s, patch_size=5,
                           patch_distance=6, fast_mode=True)
    return np.asarray(out, np.float32)


def tv_plane(plane: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Total-variation denoising (Chambolle) of one plane, weight = σ given or estimated."""
    from skimage.restoration import denoise_tv_chambolle

    s = estimate_sigma(plane) if sigma is None else float(sigma)
    return np.asarray(denoise_tv_chambolle(np.asarray(plane, np.float64), weight=s), np.float32)


METHODS: dict[str, Callable[..., np.ndarray]] = {"bm3d": bm3d_plane, "nlm": nlm_plane,
                                                 "tv": tv_plane}
"""Classical methods by name."""


def classical_plane(method: str, plane: np.ndarray) -> np.ndarray:
    """Restore one normalised plane with a classical method by name."""
    if method not in METHODS:
        raise InvalidParameter(f"unknown classical method {method!r}; choose from "
                               f"{', '.join(sorted(METHODS))}")
    return METHODS[method](plane)


def classical_planes(method: str, planes: list[np.ndarray],
                     tick: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """`classical_plane` of every plane, in order, `tick(1)` as each is done (BM3D takes
    seconds a plane; the `bm3d` package already runs on more than one thread, so the planes
    run here one after another rather than on worker processes)."""
    out: list[np.ndarray] = []
    for plane in planes:
        out.append(classical_plane(method, plane))
        if tick is not None:
            tick(1)
    return out
