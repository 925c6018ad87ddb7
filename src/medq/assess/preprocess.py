"""Turn a 2D image into a model input: intensity window to [0, 1], then a square `size`² view.

The same function prepares training and inference inputs, so what a model sees never depends
on where the image came from:

- **CT**: the display window (centre c, width w in HU) maps `[c − w/2, c + w/2]` to [0, 1]. The
  window is the file's own (DICOM WindowCenter/WindowWidth) when it states one, else the default
  of the CT type prompt (`DEFAULT_WINDOWS`; soft tissue 40/400 when unknown).
- **Everything else** (MR, PET, radiographs, photographs): robust min–max, the 0.5th and 99.5th
  percentiles of the finite values (over all channels) map to 0 and 1.
- **Geometry**: the image is resized with antialiasing so that its longer side is `size`, and
  zero-padded (centred) to `size × size`; aspect ratio is kept. Grey images give one channel,
  RGB photographs three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medq.errors import InvalidImage

DEFAULT_WINDOWS: dict[str, tuple[float, float]] = {
    "ct_soft_tissue": (40.0, 400.0),
    "ct_lung": (-600.0, 1500.0),
    "ct_bone": (400.0, 1800.0),
    "ct_other": (40.0, 400.0),
}
"""Default CT display windows (centre, width) in HU per type prompt."""

ROBUST_PERCENTILES = (0.5, 99.5)
"""Percentiles mapped to 0 and 1 for modalities without a display window."""


def _first_number(value: Any) -> float | None:
    """First finite number in a scalar or sequence (DICOM windows can be multi-valued)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        value = value[0] if len(value) else None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def ct_window(meta: Mapping[str, Any] | None, ct_type: str = "ct_soft_tissue"
              ) -> tuple[float, float]:
    """The CT window (centre, width): the file's when it states a positive width, else by type."""
    meta = meta or {}
    center, width = _first_number(meta.get("window_center")), _first_number(
        meta.get("window_width"))
    if center is not None and width is not None and width > 1:
        return center, width
    return DEFAULT_WINDOWS.get(ct_type, DEFAULT_WINDOWS["ct_soft_tissue"])


def normalise(array: np.ndarray, modality: str, window: tuple[float, float] | None = None
              ) -> np.ndarray:
    """Intensities to [0, 1] float32: CT by `window` (centre, width), others by percentiles."""
    a = np.asarray(array, dtype=np.float32)
    finite = np.isfinite(a)
    if not finite.any():
        raise InvalidImage("image has no finite pixel value")
    a = np.where(finite, a, 0.0)
    if modality == "CT" and window is not None:
        lo, hi = window[0] - window[1] / 2.0, window[0] + window[1] / 2.0
    else:
        lo, hi = np.percentile(a[finite], ROBUST_PERCENTILES)
    scale = float(hi - lo) if hi > lo else 1.0
    return np.clip((a - lo) / scale, 0.0, 1.0).astype(np.float32)


def resize_square(array: np.ndarray, size: int) -> np.ndarray:
    """`(y, x)` or `(y, x, 3)` in [0, 1] → `[C, size, size]`: longer side to `size`, zero pad."""
    a = np.asarray(array, dtype=np.float32)
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1) if a.ndim == 3 else a[None]))
    h, w = t.shape[-2:]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        t = F.interpolate(t[None], size=(nh, nw), mode="bilinear", antialias=scale < 1,
                          align_corners=False)[0]
    out = t.new_zeros(t.shape[0], size, size)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[:, top:top + nh, left:left + nw] = t
    return out.clamp_(0.0, 1.0).numpy()


def model_input(array: np.ndarray, modality: str, size: int,
                window: tuple[float, float] | None = None) -> np.ndarray:
    """One 2D image (grey or RGB) → the `[C, size, size]` float32 model input in [0, 1]."""
    if modality == "CT" and window is None:
        window = DEFAULT_WINDOWS["ct_soft_tissue"]
    return resize_square(normalise(array, modality, window), size)


def image_inputs(image: Any, size: int, ct_type: str = "ct_soft_tissue", n_slices: int = 7,
                 salient: bool = True, indices: list[int] | None = None
                 ) -> tuple[np.ndarray, list[int]]:
    """A MedImage → (`[n, 3, size, size]` model inputs, slice indices; `[0]` for 2D images).

    Grey images are repeated to three channels. Volumes give their `n_slices` salient slices
    (`salient=False`: the middle slice only), or the given `indices` when already chosen.
    """
    from medq.assess.slices import input_indices

    window = ct_window(image.meta, ct_type) if image.modality == "CT" else None
    if indices is None:
        indices = input_indices(image, n_slices, salient)
    planes = [image.array[i] for i in indices] if image.is_volume else [image.array]
    x = np.stack([model_input(a, image.modality, size, window) for a in planes])
    x = np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x
    return x, [int(i) for i in indices]
