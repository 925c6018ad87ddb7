"""Segmentation overlap: Dice and the 95th-percentile Hausdorff distance (HD95, in mm).

Empty masks, by convention (as in the Medical Segmentation Decathlon / MONAI with empty handling):

* both empty → Dice 1 and HD95 0 (nothing to find, nothing found);
* exactly one empty → Dice 0 and HD95 inf (the distance to a missing surface is unbounded).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage as ndi

from medq.errors import InvalidParameter


def _same_shape(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return both as arrays, after checking their shapes agree."""
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape:
        raise InvalidParameter(f"prediction shape {p.shape} differs from target shape {t.shape}")
    return p, t


def _dice_binary(p: np.ndarray, t: np.ndarray) -> float:
    """2|P ∩ T| / (|P| + |T|) for boolean arrays; 1 when both are empty."""
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(p, t).sum()) / total


def dice_per_label(pred: np.ndarray, target: np.ndarray,
                   labels: Iterable[int] | None = None) -> dict[int, float]:
    """Dice 2|P_l ∩ T_l| / (|P_l| + |T_l|) per label l; labels default to every non-zero value
    present in either array (boolean masks have the single label 1)."""
    p, t = _same_shape(pred, target)
    if labels is None:
        labels = sorted((set(np.unique(p).tolist()) | set(np.unique(t).tolist())) - {0})
    return {int(lab): _dice_binary(p == lab, t == lab) for lab in labels}


def dice(pred: np.ndarray, target: np.ndarray, labels: Iterable[int] | None = None) -> float:
    """Dice coefficient: binary masks, or the mean over labels present in either label map.

    Both empty (no label present) → 1.0; one empty → 0.0.
    """
    scores = dice_per_label(pred, target, labels)
    return float(np.mean(list(scores.values()))) if scores else 1.0


def _surface(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels: the mask minus its erosion (face connectivity); image edges count."""
    structure = ndi.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndi.binary_erosion(mask, structure, border_value=0)


def _directed_distances(src: np.ndarray, dst: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distance (mm) from every surface voxel of `src` to the nearest surface voxel of `dst`."""
    to_dst = ndi.distance_transform_edt(~dst, sampling=spacing)
    return to_dst[src]


def hd95(pred: np.ndarray, target: np.ndarray, spacing: Sequence[float] | None = None,
         label: int | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance in mm between the two mask surfaces.

    HD95 = max(P95{d(a, ∂T) : a ∈ ∂P}, P95{d(b, ∂P) : b ∈ ∂T}), ∂ the boundary voxels and d the
    Euclidean distance scaled by `spacing` (mm per axis; 1 when None), from Euclidean distance
    transforms. This is MONAI's definition (the max of the two directed percentiles; medpy pools
    both directions before taking the percentile). With `label`, the masks are `== label`,
    otherwise non-zero. Both empty → 0; one empty → inf.
    """
    p, t = _same_shape(pred, target)
    p, t = (p == label, t == label) if label is not None else (p != 0, t != 0)
    if spacing is None:
        spacing = (1.0,) * p.ndim
    if len(spacing) != p.ndim:
        raise InvalidParameter(f"spacing {tuple(spacing)} does not fit shape {p.shape}")
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return float("inf")
    sp, st = _surface(p), _surface(t)
    spacing = tuple(float(s) for s in spacing)
    forward = _directed_distances(sp, st, spacing)
    backward = _directed_distances(st, sp, spacing)
    return float(max(np.percentile(forward, 95), np.percentile(backward, 95)))
