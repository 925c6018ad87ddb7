"""MetaImage (.mha, .mhd + data file) and NRRD (.nrrd, .nhdr + data file) via SimpleITK.

Axis convention: SimpleITK's array is already `(z, y, x)`; its spacing, origin and direction
are `(x, y, z)`, so `spacing` is the reversed spacing and the origin and direction cosines are
kept as they are in `meta['origin']` / `meta['direction']` and written back on save. A volume of
one slice is a 2D image (`meta['one_slice']`, written back with `meta['slice_spacing']`); a 2D
image of three or four 8-bit components is an RGB photograph (modality 'OP', alpha dropped). The
modality is read from a MetaImage's `Modality` field (`MET_MOD_CT` → CT, `MET_MOD_MR` → MR, …)
or an NRRD `Modality` key; otherwise it is unknown ('OT': HU values make it CT, see
`medq.io.units`). A file whose spacing (zero, NaN) or direction (singular) ITK refuses is read
as a NIfTI file alike is: without a place in the patient, at 1 mm where it states no usable
spacing (`meta['spacing_assumed']`; `medq.io.itk_header`).

Writing keeps integer pixels in their type while they are whole numbers within it (else
float32; RGB: 8-bit), compressed. A one-file format (.mha, .nrrd) goes through a temporary file;
a detached header (.mhd, .nhdr) and its data file are written in a temporary folder and moved
in, the data file first, so a reader never finds a header whose data is incomplete.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from medq.errors import InvalidParameter, UnreadableImage, UnsupportedImage
from medq.image import MedImage
from medq.io.arrays import rgb_bytes
from medq.io.atomic import atomic_path, make_folder
from medq.io.geometry import slice_axis_last, world_frame
from medq.io.itk_header import (
    HEADER_SUFFIX,
    missing_data_file,
    short_data,
    stated_axes,
    unit_frame_header,
)
from medq.io.polarity import in_stored_type, integer_storage
from medq.io.units import COLOUR
from medq.io.volumes import last_file_cache

ITK_FORMATS = {".mha": "metaimage", ".mhd": "metaimage", ".nrrd": "nrrd", ".nhdr": "nrrd"}
"""Suffix → format read and written through SimpleITK."""

DETACHED = (".mhd", ".nhdr")
"""Header suffixes whose pixels live in a separate data file."""

DATA_FILE_ENDINGS = (".raw", ".zraw", ".raw.gz")
"""Endings of the data files detached headers point to (never inputs of their own)."""

SEGMENTATION_ENDINGS = (".seg.nrrd",)
"""3D Slicer's name for a segmentation: label maps, not acquired images (skipped in folders)."""

_IMAGE_IO = {"metaimage": "MetaImageIO", "nrrd": "NrrdImageIO"}

_METAIMAGE_MODALITY = {"MET_MOD_CT": "CT", "MET_MOD_MR": "MR", "MET_MOD_NM": "NM",
                       "MET_MOD_US": "US"}


