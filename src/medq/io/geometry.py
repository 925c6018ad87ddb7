"""Patient geometry carried across formats: where an image lies in the patient, as a DICOM file
(orientation and slice positions), a NIfTI file (affine) or a MetaImage/NRRD file (origin and
direction) stated it, written in whichever of these formats the image is saved as.

DICOM states geometry in the patient's LPS frame (x towards the patient's left, y posterior, z
superior, mm): ImageOrientationPatient gives the row direction cosine X (the way the column
index grows) and the column direction cosine Y (the way the row index grows); each slice's
ImagePositionPatient is the centre of its first pixel. Voxel `(k, j, i)` of medq's `(z, y, x)`
array therefore lies at `P₀ + i·Δx·X + j·Δy·Y + k·Δz·N`, N the unit vector from the first slice's
position towards the last (the slice normal X × Y for a single slice). MetaImage and NRRD store
this frame in LPS as it is (origin P₀, direction columns X, Y, N); NIfTI stores it in RAS+, the
first two world axes negated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
"""DICOM/ITK world axes (LPS) to NIfTI's (RAS+)."""


def _unit(v: np.ndarray) -> np.ndarray | None:
    """`v` scaled to length 1; None when it is not a finite non-zero vector."""
    norm = float(np.linalg.norm(v))
    return v / norm if np.all(np.isfinite(v)) and norm > 1e-6 else None


def dicom_frame(image: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(origin `(3,)`, direction `3×3` whose columns are the x, y and z array axes) in LPS mm of
    an image read from DICOM (`meta['orientation']`, `meta['positions']`); None when the file
    stated no orientation or position, or the slice positions no longer match the array."""
    iop, positions = image.meta.get("orientation"), image.meta.get("positions")
    if not iop or len(iop) != 6 or not positions or image.is_rgb:
        return None
    x, y = _unit(np.asarray(iop[:3], dtype=float)), _unit(np.asarray(iop[3:], dtype=float))
    origin = np.asarray(positions[0], dtype=float)
    if x is None or y is None or origin.shape != (3,) or not np.all(np.isfinite(origin)):
        return None
    n = _unit(np.cross(x, y))
    if image.is_volume:
        if len(positions) != image.array.shape[0]:
            return None
        if len(positions) > 1:
            n = _unit(np.asarray(positions[-1], dtype=float) - origin)
    direction = np.column_stack([x, y, n]) if n is not None else None
    if direction is None or abs(float(np.linalg.det(direction))) < 1e-3:
        return None  # parallel row and column directions: no frame to state
    return origin, direction


def file_frame(image: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(origin, direction) in LPS mm as a NIfTI (`meta['affine']`, RAS+) or MetaImage/NRRD
    (`meta['origin']`, `meta['direction']`) file stated it, the direction's columns unit vectors
    along the x, y and z array axes; None when the image came from neither."""
    meta = image.meta
    origin, direction = meta.get("origin"), meta.get("direction")
    if isinstance(origin, list) and len(origin) == 3 and isinstance(direction, list) \
            and len(direction) == 9:
        columns = np.asarray(direction, dtype=float).reshape(3, 3)
        start = np.asarray(origin, dtype=float)
    elif meta.get("affine") is not None:
        affine = np.asarray(meta["affine"], dtype=float)
        if affine.shape != (4, 4):
            return None
        columns, start = LPS_TO_RAS @ affine[:3, :3], LPS_TO_RAS @ affine[:3, 3]
    else:
        return None
    units = [_unit(columns[:, c]) for c in range(3)]
    if any(u is None for u in units) or not np.all(np.isfinite(start)):
        return None
    direction = np.column_stack(units)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-3):
        return None  # sheared axes: neither DICOM nor ITK can state them
    return start, direction


def world_frame(image: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the image lies in the patient (origin, direction; LPS mm) as its file stated it:
    DICOM (`dicom_frame`), else NIfTI or MetaImage/NRRD (`file_frame`); None when none did."""
    return dicom_frame(image) or file_frame(image)


def dicom_geometry(image: Any) -> dict[str, list] | None:
    """The frame a NIfTI, MetaImage or NRRD file stated (`file_frame`) in the form DICOM states
    it and medq's DICOM images carry in `meta`: `orientation` (ImageOrientationPatient) and
    `positions` (each slice's ImagePositionPatient, LPS mm); None when the file stated none."""
    frame = file_frame(image)
    if frame is None:
        return None
    origin, direction = frame
    step = slice_step(image) * direction[:, 2]
    count = image.shape[0] if image.is_volume else 1
    return {"orientation": direction[:, :2].T.ravel().tolist(),
            "positions": [(origin + k * step).tolist() for k in range(count)]}


def slice_step(image: Any) -> float:
    """The z spacing a frame uses: the volume's, else the single slice's stated slice spacing."""
    if image.is_volume:
        return float(image.spacing[0])
    return float(image.meta.get("slice_spacing") or 1.0)


def frame_affine_ras(image: Any) -> np.ndarray | None:
    """The NIfTI voxel `(i, j, k)` → RAS+ mm affine of the frame its file stated (`world_frame`)
    scaled by the image's current spacing; None when the file stated none."""
    frame = world_frame(image)
    if frame is None:
        return None
    origin, direction = frame
    dy, dx = image.spacing[-2:]
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ (direction * np.array([dx, dy, slice_step(image)]))
    affine[:3, 3] = LPS_TO_RAS @ origin
    return affine


def slice_axis_last(size: tuple[int, ...]) -> tuple[int, int, int] | None:
    """The voxel axis order `(i, j, k)` that puts a single coronal or sagittal slice's axis of
    length 1 last, as an axial slice's is (`(i, 1, k)` → `(i, k, 1)`); None when no axis moves
    (not 3D, an axial slice, or no axis of length 1). NIfTI's shape and ITK's size are both in
    voxel axis order."""
    if len(size) != 3 or size[2] == 1 or 1 not in size[:2]:
        return None
    flat = list(size).index(1)
    return (*(a for a in (0, 1, 2) if a != flat), flat)  # type: ignore[return-value]


def columns_in_order(matrix: Any, order: tuple[int, ...] | None) -> np.ndarray:
    """A 4×4 frame whose voxel-axis columns follow `order`: the same place in the patient for
    the voxels moved to that order."""
    out = np.asarray(matrix, dtype=float).copy()
    if order:
        out[:3, :3] = out[:3, list(order)]
    return out
