"""The acquisition a BIDS / dcm2niix JSON sidecar states, in medq's terms.

A NIfTI converted from DICOM by dcm2niix (and every BIDS dataset) keeps the DICOM header in a
JSON sidecar beside it: `Modality`, `BodyPartExamined`, `SeriesDescription`, `ProtocolName`,
`RepetitionTime` / `EchoTime` / `InversionTime` (in seconds, where DICOM states ms),
`MagneticFieldStrength`, `ConvolutionKernel`, … `sidecar_acquisition` reads them as a DICOM
file's tags are read (`medq.io.dicom_tags`), so the modality, region and type prompts of a
converted scan are taken from its header, not guessed. A BIDS file name's suffix (`_T1w`,
`_T2w`, `_FLAIR`, `_PDw`, `_bold`, `_pet`, …) states the modality when no sidecar does, and the
contrast when no description does. Inside a BIDS dataset (a folder with
`dataset_description.json` above the file) the sidecar's keys are inherited as BIDS's
inheritance principle says (`inherited_sidecar`): a `T1w.json` at the dataset root or a
`sub-01_T1w.json` in the subject's folder states what every matching scan below shares, and the
file's own sidecar overrides them.
medq's own sidecar keys (`Modality`, `BodyPart`, `Physics`) take precedence over these.

`load` keeps the sidecar's keys in `meta['sidecar']` (`kept_sidecar`), so the sidecar `save`
writes beside a result carries them on, medq's own keys over them (`carried_sidecar`): downstream
BIDS tools still read the acquisition. Keys that describe the voxel grid (`GRID_KEYS`) are carried
only while the image keeps the shape and voxel size it was read with.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from medq.image import MODALITIES, REGIONS, MedImage
from medq.io.dicom_tags import MODALITY_MAP, patient_digest, region_from_text
from medq.io.sidecar import read_json_object

BIDS_PHYSICS: dict[str, tuple[str, float]] = {
    "RepetitionTime": ("tr_ms", 1000.0), "EchoTime": ("te_ms", 1000.0),
    "InversionTime": ("ti_ms", 1000.0), "MagneticFieldStrength": ("field_strength_T", 1.0),
    "FlipAngle": ("flip_angle_deg", 1.0), "SliceThickness": ("slice_thickness_mm", 1.0),
    "PixelBandwidth": ("pixel_bandwidth", 1.0), "EchoTrainLength": ("echo_train_length", 1.0),
    "ImagingFrequency": ("imaging_frequency_MHz", 1.0), "KVP": ("kvp", 1.0),
    "XRayTubeCurrent": ("xray_tube_current_mA", 1.0), "CTDIvol": ("ctdi_vol", 1.0),
    "XRayExposure": ("exposure_mAs", 1.0),
}
"""Sidecar key → (physics key, factor to medq's unit): BIDS states times in seconds; dcm2niix
writes a CT's `Exposure` (mAs) as `XRayExposure` (0: not recorded, as in DICOM, so not taken)."""

BIDS_TEXT = {"ConvolutionKernel": "convolution_kernel", "Manufacturer": "manufacturer",
             "ManufacturersModelName": "manufacturer_model", "ScanOptions": "scan_options",
             "MRAcquisitionType": "mr_acquisition_type", "Units": "pet_units",
             "TracerName": "radiopharmaceutical"}
"""Sidecar key → physics key of a text value (`ManufacturersModelName` is BIDS's spelling)."""

BIDS_META = {"SeriesDescription": "series_description", "ProtocolName": "protocol_name"}
"""Sidecar key → meta key of the words the type prompt reads."""

BIDS_MR_SUFFIXES = frozenset({
    "T1w", "T2w", "PDw", "T2starw", "FLAIR", "inplaneT1", "inplaneT2", "PDT2", "angio", "UNIT1",
    "T1map", "T2map", "T2starmap", "R1map", "R2map", "R2starmap", "PDmap", "MTRmap", "MTsat",
    "T1rho", "MWFmap", "MTVmap", "Chimap", "S0map", "M0map", "bold", "cbv", "sbref", "dwi",
    "asl", "m0scan", "magnitude", "magnitude1", "magnitude2", "phasediff", "fieldmap", "epi"})
"""BIDS suffixes of MRI data (anat, func, dwi, perf, fmap): a file named so is an MR image."""

_BIDS_NAME = re.compile(r"^(sub-[A-Za-z0-9]+(?:_[A-Za-z]+-[A-Za-z0-9]+)*)_([A-Za-z0-9]+)\.")
"""A BIDS file name: `sub-<label>`, entities `_<key>-<value>`, then `_<suffix>.<extension>`."""

_ENTITY = re.compile(r"^([A-Za-z]+)-([A-Za-z0-9]+)$")
"""One `<key>-<value>` entity of a BIDS file name."""

DATASET_MARKER = "dataset_description.json"
"""The file that makes a folder a BIDS dataset's root, where sidecar inheritance stops."""

MAX_DATASET_DEPTH = 6
"""Folders above a file searched for its dataset's root (sub-, ses- and a datatype: 3)."""

MEDQ_KEYS = frozenset({"File", "Modality", "BodyPart", "Spacing", "Physics", "Rescale",
                       "source", "degradation", "Source"})
"""Sidecar keys medq states anew for every file it writes, never carried from its input: the
image's own modality, region, spacing and physics, a JPEG's value map (`Rescale`, true of its
bytes only), `medq simulate`'s record (`degradation`, `source`: how the input was made) and a
bundled sample's origin (`Source`, stated by `medq samples --export`)."""

INPUT_ONLY_KEYS = frozenset({"ImageType", "RawImage", "ConversionSoftware",
                             "ConversionSoftwareVersion"})
"""Keys true of the input file only: a result is neither ORIGINAL nor raw, nor made by the
converter that wrote the input."""

GRID_KEYS = frozenset({
    "SliceTiming", "SliceEncodingDirection", "PhaseEncodingDirection",
    "InPlanePhaseEncodingDirectionDICOM", "ReconMatrixPE", "EffectiveEchoSpacing",
    "TotalReadoutTime", "SliceThickness", "SpacingBetweenSlices", "ImageOrientationPatientDICOM",
    "ImageOrientationText"})
"""BIDS keys that describe the image's voxel grid: one time per slice, the phase- and
slice-encoding axes (i, j, k of the voxels), the reconstructed matrix and the echo spacing and
readout time measured on it, the slice thickness and spacing, the orientation. A result of
another shape or voxel size (a plane of a volume, a resampled copy) does not carry them."""

IDENTIFYING_KEYS = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight",
    "PatientSize", "AccessionNumber", "StudyID", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "ReferringPhysicianName", "PerformingPhysicianName",
    "OperatorsName", "StationName", "DeviceSerialNumber"})
