"""Write derived DICOM: a `.dcm` file (2D) or a series folder, with new UIDs and a fitted rescale.

The header template is the source DICOM (the image's `meta['dicom_files']` / `source`, or an
explicit `reference` file or series folder), else a fresh modality-correct dataset (CT/MR/PET
Image Storage, Secondary Capture otherwise). The output is RLE Lossless where the source was
(`dicom_values.keep_lossless`; coded by pylibjpeg-rle, 10× pydicom's own encoder:
`benchmarks/dicom_write.py`), else uncompressed Explicit VR Little Endian (a lossy source is
not coded lossy again); in the source's bits where its values fit them
(`dicom_values.encode_grey`); `ImageType` DERIVED\\SECONDARY, new SOPInstanceUID/SeriesInstanceUID,
DerivationDescription, private tags, overlays and multi-frame functional groups removed
(enhanced templates fall back to the legacy single-frame SOP class of their modality).
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import io
import re
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from medq.errors import InvalidParameter, MissingInput
from medq.image import MedImage
from medq.io.arrays import rgb_bytes
from medq.io.atomic import atomic_dir, atomic_path
from medq.io.dicom import DICOM_SUFFIXES, PIXEL_TAGS, has_preamble, read_dataset
from medq.io.dicom_series import read_series, series_in_folder
from medq.io.dicom_tags import (
    PHYSICS_TAGS,
    TRACER_TAGS,
    as_floats,
    as_number,
    as_text,
    mark_value_domain,
    read_physics,
    tag_value,
)
from medq.io.dicom_values import encode_grey, keep_lossless, keep_padding, padding_of
from medq.io.geometry import dicom_geometry

_STRIP = (
    "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence", "NumberOfFrames",
    "FrameIncrementPointer", "IconImageSequence", "ModalityLUTSequence", "PixelPaddingValue",
    "PixelPaddingRangeLimit", "SmallestImagePixelValue", "LargestImagePixelValue",
    "SmallestPixelValueInSeries", "LargestPixelValueInSeries", "PlanarConfiguration",
    "GridFrameOffsetVector", "DimensionIndexSequence", "DimensionOrganizationSequence",
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "PaletteColorLookupTableUID", "DataSetTrailingPadding", "DoseGridScaling", *PIXEL_TAGS,
)
_STORAGE = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4",
            "PT": "1.2.840.10008.5.1.4.1.1.128"}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def _set(ds: Dataset, keyword: str, value: Any) -> None:
    vr = dictionary_VR(keyword)
    if vr == "IS":
        value = int(round(float(value)))
    elif vr == "DS":
        value = format_number_as_ds(float(value))
    elif vr in ("FD", "FL"):
        value = float(value)
    else:
        value = str(value)[:64]
    setattr(ds, keyword, value)


def _templates(image: MedImage, reference: str | Path | None) -> list[Dataset]:
    if reference is not None:
        ref = Path(reference)
        named = series_in_folder(ref)  # one series of a folder holding several
        if not ref.exists() and not named:
            raise MissingInput("reference DICOM does not exist", ref)
        if ref.is_dir() or named:
            img = read_series(*named) if named else read_series(ref)
            files = [Path(f) for f in img.meta["dicom_files"]]
        else:
            files = [ref]
        return [read_dataset(f, stop_before_pixels=True) for f in files]
    files = [Path(f) for f in image.meta.get("dicom_files") or []]
    if not files and image.source and Path(image.source).is_file() and has_preamble(image.source):
        files = [Path(image.source)]
    found = [read_dataset(f, stop_before_pixels=True) for f in files if f.is_file()]
    return found if len(found) == len(files) else found[:1]


def _new_dataset(image: MedImage) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = _STORAGE.get(image.modality, _SECONDARY_CAPTURE)
    ds.Modality = image.modality
    ds.PatientName, ds.PatientID = "ANONYMOUS", ""  # no patient: a shared ID would join images
    ds.StudyInstanceUID = image.meta.get("study_instance_uid") or generate_uid()
    ds.FrameOfReferenceUID = image.meta.get("frame_of_reference_uid") or generate_uid()
    ds.StudyDate = dt.date.today().strftime("%Y%m%d")
    ds.ImageOrientationPatient = image.meta.get("orientation") or [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    if ds.SOPClassUID == _SECONDARY_CAPTURE:
        ds.ConversionType = "WSD"
    if image.region != "unknown":
        ds.BodyPartExamined = image.region.upper()
    if image.is_volume:
        ds.SliceThickness = format_number_as_ds(image.spacing[0])
        ds.SpacingBetweenSlices = format_number_as_ds(image.spacing[0])
    return ds


def _keep_lossy(ds: Dataset, lossy: dict[str, Any] | None) -> None:
    """State in `ds` that its pixels were once lossy compressed, as DICOM requires of every
    later copy (Lossy Image Compression "01", with the ratio and method where known): a JPEG
    file's, or a DICOM source lossy by its transfer syntax alone, written out uncompressed."""
    if not lossy or as_text(ds.get("LossyImageCompression")) == "01":
        return
    ds.LossyImageCompression = "01"
    if lossy.get("ratio"):
        ds.LossyImageCompressionRatio = format_number_as_ds(float(lossy["ratio"]))
    if lossy.get("method"):
        ds.LossyImageCompressionMethod = str(lossy["method"])


