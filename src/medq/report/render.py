"""Turning images into display pixels: windows per modality, middle slices, PNG encoding."""

from __future__ import annotations

import base64
import io

import numpy as np

from medq.image import MedImage

CT_WINDOW = (-160.0, 240.0)
"""Soft-tissue window (level 40, width 400 HU) used for CT thumbnails."""


def display_slice(image: MedImage) -> np.ndarray:
    """A 2D (or RGB) array to show: the middle axial slice of a volume, the image otherwise
    (a MONOCHROME1 image mirrored so the minimum shows white, `io.polarity.as_displayed`)."""
    from medq.io.polarity import as_displayed

    image = as_displayed(image)
    if image.is_volume:
        return image.array[image.shape[0] // 2]
    return image.array


def display_window(image: MedImage) -> tuple[float, float]:
    """Display window: CT soft tissue in HU, else the 0.5–99.5 percentiles of the image."""
    if image.is_rgb:
        return 0.0, 1.0
    if image.modality == "CT":
        return CT_WINDOW
    arr = display_slice(image)
    finite = arr[np.isfinite(arr)]
    lo, hi = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
    return float(lo), float(hi if hi > lo else lo + 1.0)


def to_uint8(array: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Map `array` through `window` to 0–255 (RGB kept as RGB)."""
    lo, hi = window
    scaled = (np.nan_to_num(array, nan=lo) - lo) / max(hi - lo, 1e-12)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a uint8 grey or RGB array as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def shrink(pixels: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale uint8 pixels so that the longer side is at most `max_side` (never enlarged)."""
    if not max_side or max(pixels.shape[:2]) <= max_side:
        return pixels
    from PIL import Image

    h, w = pixels.shape[:2]
    f = max_side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


def png_data_uri(pixels: np.ndarray, max_side: int | None = None) -> str:
    """PNG as a `data:` URI, for self-contained HTML; with `max_side`, `shrink`-ed to it first (a
    page showing a 1411-px photograph 180 px wide carried all of it, four times)."""
    encoded = base64.b64encode(png_bytes(shrink(pixels, max_side))).decode("ascii")
    return "data:image/png;base64," + encoded


TILE_SIDE = 360
"""Longest side (pixels) of the demo pages' tiles: twice the 180 px they are shown at."""
