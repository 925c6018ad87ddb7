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

from medq.assess.morphology import dilate_cross, dilate_square, erode_square, fill_holes
from medq.errors import InvalidImage

CT_BODY_HU = -500.0
"""Body/air threshold for CT in HU."""

BET_FRACTION = 0.1
"""Fraction of the robust [p2, p98] range above p2 where foreground starts (FSL BET's default)."""

MIN_FRACTION = 0.002
"""Smallest piece of the mask kept, as a fraction of the slice (step 2)."""

KEEP_RATIO = 0.25
"""The body: the largest piece and every piece at least this fraction of its size (step 2)."""

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
    finite = np.isfinite(array)
    values = array.ravel() if finite.all() else array[finite]  # no copy when all finite
    if values.size == 0:
        raise InvalidImage("image has no finite pixel value")
    if str(modality).upper() == "CT" and values.min() < CT_BODY_HU:
        return CT_BODY_HU
    lo, hi = np.percentile(values, [2.0, 98.0])
    if hi <= lo:  # (nearly) constant image: everything above the floor is foreground
        return float(lo) if values.max() > lo else float(lo) - 1.0
    return float(lo + BET_FRACTION * (hi - lo))


def _pieces(fg: np.ndarray, min_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Open one 2D binary slice and label its pieces: (labels, size of each piece that is at
    least `min_fraction` of the slice, 0 for the smaller ones)."""
    # opening (3×3 square) whose erosion treats outside the image as foreground: a body cut by
    # the image edge keeps its edge pixels (a plain opening would nibble a full-frame mask)
    fg = dilate_square(erode_square(fg, 1, border=True), 1)
    labels, _ = ndi.label(fg)
    sizes = np.bincount(labels.ravel())[1:]
    return labels, np.where(sizes >= min_fraction * fg.size, sizes, 0)


def _kept(sizes: np.ndarray, keep_ratio: float) -> np.ndarray:
    """Which pieces (by label, index 0 the background) are at least `keep_ratio` of the
    largest one."""
    keep = np.zeros(sizes.size + 1, dtype=bool)
    if sizes.any():
        keep[1:] = (sizes > 0) & (sizes >= keep_ratio * sizes.max())
    return keep


def _cleaned(plane: np.ndarray, min_fraction: float, ratios: tuple[float, ...]
             ) -> list[np.ndarray]:
    """One 2D slice's mask per keep ratio: opened, labelled once, the kept pieces with their
    holes filled (filled once when two ratios keep the same pieces)."""
    labels, sizes = _pieces(plane, min_fraction)
    keeps = [_kept(sizes, ratio).tobytes() for ratio in ratios]
    filled = {k: fill_holes(np.frombuffer(k, dtype=bool)[labels]) for k in dict.fromkeys(keeps)}
    return [filled[k].copy() for k in keeps]


def _threshold_mask(array: np.ndarray, modality: str | None, threshold: float | None
                    ) -> np.ndarray:
    """The raw foreground of step 1 (`arr > threshold`, finite pixels only), 2D or 3D."""
    arr = to_gray(array) if is_rgb(array, modality) else np.asarray(array, dtype=np.float64)
    if arr.ndim not in (2, 3):
        raise InvalidImage(f"foreground mask needs a 2D or 3D image, got shape {arr.shape}")
    thr = body_threshold(arr, modality) if threshold is None else float(threshold)
    with np.errstate(invalid="ignore"):
        return np.isfinite(arr) & (arr > thr)


def _per_slice(raw: np.ndarray, min_fraction: float, ratios: tuple[float, ...]
               ) -> list[np.ndarray]:
    """One mask per keep ratio, each cleaned per 2D slice from the same opening and labels."""
    planes = [raw] if raw.ndim == 2 else list(raw)
    found = [_cleaned(p, min_fraction, ratios) for p in planes]
    if raw.ndim == 2:
        return found[0]
    return [np.stack([f[k] for f in found]) for k in range(len(ratios))]


def foreground_mask(array: np.ndarray, modality: str | None = None, *,
                    threshold: float | None = None, min_fraction: float = MIN_FRACTION,
                    keep_ratio: float = KEEP_RATIO) -> np.ndarray:
    """Return the body mask (bool, spatial shape): threshold → per-slice clean-up → fill holes.

    `threshold` overrides the automatic one (−500 HU for CT, p2 + 0.1·(p98 − p2) otherwise).
    Non-finite pixels are never foreground. RGB input gives a 2D mask.
    """
    raw = _threshold_mask(array, modality, threshold)
    return _per_slice(raw, min_fraction, (keep_ratio,))[0]


def foreground_slices(array: np.ndarray, modality: str | None = None) -> np.ndarray:
    """Which slices of a (z, y, x) volume have body: `foreground_mask(array, modality)
    .any(axis=(1, 2))`, without the hole filling and piece selection that cannot empty a slice
    (a slice has body when a piece of its opened threshold mask reaches the minimum size)."""
    raw = _threshold_mask(array, modality, None)
    if raw.ndim != 3:
        raise InvalidImage(f"foreground slices need a (z, y, x) volume, got shape {raw.shape}")
    return np.array([bool(plane.any()) and bool(_pieces(plane, MIN_FRACTION)[1].any())
                     for plane in raw])


def anatomy_mask(array: np.ndarray, modality: str | None = None) -> np.ndarray:
    """Every piece of anatomy, not only the main body: `foreground_mask` keeping all components
    above the minimum size (the arms beside an abdomen, a detached skin fold)."""
    return foreground_mask(array, modality, keep_ratio=0.0)


def body_and_anatomy(array: np.ndarray, modality: str | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """`(foreground_mask, anatomy_mask)` of one image from one threshold, opening and labelling
    (what the background measures need, at the cost of one mask)."""
    body, anatomy = _per_slice(_threshold_mask(array, modality, None), MIN_FRACTION,
                               (KEEP_RATIO, 0.0))
    return body, anatomy


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
    return ~dilate_cross(fg, margin)
