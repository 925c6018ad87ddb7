"""Arrays as images: what the Python API takes (`medq.assess(array)`, …) and `.npy` files hold.

`from_array` turns a NumPy array (or anything `np.asarray` takes, such as a list, or a torch
tensor on any device) into a MedImage by the same rules as a `.npy` file: grey `(y, x)` or
`(z, y, x)`, or colour channels last `(y, x, 3|4)` as a photograph; no spacing means 1 mm,
flagged `spacing_assumed`; no modality means `OT` (`as_image`, like `medq.io.load`, then reads
Hounsfield values as CT: `units.infer_modality`). `as_image` is what the API's entry points call
on whatever they were given: a MedImage, a path or an array, with the caller's modality, region
and spacing applied.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medq.errors import InvalidImage, InvalidParameter, UnsupportedImage
from medq.image import (
    PHOTO_MODALITIES,
    PLAUSIBLE_SPACING_MM,
    MedImage,
    modality_code,
    plausible_spacing,
)
from medq.io.units import COLOUR

COLOUR_CHANNELS = (3, 4)
"""Sizes of a last axis read as colour channels (RGB, RGBA: the alpha channel is dropped)."""

MIN_COLOUR_SIDE = 5
"""A `(y, x, 3|4)` array named no modality is colour only when y and x are at least this long
(a 3- or 4-slice volume of a few pixels per side is not an image medq can grade either way); one
named a photograph (OP) is colour at any size."""


def finite_pixels(image: MedImage) -> MedImage:
    """Reject all-non-finite images; replace partial NaN/inf with 0 (no signal), or with the
    smallest finite value where the image goes below 0 (CT's air), so a map whose background is
    stored as NaN reads as having a dark background, not one of its darkest tissue (the replaced
    fraction is recorded in `meta['nonfinite_fraction']`, the pixels and their values in
    `meta['nonfinite']`, so that a result can hand them back: `with_nonfinite`)."""
    arr = image.array
    finite = np.isfinite(arr)
    if finite.all():
        return image
    if not finite.any():
        raise InvalidImage(f"all {arr.size} pixel values are NaN or infinite", image.source)
    fixed = np.where(finite, arr, min(float(arr[finite].min()), 0.0))
    meta = dict(image.meta, nonfinite_fraction=float(1.0 - finite.mean()),
                nonfinite={"mask": ~finite, "values": arr[~finite]})
    return image.evolve(array=fixed, meta=meta)


def with_nonfinite(array: np.ndarray, image: MedImage) -> np.ndarray:
    """`array` (a result of the same shape as `image`) with the NaN/inf pixels the file held
    put back where `finite_pixels` replaced them (a map's undefined voxels stay undefined)."""
    held = image.meta.get("nonfinite")
    if not held or held["mask"].shape != np.shape(array):
        return array
    out = np.array(array, dtype=np.result_type(array, np.float32), copy=True)
    out[held["mask"]] = held["values"]
    return out


def bit_ends(bits: int, signed: bool) -> tuple[int, int]:
    """The smallest and largest integers `bits` bits hold, two's complement when `signed`
    (a DICOM file's BitsStored and PixelRepresentation)."""
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def rgb_bytes(array: np.ndarray) -> np.ndarray:
    """A colour image's [0, 1] values as the 8-bit samples files store (clipped, rounded)."""
    return np.round(np.clip(array, 0.0, 1.0) * 255).astype(np.uint8)


def whole_numbers(arr: np.ndarray) -> bool:
    """True when `arr` may be stored as whole numbers: every value within 1e-3 of one, and its
    values not all rounded to the same one unless they were equal (data of a tiny scale, such as
    1e-30 steps, is not)."""
    rounded = np.round(arr)
    if not np.all(np.abs(arr - rounded) <= 1e-3):
        return False
    return bool(np.ptp(rounded) > 0 or np.ptp(arr) == 0)


def _colour(arr: np.ndarray, modality: str | None, source: str | None) -> bool:
    """True when `arr` is a colour picture `(y, x, 3|4)`; UnsupportedImage when it looks like one
    but the caller named a modality that is never colour."""
    modality = modality_code(modality) if modality is not None else None
    channels = arr.ndim == 3 and arr.shape[-1] in COLOUR_CHANNELS
    if channels and modality in PHOTO_MODALITIES:
        return True  # a photograph named: colour at any size
    if not channels or min(arr.shape[:2]) < MIN_COLOUR_SIDE:
        return False
    if modality is None:
        return True
    raise UnsupportedImage(f"array of shape {arr.shape} holds colour channels last, but only a "
                           f"photograph (modality OP) is colour, not {modality}: give a "
                           "grey image as (y, x) and a volume as (z, y, x)", source)


def _unit_colour(arr: np.ndarray, source: str | None) -> tuple[np.ndarray, float]:
    """RGB values in [0, 1] (MedImage's colour scale) of 8-bit, 16-bit or float RGB(A), and the
    full scale they were divided by (1, 255 or 65535: `meta["colour_scale"]`, so results come
    back in the caller's units)."""
    rgb = arr[..., :3]
    finite = rgb[np.isfinite(rgb)] if rgb.dtype.kind == "f" else rgb  # NaN/inf: `finite_pixels`
    top = float(finite.max()) if finite.size else 0.0
    if finite.size and float(finite.min()) < 0:
        raise UnsupportedImage("colour array has negative values; expected 0–1, 0–255 or "
                               "0–65535", source)
    if arr.dtype.kind in "fb" and top <= 1.0:  # float 0–1, or True/False
        return rgb, 1.0
    scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else None
    if scale is None:
        raise UnsupportedImage(f"colour values up to {top:g}; expected 0–1, 0–255 or 0–65535",
                               source)
    return rgb / scale, scale


def _spacing(spacing: float | Sequence[float] | None, spatial: int) -> tuple[float, ...]:
    """The spacing tuple of a number (every axis) or a sequence (one per spatial axis)."""
    if spacing is None:
        return ()
    try:  # MedImage checks the count and the values
        values = ((float(spacing),) * spatial if np.isscalar(spacing)
                  else tuple(float(s) for s in spacing))
    except (TypeError, ValueError) as e:
        raise InvalidParameter(f"spacing must be a number or one number per axis, got "
                               f"{spacing!r}") from e
    usable = all(np.isfinite(v) and v > 0 for v in values)  # else MedImage says what is wrong
    if usable and not plausible_spacing(values):
        low, high = PLAUSIBLE_SPACING_MM
        raise InvalidParameter(f"spacing {values} lies outside {low:g}–{high:g} mm: give the "
                               "pixel size in millimetres")
    return values


def _dropped(spacing: float | Sequence[float] | None, axis: int, ndim: int = 3
             ) -> float | Sequence[float] | None:
    """The spacing of an `ndim`-axis array whose `axis` of length 1 is dropped: a sequence of
    `ndim` (one per axis the caller gave) loses that axis' entry; anything else stays as it
    is."""
    if spacing is None or np.isscalar(spacing):
        return spacing
    try:
        values = list(spacing)  # type: ignore[arg-type]
    except TypeError:
        return spacing
    if len(values) != ndim:
        return spacing
    del values[axis]
    return values


def host_array(array: Any) -> Any:
    """A torch tensor (on any device, with or without grad, any float type) as a NumPy array;
    anything else as it is."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(array, torch.Tensor):
        return array
    tensor = array.detach().cpu()
    return (tensor.float() if tensor.is_floating_point() else tensor).numpy()


def from_array(array: Any, *, spacing: float | Sequence[float] | None = None,
               modality: str | None = None, region: str | None = None,
               source: str | None = None, meta: dict[str, Any] | None = None) -> MedImage:
    """A MedImage of an array: grey `(y, x)` / `(z, y, x)` in its own units (a trailing axis of
    length 1 is dropped, as is a leading one: `(1, y, x)`, `(1, z, y, x)` (one channel first;
    `(1, 3|4, y, x)` is refused as ambiguous); a spacing given per axis loses
    that axis' entry too, and `meta["array_shape"]` keeps the shape given, so that a restored
    array comes back in it), or colour `(y, x, 3|4)` as a
    photograph (modality OP, values scaled to 0–1). `spacing` in mm (a number for every axis,
    or one per axis; 1 mm when not given), `modality` a DICOM code (else OT, or OP for
    colour), `region` one of `medq.image.REGIONS`.
    Non-finite pixels are handled as files' are (`finite_pixels`).
    Raises UnsupportedImage for what is not a real 2D/3D image, InvalidParameter for a bad
    spacing, modality or region."""
    try:
        arr = np.asarray(host_array(array))
    except Exception as e:  # ragged lists and the like
        raise UnsupportedImage(f"not an array ({type(e).__name__}: {e})", source) from e
    if arr.dtype.kind == "c":
        raise UnsupportedImage("array of complex values: medq grades magnitude images "
                               "(pass np.abs of it)", source)
    if arr.dtype.kind not in "biuf":
        # a list of paths or images handed to the Python API (not a .npy file of text)
        many = arr.dtype.kind in "USO" and arr.ndim == 1 and source is None
        raise UnsupportedImage(f"array of dtype {arr.dtype} is not a real image" + (
            "; for many inputs use medq.assess.predictor.Assessor().assess_many(inputs)"
            if many else ""), source)
    if isinstance(array, (list, tuple)) and array and all(
            getattr(a, "ndim", 0) >= 2 for a in array):  # np.asarray would stack them silently
        raise UnsupportedImage(f"a list of {len(array)} images: for many inputs use "
                               "medq.assess.predictor.Assessor().assess_many(inputs); for one "
                               "volume pass np.stack(images)", source)
    given_shape = list(arr.shape)
    if arr.ndim == 4 and arr.shape[0] == 1 and arr.shape[1] in COLOUR_CHANNELS:
        raise UnsupportedImage(f"array of shape {arr.shape}: a batch of one colour picture "
                               "(1, c, y, x)? pass array[0].transpose(1, 2, 0); a volume of "
                               f"{arr.shape[1]} slices? pass array[0]", source)
    if arr.ndim == 4 and arr.shape[0] == 1:  # one channel first: (1, z, y, x)
        arr, spacing = arr[0], _dropped(spacing, 0, 4)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr, spacing = arr[..., 0], _dropped(spacing, -1)
    elif arr.ndim == 3 and arr.shape[0] == 1 and arr.shape[-1] not in COLOUR_CHANNELS:
        arr, spacing = arr[0], _dropped(spacing, 0)  # one slice (1, y, x) is a plane: 2D
    if arr.ndim not in (2, 3) or arr.size == 0:
        several = (f"; a {arr.ndim}D array of {arr.shape[0]} channels or volumes: pass one, "
                   "array[k]" if arr.ndim == 4 and arr.size else "")
        raise UnsupportedImage(f"array of shape {arr.shape} is not a 2D (y, x) or 3D (z, y, x) "
                               f"image{several}", source)
    colour = _colour(arr, modality, source)
    pixels, scale = _unit_colour(arr, source) if colour else (arr, None)
    spatial = 2 if colour else arr.ndim
    info = {"format": "array", "dtype": str(arr.dtype), "spacing_assumed": spacing is None,
            **({"array_shape": given_shape} if given_shape != list(arr.shape) else {}),
            **({"colour_scale": scale} if colour else {}),
            **({"modality_from": COLOUR} if colour and not modality else {}), **(meta or {})}
    image = MedImage(pixels, _spacing(spacing, spatial),
                     modality or ("OP" if colour else "OT"), region or "unknown", {}, source,
                     info)
    return finite_pixels(image)


FOREIGN_IMAGES = {
    "SimpleITK": "give medq its file path (medq.load reads its spacing and modality), or "
                 "SimpleITK.GetArrayFromImage(image) with spacing=image.GetSpacing()[::-1]",
    "nibabel": "give medq its file path (medq.load reads its spacing and axes as (z, y, x))",
    "pydicom": "give medq its file path (or the series folder)",
    "torchio": "give medq its file path, or image.data[0].permute(2, 1, 0) (TorchIO holds "
               "(c, x, y, z)) with spacing=image.spacing[::-1]",
}
"""Image objects of other libraries the Python API is handed, by top-level module: what to give
instead (their arrays hold no spacing, or hold it in another axis order)."""


def as_image(item: Any, *, modality: str | None = None, region: str | None = None,
             spacing: float | Sequence[float] | None = None, finite: bool = True) -> MedImage:
    """What a Python API entry point was given, as a MedImage: a MedImage (with the caller's
    modality, region and spacing in place of its own), a path (`medq.io.load`: a file, a DICOM
    series folder, `<file>@volume=<k>`) or an array (`from_array`); NaN or infinite pixels
    of a MedImage are replaced as `finite_pixels` replaces a file's (`finite=False` keeps a
    MedImage's pixels as they are: `save` writes them)."""
    from medq.io import load
    from medq.io.units import infer_modality

    if isinstance(item, MedImage):
        item = finite_pixels(item) if finite else item  # NaN/inf as a file's: set aside
        changes = named_changes(item.meta, modality, region)
        if spacing is not None:
            changes["spacing"] = _spacing(spacing, len(item.spacing))
        return item.evolve(**changes) if changes else item
    if isinstance(item, (str, Path)):
        image = load(item, modality=modality, region=region)
        if spacing is None:
            return image
        return image.evolve(spacing=_spacing(spacing, len(image.spacing)),
                            meta={**image.meta, "spacing_assumed": False})
    library = type(item).__module__.partition(".")[0]
    if library in FOREIGN_IMAGES:
        raise UnsupportedImage(f"a {library} {type(item).__name__}: {FOREIGN_IMAGES[library]}")
    if item is None or isinstance(item, (dict, set, bytes, int, float)):
        raise UnsupportedImage(f"expected a path, a MedImage or an array, got "
                               f"{type(item).__name__}")
    named = named_changes({}, modality, region)
    return infer_modality(from_array(item, spacing=spacing, **named))


def named_changes(meta: dict[str, Any], modality: str | None, region: str | None
                  ) -> dict[str, Any]:
    """The `evolve` changes that put the modality and region a user named in place of an
    image's own, its `meta` recording which they named (`meta['named']`: the prompts say
    `user`)."""
    changes: dict[str, Any] = {k: v for k, v in (("modality", modality), ("region", region))
                               if v}
    if changes:
        changes["meta"] = {**meta, "named": sorted({*meta.get("named", ()), *changes})}
    return changes


def on_given_scale(image: MedImage) -> np.ndarray:
    """The image's pixels on the scale they were given in: a colour array read as 0–255 or
    0–65535 (`meta["colour_scale"]`) multiplied back from MedImage's 0–1, any other as it is."""
    scale = image.meta.get("colour_scale") if image.is_rgb else None
    if scale and scale != 1.0:
        return np.asarray(image.array, dtype=np.float32) * np.float32(scale)
    return image.array

