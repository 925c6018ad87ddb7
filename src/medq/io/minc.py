"""MINC's axis order, put the way medq reads nibabel's images.

nibabel keeps a MINC file's dimensions in the file's own order: usually time first, then
`zspace`, `yspace`, `xspace` (slowest to fastest), with the voxel-to-world affine's columns in
that spatial order. medq reads a nibabel image as NIfTI is laid out (`nifti.image_from_nifti`:
the first three axes i, j, k are x, y, z, a fourth is the volumes), so a MINC image is first
viewed with its spatial axes as x, y, z (the affine's columns permuted with them, so world
coordinates are unchanged) and its time axis last.
"""

from __future__ import annotations

from typing import Any

import nibabel as nib
import numpy as np

SPACE = ("xspace", "yspace", "zspace")
"""MINC's spatial dimension names, in the order medq reads them (i, j, k)."""


def is_minc(img: Any) -> bool:
    """True for nibabel's MINC 1 or MINC 2 image."""
    return isinstance(img, (nib.minc1.Minc1Image, nib.minc2.Minc2Image))


def dimension_names(img: Any) -> list[str]:
    """A MINC image's dimension names in nibabel's axis order ([] when nibabel does not say)."""
    names = getattr(getattr(img.dataobj, "minc_file", None), "_dim_names", None)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names or ()]


def _orders(img: Any) -> tuple[list[int], list[int]] | None:
    """(axis order for medq, affine column order) of a MINC image, or None when it is already
    in medq's order or its names are not MINC's spatial ones (then it is read as it is, a
    fourth axis as the volumes)."""
    names = dimension_names(img)
    space = [n for n in names if n in SPACE]
    if len(names) != len(img.shape) or len(space) != 3:
        return None
    axes = [names.index(n) for n in SPACE]
    axes += [i for i in range(len(names)) if i not in axes]
    if axes == list(range(len(names))):
        return None
    return axes, [space.index(n) for n in SPACE]


def volume_count(img: Any) -> int:
    """How many volumes a 4D MINC image holds (its one non-spatial axis), from its header."""
    found = _orders(img)
    shape = img.shape if found is None else tuple(img.shape[i] for i in found[0])
    return int(shape[3]) if len(shape) == 4 else 0


def as_read(img: Any) -> Any:
    """A MINC image as a NIfTI image with its axes in medq's order (the voxels read, MINC files
    being small research volumes), or the image itself when nothing needs to move."""
    found = _orders(img)
    if found is None:
        return img
    axes, columns = found
    data = np.transpose(np.asanyarray(img.dataobj), axes)
    affine = np.array(img.affine, dtype=float)
    affine[:3, :3] = affine[:3, columns]
    return nib.Nifti1Image(data, affine)
