"""DICOM via pydicom: single files, series folders, enhanced multi-frame; writes derived DICOM.

Axis convention: volumes are `(z, y, x)` = (slice, row, column). Slices are sorted ascending by
ImagePositionPatient projected on the slice normal n = row direction × column direction (from
ImageOrientationPatient), falling back to InstanceNumber. Spacing is `(slice spacing,
PixelSpacing[0] (between rows), PixelSpacing[1] (between columns))` in mm. Pixel values have the
Modality LUT / RescaleSlope+Intercept applied (CT in HU); MONOCHROME1 is NOT inverted (the
photometric interpretation is kept in `meta['photometric']`; what judges appearance reads the
image through `medq.io.polarity.as_displayed`). Colour images become RGB in [0, 1].
"""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medq.errors import (
    EmptySeries,
    MedqError,
    MixedSeries,
    UnreadableImage,
    UnsupportedImage,
)
from medq.image import MODALITIES, MedImage

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
GZIP_MAGIC = b"\x1f\x8b"
MAX_GUNZIPPED = 2 << 30
"""Largest decompressed size of a gzipped DICOM file medq reads (2 GiB; more is refused)."""
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_MODALITY_MAP = {"MG": "DX", "IO": "DX", "PX": "DX", "RG": "DX", "XC": "OP"}
_REGION_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
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
# physics key -> DICOM keyword (exposure_mAs is handled apart: it has three sources)
_PHYSICS_TAGS = {
    "kvp": "KVP", "ctdi_vol": "CTDIvol", "convolution_kernel": "ConvolutionKernel",
    "field_strength_T": "MagneticFieldStrength", "tr_ms": "RepetitionTime", "te_ms": "EchoTime",
    "ti_ms": "InversionTime", "flip_angle_deg": "FlipAngle", "slice_thickness_mm": "SliceThickness",
    "pixel_bandwidth": "PixelBandwidth", "xray_tube_current_mA": "XRayTubeCurrent",
    "exposure_time_ms": "ExposureTime", "echo_train_length": "EchoTrainLength",
    "imaging_frequency_MHz": "ImagingFrequency", "manufacturer": "Manufacturer",
    "manufacturer_model": "ManufacturerModelName", "scan_options": "ScanOptions",
    "mr_acquisition_type": "MRAcquisitionType", "filter_type": "FilterType",
}


