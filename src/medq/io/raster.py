"""PNG / JPEG / TIFF via Pillow (a TIFF Pillow cannot open, such as float64 or signed 32-bit
samples, via tifffile), and NumPy `.npy` arrays.

Values: greyscale images keep their raw stored values as float32 (8-bit 0…255, 16-bit 0…65535,
float TIFF as is) with `meta['bit_depth']` and `meta['value_range']`; colour images become RGB
`(y, x, 3)` float32 in [0, 1] (stored / 255) with modality 'OP'. Alpha is dropped; an RGB image
whose three channels are identical is read as greyscale. An alpha channel that is not fully
opaque is not a pixel value: it is set aside as `meta['alpha']` (uint8, `(y, x)`) and written back
by PNG and TIFF (`write_raster`), so a restored or degraded picture keeps its transparency.
Raster files carry no trustworthy geometry, so spacing is 1 mm (`meta['spacing_assumed']`).
Multi-page greyscale TIFF → `(z, y, x)`.

Writing: greyscale is 8-bit (16-bit when the source was deeper than 8 bits; JPEG is always
8-bit). Values already inside [0, 2**bits − 1] are written as rounded raw values when they
are whole numbers or span 64 levels or more; otherwise they are mapped linearly from [min, max]
onto the full range, and PNG records that map in a `medq_rescale` text chunk ("slope
intercept") which `read_raster` applies, so physical values come back (a JPEG, which has no
such chunk, keeps the map as `Rescale` in its medq sidecar; its 8 bits and lossy coding still
cost precision). TIFF writes out-of-range or fractional data as float32 instead. RGB is
clipped to [0, 1] × 255.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from medq.errors import MedqError, UnreadableImage, UnsupportedImage
from medq.image import MedImage
from medq.io.arrays import from_array, on_given_scale, rgb_bytes, whole_numbers
from medq.io.atomic import atomic_path
from medq.io.units import COLOUR

RASTER_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}
_PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}


def _frame_array(frame: Image.Image) -> tuple[np.ndarray, int, bool, np.ndarray | None]:
    """Pixels of one Pillow frame, its bit depth, whether it is colour, and its alpha channel
    (uint8) when it has one that is not fully opaque (else None: alpha is no pixel value)."""
    mode, alpha = frame.mode, None
    if mode in ("LA", "PA") or (mode == "P" and "transparency" in frame.info):
        frame = frame.convert("RGBA")
        mode = frame.mode
    if mode == "RGBA":
        alpha = np.asarray(frame.getchannel("A"))
        alpha = None if bool((alpha == 255).all()) else alpha.copy()
    if mode == "P":
        frame, mode = frame.convert("RGB"), "RGB"
    if mode in ("RGBA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        frame, mode = frame.convert("RGB"), "RGB"
    arr = np.asarray(frame)
    if mode == "RGB":
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            return arr[..., 0], 8, False, alpha
        return arr, 8, True, alpha
    if mode == "1":
        return arr.astype(np.uint8), 1, False, None
    if mode == "L":
        return arr, 8, False, None
    if mode.startswith("I;16"):
        return arr.astype(np.uint16), 16, False, None
    if mode == "I":
        return arr, 16 if arr.min() >= 0 and arr.max() <= 65535 else 32, False, None
    if mode == "F":
        return arr.astype(np.float32), 32, False, None
    raise UnsupportedImage(f"unsupported Pillow image mode {mode!r}")


def _tiff_pages(path: Path) -> list[tuple[np.ndarray, int, bool, None]]:
    """The pages of a TIFF read by tifffile (samples Pillow has no mode for), as `_frame_array`
    gives them: grey values as stored (floats as float32), 8-bit RGB(A) as colour (no alpha)."""
    import tifffile

    arr = np.asarray(tifffile.imread(path))
    rgb = arr.ndim >= 3 and arr.shape[-1] in (3, 4) and arr.dtype == np.uint8
    if rgb:
        pages = [p[..., :3] for p in (arr if arr.ndim == 4 else arr[None])]
    else:
        pages = list(arr if arr.ndim == 3 else arr[None])
    if arr.ndim < 2 or (arr.ndim > 3 and not rgb) or arr.dtype.kind not in "uif":
        raise UnsupportedImage(f"TIFF of shape {arr.shape} and sample type {arr.dtype}: medq "
                               "reads grey (integer or float) and 8-bit colour TIFF")
    bits = 32 if arr.dtype.kind == "f" else 8 * arr.dtype.itemsize
    return [(p.astype(np.float32) if arr.dtype.kind == "f" else p, bits, rgb, None)
            for p in pages]


def read_raster(path: str | Path, fmt: str) -> MedImage:
    """Read a PNG/JPEG/TIFF file: raw grey values, or RGB in [0, 1] as modality 'OP'."""
    path = Path(path)
    try:
        try:
            with Image.open(path) as img:
                info = dict(img.info)
                frames = []
                for i in range(getattr(img, "n_frames", 1)):
                    img.seek(i)
                    img.load()
                    frames.append(_frame_array(img))
        except Exception:
            if fmt != "tiff":
                raise
            info, frames = {}, _tiff_pages(path)  # e.g. float64 samples
    except MedqError as e:
        raise type(e)(e.reason, path) from e
    except Exception as e:
        raise UnreadableImage(f"not a readable {fmt.upper()} image ({type(e).__name__}: {e})",
                              path) from e
    bits, rgb, alpha = frames[0][1:]
    if len(frames) > 1:
        if rgb or any(f[2] for f in frames) or len({f[0].shape for f in frames}) > 1:
            raise UnsupportedImage("multi-page TIFF with colour or unequal pages", path)
        arr = np.stack([f[0] for f in frames]).astype(np.float32)
    else:
        arr = frames[0][0].astype(np.float32)
    meta: dict[str, Any] = {"format": fmt, "bit_depth": bits, "spacing_assumed": True}
    if alpha is not None and len(frames) == 1:
        meta["alpha"] = alpha
    if bits <= 16:
        meta["value_range"] = [0, 2**bits - 1]
    if rgb:
        arr = arr / 255.0
        meta["value_range"] = [0, 255]
    if fmt == "jpeg" or info.get("compression") in ("jpeg", "tiff_jpeg"):  # JPEG, also in a TIFF,
        # is lossy by design: stored bytes against the decoded ones
        decoded = arr.size * bits / 8
        meta["lossy_compression"] = {"stated_by": "file format", "ratio": round(
            decoded / max(path.stat().st_size, 1), 2), "method": "ISO_10918_1",
            "transfer_syntax": None}
    rescale = str(info.get("medq_rescale", "")).split()
    if fmt == "jpeg" and not rgb:  # no text chunk in a JPEG: the sidecar holds medq's map
        rescale = _sidecar_rescale(path)
    if len(rescale) == 2 and not rgb:
        slope, icpt = float(rescale[0]), float(rescale[1])
        arr = arr * np.float32(slope) + np.float32(icpt)
        meta["rescale"] = [slope, icpt]
    if rgb:  # a colour picture states no modality: medq reads it as a fundus photograph
        meta["modality_from"] = COLOUR
    return MedImage(arr, (), "OP" if rgb else "OT", "unknown", {}, str(path), meta)


def _grey_storage(image: MedImage, fmt: str) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Integer pixels for a grey image and the (slope, intercept) map used, if any."""
    arr = image.array
    lo, hi = float(arr.min()), float(arr.max())
    # the source's depth; without one (an array, a volume's plane) what the values need
    fits_8 = lo >= -0.5 and hi <= 255.49 and whole_numbers(arr)
    depth = image.meta.get("bit_depth") or image.meta.get("bits_stored") or (8 if fits_8 else 16)
    bits = 16 if depth > 8 and fmt != "jpeg" else 8
    top = 2**bits - 1
    dtype = np.uint16 if bits == 16 else np.uint8
    # as they are when rounding them costs little: whole numbers, or a range of 64 levels or
    # more (fractions in 0–1 would round to 0 and 1: they are mapped onto the levels)
    raw = whole_numbers(arr) or hi - lo >= 64
    if raw and lo >= -0.5 and hi <= top + 0.49:
        return np.clip(np.round(arr), 0, top).astype(dtype), None
    slope = (hi - lo) / top if hi > lo else 1.0
    stored = np.clip(np.round((arr.astype(np.float64) - lo) / slope), 0, top).astype(dtype)
    return stored, (slope, lo)


