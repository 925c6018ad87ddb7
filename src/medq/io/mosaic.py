"""Siemens mosaic DICOM: one image whose pixels are a volume's slices laid out as tiles.

Siemens scanners store each volume of a diffusion or fMRI series as one DICOM image (ImageType
has MOSAIC) holding N slices (the private NumberOfImagesInMosaic, 0019,100A) on a ⌈√N⌉ × ⌈√N⌉
grid of equal tiles, row by row, empty tiles at the end. medq reads such a file as the 3D volume
it holds, in tile order (the acquisition's slice order; the file states no per-slice position,
so the slice spacing is SpacingBetweenSlices or SliceThickness). A mosaic whose size is not a
whole grid of tiles is refused rather than cut wrongly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from medq.errors import UnsupportedImage

IMAGES_IN_MOSAIC = (0x0019, 0x100A)
"""Siemens private tag NumberOfImagesInMosaic (US)."""


def mosaic_count(ds: Any) -> int:
    """How many slices a single-frame Siemens mosaic holds; 0 for any other image."""
    types = ds.get("ImageType") or []
    types = [types] if isinstance(types, str) else types
    element = ds.get(IMAGES_IN_MOSAIC)
    if "MOSAIC" not in [str(t).upper() for t in types] or element is None:
        return 0
    value = element.value
    if isinstance(value, bytes):  # the tag read without Siemens' private dictionary
        value = int.from_bytes(value[:2], "little") if len(value) >= 2 else 0
    try:
        count = int(value[0] if isinstance(value, (list, tuple)) else value)
    except (TypeError, ValueError):
        return 0
    return count if count > 1 else 0


def unmosaic(pixels: np.ndarray, count: int, source: str | Path | None) -> np.ndarray:
    """The `(count, rows, cols)` volume of a `(grid·rows, grid·cols)` mosaic of `count` tiles."""
    grid = math.ceil(math.sqrt(count))
    height, width = pixels.shape[-2:]
    if pixels.ndim != 2 or height % grid or width % grid:
        raise UnsupportedImage(f"Siemens mosaic of {count} slices: its {height}×{width} pixels "
                               f"are not a {grid}×{grid} grid of equal tiles", source)
    rows, cols = height // grid, width // grid
    tiles = pixels.reshape(grid, rows, grid, cols).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(tiles.reshape(grid * grid, rows, cols)[:count])