def is_gzipped(path: str | Path) -> bool:
    """True when the file starts with the gzip signature."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _head(path: str | Path, n: int) -> bytes:
    """The first `n` bytes of the file, decompressed when it is gzipped ('' when unreadable)."""
    try:
        if is_gzipped(path):
            with gzip.open(path, "rb") as fh:
                return fh.read(n)
        with open(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError):
        return b""


def has_preamble(path: str | Path) -> bool:
    """True when the file (or, gzipped, its content) carries the 128-byte preamble and b'DICM'."""
    head = _head(path, 132)
    return len(head) == 132 and head[128:] == b"DICM"


def _source(path: str | Path) -> str | Path | io.BytesIO:
    """What pydicom reads: the path, or the decompressed bytes of a gzipped file."""
    if not is_gzipped(path):
        return path
    with gzip.open(path, "rb") as fh:
        data = fh.read(MAX_GUNZIPPED + 1)
    if len(data) > MAX_GUNZIPPED:
        raise UnreadableImage(f"gzipped file decompresses to more than {MAX_GUNZIPPED >> 30} GiB",
                              path)
    return io.BytesIO(data)


def _has_pixels(ds: Dataset) -> bool:
    return any(tag in ds for tag in _PIXEL_TAGS)


def read_dataset(path: str | Path, *, stop_before_pixels: bool = False) -> Dataset:
    """Parse a DICOM file; a preamble-less file counts as DICOM only if it yields pixel data."""
    preamble = has_preamble(path)
    try:
        source = _source(path)
        if preamble:
            ds = pydicom.dcmread(source, stop_before_pixels=stop_before_pixels)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(source, force=True)
            sop = ds.get("SOPClassUID")
            known = sop is not None and getattr(sop, "name", str(sop)) != str(sop)
            if not _has_pixels(ds) and not known:
                raise UnreadableImage("not a DICOM file (no 'DICM' preamble, no pixel data)", path)
            if "TransferSyntaxUID" not in ds.file_meta:  # raw dataset: record how it was read
                implicit, little = ds.original_encoding
                ds.file_meta.TransferSyntaxUID = (
                    ImplicitVRLittleEndian if implicit else
                    ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    except MedqError:
        raise
    except Exception as e:
        raise UnreadableImage(f"not a readable DICOM file ({type(e).__name__}: {e})", path) from e
    return ds


def _value(ds: Dataset, keyword: str) -> Any:
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


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def read_physics(ds: Dataset) -> dict[str, Any]:
    """Acquisition physics the header states, as plain float/int/str (nothing guessed)."""
    out: dict[str, Any] = {}
    for key, kw in _PHYSICS_TAGS.items():
        raw = _value(ds, kw)
        vr = dictionary_VR(kw)
        value = _text(raw) if vr in ("SH", "LO", "CS", "ST") else _number(raw)
        if value is not None:
            out[key] = int(value) if kw == "EchoTrainLength" else value
    mas = _number(_value(ds, "ExposureInmAs"))
    if mas is None and _number(_value(ds, "ExposureInuAs")) is not None:
        mas = _number(_value(ds, "ExposureInuAs")) / 1000.0
    if mas is None:
        mas = _number(_value(ds, "Exposure"))
    if mas is None and "xray_tube_current_mA" in out and "exposure_time_ms" in out:
        mas = out["xray_tube_current_mA"] * out["exposure_time_ms"] / 1000.0
    if mas is not None:
        out["exposure_mAs"] = mas
    return out


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
    flag = _text(_value(ds, "LossyImageCompression"))
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    by_syntax = ts is not None and str(ts) in LOSSY_SYNTAXES
    if flag != "01" and not by_syntax:
        return None
    raw = _value(ds, "LossyImageCompressionRatio")
    ratios = [r for r in (_number(v) for v in (raw if isinstance(raw, (list, tuple, MultiValue))
                                                else [raw])) if r is not None]
    out = {"stated_by": "LossyImageCompression" if flag == "01" else "TransferSyntaxUID",
           "ratio": ratios[0] if ratios else None,
           "method": _text(_value(ds, "LossyImageCompressionMethod")),
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
        for region, keys in _REGION_WORDS:
            if words & set(keys):
                return region
    return "unknown"


def _modality(ds: Dataset) -> str:
    code = str(ds.get("Modality", "") or "").upper()
    code = _MODALITY_MAP.get(code, code)
    return code if code in MODALITIES else "OT"


def _floats(value: Any) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return None


def _frame_rescale(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Rescale each frame of a multi-frame dataset with its (per-frame or shared) transformation."""
    if ds.get("ModalityLUTSequence") or "RescaleSlope" in ds:
        return apply_modality_lut(arr, ds).astype(np.float32)
    out = arr.astype(np.float32)
    shared = (ds.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    for i in range(out.shape[0]):
        items = [per[i]] if i < len(per) else []
        for item in [*items, shared]:
            seq = item.get("PixelValueTransformationSequence")
            if seq:
                slope = _number(seq[0].get("RescaleSlope"))
                icpt = _number(seq[0].get("RescaleIntercept"))
                out[i] = out[i] * (1.0 if slope is None else slope) + (icpt or 0.0)
                break
    return out


def _pixels(ds: Dataset, path: Path) -> tuple[np.ndarray, bool]:
    """Decoded pixels in physical units (float32) and whether they are RGB in [0, 1]."""
    try:
        arr = ds.pixel_array
    except Exception as e:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(ts, "name", "unknown transfer syntax")
        raise UnreadableImage(f"cannot decode the pixel data ({name}): {e}", path) from e
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    frames = int(_number(ds.get("NumberOfFrames")) or 1)
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        return arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 65535.0), True
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        return arr.astype(np.float32) / float(2 ** int(ds.get("BitsStored", 8)) - 1), True
    if frames > 1:
        arr = _frame_rescale(arr, ds)
        return arr * np.float32(_number(ds.get("DoseGridScaling")) or 1.0), False
    arr = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    if "DoseGridScaling" in ds:  # RT Dose: stored values × scaling = dose in Gy
        arr = arr * np.float32(_number(ds.DoseGridScaling) or 1.0)
    return arr, False