def _reason(error: RuntimeError) -> str:
    """The last line of an ITK exception (its message proper), at most 160 characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:160] if lines else type(error).__name__


def _modality(img: Any) -> str:
    """The modality a MetaImage field or NRRD key states, else 'OT'."""
    stated = img.GetMetaData("Modality").strip() if img.HasMetaDataKey("Modality") else ""
    if stated in _METAIMAGE_MODALITY:
        return _METAIMAGE_MODALITY[stated]
    return stated.upper() if stated.isalpha() and 2 <= len(stated) <= 4 else "OT"


def _slice_axis_last(img: Any) -> Any:
    """A single coronal or sagittal slice with its axis of length 1 moved last
    (`geometry.slice_axis_last`); ITK moves the spacing and direction with it, so every voxel
    keeps its place in the patient."""
    import SimpleITK as sitk

    order = slice_axis_last(img.GetSize())
    return sitk.PermuteAxes(img, list(order)) if order else img


def _one_volume(img: Any, path: Path, volume: int | None) -> tuple[Any, int | None]:
    """A 4D image cut to its `volume`-th 3D volume (or its only one) inside SimpleITK, so no
    array of the whole series is made, and the series' volume count; other images as they
    are (count None)."""
    from medq.io.volumes import check_volume, several_volumes

    count = img.GetSize()[3] if img.GetDimension() == 4 else None
    if volume is not None:
        check_volume(volume, count or 0, path)
    elif count is not None and count != 1:
        raise several_volumes(count, path)
    return (img[:, :, :, volume or 0] if count is not None else img), count


def _pixels(img: Any, path: Path) -> tuple[np.ndarray, tuple[float, ...], float | None, bool]:
    """The `(z, y, x)` (or `(y, x)`, RGB `(y, x, 3)`) pixels of a 2D/3D image, medq-order
    spacing, the slice spacing of a single slice that was squeezed (else None) and whether the
    image is colour."""
    import SimpleITK as sitk

    kind = img.GetPixelIDTypeAsString()
    if "complex" in kind:
        raise UnsupportedImage(f"complex pixels ({kind}) are not supported; save the magnitude",
                               path)
    arr = sitk.GetArrayFromImage(img)
    spacing = tuple(float(s) for s in reversed(img.GetSpacing()))
    components = img.GetNumberOfComponentsPerPixel()
    one_slice = None
    if arr.ndim - (components > 1) == 3 and arr.shape[0] == 1:
        arr, spacing, one_slice = arr[0], spacing[1:], spacing[0]
    if components == 1:
        return arr.astype(np.float32), spacing, one_slice, False
    if arr.ndim == 3 and components in (3, 4) and arr.dtype == np.uint8:
        return arr[..., :3].astype(np.float32) / 255.0, spacing, one_slice, True
    raise UnsupportedImage(f"{components} components per pixel ({kind}, e.g. a vector or "
                           "displacement field) is not an image medq reads", path)


def _reader(path: Path, fmt: str) -> Any:
    """SimpleITK's reader of the MetaImage or NRRD file `path`."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO(_IMAGE_IO[fmt])
    reader.SetFileName(str(path))
    return reader


def _stated_spacing(path: Path, fmt: str) -> tuple[float, ...] | None:
    """The `(x, y, z)` spacing the header states (its magnitude), None where some axis has none
    (zero, NaN, or a header ITK cannot parse)."""
    reader = _reader(path, fmt)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    spacing = tuple(abs(float(s)) for s in reader.GetSpacing())
    return spacing if all(np.isfinite(s) and s > 0 for s in spacing) else None


def _read_without_frame(path: Path, fmt: str, error: RuntimeError) -> tuple[Any, bool]:
    """The image of a file ITK refused (`error`), read through its header restated without
    spacing, origin and direction (`itk_header.unit_frame_header`), at the spacing the header
    states where that is usable, and whether it was; the refusal when that fails too."""
    refused = UnreadableImage(f"not a readable {fmt} file ({_reason(error)})", path)
    header = unit_frame_header(path, fmt)
    if header is None:
        raise refused from error
    with tempfile.TemporaryDirectory(prefix="medq-header-") as folder:
        restated = Path(folder) / f"header{HEADER_SUFFIX[fmt]}"
        restated.write_text(header, encoding="latin-1")
        try:
            img = _reader(restated, fmt).Execute()
        except RuntimeError:
            raise refused from error
    spacing = _stated_spacing(path, fmt)
    if spacing is not None and len(spacing) == img.GetDimension():
        img.SetSpacing(spacing)
    return img, spacing is not None


def _states_spacing(path: Path, fmt: str, dims: int) -> bool:
    """Whether the header states a usable spacing for each of the first `dims` axes (x first)
    itself, not ITK's silent 1 mm for a NaN or missing one; True where it cannot be read."""
    axes = stated_axes(path, fmt)
    return axes is None or (len(axes) >= dims and all(axes[:dims]))


def _read_image(path: Path, fmt: str) -> tuple[Any, bool, bool]:
    """SimpleITK's image of the file, whether it kept the file's frame (origin, direction) and
    whether its spacing (a header ITK refuses is read without its frame)."""
    try:
        return _reader(path, fmt).Execute(), True, True
    except RuntimeError as e:  # perhaps a spacing or direction ITK refuses: read without it
        img, spaced = _read_without_frame(path, fmt, e)
        return img, False, spaced


_read_series = last_file_cache(_read_image)
"""`_read_image` kept for the last file read in this process: ITK reads a 4D file whole (a
compressed NRRD unpacked whole) for each volume asked for."""


