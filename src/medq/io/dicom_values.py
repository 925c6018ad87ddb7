"""How a derived DICOM stores its values: integers with a fitted RescaleSlope/Intercept
(`encode_pixels`), and the source's pixel padding restated in them."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.valuerep import format_number_as_ds

from medq.io.arrays import whole_numbers
from medq.io.dicom_tags import as_number


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
    vr = "SS" if stored.dtype == np.int16 else "US"
    ds.add_new("PixelPaddingValue", vr, int(raw[0]))
    if len(raw) > 1:
        ds.add_new("PixelPaddingRangeLimit", vr, int(raw[1]))
