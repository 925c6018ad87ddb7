"""Display polarity (a MONOCHROME1 image as it is meant to be seen), and the values a result
goes back to before it is stored.

DICOM's MONOCHROME1 (common for CR/DX radiographs) shows the minimum value white: bone, which
attenuates most, is stored low and displayed bright. `medq.io.load` keeps the stored values
(physical, and written back unchanged) and the photometric interpretation in
`meta['photometric']`. Everything that judges appearance — the assessment's model input,
evidence rows and classical measures, the description, the restoration network, thumbnails —
reads the image through `as_displayed`, so a radiograph looks the same to medq whichever way
its file stores it; what is computed on the shown values goes back through `as_stored`.
"""

from __future__ import annotations

import numpy as np

from medq.image import MedImage
from medq.io.arrays import bit_ends, whole_numbers

INVERTED = "MONOCHROME1"
"""The photometric interpretation whose minimum value is displayed white."""


def is_inverted(image: MedImage) -> bool:
    """Whether a grey image is stored MONOCHROME1 (`meta['photometric']`)."""
    return not image.is_rgb and str(image.meta.get("photometric") or "").upper() == INVERTED


def value_range(array: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values (0, 0 when none)."""
    finite = np.asarray(array)[np.isfinite(array)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def mirrored(array: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """`lo + hi − array` (float32): values mirrored within `span` = (lo, hi); its own inverse
    (up to float32 rounding)."""
    lo, hi = span
    return (np.float64(lo) + np.float64(hi) - np.asarray(array, dtype=np.float64)
            ).astype(np.float32)


def mirror_span(image: MedImage) -> tuple[float, float]:
    """The span a MONOCHROME1 image is mirrored within: the values its file's bit depth can
    hold (`meta['bit_range']`, through its rescale), widened to its own values where they go
    beyond; its own (min, max) when no bit range is known (an image not read from DICOM).
    Mirrored within its own values, a radiograph that does not fill its range (stored 956–4034
    of 12 bits) was shown lifted off black (956 + 4034 − v), read as low contrast and scored
    2.25 against 4.50 for its MONOCHROME2 twin."""
    lo, hi = value_range(image.array)
    stated = image.meta.get("bit_range")
    if stated and len(stated) == 2:
        return min(lo, float(stated[0])), max(hi, float(stated[1]))
    return lo, hi


def as_displayed(image: MedImage) -> MedImage:
    """The image with its values mirrored within `mirror_span` when it is stored MONOCHROME1
    (then `meta['photometric']` is MONOCHROME2 and `meta['stored_photometric']` MONOCHROME1);
    any other image itself."""
    if not is_inverted(image):
        return image
    meta = dict(image.meta, photometric="MONOCHROME2", stored_photometric=INVERTED)
    return image.evolve(array=mirrored(image.array, mirror_span(image)), meta=meta)


def as_stored(array: np.ndarray, image: MedImage) -> np.ndarray:
    """Values computed on `as_displayed(image)` (a restoration) in the polarity `image` is stored
    in: mirrored back within `mirror_span` when it is MONOCHROME1, else `array` itself."""
    return mirrored(array, mirror_span(image)) if is_inverted(image) else array


def _dicom_bits(image: MedImage) -> tuple[float, float] | None:
    """What a one-plane grey DICOM file's bits stored hold through its rescale
    (`dicom_values.storage_of` in meta), in its units, widened to the values it holds (a JPEG
    2000 codestream may hold more bits than the header states); None for any other image, for
    float pixel data (over 16 bits allocated) and for a volume, whose slices may each have their
    own rescale."""
    bits, rescale = image.meta.get("bits_stored"), image.meta.get("stored_rescale")
    if image.is_volume or image.is_rgb or not bits or not rescale \
            or image.meta.get("bits_allocated") not in (8, 16):
        return None
    low, high = bit_ends(int(bits), bool(image.meta.get("pixel_representation")))
    ends = sorted(v * float(rescale[0]) + float(rescale[1]) for v in (low, high))
    a = np.asarray(image.array)
    return min(ends[0], float(a.min())), max(ends[1], float(a.max()))


def storable_range(image: MedImage) -> tuple[float, float] | None:
    """The values the file of a grey `image` can hold, in its units: `meta['value_range']` (a
    PNG's or TIFF's bit depth, an integer NIfTI's type) through the file's own value map
    (`meta['rescale']`: slope, intercept), a MONOCHROME1 file's `mirror_span` (a restored
    12-bit radiograph held 4099, beyond the range it is mirrored within), or what a one-plane
    DICOM's bits stored hold (`_dicom_bits`: a 12-bit radiograph made noisy went below 0 and was
    written signed in 16 bits); None when the file holds any value (floats)."""
    if image.meta.get("bit_range") and not image.is_rgb:
        return mirror_span(image)
    if (bits := _dicom_bits(image)) is not None:
        return bits
    span = image.meta.get("value_range")
    if image.is_rgb or not span or len(span) != 2:
        return None
    slope, icpt = image.meta.get("rescale") or (1.0, 0.0)
    ends = sorted(float(v) * float(slope) + float(icpt) for v in span)
    return ends[0], ends[1]


CT_FLOOR_HU = -1024.0
"""The lowest value a CT result may take where its input went no lower: the usual floor of CT
numbers (air is −1000 HU); a network's undershoot in the air reached −1049."""