def read_itk(path: str | Path, fmt: str, volume: int | None = None) -> MedImage:
    """Read a MetaImage or NRRD file (`fmt` 'metaimage' or 'nrrd') as a MedImage; `volume`
    picks one 3D volume of a 4D file."""
    path = Path(path)
    missing = missing_data_file(path, fmt) if path.suffix.lower() in DETACHED else None
    if missing:  # before ITK, which prints its own complaint on stderr
        raise UnreadableImage(f"its data file {missing} is missing", path)
    short = short_data(path) if fmt == "metaimage" else None
    if short:  # before ITK, which prints its complaint and gives 'Reason: Success'
        raise UnreadableImage(f"file is truncated ({short[0]} of {short[1]} bytes of pixel "
                              "data)", path)
    if volume is None:
        img, framed, spaced = _read_image(path, fmt)
    else:  # the volumes of a series are read one after the other: read the file once
        img, framed, spaced = _read_series(path, fmt)
    if any(key.startswith("Segment0_") for key in img.GetMetaDataKeys()):
        raise UnsupportedImage("a segmentation (3D Slicer segment keys), not an acquired image",
                               path)
    part, count = _one_volume(img, path, volume)
    part = _slice_axis_last(part)
    arr, spacing, one_slice, rgb = _pixels(part, path)
    meta: dict[str, Any] = {"format": fmt}
    if framed:  # where the image lies in the patient
        meta.update(origin=list(part.GetOrigin()), direction=list(part.GetDirection()))
    if volume is not None:
        meta["volume"], meta["volumes"] = volume, count
    if one_slice is not None:
        meta["one_slice"], meta["slice_spacing"] = True, one_slice
    if not (spaced and _states_spacing(path, fmt, arr.ndim - rgb)
            and all(np.isfinite(s) and s > 0 for s in spacing)):
        spacing, meta["spacing_assumed"] = (1.0,) * (arr.ndim - rgb), True
    if rgb:  # a colour picture states no modality: read as a photograph by its colour
        meta["value_range"], meta["modality_from"] = [0, 255], COLOUR
    else:  # integer pixels are written back as the same integers
        import SimpleITK as sitk

        meta.update(integer_storage(sitk.GetArrayViewFromImage(part).dtype))
    modality = "OP" if rgb else _modality(img)
    return MedImage(arr, spacing, modality, "unknown", {}, str(path), meta)


def _as_itk(image: MedImage, description: str | None) -> Any:
    """The SimpleITK image of `image`: pixels, spacing, origin, direction and key-value pairs."""
    import SimpleITK as sitk

    if image.is_rgb:
        pixels = rgb_bytes(image.array)
        img = sitk.GetImageFromArray(pixels, isVector=True)
    else:
        pixels = in_stored_type(image.array, image)
        if image.meta.get("one_slice") and pixels.ndim == 2:
            pixels = pixels[None]
        img = sitk.GetImageFromArray(pixels)
    dims = img.GetDimension()
    spacing = list(reversed(image.spacing))[:dims]
    if len(spacing) < dims:  # a single slice written back as a volume: its slice spacing
        spacing.append(float(image.meta.get("slice_spacing") or 1.0))
    img.SetSpacing(spacing)
    origin, direction = image.meta.get("origin"), image.meta.get("direction")
    if origin is None and direction is None and dims == 3 and (frame := world_frame(image)):
        origin, direction = frame[0].tolist(), frame[1].ravel().tolist()  # LPS, as ITK's
    if isinstance(origin, list) and len(origin) == dims:
        img.SetOrigin([float(v) for v in origin])
    if isinstance(direction, list) and len(direction) == dims * dims:
        img.SetDirection([float(v) for v in direction])
    img.SetMetaData("Modality", image.modality)
    if description:
        img.SetMetaData("medq_description", description.replace("\n", " "))
    return img


def write_itk(image: MedImage, path: str | Path, *, description: str | None = None) -> Path:
    """Write `image` as MetaImage or NRRD (by suffix; detached header with its data file for
    .mhd / .nhdr), compressed, atomically."""
    import SimpleITK as sitk

    path = Path(path)
    img = _as_itk(image, description)
    try:
        if path.suffix.lower() not in DETACHED:
            with atomic_path(path) as tmp:
                sitk.WriteImage(img, str(tmp), True)
            return path
        make_folder(path.parent, path)
        folder = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        folder.mkdir()
        try:
            sitk.WriteImage(img, str(folder / path.name), True)
            data = [f for f in folder.iterdir() if f.name != path.name]
            for f in [*data, folder / path.name]:  # the header last
                os.replace(f, path.parent / f.name)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    except RuntimeError as e:
        raise InvalidParameter(f"cannot write ({_reason(e)})", path) from e
    return path
