"""How a derived DICOM stores its values (`encode_grey`): as the source file stored them where
they fit (`storage_of`, `encode_as_stored`), else integers with a fitted RescaleSlope/Intercept
(`encode_pixels`; a MONOCHROME1 image within its source's bits, `encode_within`); the source's
pixel padding restated in them, and the source's lossless compression kept (`keep_lossless`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import RLELossless
from pydicom.valuerep import format_number_as_ds

from medq.image import MedImage
from medq.io.arrays import bit_ends, whole_numbers
from medq.io.dicom_tags import as_number, tag_value
from medq.io.polarity import is_inverted, mirror_span

KEPT_SYNTAXES = (str(RLELossless),)
"""Lossless transfer syntaxes a derived file keeps from its source (RLE: pylibjpeg-rle codes it,
pydicom's own encoder where that is missing); a source in any other is written uncompressed (a
lossy one is never coded lossy again)."""


def encode_pixels(arr: np.ndarray, zero_intercept: bool = False
                  ) -> tuple[np.ndarray, float, float]:
    """Integer storage plus (RescaleSlope, RescaleIntercept) reproducing `arr` within half a step.

    Integral data (or data spanning ≥ 1000 units) that fits 16 bits is stored as is (slope 1,
    intercept 0: uint16 when non-negative, else int16); anything else uses the full uint16 range
    with a fitted slope = range / 65535 and intercept = minimum (error ≤ slope / 2), or with
    `zero_intercept` (a PET image, whose IOD requires it) slope = max |value| / 65535 (uint16)
    or / 32767 (int16, for negative values).
    """
    lo, hi = float(arr.min()), float(arr.max())
    if whole_numbers(arr) or hi - lo >= 1000:
        if lo >= -0.5 and hi <= 65535.49:
            return np.clip(np.round(arr), 0, 65535).astype(np.uint16), 1.0, 0.0
        if lo >= -32768.49 and hi <= 32767.49:
            return np.clip(np.round(arr), -32768, 32767).astype(np.int16), 1.0, 0.0
    if zero_intercept:
        signed = lo < 0
        top = 32767.0 if signed else 65535.0
        peak = max(abs(lo), abs(hi))
        slope = float(format_number_as_ds(peak / top)) if peak > 0 else 1.0
        stored = np.clip(np.round(arr.astype(np.float64) / slope), -top - 1 if signed else 0, top)
        return stored.astype(np.int16 if signed else np.uint16), slope, 0.0
    slope = float(format_number_as_ds((hi - lo) / 65535.0)) if hi > lo else 1.0
    icpt = float(format_number_as_ds(lo))
    stored = np.clip(np.round((arr.astype(np.float64) - icpt) / slope), 0, 65535)
    return stored.astype(np.uint16), slope, icpt


def encode_within(arr: np.ndarray, span: tuple[float, float], bits: int
                  ) -> tuple[np.ndarray, float, float]:
    """Unsigned storage in `bits` bits whose whole range maps onto `span` = (lo, hi) through
    (RescaleSlope, RescaleIntercept): a MONOCHROME1 file, shown mirrored within the range its
    bits stored hold (`io.polarity.mirror_span`), is read back mirrored within the same span."""
    lo, hi = span
    top = 2 ** int(bits) - 1
    slope = float(format_number_as_ds((hi - lo) / top)) if hi > lo else 1.0
    icpt = float(format_number_as_ds(lo))
    stored = np.clip(np.round((np.asarray(arr, np.float64) - icpt) / slope), 0, top)
    return stored.astype(np.uint16), slope, icpt


def storage_of(ds: Dataset) -> dict[str, Any]:
    """How a grey DICOM file stores its values, for a derived file to store them alike:
    `bits_allocated`, `pixel_representation` and `stored_rescale` (RescaleSlope, Intercept;
    None behind a Modality LUT Sequence, which no linear map restates)."""
    slope = as_number(tag_value(ds, "RescaleSlope"))
    icpt = as_number(tag_value(ds, "RescaleIntercept"))
    linear = not ds.get("ModalityLUTSequence") and slope != 0
    return {"bits_allocated": int(ds.get("BitsAllocated") or 16),
            "pixel_representation": int(ds.get("PixelRepresentation") or 0),
            "stored_rescale": [1.0 if slope is None else slope, icpt or 0.0] if linear else None}


ENCODE_CHUNK = 1 << 22
"""Values `encode_as_stored` maps at a time (its float64 work stays about 100 MB, whatever the
volume)."""


def encode_as_stored(arr: np.ndarray, meta: dict[str, Any], zero_intercept: bool = False
                     ) -> tuple[np.ndarray, float, float] | None:
    """`arr` in the storage of the DICOM file it was read from (`storage_of` and `bits_stored`
    in `meta`): its bits allocated and stored, sign and value map, when its values lie on that
    map's steps (as `arrays.whole_numbers` tells them; or span at least 1000 of them, then
    rounded to them as `encode_pixels` rounds) within what the bits hold; None when they do not,
    or the source's storage is unknown, not 8 or 16 bits, or (`zero_intercept`, a PET image)
    has an intercept. Mapped `ENCODE_CHUNK` values at a time."""
    allocated, bits = meta.get("bits_allocated"), int(meta.get("bits_stored") or 0)
    rescale, signed = meta.get("stored_rescale"), bool(meta.get("pixel_representation"))
    flat = np.asarray(arr).reshape(-1)
    if allocated not in (8, 16) or not 1 <= bits <= allocated or not rescale or (
            zero_intercept and rescale[1]) or not flat.size:
        return None
    slope, icpt = (float(v) for v in rescale)
    low, high = bit_ends(bits, signed)
    stored = np.empty(flat.size, f"{'i' if signed else 'u'}{allocated // 8}")
    near, least, most = True, np.inf, -np.inf  # on the steps; the steps' extremes
    for start in range(0, flat.size, ENCODE_CHUNK):
        steps = (flat[start:start + ENCODE_CHUNK].astype(np.float64) - icpt) / slope
        rounded = np.round(steps)
        near = near and bool(np.all(np.abs(steps - rounded) <= 1e-3))
        least, most = min(least, float(steps.min())), max(most, float(steps.max()))
        stored[start:start + ENCODE_CHUNK] = np.clip(rounded, low, high, out=rounded)
    whole = near and (np.round(most) > np.round(least) or most == least)  # whole_numbers'
    if not (whole or most - least >= 1000) or np.round(least) < low or np.round(most) > high:
        return None
    return stored.reshape(np.shape(arr)), slope, icpt


def inverted_bits(image: MedImage) -> int | None:
    """The bits stored of a MONOCHROME1 image read from DICOM (`meta['bit_range']`): its result
    is written in them, mirrored within the same span; None for any other image."""
    if not (is_inverted(image) and image.meta.get("bit_range")):
        return None
    return min(16, max(1, int(image.meta.get("bits_stored") or 16)))


def encode_grey(image: MedImage) -> tuple[np.ndarray, tuple[float, float], int]:
    """A grey image's stored values, (RescaleSlope, RescaleIntercept) and BitsStored: its source
    file's storage where the values fit it (`encode_as_stored`: a 12-bit file stays 12-bit, a
    MONOCHROME1 one is then read back mirrored within the same span); else a MONOCHROME1 image
    within its source's bits over the span it is mirrored within (`encode_within`), any other
    in 16 bits (`encode_pixels`; a PET image's intercept 0)."""
    pet = image.modality == "PT"
    if (kept := encode_as_stored(image.array, image.meta, zero_intercept=pet)) is not None:
        return kept[0], kept[1:], int(image.meta["bits_stored"])
    if bits := inverted_bits(image):  # read back mirrored as it was shown
        stored, slope, icpt = encode_within(image.array, mirror_span(image), bits)
        return stored, (slope, icpt), bits
    stored, slope, icpt = encode_pixels(image.array, zero_intercept=pet)
    return stored, (slope, icpt), 16


def keep_lossless(ds: Dataset, meta: dict[str, Any]) -> None:
    """Compress a derived slice (uncompressed, its file meta set) as its source was where that
    is a lossless syntax medq keeps (`KEPT_SYNTAXES`): RLE Lossless stays RLE Lossless."""
    if meta.get("transfer_syntax") in KEPT_SYNTAXES:  # pydicom tries pylibjpeg-rle first
        ds.compress(meta["transfer_syntax"])


def padding_of(ds: Dataset) -> list[float]:
    """The source's pixel padding (PixelPaddingValue and PixelPaddingRangeLimit) in output
    values (through its RescaleSlope/Intercept); empty when it states none."""
    slope = as_number(ds.get("RescaleSlope")) or 1.0
    icpt = as_number(ds.get("RescaleIntercept")) or 0.0
    return [v * slope + icpt for v in (as_number(ds.get(kw)) for kw in
                                       ("PixelPaddingValue", "PixelPaddingRangeLimit"))
            if v is not None]


def keep_padding(ds: Dataset, padding: list[float], stored: np.ndarray, rescale: tuple
                  ) -> None:
    """State the source's pixel padding again, in the new stored values, where the new storage
    expresses it exactly and the slice's padding is intact: pixels of that value and none near
    it (a restoration leaves padding as it was; noise added to it, as a simulated low dose
    does, leaves a few pixels on the value by chance, which must not be hidden as padding)."""
    if not padding:
        return
    slope, icpt = rescale
    info = np.iinfo(stored.dtype)
    raw = [round((v - icpt) / slope) for v in padding]
    if any(abs(r * slope + icpt - v) > 1e-3 * max(1.0, abs(v)) or not info.min <= r <= info.max
           for r, v in zip(raw, padding, strict=True)):
        return
    values = stored.astype(np.int64)
    exact = values == raw[0]
    near = np.abs(values - raw[0]) <= max(1, 0.01 * int(values.max() - values.min()))
    if not exact.any() or (near & ~exact).any():
        return
    vr = "SS" if stored.dtype.kind == "i" else "US"
    ds.add_new("PixelPaddingValue", vr, int(raw[0]))
    if len(raw) > 1:
        ds.add_new("PixelPaddingRangeLimit", vr, int(raw[1]))
