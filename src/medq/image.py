"""MedImage: the one data model every stage passes on (see DESIGN.md)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from medq.errors import InvalidImage, InvalidParameter

MODALITIES = ("CT", "MR", "PT", "CR", "DX", "US", "OP", "OT")
"""DICOM modality codes medq knows; OT (other) when the source does not say."""

REGIONS = (
    "head", "brain", "chest", "abdomen", "pelvis", "spine", "extremity", "knee", "breast",
    "retina", "unknown",
)
"""Anatomical regions, coarse on purpose: they feed the region prompt."""

PHOTO_MODALITIES = ("OP",)
"""Modalities whose images may be RGB `(y, x, 3)`."""

GRADED_MODALITIES = ("CT", "MR", "PT", "CR", "DX", "OP")
"""Modalities a user may name for `medq assess`, `describe` and `restore` (the ones medq grades)."""


MODALITY_ALIASES = {"XR": "DX", "PET": "PT", "MRI": "MR"}
"""Names a user may give for a modality, as medq's tables and docs say them (a radiograph is
XR in the prompts, PET is PT in DICOM)."""


def modality_code(modality: str) -> str:
    """A modality as a user writes it, upper-cased, an alias (`MODALITY_ALIASES`: XR, PET, MRI)
    as its DICOM code."""
    code = str(modality).strip().upper()
    return MODALITY_ALIASES.get(code, code)


def graded_modality(modality: str | None) -> str | None:
    """A modality a user named for grading (`modality_code`; None stays None); InvalidParameter
    for one medq does not grade."""
    if modality is None:
        return None
    code = modality_code(modality)
    if code not in GRADED_MODALITIES:
        raise InvalidParameter(f"{modality!r} is not a modality medq grades; use one of "
                               f"{', '.join(GRADED_MODALITIES)}")
    return code


PLAUSIBLE_SPACING_MM = (1e-4, 1e4)
"""Pixel sizes a file may state: 0.1 µm to 10 m."""


def plausible_spacing(spacing: Sequence[float]) -> bool:
    """Whether every pixel size a file states is a finite length within `PLAUSIBLE_SPACING_MM`
    (else its reader takes 1 mm, marked assumed)."""
    low, high = PLAUSIBLE_SPACING_MM
    slack = 1e-6  # a bound given in float32 (1e-4 reads 9.99999975e-05) is still within
    return all(np.isfinite(s) and low * (1 - slack) <= s <= high * (1 + slack) for s in spacing)


def as_float32(arr: np.ndarray, source: str | None) -> np.ndarray:
    """`arr` as float32; InvalidImage when finite values lie beyond float32's range (±3.4e38) or
    every non-zero one below its normal numbers (±1.2e-38: they would compute as zeros)."""
    if arr.dtype.kind not in "biuf":  # text, objects, complex: no pixel values
        raise InvalidImage(f"pixels must be real numbers, got {arr.dtype} values", source)
    with np.errstate(over="ignore", under="ignore"):
        out = arr.astype(np.float32)
    wide = arr.dtype.kind == "f" and arr.dtype.itemsize > 4
    if not wide:
        return out
    if np.isinf(out).any() and np.any(np.isinf(out) & np.isfinite(arr)):  # overflow only
        top = float(np.abs(arr[np.isfinite(arr)]).max())
        raise InvalidImage(f"pixel values up to {top:.3g} exceed the range medq computes in "
                           f"(±{np.finfo(np.float32).max:.3g}): rescale the image", source)
    tiny = float(np.finfo(np.float32).tiny)
    if out.size and not (out.max() >= tiny or out.min() <= -tiny):  # zero, NaN or subnormal
        finite = np.abs(arr[np.isfinite(arr)])
        top = float(finite.max()) if finite.size else 0.0
        if 0.0 < top < tiny:
            raise InvalidImage(f"pixel values of at most {top:.3g} are too small for the range "
                               f"medq computes in (float32, from ±{tiny:.3g}): "
                               "rescale the image", source)
    return out


@dataclass(frozen=True, eq=False)
class MedImage:
    """An image in physical units with its geometry, modality, region and acquisition physics.

    `array` is float32, `(y, x)` or `(z, y, x)`, or `(y, x, 3)` for photographs; `spacing` is in mm
    in the same axis order (spatial axes only). Never mutated in place: use `with_array`/`evolve`.
    """

    array: np.ndarray
    spacing: tuple[float, ...] = ()
    modality: str = "OT"
    region: str = "unknown"
    physics: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.dtype != np.float32:
            arr = as_float32(arr, self.source)
        modality = modality_code(self.modality)  # "ct", "MRI", "PET" as CT, MR, PT
        if modality not in MODALITIES:
            raise InvalidParameter(
                f"unknown modality {self.modality!r}; expected one of {MODALITIES} (or "
                f"{', '.join(MODALITY_ALIASES)})")
        region = str(self.region).lower()
        if region not in REGIONS:
            raise InvalidParameter(f"unknown region {self.region!r}; expected one of {REGIONS}")
        rgb = arr.ndim == 3 and arr.shape[-1] == 3 and modality in PHOTO_MODALITIES
        spatial = arr.ndim - 1 if rgb else arr.ndim
        if spatial not in (2, 3) or min(arr.shape) == 0:
            raise InvalidImage(f"image must be 2D or 3D with no empty axis, got shape {arr.shape}",
                               self.source)
        try:
            spacing = (tuple(float(s) for s in self.spacing) if self.spacing
                       else (1.0,) * spatial)
        except (TypeError, ValueError):
            raise InvalidParameter(f"spacing must be numbers (mm), got {self.spacing!r}",
                                   self.source) from None
        if not all(np.isfinite(s) and s > 0 for s in spacing):
            raise InvalidParameter(f"spacing must be positive and finite (mm), got {spacing}",
                                   self.source)
        if len(spacing) != spatial:
            if arr.ndim == 3 and arr.shape[-1] == 3 and len(spacing) == 2:  # RGB named grey
                raise InvalidParameter(f"{modality} image named for a colour picture of shape "
                                       f"{arr.shape}: only a photograph (OP) is colour",
                                       self.source)
            raise InvalidParameter(f"spacing {spacing} does not fit shape {arr.shape}",
                                   self.source)
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "modality", modality)
        object.__setattr__(self, "region", region)
        object.__setattr__(self, "spacing", spacing)

    @property
    def is_rgb(self) -> bool:
        """True for colour photographs `(y, x, 3)`."""
        arr = self.array
        return self.modality in PHOTO_MODALITIES and arr.ndim == 3 and arr.shape[-1] == 3

    @property
    def is_volume(self) -> bool:
        """True for 3D volumes `(z, y, x)`."""
        return self.array.ndim == 3 and not self.is_rgb

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the pixel array."""
        return tuple(self.array.shape)

    @property
    def spacing_assumed(self) -> bool:
        """Whether the in-plane pixel size is medq's 1 mm because the file states none it can use
        (a raster file, an array, a DICOM or NIfTI whose stated spacing is missing or not
        plausible: `plausible_spacing`); a slice spacing medq assumed is the meta's
        `z_spacing_source` "assumed"."""
        return bool(self.meta.get("spacing_assumed"))

    def evolve(self, **changes: Any) -> MedImage:
        """Return a copy with some fields replaced (meta and physics are copied, never shared)."""
        changes.setdefault("meta", copy.deepcopy(self.meta))
        changes.setdefault("physics", dict(self.physics))
        return replace(self, **changes)

    def with_array(self, array: np.ndarray, step: dict[str, Any] | None = None,
                   **changes: Any) -> MedImage:
        """Return a new image holding `array`; `step` joins `meta['history']` as provenance."""
        meta = copy.deepcopy(self.meta)
        if step is not None:
            meta.setdefault("history", []).append(step)
        return self.evolve(array=array, meta=meta, **changes)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description: modality, region, shape, spacing, physics, source, the
        Modality a DICOM file states when medq reads it as another (`stated_modality`: a colour
        ultrasound is read as a photograph, a nuclear medicine image as OT), `spacing_assumed`
        when the file states no usable pixel size, and a DICOM series' uneven spacing
        (`slice_gaps`) when it has one."""
        out = {
            "path": self.source,
            "modality": self.modality,
            "region": self.region,
            "shape": list(self.shape),
            "spacing": [round(s, 6) for s in self.spacing],
            "physics": dict(self.physics),
        }
        stated = str(self.meta.get("dicom_modality") or "").upper()
        if stated and stated != self.modality:
            out["stated_modality"] = stated
        if self.spacing_assumed:
            out["spacing_assumed"] = True
        if self.meta.get("slice_gaps"):
            out["slice_gaps"] = dict(self.meta["slice_gaps"])
        return out