"""Keys naming the patient, the site or the staff (dcm2niix writes them unless told to
anonymise): never carried, nor are dates and UIDs (`carried_key`): BIDS data is shared
de-identified."""


NOT_CARRIED = MEDQ_KEYS | INPUT_ONLY_KEYS | IDENTIFYING_KEYS
"""Keys a result's sidecar never carries (`carried_key` also leaves out dates and UIDs)."""


def carried_key(key: str) -> bool:
    """Whether a result's sidecar may carry this key of its input's sidecar: not medq's own
    (`MEDQ_KEYS`), not one true of the input file only (`INPUT_ONLY_KEYS`), and none that names
    the patient, the site or its staff (`IDENTIFYING_KEYS`) or gives a date or a UID
    (`AcquisitionDateTime`, `StudyInstanceUID`, …)."""
    return key not in NOT_CARRIED and not key.endswith(("Date", "DateTime", "UID"))

VOLUME_KEYS = frozenset({"VolumeTiming", "FrameTimesStart", "FrameDuration"})
"""BIDS keys holding one value per volume of a 4D file: one volume read from it
(`file@volume=k`) does not carry them."""


def _number(value: Any) -> float | None:
    """A finite number, or None (a list's first value, as DICOM multi-values are read)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    """A non-empty string (a list of strings joined by backslashes, as DICOM writes them)."""
    if isinstance(value, list):
        value = "\\".join(str(v) for v in value)
    return value.strip() or None if isinstance(value, str) else None


def bids_suffix(path: str | Path) -> str | None:
    """The suffix of a BIDS file name (`sub-01_ses-1_T1w.nii.gz` → `T1w`), else None."""
    found = _BIDS_NAME.match(Path(path).name)
    return found.group(2) if found else None


def bids_entity(path: str | Path, key: str) -> str | None:
    """The value of entity `key` in a BIDS file name (`sub-01_part-phase_T1w.nii.gz`, `part` →
    `phase`), else None."""
    found = _BIDS_NAME.match(Path(path).name)
    entities = _entities(found.group(1).split("_")[1:]) if found else None
    return (entities or {}).get(key)


def _entities(parts: list[str]) -> dict[str, str] | None:
    """`key-value` name parts as a dict, or None when one is not an entity."""
    found = [_ENTITY.match(part) for part in parts]
    return None if not all(found) else {m.group(1): m.group(2) for m in found if m}


def dataset_root(path: str | Path) -> Path | None:
    """The BIDS dataset folder holding `path`: the nearest folder above it with
    `dataset_description.json` (at most `MAX_DATASET_DEPTH` up), else None."""
    for folder in list(Path(path).absolute().parents)[:MAX_DATASET_DEPTH]:
        if (folder / DATASET_MARKER).is_file():
            return folder
    return None


def inherited_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar keys a BIDS file inherits (the inheritance principle): every
    `[<entities>_]<suffix>.json` from the dataset root down to the file's folder whose suffix is
    the file's and whose entities are all the file's, merged from the least specific (higher
    up, then fewer entities) to the most, the file's own `<name>.json` left out (read by
    `medq.io.sidecar`); {} outside a BIDS dataset or for a name that is not BIDS."""
    p = Path(path).absolute()
    found = _BIDS_NAME.match(p.name)
    root = dataset_root(p) if found else None
    if found is None or root is None:
        return {}
    mine, suffix = _entities(found.group(1).split("_")) or {}, found.group(2)
    folders = [p.parent, *p.parent.parents]
    folders = folders[:folders.index(root) + 1][::-1]  # the root first
    applicable = []
    for depth, folder in enumerate(folders):
        for candidate in folder.glob(f"*{suffix}.json"):
            parts = candidate.name[:-len(".json")].split("_")
            entities = _entities(parts[:-1])
            if (parts[-1] == suffix and entities is not None
                    and all(mine.get(k) == v for k, v in entities.items())
                    and not (folder == p.parent
                             and candidate.name == f"{found.group(1)}_{suffix}.json")):
                applicable.append((depth, len(entities), candidate.name, candidate))
    merged: dict[str, Any] = {}
    for *_, candidate in sorted(applicable):
        merged.update(read_json_object(candidate))
    return merged