def _order(positions: list[list[float] | None], iop: list[float] | None, numbers: list[Any],
           fallback_dz: float | None, path: Path) -> tuple[list[int], float, dict[str, Any]]:
    """Slice order, slice spacing and geometry notes from positions (or instance numbers)."""
    n = len(positions)
    info: dict[str, Any] = {}
    if iop is not None and len(iop) == 6 and all(p is not None and len(p) == 3 for p in positions):
        normal = np.cross(np.asarray(iop[:3]), np.asarray(iop[3:]))
        proj = np.array([float(np.dot(p, normal)) for p in positions])
        order = [int(i) for i in np.argsort(proj, kind="stable")]
        if n < 2:
            return order, float(fallback_dz or 1.0), {"z_spacing_source": "SliceThickness"}
        gaps = np.diff(proj[order])
        if np.any(gaps < 1e-3):
            dup = int(np.sum(gaps < 1e-3))
            raise UnsupportedImage(f"{n} slices but {dup} share a position with another slice "
                                   "(multi-echo, repeated or multi-phase acquisition?)", path)
        dz = float(np.median(gaps))
        info = {"z_spacing_source": "ImagePositionPatient",
                "irregular_spacing": bool(np.max(np.abs(gaps - dz)) > 0.01 * dz + 1e-3)}
        return order, dz, info
    keys = [(_number(v) if _number(v) is not None else float(i)) for i, v in enumerate(numbers)]
    order = [int(i) for i in np.argsort(keys, kind="stable")]
    source = "SpacingBetweenSlices/SliceThickness" if fallback_dz else "assumed"
    return order, float(fallback_dz or 1.0), {"z_spacing_source": source, "sorted_by": "number"}


def _spacing_yx(ds: Dataset) -> tuple[tuple[float, float] | None, str | None]:
    for kw in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        sp = _floats(_value(ds, kw))
        if sp and len(sp) == 2 and all(s > 0 for s in sp):
            return (sp[0], sp[1]), kw
    return None, None


def _frame_positions(ds: Dataset, frames: int) -> list[list[float] | None]:
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per) == frames:
        out: list[list[float] | None] = []
        for item in per:
            seq = item.get("PlanePositionSequence")
            out.append(_floats(seq[0].get("ImagePositionPatient")) if seq else None)
        return out
    offsets, ipp = _floats(ds.get("GridFrameOffsetVector")), _floats(ds.get("ImagePositionPatient"))
    iop = _floats(_value(ds, "ImageOrientationPatient"))
    if offsets and ipp and iop and len(offsets) == frames:
        normal = np.cross(iop[:3], iop[3:])
        return [[float(v) for v in np.asarray(ipp) + o * normal] for o in offsets]
    return [None] * frames


def _assemble(datasets: list[Dataset], paths: list[Path], source: Path, fmt: str) -> MedImage:
    """Build one MedImage from one (possibly multi-frame) dataset or a series of single frames."""
    first = datasets[0]
    if not _has_pixels(first):
        sop = getattr(first.get("SOPClassUID"), "name", None) or "object of unknown SOP class"
        raise UnsupportedImage(f"DICOM {sop} object has no image pixels", source)
    iop = _floats(_value(first, "ImageOrientationPatient"))
    dz_tag = _number(_value(first, "SpacingBetweenSlices")) or _number(
        _value(first, "SliceThickness"))
    frames = int(_number(first.get("NumberOfFrames")) or 1)
    if len(datasets) == 1:
        arr, rgb = _pixels(first, paths[0])
        if frames > 1 and rgb:
            raise UnsupportedImage(f"multi-frame colour DICOM ({frames} frames)", source)
        positions = _frame_positions(first, frames) if frames > 1 else [
            _floats(_value(first, "ImagePositionPatient"))]
        numbers: list[Any] = list(range(frames))
    else:
        shapes = {(int(d.get("Rows", 0)), int(d.get("Columns", 0))) for d in datasets}
        if len(shapes) > 1:
            raise UnsupportedImage(f"series slices differ in size {sorted(shapes)}", source)
        iops = {tuple(np.round(_floats(d.get("ImageOrientationPatient")) or [0] * 6, 3))
                for d in datasets}
        if len(iops) > 1:
            raise UnsupportedImage("series slices have different orientations", source)
        parts = [_pixels(d, p) for d, p in zip(datasets, paths, strict=True)]
        if any(rgb for _, rgb in parts):
            raise UnsupportedImage("colour DICOM series are not supported", source)
        arr, rgb = np.stack([a for a, _ in parts]), False
        positions = [_floats(d.get("ImagePositionPatient")) for d in datasets]
        numbers = [d.get("InstanceNumber") for d in datasets]
    sp_yx, sp_source = _spacing_yx(first)
    meta: dict[str, Any] = {"format": fmt, "spacing_source": sp_source or "assumed"}
    if arr.ndim == 3 and not rgb:
        order, dz, info = _order(positions, iop, numbers, dz_tag, source)
        arr = arr[order]
        positions = [positions[i] for i in order]
        if len(datasets) > 1:
            paths = [paths[i] for i in order]
        else:
            meta["frame_order"] = order
        meta.update(info)
        spacing: tuple[float, ...] = (dz, *(sp_yx or (1.0, 1.0)))
    else:
        spacing = sp_yx or (1.0, 1.0)
    modality = "OP" if rgb else _modality(first)
    desc = [_text(first.get(k)) for k in ("SeriesDescription", "StudyDescription", "ProtocolName")]
    region = region_from_text(_text(_value(first, "BodyPartExamined")), *desc)
    ts = getattr(getattr(first, "file_meta", None), "TransferSyntaxUID", None)
    meta.update({
        "dicom_files": [str(p) for p in paths],
        "dicom_modality": _text(first.get("Modality")),
        "sop_class_uid": _text(first.get("SOPClassUID")),
        "series_instance_uid": _text(first.get("SeriesInstanceUID")),
        "study_instance_uid": _text(first.get("StudyInstanceUID")),
        "frame_of_reference_uid": _text(first.get("FrameOfReferenceUID")),
        "series_description": desc[0],
        "protocol_name": desc[2],
        "window_center": _first_number(_value(first, "WindowCenter")),
        "window_width": _first_number(_value(first, "WindowWidth")),
        "photometric": _text(first.get("PhotometricInterpretation")),
        "image_type": [_text(v) for v in _values(first.get("ImageType"))],
        "complex_component": _text(_value(first, "ComplexImageComponent")) or None,
        "transfer_syntax": str(ts) if ts else None,
        "bits_stored": int(first.get("BitsStored", 16)),
        "number_of_frames": frames,
        "orientation": iop,
        "positions": positions if all(p is not None for p in positions) else None,
    })
    lossy = [c for c in (lossy_compression(d) for d in datasets) if c]
    if lossy:  # a series: the first lossy slice speaks for it, with how many slices are
        meta["lossy_compression"] = {**lossy[0], "slices": len(lossy)} if len(datasets) > 1 \
            else lossy[0]
    return MedImage(arr, spacing, modality, region, read_physics(first), str(source), meta)


