"""DICOM header attributes as medq reads them: values (top level or functional groups), physics,
lossy compression, region and modality codes, and which modalities medq grades."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medq.image import MODALITIES

MODALITY_MAP = {"MG": "DX", "IO": "DX", "PX": "DX", "RG": "DX", "XC": "OP"}
"""DICOM Modality codes medq reads as one of its own."""

REGION_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("retina", ("EYE", "EYES", "RETINA", "RETINAL", "FUNDUS", "OPHTHALMIC")),
    ("brain", ("BRAIN", "CEREBRUM", "CEREBRAL", "NEURO", "NEURO3D")),
    ("head", ("HEAD", "SKULL", "HEADNECK", "NECK", "FACE", "SINUS", "SINUSES", "IAC", "TMJ")),
    ("breast", ("BREAST", "MAMMO", "MAMMOGRAPHY", "MAMMOGRAM")),
    ("knee", ("KNEE", "KNEES")),
    ("spine", ("SPINE", "CSPINE", "TSPINE", "LSPINE", "LUMBAR", "SACRUM", "COCCYX", "VERTEBRA")),
    ("chest", ("CHEST", "THORAX", "LUNG", "LUNGS", "HEART", "CARDIAC", "RIBS", "CTHORAX")),
    ("abdomen", ("ABDOMEN", "ABD", "ABDOMENPELVIS", "LIVER", "KIDNEY", "RENAL", "PANCREAS")),
    ("pelvis", ("PELVIS", "HIP", "HIPS", "PROSTATE", "BLADDER", "UTERUS")),
    ("extremity", ("EXTREMITY", "ARM", "HAND", "WRIST", "ELBOW", "SHOULDER", "FOREARM", "HUMERUS",
                   "LEG", "FOOT", "ANKLE", "FEMUR", "TIBIA", "FIBULA", "FINGER", "TOE", "THIGH")),
)
"""medq region → the words of BodyPartExamined or a description that name it (first match)."""

PHYSICS_TAGS = {
    "kvp": "KVP", "ctdi_vol": "CTDIvol", "convolution_kernel": "ConvolutionKernel",
    "field_strength_T": "MagneticFieldStrength", "tr_ms": "RepetitionTime", "te_ms": "EchoTime",
    "ti_ms": "InversionTime", "flip_angle_deg": "FlipAngle", "slice_thickness_mm": "SliceThickness",
    "pixel_bandwidth": "PixelBandwidth", "xray_tube_current_mA": "XRayTubeCurrent",
    "exposure_time_ms": "ExposureTime", "echo_train_length": "EchoTrainLength",
    "imaging_frequency_MHz": "ImagingFrequency", "manufacturer": "Manufacturer",
    "manufacturer_model": "ManufacturerModelName", "scan_options": "ScanOptions",
    "mr_acquisition_type": "MRAcquisitionType", "filter_type": "FilterType",
    "frame_duration_ms": "ActualFrameDuration", "pet_units": "Units",
}
"""physics key → DICOM keyword (exposure_mAs is read apart: it has three sources; a PET
tracer's from its sequence, `TRACER_TAGS`)."""

TRACER_TAGS = {"radiopharmaceutical": "Radiopharmaceutical", "half_life_s": "RadionuclideHalfLife"}
"""physics key → keyword in a PET image's first Radiopharmaceutical Information item (the
radionuclide is that item's coded name, `radionuclide`)."""

GRADED = frozenset({"CT", "MR", "PT", "CR", "DX", "MG", "IO", "PX", "RG", "OP", "XC", "OT", "SC",
                    ""})
"""DICOM Modality values medq grades: CT, MR, PET, radiographs, fundus and other photographs,
and OT, SC (a secondary capture's code) or none, graded by the acquisition effects every
modality shares. A file stating any other (US, NM, XA, …) is refused unless the user says what
to read it as (`--modality`)."""

PHOTOGRAPHS = frozenset({"OP", "XC"})
"""DICOM Modality values that state a photograph (ophthalmic, external camera): a colour image
stating one of them is a photograph by its tags; one stating OT, SC or none is read as one by
its colour (`meta["modality_from"]`), and one stating a greyscale modality (CT, MR, …) is not
graded (`assess.loading.check_assessable`)."""

NOT_ACQUIRED = {"SEG": "a segmentation", "RTDOSE": "a radiotherapy dose grid"}
"""DICOM modalities whose pixels are derived maps, not an acquired image with a quality to
grade: `medq assess` refuses them and `medq qc` makes no items of them."""


def tag_value(ds: Dataset, keyword: str) -> Any:
    """`keyword` from the top level, else from the shared / first per-frame functional groups."""
    if keyword in ds and ds[keyword].value not in (None, ""):
        return ds[keyword].value
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        items = ds.get(group) or []
        for elem in (items[0] if len(items) else []):
            if elem.VR == "SQ":
                for item in elem.value:
                    if keyword in item and item[keyword].value not in (None, ""):
                        return item[keyword].value
    return None


def as_number(value: Any) -> float | None:
    """The first number of a value (a multi-value's or an array's first), None when absent or
    not finite."""
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else None
    if value is None or (isinstance(value, str) and value == ""):
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def as_text(value: Any) -> str | None:
    """A value as stripped text (a multi-value joined by backslashes), None when empty."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def read_physics(ds: Dataset) -> dict[str, Any]:
    """Acquisition physics the header states, as plain float/int/str (nothing guessed)."""
    out: dict[str, Any] = {}
    for key, kw in PHYSICS_TAGS.items():
        raw = tag_value(ds, kw)
        vr = dictionary_VR(kw)
        value = as_text(raw) if vr in ("SH", "LO", "CS", "ST") else as_number(raw)
        if value is not None:
            out[key] = int(value) if kw == "EchoTrainLength" else value
    micro = as_number(tag_value(ds, "ExposureInuAs"))
    stated = [as_number(tag_value(ds, "ExposureInmAs")), None if micro is None else micro / 1000,
              as_number(tag_value(ds, "Exposure"))]
    if "xray_tube_current_mA" in out and "exposure_time_ms" in out:
        stated.append(out["xray_tube_current_mA"] * out["exposure_time_ms"] / 1000.0)
    mas = next((v for v in stated if v is not None and v > 0), None)  # 0: not recorded
    if mas is not None:
        out["exposure_mAs"] = mas
    return out | tracer(ds)


PER_SLICE = ("exposure_mAs", "xray_tube_current_mA", "ctdi_vol")
"""Physics a series may state slice by slice (tube current modulation): its mean is the series'."""


def series_physics(datasets: list[Dataset]) -> dict[str, Any]:
    """The physics of a series (its slices in order): the first slice's, with each `PER_SLICE`
    value the mean over the slices that state it (one file's physics as `read_physics`)."""
    slices = [read_physics(ds) for ds in datasets]
    physics = slices[0]
    if len(slices) > 1:
        for key in PER_SLICE:
            values = [p[key] for p in slices if isinstance(p.get(key), (int, float))]
            if values:
                physics[key] = float(np.mean(values))
    return physics


def tracer(ds: Dataset) -> dict[str, Any]:
    """What a PET header states of its tracer: radiopharmaceutical, half-life (s) and the
    radionuclide's coded name, from the first Radiopharmaceutical Information item."""
    items = ds.get("RadiopharmaceuticalInformationSequence") or []
    if not len(items):
        return {}
    item = items[0]
    found = {key: as_text(item.get(kw)) if dictionary_VR(kw) == "LO" else as_number(item.get(kw))
             for key, kw in TRACER_TAGS.items()}
    codes = item.get("RadionuclideCodeSequence") or []
    found["radionuclide"] = as_text(codes[0].get("CodeMeaning")) if len(codes) else None
    return {k: v for k, v in found.items() if v is not None}


LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",  # JPEG baseline / extended
    *(f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)),  # MPEG-2, H.264, HEVC video
}
"""Transfer syntaxes that are always lossy. JPEG 2000, JPEG-LS near-lossless and HTJ2K may be
either: for them the header's Lossy Image Compression attribute decides."""