def _sidecar_rescale(path: Path) -> list[str]:
    """The (slope, intercept) map a medq sidecar states for a grey JPEG, as text ([] if none)."""
    from medq.io.sidecar import read_sidecar

    found = read_sidecar(path).get("Rescale")
    if isinstance(found, list) and len(found) == 2 and all(
            isinstance(v, (int, float)) for v in found):
        return [str(v) for v in found]
    return []


def write_raster(image: MedImage, path: str | Path, *, description: str | None = None
                 ) -> tuple[Path, dict[str, Any]]:
    """Write a PNG/JPEG (2D) or TIFF (2D or multi-page 3D) image, atomically; the path and what
    its sidecar must add (a grey JPEG's value map, `Rescale`, which a PNG keeps in the file)."""
    path = Path(path)
    fmt = RASTER_FORMATS[path.suffix.lower()]  # a volume as PNG/JPEG: `io.check_writable`
    kwargs: dict[str, Any] = {"format": _PIL_NAMES[fmt]}
    if fmt == "jpeg":
        kwargs["quality"] = 95
    alpha = kept_alpha(image, fmt)
    if image.is_rgb:
        pages = [Image.fromarray(rgb_bytes(image.array))]
    else:
        lo, hi = float(image.array.min()), float(image.array.max())
        depth = image.meta.get("bit_depth")
        if fmt == "tiff" and depth in (8, 16):  # an 8/16-bit TIFF or PNG read in stays one:
            top = 2**depth - 1  # rounded, and clipped to its range (a restoration's undershoot)
            stored = np.clip(np.round(image.array), 0, top).astype(f"uint{depth}")
            rescale = None
        elif fmt == "tiff" and not (whole_numbers(image.array) and lo >= 0 and hi <= 65535):
            stored, rescale = image.array.astype(np.float32), None
        else:
            stored, rescale = _grey_storage(image, fmt)
        planes = list(stored) if image.is_volume else [stored]
        pages = [Image.fromarray(p) for p in planes]
        if fmt == "png":
            pnginfo = PngImagePlugin.PngInfo()
            if rescale is not None:
                pnginfo.add_text("medq_rescale", f"{rescale[0]!r} {rescale[1]!r}")
            if description:
                pnginfo.add_text("Description", description)
            kwargs["pnginfo"] = pnginfo
    if alpha is not None:
        pages = [with_alpha(pages[0], alpha)]
    if len(pages) > 1:
        kwargs.update(save_all=True, append_images=pages[1:])
    with atomic_path(path) as tmp:
        pages[0].save(tmp, **kwargs)
    if fmt == "jpeg" and not image.is_rgb:  # None clears a map an earlier file left there
        return path, {"Rescale": list(rescale) if rescale else None}
    return path, {}