def sidecar_acquisition(side: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """What a BIDS / dcm2niix sidecar `side` of the image `path` states, as MedImage fields:
    `modality`, `region`, `physics` and `meta` (series description, protocol, BIDS suffix and
    `part` entity, the ImageType dcm2niix copies from the DICOM), each only where stated."""
    out: dict[str, Any] = {}
    modality = (_text(side.get("Modality")) or "").upper()
    modality = MODALITY_MAP.get(modality, modality)
    suffix = bids_suffix(path)
    if modality not in MODALITIES or modality == "OT":  # else the file name's datatype
        modality = "MR" if suffix in BIDS_MR_SUFFIXES else "PT" if suffix == "pet" else ""
    if modality:
        out["modality"] = modality
    part = _text(side.get("BodyPart"))  # medq's key: one of its regions
    region = part.lower() if part and part.lower() in REGIONS else "unknown"
    if region == "unknown":
        region = region_from_text(part, _text(side.get("BodyPartExamined")))
    if region != "unknown":
        out["region"] = region
    numbers = {key: (_number(side.get(name)), factor)
               for name, (key, factor) in BIDS_PHYSICS.items()}
    physics = {key: value * factor for key, (value, factor) in numbers.items()
               if value is not None and not (key == "exposure_mAs" and value <= 0)}
    physics.update({key: _text(side.get(name)) for name, key in BIDS_TEXT.items()
                    if _text(side.get(name))})
    if physics:
        out["physics"] = physics
    meta = {key: _text(side.get(name)) for name, key in BIDS_META.items()
            if _text(side.get(name))}
    if suffix:
        meta["bids_suffix"] = suffix
    if part_entity := bids_entity(path, "part"):  # part-mag / part-phase / part-real / …
        meta["bids_part"] = part_entity
    kinds = side.get("ImageType")  # dcm2niix copies the DICOM's: ORIGINAL\PRIMARY\P\ND
    if isinstance(kinds, list) and kinds and all(isinstance(k, str) for k in kinds):
        meta["image_type"] = [k.strip() for k in kinds]
    if patient := patient_digest(_text(side.get("PatientID"))):  # kept as a digest only
        meta["patient_key"] = patient
    if meta:
        out["meta"] = meta
    return out


def kept_sidecar(side: dict[str, Any], shape: tuple[int, ...], spacing: tuple[float, ...],
                 one_volume: bool = False) -> dict[str, Any]:
    """The meta that keeps a BIDS / dcm2niix sidecar's keys for the files written from the image
    it was read with (of `shape` and `spacing`): `sidecar`, the keys a result carries
    (`carried_key`; not `VOLUME_KEYS` for `one_volume` of a 4D file), and `sidecar_grid`, the
    shape and spacing its `GRID_KEYS` hold for; {} when it has no other key."""
    keys = {k: v for k, v in side.items()
            if carried_key(k) and not (one_volume and k in VOLUME_KEYS)}
    if not keys:
        return {}
    return {"sidecar": keys, "sidecar_grid": {"shape": list(shape), "spacing": list(spacing)}}


def carried_sidecar(image: MedImage) -> dict[str, Any]:
    """The input sidecar's keys the sidecar of a file written from `image` carries on
    (`meta['sidecar']`): all of them while the image has the shape and voxel size they were
    read with, else all but `GRID_KEYS`; {} when it was read with none."""
    keys = image.meta.get("sidecar")
    if not isinstance(keys, dict):
        return {}
    grid = image.meta.get("sidecar_grid") or {}
    spacing = grid.get("spacing") or []
    same = list(image.shape) == grid.get("shape") and len(spacing) == len(image.spacing) \
        and bool(np.allclose(spacing, image.spacing, rtol=1e-6, atol=0))
    return dict(keys) if same else {k: v for k, v in keys.items() if k not in GRID_KEYS}