def _prepare(tpl: Dataset, image: MedImage) -> None:
    """Strip pixels, private tags, overlays and multi-frame groups; make the SOP class legacy."""
    frames = int(as_number(tpl.get("NumberOfFrames")) or 1)
    if frames > 1 or "PerFrameFunctionalGroupsSequence" in tpl:
        for kw in ("PixelSpacing", "ImageOrientationPatient", "SliceThickness", "WindowCenter",
                   "WindowWidth", "RescaleType"):
            if kw not in tpl and tag_value(tpl, kw) is not None:
                setattr(tpl, kw, tag_value(tpl, kw))
        if "EchoTime" not in tpl and tag_value(tpl, "EffectiveEchoTime") is not None:
            tpl.EchoTime = tag_value(tpl, "EffectiveEchoTime")  # an enhanced MR's echo
        tpl.SOPClassUID = _STORAGE.get(image.modality, _SECONDARY_CAPTURE)
    tpl.remove_private_tags()
    for kw in _STRIP:
        if kw in tpl:
            delattr(tpl, kw)
    for tag in [e.tag for e in tpl if 0x5000 <= e.tag.group <= 0x60FF]:
        del tpl[tag]


PLAIN_SYMBOLS = str.maketrans({"→": "->", "≥": ">=", "≤": "<=", "×": "x", "–": "-",
                               "—": "-", "σ": "sigma", "µ": "u", "…": "..."})
"""medq's symbols in plain text: a header in Latin-1 (ISO_IR 100) or ASCII, as most are, would
store them as '?'."""


def _derivation(image: MedImage, description: str | None, before: str | None = None) -> str:
    """DerivationDescription (at most 1024 characters): the description given, else the
    image's history, in plain symbols (`PLAIN_SYMBOLS`), followed by the source's own (`before`:
    a restored file still says it was simulated, or lossy converted)."""
    if description:
        text = description
    else:
        steps = [s.get("name") or s.get("op") or s.get("step") or str(s) if isinstance(s, dict)
                 else str(s) for s in image.meta.get("history", [])]
        text = "medq: " + "; ".join(str(s) for s in steps) if steps else "medq derived image"
    if before and before not in text:
        text = f"{text}; from: {before}"
    return text.translate(PLAIN_SYMBOLS)[:1024]


def _series_description(series: str, simulated: bool) -> str:
    """A derived series' description (at most 64 characters): the source's ending in
    ` derived`, or in ` simulated` once any medq simulation made its pixels, kept for good."""
    base = series.removesuffix(" simulated").removesuffix(" derived")
    mark = " simulated" if simulated or series.endswith(" simulated") else " derived"
    return base[:64 - len(mark)] + mark


def _simulated(image: MedImage) -> bool:
    """Whether the image's history holds a degradation by `medq simulate` (synthetic pixels)."""
    return any(isinstance(s, dict) and s.get("step") == "simulate"
               for s in image.meta.get("history", []))