ALPHA_FORMATS = ("png", "tiff")
"""Raster formats that keep a picture's alpha channel (`meta['alpha']`); JPEG has none."""


def kept_alpha(image: MedImage, fmt: str) -> np.ndarray | None:
    """The alpha channel `write_raster` writes back: the one reading set aside, for a PNG or
    TIFF of the same in-plane shape (a resampled or cropped image has no alpha to match)."""
    alpha = image.meta.get("alpha")
    if alpha is None or fmt not in ALPHA_FORMATS or image.is_volume:
        return None
    alpha = np.asarray(alpha)
    plane = image.shape[:2] if image.is_rgb else image.shape
    return alpha.astype(np.uint8) if alpha.shape == tuple(plane) else None


def with_alpha(page: Image.Image, alpha: np.ndarray) -> Image.Image:
    """A colour or 8-bit grey page with `alpha` as its alpha channel (RGBA / LA); a deeper
    grey page, which no common mode pairs with alpha, as it is."""
    if page.mode not in ("RGB", "L"):
        return page
    out = page.convert("RGBA" if page.mode == "RGB" else "LA")
    out.putalpha(Image.fromarray(alpha))
    return out


def read_npy(path: str | Path) -> MedImage:
    """Read a 2D/3D real-valued `.npy` array (no pickles); spacing is 1 mm (not stored in .npy)."""
    path = Path(path)
    with open(path, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":  # np.load reads anything else as a pickle
            raise UnreadableImage("not a .npy array (no NumPy header)", path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:
        raise UnreadableImage(f"not a readable .npy array ({type(e).__name__}: {e})", path) from e
    if not isinstance(arr, np.ndarray):
        raise UnsupportedImage(f".npy file holds {type(arr).__name__}, not an array", path)
    try:
        return from_array(arr, source=str(path), meta={"format": "npy"})
    except MedqError as e:
        raise type(e)(e.reason, path) from e  # the path says .npy


def write_npy(image: MedImage, path: str | Path) -> Path:
    """Write the float32 array as `.npy` (array only: spacing and metadata are not kept); a
    colour array read as 0–255 or 0–65535 is written on that scale, as `medq.restore` returns
    it (`meta["colour_scale"]`: it was written as MedImage's 0–1)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        np.save(tmp, on_given_scale(image).astype(np.float32), allow_pickle=False)
    return path