def _values(value: object) -> list[object]:
    """A (multi-valued) DICOM value as a list (empty for None)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)  # type: ignore[arg-type]
    return [value]


def _first_number(value: object) -> float | None:
    """First item of a (multi-valued) numeric DICOM value as a float, or None."""
    items = _values(value)
    value = items[0] if items else None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def read_file(path: str | Path) -> MedImage:
    """Read one DICOM file (single- or enhanced multi-frame, any decodable transfer syntax)."""
    path = Path(path)
    ds = read_dataset(path)
    try:
        return _assemble([ds], [path], path, "dicom")
    except MedqError:
        raise
    except Exception as e:
        raise UnreadableImage(f"malformed DICOM ({type(e).__name__}: {e})", path) from e


def scan_folder(folder: Path) -> dict[str, list[tuple[Path, Dataset]]]:
    """Group the DICOM image files of `folder` by SeriesInstanceUID (other files are ignored)."""
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.name.upper() == "DICOMDIR":
            continue
        if not has_preamble(f) and f.suffix.lower() not in (*DICOM_SUFFIXES, ""):
            continue
        try:
            ds = read_dataset(f)
        except UnreadableImage:
            if has_preamble(f):
                raise
            continue  # README without suffix, random non-DICOM file
        if _has_pixels(ds):
            groups.setdefault(_text(ds.get("SeriesInstanceUID")) or "", []).append((f, ds))
    return groups


GRADED = frozenset({"CT", "MR", "PT", "CR", "DX", "MG", "IO", "PX", "RG", "OP", "XC", "OT", "SC",
                    ""})
"""DICOM Modality values medq grades: CT, MR, PET, radiographs, fundus and other photographs,
and OT, SC (a secondary capture's code) or none, graded by the acquisition effects every
modality shares. A file stating any other (US, NM, XA, …) is refused unless the user says what
to read it as (`--modality`)."""

NOT_ACQUIRED = {"SEG": "a segmentation", "RTDOSE": "a radiotherapy dose grid"}
"""DICOM modalities whose pixels are derived maps, not an acquired image with a quality to
grade: `medq assess` refuses them and `medq qc` makes no items of them."""

SERIES_MARK = "#"
"""Separator of `<folder>#<SeriesInstanceUID>`: one series of a folder that holds several."""

PART_MARK = "@"
"""Separator of `<folder>#<uid>@<keyword>=<value>`: one part of a series whose slices repeat
their positions (`series_parts`)."""

SPLIT_KEYS = ("EchoNumbers", "TemporalPositionIdentifier", "AcquisitionNumber", "TriggerTime",
              "EchoTime")
"""Header keywords that tell the volumes of one series apart when its slices repeat positions
(echoes, phases, repeated acquisitions), tried in this order."""


def series_in_folder(path: str | Path) -> tuple[Path, str, str | None] | None:
    """(folder, SeriesInstanceUID, part or None) of a `<folder>#<uid>[@<keyword>=<value>]` path
    that names no file or folder itself but whose folder exists; None for any other path."""
    text = str(path)
    if SERIES_MARK not in text or Path(text).exists():
        return None
    folder, rest = text.rsplit(SERIES_MARK, 1)
    uid, _, part = rest.partition(PART_MARK)
    return (Path(folder), uid, part or None) if uid and Path(folder).is_dir() else None


def _position(ds: Dataset) -> tuple[float, ...] | None:
    """ImagePositionPatient rounded to 0.01 mm (None when the file has none)."""
    pos = _floats(_value(ds, "ImagePositionPatient"))
    return tuple(round(v, 2) for v in pos) if pos else None


def series_parts(datasets: Sequence[Dataset]) -> dict[str, list[int]] | None:
    """The volumes of one series whose slices repeat positions (multi-echo, multi-phase):
    `{"<keyword>=<value>": indices}` split by the first of `SPLIT_KEYS` that leaves no position
    twice in a part; None when no position repeats or no keyword separates them."""
    positions = [_position(d) for d in datasets]
    if None in positions or len(set(positions)) == len(positions):
        return None
    for key in SPLIT_KEYS:
        values = [_text(d.get(key)) for d in datasets]
        if "" in values:
            continue
        parts: dict[str, list[int]] = {}
        for i, value in enumerate(values):
            parts.setdefault(f"{key}={value}", []).append(i)
        if len(parts) > 1 and all(len({positions[i] for i in idx}) == len(idx)
                                  for idx in parts.values()):
            return parts
    return None


def read_series(folder: str | Path, uid: str | None = None, part: str | None = None
                ) -> MedImage:
    """Read a folder holding exactly one DICOM series into a `(z, y, x)` volume, or with `uid`
    the series of that SeriesInstanceUID among several (named `<folder>#<uid>`), or with `part`
    one volume of a series whose slices repeat positions (`<folder>#<uid>@<keyword>=<value>`)."""
    folder = Path(folder)
    groups = scan_folder(folder)
    if not groups:
        raise EmptySeries("folder holds no DICOM image files", folder)
    if uid is not None:
        source = Path(f"{folder}{SERIES_MARK}{uid}" + (f"{PART_MARK}{part}" if part else ""))
        if uid not in groups:
            raise EmptySeries("the folder holds no DICOM series of that SeriesInstanceUID",
                              source)
        items = groups[uid]
        if part:
            key, _, value = part.partition("=")
            items = [(p, d) for p, d in items if _text(d.get(key)) == value]
            if not items:
                raise EmptySeries(f"the series has no slice with {key} {value}", source)
        return _assemble_series([d for _, d in items], [p for p, _ in items], source)
    if len(groups) > 1:
        names = [f"{uid or '<no UID>'} '{_text(items[0][1].get('SeriesDescription')) or ''}' "
                 f"({len(items)} files)" for uid, items in groups.items()]
        raise MixedSeries(f"folder holds {len(groups)} DICOM series: {'; '.join(names)}; "
                          f"name one as <folder>{SERIES_MARK}<SeriesInstanceUID>", folder)
    uid, items = next(iter(groups.items()))
    parts = series_parts([d for _, d in items])
    if parts:
        raise UnsupportedImage(f"the series holds {len(parts)} volumes at the same positions "
                               f"({', '.join(parts)}); name one as <folder>{SERIES_MARK}{uid}"
                               f"{PART_MARK}{next(iter(parts))}", folder)
    if len(items) > 1 and any(int(_number(d.get("NumberOfFrames")) or 1) > 1 for _, d in items):
        raise UnsupportedImage(f"series holds {len(items)} files of which some are multi-frame; "
                               "load the multi-frame file itself", folder)
    return _assemble_series([d for _, d in items], [p for p, _ in items], folder)


def _assemble_series(datasets: list[Dataset], paths: list[Path], source: Path) -> MedImage:
    """`_assemble` for a series; anything but a medq error becomes a one-line UnreadableImage."""
    try:
        return _assemble(datasets, paths, source, "dicom-series")
    except MedqError:
        raise
    except Exception as e:
        raise UnreadableImage(f"malformed DICOM series ({type(e).__name__}: {e})", source) from e


def read_series_files(files: Sequence[str | Path], source: str | Path) -> MedImage:
    """Read the given DICOM files as one series named `source` (their folder may hold others)."""
    paths = [Path(f) for f in files]
    if not paths:
        raise EmptySeries("no DICOM files given", source)
    return _assemble_series([read_dataset(f) for f in paths], paths, Path(source))
