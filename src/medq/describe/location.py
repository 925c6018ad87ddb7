"""Coarse location of a finding: global, central, peripheral, superior or inferior.

Each finding type has an evidence map over one 2D slice (a volume's middle salient slice):
local noise (mean |finest Haar diagonal detail|) for noise, local fine-detail energy for streaks,
spikes and MR ghosts/aliasing/motion, the missing fine detail for blur and low resolution, and
darkness of the smooth intensity field for bias field and uneven illumination. The map is
averaged inside the body mask over a central disc (the inner half of the body's radius) against
the rest, and over the upper against the lower half of the body. The larger of the two contrasts
names the location when it exceeds `MIN_RATIO`; an evenly spread map is `global`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from medq.assess.masks import foreground_mask, to_gray

LOCATIONS = ("global", "central", "peripheral", "superior", "inferior")
"""Coarse locations of a finding."""

MIN_RATIO = 1.35
"""Region-mean ratio above which a finding is said to be local."""

GLOBAL_TYPES = ("low_contrast",)
"""Finding types that are global by nature (a property of the whole intensity scale)."""


def _map(kind: str, a: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Evidence map of one finding type on a 2D slice (higher = more of the problem)."""
    size = max(5, min(a.shape) // 16)
    if kind == "noise":
        hh = np.zeros_like(a)
        hh[:-1, :-1] = np.abs(a[:-1, :-1] - a[:-1, 1:] - a[1:, :-1] + a[1:, 1:]) / 2.0
        return ndi.uniform_filter(hh, size=size)
    if kind in ("bias_field", "illumination"):
        sigma = 0.08 * max(a.shape)
        smooth = ndi.gaussian_filter(a * fg, sigma, truncate=2.5) / (
            ndi.gaussian_filter(fg * 1.0, sigma, truncate=2.5) + 1e-6)
        top = np.percentile(smooth[fg], 99) if fg.any() else smooth.max()
        return np.clip(1.0 - smooth / (top + 1e-12), 0.0, None) + 1e-3
    detail = np.abs(a - ndi.gaussian_filter(a, 1.0))
    energy = ndi.uniform_filter(detail, size)
    if kind in ("blur", "low_resolution"):
        structure = ndi.uniform_filter(np.abs(a - ndi.gaussian_filter(a, 4.0)), size)
        return structure / (energy + 1e-6 * (1 + structure.max()))
    return energy


def _regions(fg: np.ndarray) -> dict[str, np.ndarray]:
    """Central disc, periphery, upper and lower halves of the body mask."""
    ys, xs = np.nonzero(fg)
    cy, cx = ys.mean(), xs.mean()
    yy, xx = np.indices(fg.shape)
    radius = np.hypot(yy - cy, xx - cx)
    reach = np.percentile(radius[fg], 95)
    central = fg & (radius <= 0.5 * reach)
    mid = 0.5 * (ys.min() + ys.max())
    return {"central": central, "peripheral": fg & ~central, "superior": fg & (yy < mid),
            "inferior": fg & (yy >= mid)}


def locate(kind: str, image: object, slice_index: int | None = None) -> str:
    """The coarse location (one of LOCATIONS) of a finding type on a MedImage."""
    if kind in GLOBAL_TYPES:
        return "global"
    array = to_gray(image.array) if image.is_rgb else np.asarray(image.array, np.float64)
    if image.is_volume:
        array = array[slice_index if slice_index is not None else array.shape[0] // 2]
    a = np.nan_to_num(array.astype(np.float64))
    fg = foreground_mask(a, image.modality)
    if fg.sum() < 64:
        return "global"
    regions = _regions(fg)
    if min(r.sum() for r in regions.values()) < 16:
        return "global"
    m = _map(kind, a, fg)
    mean = {name: float(m[r].mean()) + 1e-12 for name, r in regions.items()}
    radial = np.log(mean["central"] / mean["peripheral"])
    vertical = np.log(mean["superior"] / mean["inferior"])
    if max(abs(radial), abs(vertical)) < np.log(MIN_RATIO):
        return "global"
    if abs(radial) >= abs(vertical):
        return "central" if radial > 0 else "peripheral"
    return "superior" if vertical > 0 else "inferior"
