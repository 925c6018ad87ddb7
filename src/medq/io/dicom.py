"""DICOM files via pydicom: single files (gzipped too), enhanced multi-frame, Siemens mosaics
(`medq.io.mosaic`), any decodable transfer syntax; the slices of a series are assembled here too
(`medq.io.dicom_series` groups them, `medq.io.dicom_tags` reads the header, `medq.io.dicom_write`
writes derived DICOM).

Axis convention: volumes are `(z, y, x)` = (slice, row, column). Slices are sorted ascending by
ImagePositionPatient projected on the slice normal n = row direction × column direction (from
ImageOrientationPatient), falling back to InstanceNumber. Spacing is `(slice spacing,
PixelSpacing[0] (between rows), PixelSpacing[1] (between columns))` in mm. Pixel values have the
Modality LUT / RescaleSlope+Intercept applied (CT in HU); MONOCHROME1 is NOT inverted (the
photometric interpretation is kept in `meta['photometric']`; what judges appearance reads the
image through `medq.io.polarity.as_displayed`). Colour images become RGB in [0, 1].
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medq.errors import MedqError, UnreadableImage, UnsupportedImage, unreadable
from medq.image import MedImage, as_float32, plausible_spacing
from medq.io import gz
from medq.io.arrays import bit_ends
from medq.io.dicom_tags import (
    PHOTOGRAPHS,
    as_floats,
    as_number,
    as_text,
    dicom_modality,
    lossy_compression,
    patient_digest,
    region_from_text,
    series_physics,
    tag_value,
    value_domain,
)
from medq.io.dicom_values import storage_of
from medq.io.mosaic import mosaic_count, mosaic_positions, unmosaic
from medq.io.units import COLOUR

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
"""The attributes that hold an image's pixels."""


def has_preamble(path: str | Path) -> bool:
    """True when the file (or, gzipped, its content) carries the 128-byte preamble and b'DICM'."""
    first = gz.head(path, 132)
    return len(first) == 132 and first[128:] == b"DICM"


def _source(path: str | Path) -> str | Path | io.BytesIO:
    """What pydicom reads: the path, or the decompressed content of a gzipped file."""
    return io.BytesIO(gz.content(path)) if gz.is_gzipped(path) else path


MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
"""SOP Class UID of a DICOMDIR (Media Storage Directory Storage)."""


def has_pixels(ds: Dataset) -> bool:
    """True when the dataset carries pixel data (integer, float or double)."""
    return any(tag in ds for tag in PIXEL_TAGS)


def read_dataset(path: str | Path, *, stop_before_pixels: bool = False) -> Dataset:
    """Parse a DICOM file; a preamble-less file counts as DICOM only if it yields pixel data."""
    preamble = has_preamble(path)
    if not preamble and gz.head(path, 4) == bytes(4):  # group 0 holds no file's data elements:
        # a zero-filled file, which pydicom would walk 4 bytes at a time (minutes for a large one)
        raise UnreadableImage("not a DICOM file (no 'DICM' preamble, and it starts with zero "
                              "bytes, not a data element)", path)
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
            if not has_pixels(ds) and not known:
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


def _frame_rescale(arr: np.ndarray, ds: Dataset, path: Path) -> np.ndarray:
    """Rescale each frame of a multi-frame dataset with its (per-frame or shared) transformation
    (InvalidImage when values come out beyond float32's range: `image.as_float32`)."""
    if ds.get("ModalityLUTSequence") or "RescaleSlope" in ds:
        return as_float32(apply_modality_lut(arr, ds), str(path))
    out = arr.astype(np.float32)
    shared = (ds.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    for i in range(out.shape[0]):
        items = [per[i]] if i < len(per) else []
        for item in [*items, shared]:
            seq = item.get("PixelValueTransformationSequence")
            if seq:
                slope = as_number(seq[0].get("RescaleSlope"))
                icpt = as_number(seq[0].get("RescaleIntercept"))
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
    frames = int(as_number(ds.get("NumberOfFrames")) or 1)
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        return arr.astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 65535.0), True
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        return arr.astype(np.float32) / float(2 ** int(ds.get("BitsStored", 8)) - 1), True
    if frames > 1:
        arr = _frame_rescale(arr, ds, path)
        return arr * np.float32(as_number(ds.get("DoseGridScaling")) or 1.0), False
    arr = as_float32(np.asarray(apply_modality_lut(arr, ds)), str(path))  # a huge slope: refused
    if "DoseGridScaling" in ds:  # RT Dose: stored values × scaling = dose in Gy
        arr = arr * np.float32(as_number(ds.DoseGridScaling) or 1.0)
    return arr, False