def _dataset(base: Dataset, image: MedImage, k: int, stored: np.ndarray, rescale: tuple,
             uids: dict[str, str], description: str | None, own: bool = True,
             bits: int = 16) -> Dataset:
    """One derived slice: header from `base` (`own`: the header of this very slice's source,
    not one shared by every slice), new UIDs, geometry, rescale and pixel data (`bits` of
    each grey value stored)."""
    ds = copy.deepcopy(base)
    # the 128-byte preamble is free for any use (a TIFF header, a program: DICOM/PE polyglots);
    # a derived file starts from zeros rather than carry the source's on
    ds.preamble = bytes(128)
    src_sop, src_class = as_text(ds.get("SOPInstanceUID")), as_text(ds.get("SOPClassUID"))
    padding = padding_of(ds)
    before = as_text(ds.get("DerivationDescription"))
    old_ipp, old_location = as_floats(ds.get("ImagePositionPatient")), ds.get("SliceLocation")
    _prepare(ds, image)
    mark_value_domain(ds, image.meta)
    _keep_lossy(ds, image.meta.get("lossy_compression"))
    phys_before = read_physics(ds)
    for key, value in image.physics.items():
        if key in phys_before and phys_before[key] == value:
            continue
        if key == "exposure_mAs":
            _set(ds, "ExposureInmAs", value)
            _set(ds, "Exposure", value)
        elif key in PHYSICS_TAGS and value is not None:
            _set(ds, PHYSICS_TAGS[key], value)
        elif key in TRACER_TAGS and value is not None and image.modality == "PT":
            if not len(ds.get("RadiopharmaceuticalInformationSequence") or []):
                ds.RadiopharmaceuticalInformationSequence = [Dataset()]
            _set(ds.RadiopharmaceuticalInformationSequence[0], TRACER_TAGS[key], value)
    now = dt.datetime.now()
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = uids["series"]
    ds.StudyInstanceUID = ds.get("StudyInstanceUID") or uids["study"]
    ds.SeriesNumber = int(as_number(ds.get("SeriesNumber")) or 0) + 1000
    number = as_number(ds.get("InstanceNumber"))  # one slice keeps its place in the series
    ds.InstanceNumber = int(number) if not image.is_volume and number is not None and number >= 0 \
        else k + 1
    ds.SeriesDescription = _series_description(as_text(ds.get("SeriesDescription")) or "medq",
                                               _simulated(image))
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.Modality = ds.get("Modality") or image.modality
    if not as_text(ds.get("BodyPartExamined")) and image.region != "unknown":
        ds.BodyPartExamined = image.region.upper()  # a region medq was told, not the header
    old_type = list(ds.get("ImageType") or [])
    ds.ImageType = ["DERIVED", "SECONDARY", *old_type[2:]]
    ds.DerivationDescription = _derivation(image, description, before)
    if src_sop and src_class:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = src_class, src_sop
        ds.SourceImageSequence = [ref]
    sp_kw = image.meta.get("spacing_source")
    if sp_kw != "assumed":  # a DICOM source without a usable spacing keeps what it stated
        sp_kw = sp_kw if sp_kw in ("ImagerPixelSpacing", "NominalScannedPixelSpacing") \
            else "PixelSpacing"
        setattr(ds, sp_kw, [format_number_as_ds(s) for s in image.spacing[-2:]])
    iop = as_floats(ds.get("ImageOrientationPatient")) or image.meta.get("orientation")
    positions = image.meta.get("positions")
    nz = image.shape[0] if image.is_volume else 1
    if positions and len(positions) == nz:
        ipp = positions[k]
    else:
        origin = positions[0] if positions else (as_floats(ds.get("ImagePositionPatient"))
                                                 or [0.0, 0.0, 0.0])
        normal = np.cross(iop[:3], iop[3:]) if iop else np.array([0.0, 0.0, 1.0])
        dz = image.spacing[0] if image.is_volume else 0.0
        ipp = list(np.asarray(origin, dtype=float) + k * dz * normal)
    ds.ImagePositionPatient = [format_number_as_ds(float(v)) for v in ipp]
    if iop:
        ds.ImageOrientationPatient = [format_number_as_ds(float(v)) for v in iop]
        unmoved = own and old_location is not None and old_ipp and np.allclose(
            old_ipp, ipp, atol=1e-4)  # (a shared header's location is another slice's)
        if unmoved:  # the slice stays where it was: its stated location too
            ds.SliceLocation = old_location
        elif "SliceLocation" in ds or "SpacingBetweenSlices" in ds:
            ds.SliceLocation = format_number_as_ds(float(np.dot(ipp, np.cross(iop[:3], iop[3:]))))
    if image.is_volume and "SpacingBetweenSlices" in ds:
        ds.SpacingBetweenSlices = format_number_as_ds(image.spacing[0])
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    if image.is_rgb:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        for kw in ("RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter",
                   "WindowWidth", "VOILUTSequence"):
            if kw in ds:
                delattr(ds, kw)
    else:
        mono1 = as_text(ds.get("PhotometricInterpretation")) == "MONOCHROME1"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME1" if mono1 else "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = stored.dtype.itemsize * 8, bits, bits - 1
        ds.PixelRepresentation = int(stored.dtype.kind == "i")
        ds.RescaleSlope, ds.RescaleIntercept = (format_number_as_ds(v) for v in rescale)
        keep_padding(ds, padding, stored, rescale)
    data = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
    ds["PixelData"].VR = "OB" if stored.dtype.itemsize == 1 else "OW"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    keep_lossless(ds, image.meta)
    return ds


RUN_TOKEN = secrets.token_hex(16)
"""Drawn once per process (inherited by forked workers): the derived series of one command."""

