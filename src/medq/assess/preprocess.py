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
- **Native channel** (a model whose benchmark plan says `native_crop`): a grey image's second
  of its three channels is a `size × size` window at the image's own pixel size instead of the
  view's copy (`native_crop`: centred on the anatomy, zero-padded when the image is smaller),
  so the model sees noise and fine detail that shrinking a 512² slice to 224² averages away.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medq.errors import InvalidImage
from medq.io.dicom_tags import as_number

DEFAULT_WINDOWS: dict[str, tuple[float, float]] = {
    "ct_soft_tissue": (40.0, 400.0),
    "ct_lung": (-600.0, 1500.0),
    "ct_bone": (400.0, 1800.0),
    "ct_other": (40.0, 400.0),
}
"""Default CT display windows (centre, width) in HU per type prompt."""

ROBUST_PERCENTILES = (0.5, 99.5)
"""Percentiles mapped to 0 and 1 for modalities without a display window."""


def ct_window(meta: Mapping[str, Any] | None, ct_type: str = "ct_soft_tissue"
              ) -> tuple[float, float]:
    """The CT window (centre, width): the file's when it states a positive width, else by type."""
    meta = meta or {}
    center, width = as_number(meta.get("window_center")), as_number(
        meta.get("window_width"))
    if center is not None and width is not None and width > 1:
        return center, width
    return DEFAULT_WINDOWS.get(ct_type, DEFAULT_WINDOWS["ct_soft_tissue"])


def image_window(image: Any, ct_type: str = "ct_soft_tissue") -> tuple[float, float] | None:
    """The window `normalise` reads a MedImage in: a CT's (`ct_window`), None otherwise."""
    return ct_window(image.meta, ct_type) if image.modality == "CT" else None


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


NATIVE_LEVEL = 0.1
"""Normalised level above which a pixel counts as anatomy when the native window is centred."""


def native_crop(array: np.ndarray, size: int) -> np.ndarray:
    """`(y, x)` in [0, 1] → the `[1, size, size]` window at its own pixel size, centred on the
    bounding box of the pixels above `NATIVE_LEVEL` (the image's centre when none is), kept
    inside the image and zero-padded (centred) where the image is smaller than `size`."""
    a = np.asarray(array, dtype=np.float32)
    out = np.zeros((1, size, size), dtype=np.float32)
    rows, cols = np.nonzero(a > NATIVE_LEVEL)
    centre = [(int(r.min()) + int(r.max())) // 2 if r.size else n // 2
              for r, n in ((rows, a.shape[0]), (cols, a.shape[1]))]
    starts = [min(max(c - size // 2, 0), max(n - size, 0))
              for c, n in zip(centre, a.shape, strict=True)]
    window = a[starts[0]:starts[0] + size, starts[1]:starts[1] + size]
    top, left = (size - window.shape[0]) // 2, (size - window.shape[1]) // 2
    out[0, top:top + window.shape[0], left:left + window.shape[1]] = window
    return out


def model_input(array: np.ndarray, modality: str, size: int,
                window: tuple[float, float] | None = None) -> np.ndarray:
    """One 2D image (grey or RGB) → the `[C, size, size]` float32 model input in [0, 1]."""
    if modality == "CT" and window is None:
        window = DEFAULT_WINDOWS["ct_soft_tissue"]
    return resize_square(normalise(array, modality, window), size)


def image_inputs(image: Any, size: int, ct_type: str = "ct_soft_tissue", n_slices: int = 7,
                 salient: bool = True, indices: list[int] | None = None, native: bool = False
                 ) -> tuple[np.ndarray, list[int]]:
    """A MedImage → (`[n, 3, size, size]` model inputs, slice indices; `[0]` for 2D images).

    Grey images are repeated to three channels (with `native`, the second is the plane's
    `native_crop`). Volumes give their `n_slices` salient slices (`salient=False`: the middle
    slice only), or the given `indices` when already chosen.
    """
    from medq.assess.slices import input_indices

    window = image_window(image, ct_type)
    if indices is None:
        indices = input_indices(image, n_slices, salient)
    planes = [image.array[i] for i in indices] if image.is_volume else [image.array]
    if native and not image.is_rgb:
        x = np.stack([_native_channels(normalise(a, image.modality, window), size)
                      for a in planes])
        return x, [int(i) for i in indices]
    x = np.stack([model_input(a, image.modality, size, window) for a in planes])
    x = np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x
    return x, [int(i) for i in indices]


def _native_channels(grey: np.ndarray, size: int) -> np.ndarray:
    """`[3, size, size]` of a normalised grey plane: its view, its native window, its view."""
    view = resize_square(grey, size)
    return np.concatenate([view, native_crop(grey, size), view])