def physical_floor(array: np.ndarray, image: MedImage) -> np.ndarray:
    """`array` (a result computed from `image`, in its stored values) clipped at the lowest
    value `image`'s quantity can take: 0 when `image` has no negative value (a PET's activity,
    an MR magnitude or a photograph's intensity stays physical after a denoiser's undershoot);
    for CT, −1024 HU or the input's own lowest value (its padding) where that is lower;
    anything else unchanged."""
    if image.is_rgb:
        return array
    lowest = value_range(image.array)[0]
    if lowest >= 0:
        return np.maximum(array, 0, dtype=np.asarray(array).dtype)
    if image.modality == "CT":
        return np.maximum(array, min(lowest, CT_FLOOR_HU), dtype=np.asarray(array).dtype)
    return array


def within_storable(array: np.ndarray, image: MedImage) -> np.ndarray:
    """`array` (a result computed from `image`, in its stored values) as its file can hold it:
    clipped to `storable_range` (a restored 8-bit PNG that dips below 0 is clipped at 0, not
    stretched by a value map onto 0–255), and rounded when the file stores integers
    (`integer_storage`), so the writer keeps their type."""
    span = storable_range(image)
    if span is None:
        return array
    out = np.clip(array, *span)
    if np.dtype(image.meta.get("stored_dtype") or "float32").kind in "iu":
        out = np.round(out)
    return out.astype(np.asarray(array).dtype)


def integer_storage(dtype: np.dtype) -> dict:
    """The meta of pixels a file stores as integers of `dtype` (with no value map): their type
    (`stored_dtype`, written back by `in_stored_type`) and range (`value_range`); {} for
    floats."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        return {}
    info = np.iinfo(dtype)
    return {"stored_dtype": dtype.name, "value_range": [int(info.min), int(info.max)]}


def in_stored_type(array: np.ndarray, image: MedImage) -> np.ndarray:
    """A grey image's pixels for its writer: in the integer type its file stored
    (`meta['stored_dtype']`, `integer_storage`) when they are whole numbers within its range, as
    a restoration leaves them (`within_storable`); float32 otherwise (a degradation's values,
    a pixel that is not a number, a file of floats), so nothing is rounded or cut off."""
    name = image.meta.get("stored_dtype")
    values = np.asarray(array)
    floats = values.astype(np.float32, copy=False)
    if not name or image.is_rgb or np.dtype(name).kind not in "iu" or not np.isfinite(
            values).all():
        return floats
    info = np.iinfo(np.dtype(name))
    if values.size and (values.min() < info.min or values.max() > info.max
                        or not whole_numbers(values)):
        return floats
    return np.round(values).astype(name)


MAP_TOLERANCE = 0.05
"""How far (in steps of its value map) a value may lie from the map's grid and still be written
in the map it was read with (float32 holds k · slope to about 2e-3 steps at k = 32767; values
a restoration changed lie anywhere between the steps)."""


def on_value_map(image: MedImage) -> tuple[np.ndarray, float, float] | None:
    """The stored integers, slope and intercept of a volume read from 8- or 16-bit voxels with a
    fractional value map (`meta['value_map']`) whose values all still lie on that map (as read,
    or handed back unchanged); None otherwise (it is written as float32)."""
    found = image.meta.get("value_map")
    if not found or image.is_rgb:
        return None
    values = np.asarray(image.array, dtype=np.float64)
    if not np.isfinite(values).all():
        return None
    name, slope, inter = found[0], float(found[1]), float(found[2])
    steps = (values - inter) / slope
    whole = np.round(steps)
    info = np.iinfo(np.dtype(name))
    if not whole.size or np.abs(steps - whole).max() > MAP_TOLERANCE or whole.min() < info.min \
            or whole.max() > info.max:
        return None
    return whole.astype(name), slope, inter
