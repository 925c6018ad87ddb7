"""What an image's values say when its file does not: values in Hounsfield units mean CT.

NIfTI, NumPy and TIFF files carry no modality. A CT stored in them usually keeps its Hounsfield
units, and those betray it: air and lung lie below −500 HU, where magnitude images (MR, PET,
radiographs, photographs) never go. `load` therefore reads a file that does not state its
modality, whose values hold air next to soft tissue, as CT (recorded in `meta["modality_from"]`;
`--modality` still decides). A CT stored as HU + 1024 or exported to 8-bit keeps no units and
stays `OT`.
"""

from __future__ import annotations

import numpy as np

from medq.image import MedImage

HU_AIR = -500.0
"""Air and lung lie below this in Hounsfield units (air −1000; a scanner's calibration drifts: a
bundled CT holds its air at −830)."""

HU_AIR_SHARE = 0.02
"""Share of the values below `HU_AIR` from which an image is taken to be in Hounsfield units."""

SOFT_TISSUE_P99 = -100.0
"""The 99th percentile must reach soft tissue (fat is about −100 HU): not an image of air."""

HU_FLOOR, HU_CEILING = -4096.0, 40_000.0
"""No CT value lies beyond these (padding −3024 … −2000; dense metal on an extended scale tens of
thousands): an image whose 1st/99th percentiles do is not in Hounsfield units (CT × 1e30)."""

MAX_VALUES = 262_144
"""Values read at most (a larger image, a volume, is sampled on an even stride)."""

INFERRED = "hounsfield units"
"""`meta["modality_from"]` of an image whose modality was read from its values."""
COLOUR = "colour"
"""`meta["modality_from"]` of a colour picture whose file states no modality (read as OP)."""
GUESSED = "prompt classifier"
"""`meta["modality_from"]` of a grey image whose modality medq's prompt classifier was sure of
(`medq.assess.guess`; set when assessing, never by `load`)."""


def in_hounsfield_units(array: np.ndarray) -> bool:
    """Whether a grey image's values are Hounsfield units: at least `HU_AIR_SHARE` of them below
    `HU_AIR`, a 99th percentile at soft tissue or above, and 1st/99th percentiles within
    `HU_FLOOR` … `HU_CEILING`."""
    flat = np.asarray(array).reshape(-1)
    flat = flat[:: max(1, flat.size // MAX_VALUES)].astype(np.float64)
    flat = flat[np.isfinite(flat)]
    if not flat.size:
        return False
    low, high = np.percentile(flat, [1, 99])
    return bool(np.mean(flat < HU_AIR) >= HU_AIR_SHARE and high >= SOFT_TISSUE_P99
                and low >= HU_FLOOR and high <= HU_CEILING)


def infer_modality(image: MedImage) -> MedImage:
    """The image as CT when it does not state a modality (`OT`) and its values are Hounsfield
    units; else the image itself."""
    if image.modality != "OT" or image.is_rgb or not in_hounsfield_units(image.array):
        return image
    return image.evolve(modality="CT", meta={**image.meta, "modality_from": INFERRED})
