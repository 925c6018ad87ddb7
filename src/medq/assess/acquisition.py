"""What an image's DICOM header states of its acquisition, as the acquisition head reads it.

A quality model trained with `medq train --tagged` (`medq.train.acquisition`) has an acquisition
head that estimates, from the pixels, the targets below: the CT tube current–time product and
CTDIvol, a radiograph's exposure and the MR field strength, each as `log2(value / reference)`
(one unit is a doubling; the reference is 0). `medq assess` with such a model reports, per target
of the image's modality, the head's estimate beside what the header states: an image that looks
like a quarter of its stated dose is worth a look.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from medq.image import MedImage

PLAUSIBLE = {"exposure_mAs": (0.01, 5000.0), "ctdi_vol": (0.01, 500.0),
             "field_strength_T": (0.01, 12.0)}
"""The range of values a header may state; outside it (a field strength in gauss, a mistyped
exposure) the value is not taken (`implausible`)."""

TARGETS: dict[str, tuple[frozenset[str], str, float]] = {
    "ct_exposure": (frozenset({"CT"}), "exposure_mAs", 100.0),
    "ct_ctdi_vol": (frozenset({"CT"}), "ctdi_vol", 10.0),
    "xr_exposure": (frozenset({"CR", "DX"}), "exposure_mAs", 5.0),
    "mr_field": (frozenset({"MR"}), "field_strength_T", 1.5),
}
"""Target → (modalities, `MedImage.physics` key, reference value: the target is 0 there)."""

STATED = ("a CT or radiograph exposure (mAs: Exposure, or XRayTubeCurrent with ExposureTime), "
          "a CTDIvol or an MR field strength (MagneticFieldStrength or ImagingFrequency)")
"""What a header must state to be a training item, in its DICOM keywords."""

PROTON_MHZ_PER_T = 42.577
"""The proton's gyromagnetic ratio / 2π: an MR imaging frequency over it is the field (T)."""


def _positive(value: Any) -> float | None:
    """`value` as a float when it is a finite positive number (0 means not recorded)."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    return float(value) if ok else None


def _plausible(key: str, value: float | None) -> bool:
    """Whether `value` of physics `key` lies within `PLAUSIBLE`."""
    low, high = PLAUSIBLE[key]
    return value is not None and low <= value <= high


def stated(image: MedImage, key: str) -> float | None:
    """The value of physics `key` the header states, positive and within `PLAUSIBLE` (an MR
    field strength also from its imaging frequency), else None."""
    value = _positive(image.physics.get(key))
    if value is None and key == "field_strength_T":
        mhz = _positive(image.physics.get("imaging_frequency_MHz"))
        value = None if mhz is None else mhz / PROTON_MHZ_PER_T
    return value if _plausible(key, value) else None


def implausible(image: MedImage) -> list[str]:
    """`key=value` of each target value the header states outside `PLAUSIBLE` (not taken)."""
    found = []
    for modalities, key, _ in TARGETS.values():
        value = _positive(image.physics.get(key))
        if image.modality in modalities and value is not None and not _plausible(key, value):
            found.append(f"{key}={value:g}")
    return found


def targets(image: MedImage) -> tuple[np.ndarray, np.ndarray]:
    """(`log2(value / reference)` per target, whether the header states it) for one image."""
    values = np.zeros(len(TARGETS), np.float32)
    known = np.zeros(len(TARGETS), bool)
    for k, (modalities, key, reference) in enumerate(TARGETS.values()):
        value = stated(image, key) if image.modality in modalities else None
        if value is not None:
            values[k], known[k] = math.log2(value / reference), True
    return values, known


UNITS = {"exposure_mAs": "mAs", "ctdi_vol": "mGy", "field_strength_T": "T"}
"""The unit of each physics key a target reads."""

LABELS = {"ct_exposure": "exposure", "ct_ctdi_vol": "CTDIvol", "xr_exposure": "exposure",
          "mr_field": "field strength"}
"""How a sentence names each target."""


def report(image: MedImage, estimate: Any, trained: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Per `trained` target (those the head learnt: its run's tagged images stated them) of the
    image's modality: the head's `estimate` (log2 units) as a value in the target's unit, beside
    the header's (None when it does not state it)."""
    found: dict[str, dict[str, Any]] = {}
    for k, (name, (modalities, key, reference)) in enumerate(TARGETS.items()):
        if name in trained and image.modality in modalities:
            value = reference * 2.0 ** float(estimate[k])
            found[name] = {"estimated": round(value, 3 if value < 10 else 1),
                           "stated": stated(image, key), "unit": UNITS[key]}
    return found