def _order(positions: list[list[float] | None], iop: list[float] | None, numbers: list[Any],
           fallback_dz: float | None, path: Path) -> tuple[list[int], float, dict[str, Any]]:
    """Slice order, slice spacing and geometry notes from positions (or instance numbers)."""
    n = len(positions)
    info: dict[str, Any] = {}
    normal = np.cross(iop[:3], iop[3:]) if iop is not None and len(iop) == 6 else np.zeros(3)
    if np.linalg.norm(normal) > 1e-6 and all(p is not None and len(p) == 3 for p in positions):
        # a zero or parallel orientation has no slice normal: the numbers order the slices
        proj = np.array([float(np.dot(p, normal)) for p in positions])
        order = [int(i) for i in np.argsort(proj, kind="stable")]
        if n < 2:
            return order, float(fallback_dz or 1.0), {"z_spacing_source": "SliceThickness"}
        gaps = np.diff(proj[order])
        if np.any(gaps < 1e-3):
            places = n - int(np.sum(gaps < 1e-3))
            raise UnsupportedImage(f"{n} slices at only {places} distinct position"
                                   f"{'s' if places > 1 else ''} (multi-echo, repeated or "
                                   "multi-phase acquisition?)", path)
        dz = float(np.median(gaps))
        irregular = bool(np.max(np.abs(gaps - dz)) > 0.01 * dz + 1e-3)
        info = {"z_spacing_source": "ImagePositionPatient", "irregular_spacing": irregular}
        if irregular:
            info["slice_gaps"] = slice_gaps(gaps, dz)
        return order, dz, info
    keys = [(as_number(v) if as_number(v) is not None else float(i)) for i, v in enumerate(numbers)]
    order = [int(i) for i in np.argsort(keys, kind="stable")]
    source = "SpacingBetweenSlices/SliceThickness" if fallback_dz else "assumed"
    return order, float(fallback_dz or 1.0), {"z_spacing_source": source, "sorted_by": "number"}


def orientation_key(ds: Dataset) -> tuple[float, ...]:
    """A slice's ImageOrientationPatient rounded to 3 decimals (zeros when it has none): the
    slices of one volume share it."""
    return tuple(np.round(as_floats(ds.get("ImageOrientationPatient")) or [0] * 6, 3))


GAP_FACTOR = 1.5
"""A step between neighbouring slices this many times the series' usual spacing or more is a
gap (slices missing from the series)."""


def slice_gaps(steps: np.ndarray, spacing: float) -> dict[str, Any]:
    """What an unevenly spaced series looks like: its usual (median) slice spacing, the
    smallest and largest step between neighbouring slices, the number of gaps (steps of
    `GAP_FACTOR` spacings or more) and of slices they would hold at the usual spacing, and
    where the largest gap starts (slice index, 0 = lowest position)."""
    gaps = steps >= GAP_FACTOR * spacing
    missing = int(np.sum(np.rint(steps[gaps] / spacing) - 1)) if gaps.any() else 0
    return {"spacing_mm": round(spacing, 3), "smallest_step_mm": round(float(steps.min()), 3),
            "largest_step_mm": round(float(steps.max()), 3), "gaps": int(gaps.sum()),
            "missing_slices": missing, "largest_step_after_slice": int(np.argmax(steps))}


def gaps_text(gaps: dict[str, Any]) -> str:
    """A `slice_gaps` record in a few words: "2 slices missing?" or "uneven spacing"."""
    n = int(gaps.get("missing_slices") or 0)
    return f"{n} slice{'s' * (n != 1)} missing?" if n else "uneven spacing"


def _spacing_yx(ds: Dataset) -> tuple[tuple[float, float] | None, str | None]:
    """The in-plane pixel size the header states and its keyword; (None, None) when none is
    plausible (`image.plausible_spacing`: inf was refused as the user's own bad argument,
    1e-300 shown as 0, 1e308 overflowed the measures)."""
    for kw in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        sp = as_floats(tag_value(ds, kw))
        if sp and len(sp) == 2 and plausible_spacing(sp):
            return (sp[0], sp[1]), kw
    return None, None


