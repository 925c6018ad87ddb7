"""NIfTI-1/2 (.nii, .nii.gz, or found by its content under another name) via nibabel.

Axis convention: nibabel indexes voxels `(i, j, k)`; medq's array is its transpose `(z, y, x)` =
`(k, j, i)`, and `spacing` is the header zooms reversed `(dk, dj, di)`. The voxel-to-world affine
(nibabel's, mapping `(i, j, k, 1)` to RAS+ mm) is kept untouched in `meta['affine']` (list of lists)
and written back on save; NIfTI's own qform and sform are kept apart (`meta['qform']`,
`meta['sform']`, with their codes) and written back as they were, as are its space and time
units (`meta['xyzt_units']`). Only when the image's spacing changed since it was read
(`meta['affine_spacing']`) are their columns rescaled by the change. Spacing is in mm: zooms in
microns or metres are converted. Integer voxels without a value map are written back in their
type when the values to write are whole numbers within it, as a restoration leaves them
(`io.polarity.in_stored_type`); anything else (a degradation's values) as float32.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from medq.errors import (
    InvalidParameter,
    MedqError,
    UnreadableImage,
    UnsupportedImage,
    unreadable,
)
from medq.image import MedImage, plausible_spacing
from medq.io import gz
from medq.io.atomic import atomic_path
from medq.io.geometry import columns_in_order, frame_affine_ras, slice_axis_last
from medq.io.polarity import in_stored_type, integer_storage, on_value_map

SCANNER_CODE = 1
"""NIfTI qform/sform code of scanner coordinates: what a frame taken from DICOM, MetaImage or
NRRD is."""

SPACE_UNITS_MM = {"micron": 1e-3, "meter": 1e3}
"""Millimetres per NIfTI space unit other than mm (`unknown` is read as mm, as every reader
does)."""


def read_nifti(path: str | Path, volume: int | None = None) -> MedImage:
    """Read a 2D/3D NIfTI (a 4D one only when its 4th axis has length 1, or its `volume`-th
    3D volume) as `(z, y, x)`; a volume of one slice is a 2D image `(y, x)`
    (`meta["one_slice"]`, written back as a volume of one slice; a coronal or sagittal slice's
    voxel axes are read, and written, with the slice axis last, its frames alike)."""
    path = Path(path)
    try:
        if volume is not None and gz.is_gzipped(path):
            return _volume_of_gzipped(path, volume)
        return image_from_nifti(open_nifti(path), path, volume)
    except MedqError:
        raise
    except Exception as e:
        raise unreadable(e, path, "not a readable NIfTI file") from e


def _volume_of_gzipped(path: Path, volume: int) -> MedImage:
    """One volume of a gzipped NIfTI, read from the file unpacked once per process
    (`gz.unpacked`): reading each volume of a long series no longer unpacks the file up to it."""
    with gz.unpacked_image(path, _nifti_kind(gz.head(path, 8))) as img:
        return image_from_nifti(img, path, volume)


def open_nifti(path: Path) -> Any:
    """nibabel's image of a NIfTI file; one named otherwise than .nii/.nii.gz (medq found it by
    its content) is read from its bytes, gunzipped when gzipped."""
    if path.name.lower().endswith((".nii", ".nii.gz")):
        return nib.load(str(path))
    data = gz.content(path)
    return _nifti_kind(data).from_bytes(data)


def _nifti_kind(first: bytes) -> Any:
    """nibabel's class of a NIfTI file from its first (decompressed) bytes: NIfTI-2 states its
    magic at byte 4, NIfTI-1 otherwise."""
    return nib.Nifti2Image if first[4:8] == b"n+2\x00" else nib.Nifti1Image


GZIP_MOST = 1100
"""More than deflate's largest ratio (about 1032:1): a gzipped file of n bytes holds less than
this times n."""


def _check_fits_file(shape: tuple[int, ...], dtype: np.dtype, source: str | Path | None
                     ) -> None:
    """UnreadableImage when the header states more voxel bytes than its file could hold (a
    173-byte .nii.gz stating 1000³ voxels took 4 GB of memory before it failed, one stating
    more failed as "MemoryError: ")."""
    path = Path(source) if source is not None else None
    if path is None or not path.is_file():
        return
    size = path.stat().st_size
    room = size * GZIP_MOST if gz.is_gzipped(path) else size
    stated = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if stated > room:
        raise UnreadableImage(f"its header states {stated:,} bytes of voxels, more than its "
                              f"{size:,} bytes can hold (truncated or damaged)", source)


def image_from_nifti(img: Any, source: str | Path | None = None, volume: int | None = None,
                     fmt: str = "nifti") -> MedImage:
    """A loaded nibabel image as a MedImage in medq's `(z, y, x)` convention (modality OT);
    `volume` picks one 3D volume of a 4D image (`io.volumes.check_volume`); `fmt` is the
    `meta['format']` (the NIfTI header fields are kept for NIfTI only: `io.neuro`'s formats)."""
    from medq.io.volumes import check_volume, several_volumes

    shape = tuple(int(s) for s in img.shape)
    count = int(np.prod(shape[3:])) if len(shape) > 3 else 1
    dtype = np.dtype(img.get_data_dtype())
    if dtype.kind == "c":
        raise UnsupportedImage("complex-valued voxels: medq assesses magnitude images (save "
                               "the magnitude, |x|, as the image)", source)
    if dtype.fields:
        raise UnsupportedImage(f"colour voxels ({', '.join(dtype.names)}): medq reads colour "
                               "images as PNG, JPEG, TIFF or DICOM", source)
    if len(shape) > 4 and count > 1:
        raise UnsupportedImage(f"a {len(shape)}D image of shape {shape}: medq reads 2D, 3D and "
                               "4D images", source)
    if fmt == "nifti" and bytes(img.header.get("magic", b"")).startswith((b"n+1", b"n+2")):
        _check_fits_file(shape, dtype, source)  # one file (a pair's header holds no voxels)
    # float64 voxels stay float64 until MedImage: values beyond float32 are refused by name
    wide = np.float64 if dtype.kind == "f" and dtype.itemsize > 4 else np.float32
    if volume is not None:
        check_volume(volume, count if len(shape) == 4 else 0, source)
        data = np.asarray(img.dataobj[..., volume], dtype=wide)
    elif count > 1:
        raise several_volumes(count, source)
    else:
        data = np.asarray(img.get_fdata(dtype=wide))
        data = data.reshape(shape[:3]) if len(shape) > 3 else data
    header = img.header
    order = slice_axis_last(data.shape)
    data = np.transpose(data, order) if order else data
    one_slice = data.ndim == 3 and data.shape[2] == 1
    data = data[:, :, 0] if one_slice else data  # one slice is a 2D image
    if data.ndim not in (2, 3):
        raise UnsupportedImage(f"an image of {data.ndim} dimensions is not supported", source)
    zooms = [float(z) for z in _in_order(header.get_zooms()[:3], order)[: data.ndim]]
    unstated = any(_in_order(_stated_zero(img), order)[: data.ndim])  # nibabel made them 1
    affine = columns_in_order(img.affine, order)
    meta: dict[str, Any] = {"format": fmt, **_integer_voxels(img, dtype)}
    if np.all(np.isfinite(affine)):  # a NaN pixdim or sform states no place in the patient
        meta.update(affine=affine.tolist(), axcodes=list(nib.aff2axcodes(affine)))
    if fmt == "nifti":
        meta.update(_nifti_fields(header, order))
        zooms = [z * SPACE_UNITS_MM.get(meta["xyzt_units"][0], 1.0) for z in zooms]
    if one_slice:
        meta["one_slice"] = True  # written back with its axis of length 1 where it was
        if order:
            meta["voxel_order"] = list(order)
    if volume is not None:
        meta["volume"], meta["volumes"] = volume, count
    arr = np.ascontiguousarray(data.T)
    spacing = tuple(reversed(zooms))
    if not plausible_spacing(spacing):
        spacing, meta["spacing_assumed"] = (1.0,) * arr.ndim, True
    elif unstated:
        meta["spacing_assumed"] = True
    meta["affine_spacing"] = list(spacing)  # what the stored frames were read with
    if "header_fields" in meta:
        meta["header_shape"] = list(arr.shape)  # the slice fields hold for this shape only
    return MedImage(arr, spacing, "OT", "unknown", {}, str(source) if source else None, meta)


def _integer_voxels(img: Any, dtype: np.dtype) -> dict[str, Any]:
    """`integer_storage` of voxels stored as integers whose values are whole numbers: with no
    value map (`scl_slope` 0, 1 or unset and no intercept), or a map of whole numbers (a CT as
    int16 with `scl_inter` −1024, its `meta['rescale']`): a result is written back as whole
    numbers. A fractional map (nibabel keeps a read file's on its voxel proxy, not its header)
    of 8- or 16-bit voxels gives `meta['value_map']` (`polarity.on_value_map`: values still on
    it are written in it, others as float32, never rounded to whole numbers its map had spread
    over a fraction: a 0–2 map in int16 came back as the three values 0, 1 and 2); {} else."""
    slope = getattr(img.dataobj, "slope", None)
    inter = getattr(img.dataobj, "inter", None)
    if slope is None:  # an image made in memory: its header holds the map
        try:
            slope, inter = img.header.get_slope_inter()
        except (AttributeError, ValueError):  # a format without a value map
            slope, inter = None, None
    slope = 1.0 if slope is None else float(slope)
    inter = 0.0 if inter is None else float(inter)
    stored = integer_storage(dtype)  # {} for floats
    if not stored or (slope, inter) == (1.0, 0.0):
        return stored
    if slope and slope.is_integer() and inter.is_integer():
        return {**stored, "rescale": [slope, inter]}
    small = np.dtype(dtype).itemsize <= 2 and bool(slope) and np.isfinite([slope, inter]).all()
    return {"value_map": [np.dtype(dtype).name, slope, inter]} if small else {}


_QUIET = contextvars.ContextVar("medq_quiet_header_checks", default=False)
"""Set while medq reads a file (per thread): nibabel's header-check records are then dropped."""

_ZERO_SIZE = contextvars.ContextVar("medq_zero_voxel_size", default=False)
"""Set when nibabel said, during medq's read, that it made a zero voxel size 1 (`_stated_zero`
then reads which axis from the header; other reads never open the file again)."""


def _loud(record: logging.LogRecord) -> bool:
    """The filter medq puts on nibabel's logger: a record passes unless medq is reading (a
    zero voxel size mended meanwhile is noted in `_ZERO_SIZE`)."""
    if not _QUIET.get():
        return True
    if "pixdim[1,2,3] should be non-zero" in record.getMessage():
        _ZERO_SIZE.set(True)
    return False


@contextmanager
def quiet_header_checks() -> Iterator[None]:
    """Keeps nibabel's header-check messages ("pixdim[1,2,3] should be non-zero; setting 0 dims
    to 1") off stderr while medq reads a file: medq states what it assumed itself
    (`spacing_assumed`), in its one-line form. The logger keeps its handlers; a filter, added
    once, drops the records of this thread's reads only."""
    logger = nib.imageglobals.logger
    if _loud not in logger.filters:
        logger.addFilter(_loud)
    token, zero = _QUIET.set(True), _ZERO_SIZE.set(False)
    try:
        yield
    finally:
        _QUIET.reset(token)
        _ZERO_SIZE.reset(zero)


def _stated_zero(img: Any) -> list[bool]:
    """Per voxel axis (i, j, k): whether the file states its size as 0, which nibabel reads as
    1 mm without a word (the header is read again, unchecked, only when a size reads 1 and, in
    medq's reads, nibabel said it mended one, `_ZERO_SIZE`, or its logger is set above warnings,
    so that nothing could be said)."""
    header = img.header
    told = _ZERO_SIZE.get() or not _QUIET.get() or not nib.imageglobals.logger.isEnabledFor(
        logging.WARNING)  # outside medq's reads, or a logger set above it, notes nothing
    if not told or not isinstance(header, nib.analyze.AnalyzeHeader) or not np.any(
            header["pixdim"][1:4] == 1):
        return [False] * 3
    holder = img.file_map.get("header") or img.file_map.get("image")
    try:
        with holder.get_prepare_fileobj("rb") as fh:
            fh.seek(holder.pos)
            raw = type(header).from_fileobj(fh, check=False)["pixdim"][1:4]
    except Exception:  # noqa: BLE001 - the checked header was read; its sizes stand
        return [False] * 3
    return [bool(v == 0) for v in raw]


def _in_order(values: Any, order: tuple[int, ...] | None) -> list[Any]:
    """Per-axis values in the voxel axis order `order` (as they are without one)."""
    values = list(values)
    return [values[a] for a in order] if order else values


def _nifti_fields(header: Any, order: tuple[int, ...] | None = None) -> dict[str, Any]:
    """What a NIfTI header states that medq writes back: the qform and sform with their codes
    (their columns in the voxel axis `order` medq reads), the space and time units, the time
    step (pixdim[4], an fMRI's or a sequence's TR) and the description."""
    out: dict[str, Any] = {"xyzt_units": list(header.get_xyzt_units()),
                           "descrip": header["descrip"].item().decode("latin-1").strip("\0 ")
                           if "descrip" in header else ""}
    step = float(header["pixdim"][4]) if "pixdim" in header else 0.0
    if np.isfinite(step) and step > 0:
        out["time_step"] = step
    for kind in ("qform", "sform"):
        code = int(header.get(f"{kind}_code", 0))
        out[f"{kind}_code"] = code
        matrix = getattr(header, f"get_{kind}")() if code else None
        if matrix is not None and np.all(np.isfinite(matrix)):
            out[kind] = columns_in_order(matrix, order).tolist()
    if not order:  # the voxel axes as stored: their slice fields still name the right axes
        fields = {name: header[name].item() for name in KEPT_FIELDS if name in header}
        fields = {name: value.decode("latin-1").rstrip("\0") if isinstance(value, bytes)
                  else value for name, value in fields.items()}
        fields = {k: v for k, v in fields.items() if v not in (0, 0.0, "")
                  and (not isinstance(v, float) or np.isfinite(v))}
        if fields:
            out["header_fields"] = fields
    return out


KEPT_FIELDS = ("dim_info", "slice_code", "slice_start", "slice_end", "slice_duration", "toffset",
               "cal_min", "cal_max", "intent_code", "intent_p1", "intent_p2", "intent_p3",
               "intent_name", "aux_file", "db_name")
"""NIfTI header fields a result keeps from its input when its voxel axes were not reordered:
the slice and phase-encode axes and slice timing (`dim_info`, `slice_*`) that later processing
reads, the display range, the intent and the names."""


def _spacing_change(image: MedImage) -> list[float] | None:
    """Per `(i, j, k)` column, the factor the image's spacing changed by since its frames were
    read (`meta['affine_spacing']`; all 1 when unchanged); None when that is not known."""
    before = image.meta.get("affine_spacing")
    if not before or len(before) != len(image.spacing):
        return None
    ratios = [now / was if was > 0 else 1.0 for now, was in zip(image.spacing, before,
                                                                  strict=True)]
    return list(reversed(ratios)) + [1.0] * (3 - len(ratios))


def nifti_affine(image: MedImage) -> tuple[np.ndarray, bool]:
    """Voxel-to-world affine for `image` and whether it is a scanner frame taken from another
    format: meta['affine'] with columns rescaled to its spacing; for an image read from DICOM,
    MetaImage or NRRD the patient geometry its file stated (`io.geometry.frame_affine_ras`);
    else the spacing alone."""
    stored = image.meta.get("affine")
    if stored is None and (from_frame := frame_affine_ras(image)) is not None:
        return from_frame, True
    spacing_ijk = list(reversed(image.spacing)) + [1.0] * (3 - len(image.spacing))
    affine = np.diag([*spacing_ijk, 1.0])
    if stored is not None:
        candidate = np.asarray(stored, dtype=float)
        if candidate.shape == (4, 4) and np.all(np.isfinite(candidate)):
            affine = candidate.copy()
            if np.linalg.matrix_rank(candidate[:3, :3]) < 3:  # a singular affine: no axes to keep
                affine[:3, :3] = np.diag(spacing_ijk)
            elif (change := _spacing_change(image)) is not None:  # kept, scaled by the change
                return _scaled(affine, change), False
            for i, sp in enumerate(spacing_ijk[: len(image.spacing)]):
                norm = float(np.linalg.norm(affine[:3, i]))
                if norm > 0:
                    affine[:3, i] *= sp / norm
    return affine, False


def _scaled(matrix: Any, change: list[float]) -> np.ndarray:
    """A 4×4 frame with its `(i, j, k)` columns multiplied by `change`."""
    out = np.asarray(matrix, dtype=float).copy()
    out[:3, :3] *= np.asarray(change, dtype=float)[None, :]
    return out


def _cut(raw: bytes, size: int) -> bytes:
    """`raw` in at most `size` bytes: ended on a whole word and marked `...` when cut."""
    if len(raw) <= size:
        return raw
    return raw[:size - 3].rsplit(b" ", 1)[0] + b"..."


def write_nifti(image: MedImage, path: str | Path, *, description: str | None = None) -> Path:
    """Write `image` as NIfTI-1 (`.nii` or gzipped `.nii.gz`), atomically: in the integer type
    it was read in when its values are whole numbers within it (`io.polarity.in_stored_type`)
    or lie on the fractional value map it was read with (`on_value_map`), else float32; the
    qform, sform and units as read."""
    path = Path(path)
    if image.is_rgb:
        raise InvalidParameter("RGB photographs are not written as NIfTI; use .png/.tif/.npy", path)
    mapped = on_value_map(image)
    data = np.ascontiguousarray((mapped[0] if mapped else in_stored_type(image.array, image)).T)
    if image.meta.get("one_slice") and data.ndim == 2:
        data = data[:, :, None]
    affine, scanner = nifti_affine(image)
    # nibabel refuses 64-bit integers without a stated type (an int64 scan's restoration failed
    # as an internal error); it writes them as they are, in the type they were read in
    img = nib.Nifti1Image(data, affine, dtype=data.dtype if data.dtype.itemsize == 8 else None)
    if mapped:
        img.header.set_slope_inter(mapped[1], mapped[2])
    change = _spacing_change(image)
    for kind in ("qform", "sform"):
        code = image.meta.get(f"{kind}_code") or (SCANNER_CODE if scanner else 0)
        own = image.meta.get(kind)  # a singular frame (no axes to keep) is replaced
        usable = own is not None and change is not None and np.linalg.matrix_rank(
            np.asarray(own, dtype=float)[:3, :3]) == 3
        frame = _scaled(own, change) if usable else img.affine
        if code:
            getattr(img, f"set_{kind}")(frame, code=int(code))
    for kind in ("qform", "sform"):  # a frame the input did not state stays unstated
        if f"{kind}_code" in image.meta and not image.meta[f"{kind}_code"] and not scanner:
            getattr(img, f"set_{kind}")(None, code=0)
    same_shape = list(image.shape) == image.meta.get("header_shape")  # not a plane of it
    for name, value in (image.meta.get("header_fields") if same_shape else {}).items():
        if name in KEPT_FIELDS:
            img.header[name] = value
    units = image.meta.get("xyzt_units") if change is not None else None
    img.header.set_xyzt_units(*(units or ("mm", "sec")))
    if image.meta.get("time_step"):
        pixdim = img.header["pixdim"].copy()
        pixdim[4] = float(image.meta["time_step"])
        img.header["pixdim"] = pixdim
    own = str(image.meta.get("descrip") or "")
    if description and own and own not in description:  # the file's own, then medq's cut to fit
        tail = _cut(f"; from: {own}".encode("latin-1", "replace"), 48)
        raw = _cut(description.encode("latin-1", "replace"), 79 - len(tail)) + tail
    else:
        raw = _cut((description or own).encode("latin-1", "replace"), 79)
    if raw:
        img.header["descrip"] = raw
    with atomic_path(path) as tmp:
        nib.save(_in_voxel_order(img, image.meta.get("voxel_order")), str(tmp))
    return path


def _in_voxel_order(img: Any, order: list[int] | None) -> Any:
    """`img` with its voxel axes back in the order its input stored them (a coronal or sagittal
    slice read with its axis of length 1 moved last: `meta['voxel_order']`), frames and value
    map alike."""
    if not order or img.ndim != 3 or img.shape[2] != 1:
        return img
    back = tuple(int(a) for a in np.argsort(order))
    out = nib.Nifti1Image(np.transpose(np.asanyarray(img.dataobj), back),
                          columns_in_order(img.affine, back), header=img.header)
    out.header.set_slope_inter(*img.header.get_slope_inter())  # a new image resets the map
    for kind in ("qform", "sform"):
        matrix, code = getattr(img, f"get_{kind}")(coded=True)
        getattr(out, f"set_{kind}")(None if matrix is None else columns_in_order(matrix, back),
                                    code=int(code))
    return out