def lossy_compression(ds: Dataset) -> dict[str, Any] | None:
    """How the header says the pixels were lossy compressed, or None when it does not.

    Lossy when Lossy Image Compression (0028,2110) is "01" (once lossy, a DICOM image keeps
    that flag through every later copy) or the transfer syntax is always lossy (JPEG baseline,
    MPEG); with the stated ratio (0028,2112; the first, and every one under `ratios` when the
    image was lossy compressed more than once) and method(s) (0028,2114) where given.
    """
    flag = as_text(tag_value(ds, "LossyImageCompression"))
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    by_syntax = ts is not None and str(ts) in LOSSY_SYNTAXES
    if flag != "01" and not by_syntax:
        return None
    raw = tag_value(ds, "LossyImageCompressionRatio")
    ratios = [r for r in (as_number(v) for v in (raw if isinstance(raw, (list, tuple, MultiValue))
                                                else [raw])) if r is not None]
    out = {"stated_by": "LossyImageCompression" if flag == "01" else "TransferSyntaxUID",
           "ratio": ratios[0] if ratios else None,
           "method": as_text(tag_value(ds, "LossyImageCompressionMethod")),
           "transfer_syntax": getattr(ts, "name", None) or (str(ts) if ts else None)}
    if len(ratios) > 1:  # one value per successive lossy compression, first to last
        out["ratios"] = ratios
    return out