def _frame_positions(ds: Dataset, frames: int) -> list[list[float] | None]:
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per) == frames:
        out: list[list[float] | None] = []
        for item in per:
            seq = item.get("PlanePositionSequence")
            out.append(as_floats(seq[0].get("ImagePositionPatient")) if seq else None)
        return out
    offsets = as_floats(ds.get("GridFrameOffsetVector"))
    ipp = as_floats(ds.get("ImagePositionPatient"))
    iop = as_floats(tag_value(ds, "ImageOrientationPatient"))
    if offsets and ipp and iop and len(offsets) == frames:
        normal = np.cross(iop[:3], iop[3:])
        return [[float(v) for v in np.asarray(ipp) + o * normal] for o in offsets]
    return [None] * frames


def _instance(value: Any) -> int | None:
    """A slice's InstanceNumber as a whole number (None: absent or not one)."""
    number = as_number(value)
    return int(number) if number is not None and float(number).is_integer() else None


def assemble(datasets: list[Dataset], paths: list[Path], source: Path, fmt: str) -> MedImage:
    """Build one MedImage from one (possibly multi-frame) dataset or a series of single frames."""
    first = datasets[0]
    if not has_pixels(first):
        uid = first.get("SOPClassUID") or getattr(first, "file_meta", {}).get(
            "MediaStorageSOPClassUID")
        if str(uid) == MEDIA_DIRECTORY:
            raise UnsupportedImage("a DICOMDIR (the index of a DICOM medium), not an image: "
                                   "give medq the folder it indexes", source)
        name = getattr(uid, "name", None)
        if name and "Image Storage" in name:  # an image object without its pixels: damaged
            raise UnreadableImage(f"DICOM {name} object has no pixel data (the file may be "
                                  "cut short)", source)
        raise UnsupportedImage(f"DICOM {name} object has no image pixels" if name else
                               "DICOM object of unknown SOP class has no image pixels", source)
    iop = as_floats(tag_value(first, "ImageOrientationPatient"))
    dz_tag = next((dz for dz in (as_number(tag_value(first, kw)) for kw in (
        "SpacingBetweenSlices", "SliceThickness")) if dz and plausible_spacing([dz])), None)
    frames = int(as_number(first.get("NumberOfFrames")) or 1)
    if len(datasets) == 1:
        arr, rgb = _pixels(first, paths[0])
        if frames > 1 and rgb:
            raise UnsupportedImage(f"multi-frame colour DICOM ({frames} frames, such as a video"
                                   " or cine loop): medq reads colour as one photograph",
                                   source)
        positions = _frame_positions(first, frames) if frames > 1 else [
            as_floats(tag_value(first, "ImagePositionPatient"))]
        numbers: list[Any] = list(range(frames))
        if frames == 1 and not rgb and (count := mosaic_count(first)):
            arr = unmosaic(arr, count, source)  # a Siemens mosaic: the volume of its tiles
            found = mosaic_positions(first, count, arr.shape[1:])
            positions, numbers = found or [None] * count, list(range(count))
    else:
        shapes = {(int(d.get("Rows", 0)), int(d.get("Columns", 0))) for d in datasets}
        if len(shapes) > 1:
            raise UnsupportedImage(f"series slices differ in size {sorted(shapes)}", source)
        iops = {orientation_key(d) for d in datasets}
        if len(iops) > 1:
            raise UnsupportedImage("series slices have different orientations", source)
        parts = [_pixels(d, p) for d, p in zip(datasets, paths, strict=True)]
        if any(rgb for _, rgb in parts):
            raise UnsupportedImage("colour DICOM series are not supported", source)
        arr, rgb = np.stack([a for a, _ in parts]), False
        positions = [as_floats(d.get("ImagePositionPatient")) for d in datasets]
        numbers = [d.get("InstanceNumber") for d in datasets]
    sp_yx, sp_source = _spacing_yx(first)
    meta: dict[str, Any] = {"format": fmt, "spacing_source": sp_source or "assumed",
                            "spacing_assumed": sp_source is None}
    if arr.ndim == 3 and not rgb:
        order, dz, info = _order(positions, iop, numbers, dz_tag, source)
        arr = arr[order]
        positions = [positions[i] for i in order]
        if len(datasets) > 1:
            paths = [paths[i] for i in order]
            datasets = [datasets[i] for i in order]  # the first by position speaks for them
            meta["instance_numbers"] = [_instance(numbers[i]) for i in order]
        else:
            meta["frame_order"] = order
        meta.update(info)
        spacing: tuple[float, ...] = (dz, *(sp_yx or (1.0, 1.0)))
    else:
        spacing = sp_yx or (1.0, 1.0)
    modality = "OP" if rgb else dicom_modality(first)
    if rgb and (as_text(first.get("Modality")) or "").upper() not in PHOTOGRAPHS:
        meta["modality_from"] = COLOUR  # a colour picture, read as a photograph, not stated so
    desc = [as_text(first.get(k))
            for k in ("SeriesDescription", "StudyDescription", "ProtocolName")]
    region = region_from_text(as_text(tag_value(first, "BodyPartExamined")), *desc)
    ts = getattr(getattr(first, "file_meta", None), "TransferSyntaxUID", None)
    meta.update({
        "dicom_files": [str(p) for p in paths],
        "dicom_modality": as_text(first.get("Modality")),
        "sop_class_uid": as_text(first.get("SOPClassUID")),
        "series_instance_uid": as_text(first.get("SeriesInstanceUID")),
        "study_instance_uid": as_text(first.get("StudyInstanceUID")),
        "patient_key": patient_digest(as_text(first.get("PatientID"))),
        "frame_of_reference_uid": as_text(first.get("FrameOfReferenceUID")),
        "series_description": desc[0],
        "protocol_name": desc[2],
        "window_center": as_number(tag_value(first, "WindowCenter")),
        "window_width": as_number(tag_value(first, "WindowWidth")),
        "photometric": as_text(first.get("PhotometricInterpretation")),
        "image_type": [as_text(v) for v in _values(first.get("ImageType"))],
        "complex_component": as_text(tag_value(first, "ComplexImageComponent")) or None,
        "transfer_syntax": str(ts) if ts else None,
        "bits_stored": int(first.get("BitsStored", 16)),
        **({} if rgb else storage_of(first)),  # the bits a derived file keeps where it can
        "number_of_frames": frames,
        "orientation": iop,
        "positions": positions if all(p is not None for p in positions) else None,
        **value_domain(first),
        **_inverted_span(first),
    })
    lossy = [c for c in (lossy_compression(d) for d in datasets) if c]
    if lossy:  # a series: the first lossy slice speaks for it, with how many slices are
        meta["lossy_compression"] = {**lossy[0], "slices": len(lossy)} if len(datasets) > 1 \
            else lossy[0]
    return MedImage(arr, spacing, modality, region, series_physics(datasets), str(source), meta)


