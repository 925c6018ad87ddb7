"""k-space helpers shared by the MR degradations: centred FFTs, phase, Cartesian masks.

Convention: 2D Cartesian acquisition per slice, k-space over the last two axes `(ky, kx)`, the
phase-encode direction is y (rows, one line per ky) and readout is x. Transforms are orthonormal
and centred (DC at index N//2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

MASK_TYPES = ("equispaced", "random")
"""Cartesian undersampling patterns (fastMRI semantics)."""


def fft2c(image: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2D FFT over the last two axes (image → k-space)."""
    shifted = np.fft.ifftshift(image, axes=(-2, -1))
    return np.fft.fftshift(np.fft.fft2(shifted, norm="ortho"), axes=(-2, -1))


def ifft2c(kspace: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2D inverse FFT over the last two axes (k-space → image)."""
    shifted = np.fft.ifftshift(kspace, axes=(-2, -1))
    return np.fft.fftshift(np.fft.ifft2(shifted, norm="ortho"), axes=(-2, -1))


def kcoords(n: int) -> np.ndarray:
    """Centred spatial frequencies of n samples in cycles per pixel (DC at index n//2)."""
    return np.fft.fftshift(np.fft.fftfreq(n))


def centre_fraction_for(acceleration: float) -> float:
    """fastMRI-style fully sampled centre fraction: 0.08 up to R = 4, then 0.32/R (0.04 at 8)."""
    return float(min(0.08, 0.32 / max(acceleration, 1e-6)))


def undersampling_mask(n_lines: int, acceleration: float, centre_fraction: float,
                       mask_type: str, rng: np.random.Generator
                       ) -> tuple[np.ndarray, dict[str, Any]]:
    """Boolean mask over `n_lines` phase-encode lines keeping ≈ 1/R of them plus a full centre."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"unknown mask type {mask_type!r}; choose from {MASK_TYPES}")
    r = max(float(acceleration), 1.0)
    n_low = max(1, int(round(n_lines * centre_fraction)))
    centre = np.zeros(n_lines, dtype=bool)
    start = (n_lines - n_low + 1) // 2
    centre[start:start + n_low] = True
    info: dict[str, Any] = {"mask_type": mask_type, "centre_fraction": centre_fraction,
                            "centre_lines": n_low, "phase_encode_lines": n_lines}
    if mask_type == "random":
        prob = max(0.0, (n_lines / r - n_low) / max(n_lines - n_low, 1))
        outer = rng.uniform(size=n_lines) < prob
        info["line_probability"] = prob
    elif n_low >= n_lines:  # the centre is every line: none outside it to space
        outer = np.zeros(n_lines, dtype=bool)
        info.update(line_spacing=float("inf"), offset=0)
    else:
        step = r * (n_low - n_lines) / min(n_low * r - n_lines, -1e-9)
        offset = int(rng.integers(0, max(1, int(round(step)))))
        outer = np.zeros(n_lines, dtype=bool)
        lines = np.round(np.arange(offset, n_lines, step)).astype(int)
        outer[lines[lines < n_lines]] = True
        info.update(line_spacing=float(step), offset=offset)
    mask = centre | outer
    info.update(sampled_lines=int(mask.sum()), effective_acceleration=n_lines / mask.sum())
    return mask, info
