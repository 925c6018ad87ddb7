"""Siemens mosaic DICOM: one image whose pixels are a volume's slices laid out as tiles.

Siemens scanners store each volume of a diffusion or fMRI series as one DICOM image (ImageType
has MOSAIC) holding N slices (the private NumberOfImagesInMosaic, 0019,100A) on a ⌈√N⌉ × ⌈√N⌉
grid of equal tiles, row by row, empty tiles at the end. medq reads such a file as the 3D volume
it holds. Its ImagePositionPatient is that of a tile-sized image centred on the whole mosaic, so
the first slice lies half the mosaic's extra rows and columns further in; the others follow it
along the slice normal (the CSA header's SliceNormalVector, read with nibabel, else rows ×
columns) by SpacingBetweenSlices or SliceThickness (`mosaic_positions`). Without those tags the
slices keep tile order, spaced by the slice spacing alone. A mosaic whose size is not a whole
grid of tiles is refused rather than cut wrongly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from medq.errors import UnsupportedImage
from medq.io.dicom_tags import as_floats, as_number, tag_value

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


def mosaic_positions(ds: Any, count: int, tile: tuple[int, int]) -> list[list[float]] | None:
    """ImagePositionPatient of each of a mosaic's `count` slices of `tile` (rows, columns), or
    None when the header lacks the position, orientation, pixel or slice spacing."""
    ipp = as_floats(tag_value(ds, "ImagePositionPatient"))
    iop = as_floats(tag_value(ds, "ImageOrientationPatient"))
    spacing = as_floats(tag_value(ds, "PixelSpacing"))
    dz = as_number(tag_value(ds, "SpacingBetweenSlices")) or as_number(
        tag_value(ds, "SliceThickness"))
    if not (ipp and iop and spacing and dz) or len(ipp) != 3 or len(iop) != 6:
        return None
    along_row, along_column = np.asarray(iop[:3]), np.asarray(iop[3:])
    extra_rows, extra_cols = (int(ds.Rows) - tile[0]) / 2, (int(ds.Columns) - tile[1]) / 2
    first = (np.asarray(ipp) + extra_rows * spacing[0] * along_column
             + extra_cols * spacing[1] * along_row)
    normal = _slice_normal(ds)
    if normal is None:
        normal = np.cross(along_row, along_column)
    return [[float(v) for v in first + k * dz * normal] for k in range(count)]


def _slice_normal(ds: Any) -> np.ndarray | None:
    """The Siemens CSA image header's SliceNormalVector (nibabel's reader), or None."""
    import warnings

    try:
        with warnings.catch_warnings():  # nibabel calls its DICOM readers experimental
            warnings.simplefilter("ignore")
            from nibabel.nicom import csareader

        csa = csareader.get_csa_header(ds, "image")
        normal = csareader.get_vector(csa, "SliceNormalVector", 3) if csa else None
    except Exception:  # noqa: BLE001 - a damaged private header: fall back to rows × columns
        return None
    return None if normal is None else np.asarray(normal, dtype=float)