def region_from_text(*texts: str | None) -> str:
    """Map BodyPartExamined / descriptions to a medq region by keyword, first text that matches."""
    for text in texts:
        if not text:
            continue
        words = set("".join(c if c.isalnum() else " " for c in str(text).upper()).split())
        for region, keys in REGION_WORDS:
            if words & set(keys):
                return region
    return "unknown"


def as_floats(value: Any) -> list[float] | None:
    """A multi-valued number attribute as a list of floats, None when absent or malformed."""
    if value is None:
        return None
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return None


def dicom_modality(ds: Dataset) -> str:
    """The file's Modality as a medq modality code (MG, IO, … mapped; unknown → OT)."""
    code = str(ds.get("Modality", "") or "").upper()
    code = MODALITY_MAP.get(code, code)
    return code if code in MODALITIES else "OT"


PLACEHOLDER_PATIENT_IDS = frozenset({"MEDQ"})
"""PatientIDs that name no patient: what medq wrote into every DICOM it made from a file
without a patient (a NIfTI, a PNG) before it wrote none; read as no PatientID, so unrelated
images do not count as one patient."""


def patient_digest(patient_id: str | None) -> str | None:
    """A short digest of a DICOM PatientID (None when the header states none, or a
    `PLACEHOLDER_PATIENT_IDS` one): enough to tell patients apart (`medq.train.split` holds out
    whole patients), without keeping the ID."""
    text = (patient_id or "").strip()
    if not text or text in PLACEHOLDER_PATIENT_IDS:
        return None
    return "patient:" + hashlib.sha256(f"medq-subject:{text}".encode()).hexdigest()[:16]


MEDQ_PRIVATE = (0x0071, "medq")
"""medq's private block (group, creator): what DICOM has no attribute for."""

LINE_INTEGRAL = "line_integral"
"""A radiograph whose values are attenuation line integrals p (`medq.degrade.xray`)."""


def mark_value_domain(ds: Dataset, meta: dict[str, Any]) -> None:
    """Keep a radiograph's line-integral domain in a derived file: DICOM's LOG intensity
    relationship (higher value, less beam) and, as it states no scale, medq's private element
    (written from memory the sample was exact p; read back it was mapped onto an assumed span)."""
    if meta.get("xr_domain") != LINE_INTEGRAL:
        return
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LOG", -1
    ds.private_block(*MEDQ_PRIVATE, create=True).add_new(0x01, "LO", LINE_INTEGRAL)


def value_domain(ds: Dataset) -> dict[str, Any]:
    """`{"xr_domain": "line_integral"}` for a file `mark_value_domain` marked, else {}."""
    try:
        element = ds.private_block(*MEDQ_PRIVATE)[0x01]
    except KeyError:
        return {}
    return {"xr_domain": LINE_INTEGRAL} if as_text(element.value) == LINE_INTEGRAL else {}