_WRITTEN: dict[tuple[str, str], tuple[int, set[str]]] = {}
"""(source series, folder) → (generation, source instances written into it): the same
instance written there again (another derivative of one slice) starts a new derived series."""


def _series_uid(templates: list[Dataset], path: Path) -> str:
    """The SeriesInstanceUID of a derived 2D file: the slices of one source series written into
    one folder by one command share one derived series (each slice is its own input when the
    series was read file by file), two derivatives of one slice do not; anything else gets a
    new UID."""
    source = as_text(templates[0].get("SeriesInstanceUID")) if templates else ""
    instance = as_text(templates[0].get("SOPInstanceUID")) if templates else ""
    if not source or not instance:
        return generate_uid()
    key = (source, str(path.resolve().parent))
    generation, written = _WRITTEN.get(key, (0, set()))
    if instance in written:
        generation, written = generation + 1, set()
    _WRITTEN[key] = (generation, written | {instance})
    return generate_uid(entropy_srcs=[RUN_TOKEN, source, key[1], str(generation)])


def _not_an_earlier_output(folder: Path) -> str | None:
    """What in `folder` is not one series medq wrote (files `IM00001.dcm`, … whose
    DerivationDescription is medq's, of one SeriesInstanceUID), or None when it is that (or
    empty): only such a folder is replaced. A scanner export named `IM0001.dcm`, … looked like
    medq's own by name, and writing into it deleted its series."""
    series = set()
    for f in sorted(folder.iterdir()):
        if not re.fullmatch(r"IM\d{5}\.dcm", f.name):
            return f"other files ({f.name}, …)"
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True,
                                 specific_tags=["DerivationDescription", "SeriesInstanceUID"])
        except (OSError, pydicom.errors.InvalidDicomError):
            return f"a file medq did not write ({f.name})"
        if not (as_text(ds.get("DerivationDescription")) or "").startswith("medq"):
            return f"DICOM files medq did not write ({f.name}, …)"
        series.add(as_text(ds.get("SeriesInstanceUID")))
    return f"{len(series)} series" if len(series) > 1 else None


def refuse_volume_as_file(image: MedImage, path: Path) -> bool:
    """Whether `path` names one DICOM file (`.dcm`, `.gz`…), not a series folder;
    InvalidParameter when it does and `image` is a volume."""
    as_file = path.suffix.lower() == ".gz" or path.suffix.lower() in DICOM_SUFFIXES
    if as_file and image.is_volume:
        raise InvalidParameter("a volume is written as a DICOM series folder; give a path without "
                               f"the {path.suffix} suffix", path)
    return as_file


def write_dicom(image: MedImage, path: str | Path, *, reference: str | Path | None = None,
                description: str | None = None) -> Path:
    """Write a derived DICOM: one `.dcm` file (2D; `.gz`: gzipped, as the input medq read) or a
    series folder of IM00001.dcm, … (any)."""
    path = Path(path)
    as_file = refuse_volume_as_file(image, path)
    if not as_file and path.exists():
        if not path.is_dir():
            raise InvalidParameter("DICOM series target exists and is not a folder", path)
        if other := _not_an_earlier_output(path):
            raise InvalidParameter(f"will not replace a folder holding {other}; write the "
                                   "series to a new folder", path)
    templates = _templates(image, reference)
    if not templates and not image.meta.get("orientation") and (
            stated := dicom_geometry(image)):  # a NIfTI, MetaImage or NRRD file's own frame
        image = image.evolve(meta={**image.meta, **stated})
    if image.is_rgb:
        stored_all = rgb_bytes(image.array)[None]
        rescale, bits = (1.0, 0.0), 8
    else:
        stored_all, rescale, bits = encode_grey(image)
        stored_all = stored_all if image.is_volume else stored_all[None]
    base_new = _new_dataset(image)
    uids = {"series": _series_uid(templates, path) if as_file else generate_uid(),
            "study": str(base_new.StudyInstanceUID)}
    out = []
    for k in range(stored_all.shape[0]):
        own = len(templates) == stored_all.shape[0]  # each slice its own source's header
        tpl = templates[k] if own else (templates[0] if templates else base_new)
        out.append(_dataset(tpl, image, k, stored_all[k], rescale, uids, description, own,
                            bits))
    if as_file:
        with atomic_path(path) as tmp:
            if path.suffix.lower() == ".gz":
                buffer = io.BytesIO()
                pydicom.dcmwrite(buffer, out[0], enforce_file_format=True)
                tmp.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
            else:
                pydicom.dcmwrite(tmp, out[0], enforce_file_format=True)
        return path
    with atomic_dir(path) as tmp:
        for k, ds in enumerate(out):
            pydicom.dcmwrite(tmp / f"IM{k + 1:05d}.dcm", ds, enforce_file_format=True)
    return path
