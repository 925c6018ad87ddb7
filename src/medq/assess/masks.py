"""Automatic body / foreground masks: the region every classical measure is computed in.

The mask is built in three steps:

1. **Threshold.** CT (values in HU, i.e. some pixel below −500): `x > −500 HU`, halfway between air
   (−1000) and water (0), so lung parenchyma touching the border stays outside and the body inside.
   Every other modality (and CT without air in the field of view): the robust-range threshold of
   FSL BET, `t = p2 + 0.1·(p98 − p2)` (p = percentiles of the finite values). Otsu was tried and
   rejected: on MR and PET it splits bright from dark *tissue* (fat vs muscle, hot organs vs body)
   rather than body from air. RGB photographs are converted to luminance first (Rec. 601).
2. **Clean-up, per 2D slice** (volumes are `(z, y, x)`; the threshold is global, the morphology
   in-plane): binary opening (3×3 square) removes speckle and lines under 3 px wide, components
   smaller than `min_fraction` of the slice are dropped, then the largest component is kept
   together with every component at least `keep_ratio` of its size (two legs, two breasts).
3. **Hole filling**, per slice, so lungs, bowel gas and sinuses enclosed by the body are inside.

A slice with nothing left is all False: that is how `salient_slices` drops slices without body.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from medq.errors import InvalidImage

CT_BODY_HU = -500.0
"""Body/air threshold for CT in HU."""

BET_FRACTION = 0.1
"""Fraction of the robust [p2, p98] range above p2 where foreground starts (FSL BET's default)."""

LUMA = np.array([0.299, 0.587, 0.114])
"""Rec. 601 luminance weights used to turn an RGB photograph into one channel."""


def to_gray(array: np.ndarray) -> np.ndarray:
    """Return a float64 single-channel view: RGB `(y, x, 3)` → Rec. 601 luminance Σ w_c·x_c."""
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return arr @ LUMA
    return arr


def is_rgb(array: np.ndarray, modality: str | None = None) -> bool:
    """True when `array` is a colour photograph `(y, x, 3)` (modality OP or unknown)."""
    shape = np.shape(array)
    photo = modality is None or str(modality).upper() == "OP"
    return len(shape) == 3 and shape[-1] == 3 and photo


def body_threshold(array: np.ndarray, modality: str | None = None) -> float:
    """Return the foreground threshold: −500 HU for CT with air, else p2 + 0.1·(p98 − p2)."""
    values = array[np.isfinite(array)]
    if values.size == 0:
        raise InvalidImage("image has no finite pixel value")
    if str(modality).upper() == "CT" and values.min() < CT_BODY_HU:
        return CT_BODY_HU
    lo, hi = np.percentile(values, [2.0, 98.0])
    if hi <= lo:  # (nearly) constant image: everything above the floor is foreground
        return float(lo) if values.max() > lo else float(lo) - 1.0
    return float(lo + BET_FRACTION * (hi - lo))


def _clean_slice(fg: np.ndarray, min_fraction: float, keep_ratio: float) -> np.ndarray:
    """Open, keep the large components and fill holes in one 2D binary slice."""
    square = ndi.generate_binary_structure(2, 2)
    # opening whose erosion treats outside the image as foreground: a body cut by the image edge
    # keeps its edge pixels (a plain opening would nibble the corners of a full-frame mask)
    fg = ndi.binary_dilation(ndi.binary_erosion(fg, square, border_value=1), square)
    labels, count = ndi.label(fg)
    if count == 0:
        return fg
    sizes = np.bincount(labels.ravel())[1:]
    keep = (sizes >= keep_ratio * sizes.max()) & (sizes >= min_fraction * fg.size)
    if not keep.any():
        return np.zeros_like(fg)
    fg = np.isin(labels, np.flatnonzero(keep) + 1)
    return ndi.binary_fill_holes(fg)


def foreground_mask(array: np.ndarray, modality: str | None = None, *,
                    threshold: float | None = None, min_fraction: float = 0.002,
                    keep_ratio: float = 0.25) -> np.ndarray:
    """Return the body mask (bool, spatial shape): threshold → per-slice clean-up → fill holes.

    `threshold` overrides the automatic one (−500 HU for CT, p2 + 0.1·(p98 − p2) otherwise).
    Non-finite pixels are never foreground. RGB input gives a 2D mask.
    """
    arr = to_gray(array) if is_rgb(array, modality) else np.asarray(array, dtype=np.float64)
    if arr.ndim not in (2, 3):
        raise InvalidImage(f"foreground mask needs a 2D or 3D image, got shape {arr.shape}")
    thr = body_threshold(arr, modality) if threshold is None else float(threshold)
    with np.errstate(invalid="ignore"):
        raw = np.isfinite(arr) & (arr > thr)
    if arr.ndim == 2:
        return _clean_slice(raw, min_fraction, keep_ratio)
    return np.stack([_clean_slice(s, min_fraction, keep_ratio) for s in raw])


def anatomy_mask(array: np.ndarray, modality: str | None = None) -> np.ndarray:
    """Every piece of anatomy, not only the main body: `foreground_mask` keeping all components
    above the minimum size (the arms beside an abdomen, a detached skin fold)."""
    return foreground_mask(array, modality, keep_ratio=0.0)


def air_mask(fg: np.ndarray, anatomy: np.ndarray | None = None, margin: int = 2) -> np.ndarray:
    """Return the air around the body: outside the body `fg` and every other piece of anatomy
    (`anatomy`, from `anatomy_mask`: the arms beside an abdomen are not background), dilated
    by `margin` px in-plane. What background measures (noise, level, FBER, QI1) read."""
    fg = np.asarray(fg, dtype=bool)
    return background_mask(fg if anatomy is None else fg | np.asarray(anatomy, dtype=bool), margin)


def background_mask(fg: np.ndarray, margin: int = 2) -> np.ndarray:
    """Return the air/background mask: outside the foreground dilated by `margin` px in-plane."""
    fg = np.asarray(fg, dtype=bool)
    if margin <= 0:
        return ~fg
    structure = ndi.generate_binary_structure(2, 1)
    if fg.ndim == 3:
        structure = structure[None]
    return ~ndi.binary_dilation(fg, structure=structure, iterations=margin)
