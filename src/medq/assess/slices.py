"""Salient slice selection for 3D volumes, as in MedIQA.

A volume is assessed on `n` (default 7) slices that cover the anatomy evenly:

1. Slices without foreground (no pixel of the body mask; `foreground_mask` when no mask is given)
   are dropped. Let `F` be the sorted list of the remaining m slice indices (it need not be
   contiguous). When no slice has foreground, F falls back to every slice `0 … z−1`.
2. If m ≤ n, every slice of F is returned once (sorted, no duplicates).
3. Otherwise F is split into n parts of (nearly) equal length: part k holds positions
   `[s_k, s_{k+1})` with `s_k = ⌊k·m/n⌋`, and its middle position is `⌊(s_k + s_{k+1})/2⌋`
   (the upper middle for an even part). The slices at those positions are returned.

Example: foreground on slices 10…79 of 100, n = 7 → m = 70, parts of 10 → 15, 25, …, 75.
A 2D image counts as one slice: `[0]`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.assess.masks import foreground_slices
from medq.errors import InvalidImage, InvalidParameter


def _with_body(volume: np.ndarray, mask: np.ndarray | None, modality: str | None) -> np.ndarray:
    """Which slices of `volume` (2D inputs become one slice) have foreground: any pixel of
    `mask`, else of the body mask (`masks.foreground_slices`)."""
    vol = np.asarray(volume)
    if vol.ndim == 2:
        vol = vol[None]
    if vol.ndim != 3 or vol.shape[0] < 1:
        raise InvalidImage(f"salient slices need a (z, y, x) volume, got shape {np.shape(volume)}")
    if mask is None:
        return foreground_slices(vol, modality)
    m = np.asarray(mask, dtype=bool)
    m = m[None] if m.ndim == 2 else m
    if m.shape != vol.shape:
        raise InvalidImage(f"mask shape {np.shape(mask)} does not match volume {np.shape(volume)}")
    return m.any(axis=(1, 2))


def partition_middles(m: int, n: int) -> list[int]:
    """Middle positions of n near-equal parts of range(m): ⌊(s_k + s_{k+1})/2⌋, s_k = ⌊k·m/n⌋.

    For m ≤ n every position is returned once.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidParameter(f"number of slices must be a whole number ≥ 1, got {n!r}")
    if m <= n:
        return list(range(m))
    starts = [k * m // n for k in range(n + 1)]
    return [(starts[k] + starts[k + 1]) // 2 for k in range(n)]


def salient_slices(volume: np.ndarray, mask: np.ndarray | None = None, n: int = 7,
                   modality: str | None = None) -> list[int]:
    """Return sorted indices of ≤ n salient slices: middles of n equal parts of the body range."""
    body = _with_body(volume, mask, modality)
    candidates = np.flatnonzero(body)
    if candidates.size == 0:
        candidates = np.arange(body.size)
    return [int(candidates[p]) for p in partition_middles(candidates.size, n)]


def measured_planes(array: np.ndarray, n: int = 7) -> list[Any]:
    """Indices of the planes a per-plane measure pools over: the whole of a 2D array
    (`slice(None)`), the ≤ n salient slices of a 3D one (index the array, and its mask, with
    them)."""
    return [slice(None)] if array.ndim == 2 else salient_slices(array, n=n)


def input_indices(image: Any, n: int = 7, salient: bool = True) -> list[int]:
    """The planes of a MedImage a model sees: `[0]` for 2D, the salient (or middle) slices of 3D."""
    if not image.is_volume:
        return [0]
    if not salient:
        return [image.shape[0] // 2]
    return salient_slices(image.array, n=n, modality=image.modality)


def slice_weights(mask: np.ndarray, indices: list[int]) -> list[float]:
    """Area prior for aggregating slice scores: w_i = |mask_i| / Σ_j |mask_j| (uniform if all 0).

    The learned model predicts its own weights; this is the fallback and the classical default.
    """
    m = np.asarray(mask, dtype=bool)
    m = m[None] if m.ndim == 2 else m
    if not indices:
        return []
    outside = [i for i in indices if not -len(m) <= int(i) < len(m)]
    if outside:
        raise InvalidParameter(f"slice indices {outside} lie outside the mask's {len(m)} slices")
    areas = np.array([m[i].sum() for i in indices], dtype=np.float64)
    if areas.sum() == 0:
        return [1.0 / len(indices)] * len(indices)
    return [float(w) for w in areas / areas.sum()]