def _inverted_span(ds: Dataset) -> dict[str, Any]:
    """`{"bit_range": [lo, hi]}` of a grey MONOCHROME1 file: the values its BitsStored and
    PixelRepresentation can hold, through its rescale, within which it is shown mirrored
    (`io.polarity.as_displayed`); {} for any other file."""
    if str(ds.get("PhotometricInterpretation", "")).upper() != "MONOCHROME1":
        return {}
    ends = bit_ends(int(ds.get("BitsStored", 16)), bool(int(ds.get("PixelRepresentation", 0))))
    try:
        mapped = np.asarray(apply_modality_lut(np.array(ends, np.int64), ds), np.float64)
    except (ValueError, TypeError, IndexError):  # a modality LUT that does not map them
        return {}
    return {"bit_range": sorted(float(v) for v in mapped)} if np.all(np.isfinite(mapped)) else {}


def _values(value: object) -> list[object]:
    """A (multi-valued) DICOM value as a list (empty for None)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)  # type: ignore[arg-type]
    return [value]


def read_file(path: str | Path) -> MedImage:
    """Read one DICOM file (single- or enhanced multi-frame, any decodable transfer syntax)."""
    path = Path(path)
    ds = read_dataset(path)
    try:
        return assemble([ds], [path], path, "dicom")
    except MedqError:
        raise
    except Exception as e:
        raise unreadable(e, path, "malformed DICOM") from e


