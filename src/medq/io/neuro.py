"""The other research volume formats, through nibabel: FreeSurfer MGH/MGZ, Analyze 7.5, MINC,
Philips PAR/REC, AFNI HEAD/BRIK and ECAT 7 (CTI/Siemens PET).

They are read like NIfTI (`nifti.image_from_nifti`: medq's `(z, y, x)` array, the header zooms
reversed as spacing, nibabel's voxel-to-world affine kept in `meta['affine']`, one volume of a
4D file as `<file>@volume=<k>`), with `meta['format']` naming the format. PAR/REC is always MR,
and so is an MGH volume whose header states a repetition time (FreeSurfer keeps TR, TE, TI and
the flip angle of the scan it came from); both give those as physics. ECAT is always PET: its
frames are the volumes of a dynamic scan, in the calibrated units its header states, with the
radionuclide, tracer and each frame's start and duration as physics. Other files say nothing of
their modality: a medq sidecar, `--modality` or the prompt classifier does. A MINC file's axes
are read by their names (`minc`: its time axis, which nibabel keeps first, gives the volumes).

medq writes MGH/MGZ and Analyze (`save` by suffix); MINC, PAR/REC, AFNI and ECAT it reads only,
so a restored or simulated result of one of them is written as NIfTI (`writable_name`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.brikhead import AFNIImage

from medq.errors import InvalidParameter, MedqError, unreadable
from medq.image import MedImage
from medq.io import gz
from medq.io.atomic import atomic_path

SUFFIXES = {".mgh": "mgh", ".mgz": "mgh", ".hdr": "analyze", ".img": "analyze",
            ".mnc": "minc", ".par": "parrec", ".rec": "parrec", ".head": "afni",
            ".brik": "afni", ".v": "ecat"}
"""File name suffix (lower case) → format, for the formats this module reads."""

FORMATS = ("mgh", "analyze", "minc", "parrec", "afni", "ecat")
"""Values of `meta['format']` (and of `io.sniff`) of these files."""

WRITABLE = {"mgh": nib.MGHImage, "analyze": nib.AnalyzeImage}
"""The formats medq writes, with nibabel's image class of each."""

HEADER_OF = {".img": ".hdr", ".rec": ".par", ".brik": ".head", ".brik.gz": ".head"}
"""Data file ending → its header's: a data file is read through its header, and skipped when a
folder holding its header is walked, so that a pair is one input (`is_data_file`)."""

MGH_PHYSICS = {"tr": "tr_ms", "te": "te_ms", "ti": "ti_ms", "flip_angle": "flip_angle_deg"}
"""MGH header field (ms; the flip angle in radians) → medq physics key, read and written."""

NAMES = {"mgh": "FreeSurfer MGH", "analyze": "Analyze", "minc": "MINC", "parrec": "PAR/REC",
         "afni": "AFNI", "ecat": "ECAT 7"}
"""How messages name each format."""


def suffix_format(path: Path) -> str | None:
    """The format a file name's suffix names (`.brik.gz` included), or None."""
    name = path.name.lower()
    return "afni" if name.endswith(".brik.gz") else SUFFIXES.get(path.suffix.lower())


def is_data_file(path: Path) -> bool:
    """True for the data file of a pair whose header lies beside it (`x.img` with `x.hdr`,
    `x.REC` with `x.PAR`, `x+orig.BRIK.gz` with `x+orig.HEAD`), in either letter case."""
    name = path.name
    ending = next((e for e in HEADER_OF if name.lower().endswith(e)), None)
    if ending is None:
        return False
    stem, header = name[:len(name) - len(ending)], HEADER_OF[ending]
    return any((path.parent / (stem + h)).is_file() for h in (header, header.upper()))


DICOM_UNITS = {"bq/cc": "BQML", "bq/ml": "BQML"}
"""ECAT data units (lower case) → DICOM's code for them (Units, 0054,1001); other units are not
stated as physics."""


def open_neuro(path: str | Path, fmt: str) -> Any:
    """nibabel's image of a file of one of `FORMATS` (ECAT's, which nibabel does not recognise
    by content, through its own loader)."""
    return nib.ecat.load(str(path)) if fmt == "ecat" else nib.load(str(path))


def spatial(img: Any) -> Any:
    """An image whose header states its voxel sizes, with its axes as medq reads them: ECAT's
    keeps the sizes in its frames' subheaders, so its frames are viewed (not read) as a NIfTI
    image on the same affine; MINC's axes are put in x, y, z, time order (`minc.as_read`)."""
    from medq.io import minc

    if isinstance(img, nib.ecat.EcatImage):
        return nib.Nifti1Image(img.dataobj, img.affine)
    return minc.as_read(img) if minc.is_minc(img) else img


def _opened(path: Path, fmt: str, volume: int | None) -> AbstractContextManager[Any]:
    """nibabel's image of the file, in a context; one volume of a gzipped .mgz or AFNI
    .BRIK.gz is read from the file unpacked once for all its volumes (`gz.unpacked_image`)."""
    if volume is not None and fmt == "mgh" and gz.is_gzipped(path):
        return gz.unpacked_image(path, nib.MGHImage)
    if volume is not None and fmt == "afni":
        files = AFNIImage.filespec_to_file_map(str(path))
        data = Path(files["image"].filename)
        if data.is_file() and gz.is_gzipped(data):
            return gz.unpacked_image(data, AFNIImage,
                                     {"header": Path(files["header"].filename)})
    return nullcontext(open_neuro(path, fmt))


def read_neuro(path: str | Path, fmt: str, volume: int | None = None) -> MedImage:
    """Read a file of one of `FORMATS` (a data file through its header) as a MedImage."""
    from medq.io.nifti import image_from_nifti

    path = Path(path)
    try:
        with _opened(path, fmt, volume) as img:
            image = image_from_nifti(spatial(img), path, volume, fmt)
            physics = _physics(img, fmt, volume or 0)
    except MedqError:
        raise
    except Exception as e:
        raise unreadable(e, path, f"not a readable {NAMES[fmt]} file") from e
    if fmt == "parrec" or (fmt == "mgh" and physics.get("tr_ms")):
        return image.evolve(modality="MR", physics=physics)
    if fmt == "ecat":
        return image.evolve(modality="PT", physics=physics)
    return image


def _text(value: Any) -> str:
    """A header's fixed-width text field as a stripped string."""
    raw = value.item() if hasattr(value, "item") else value
    return (raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)).strip("\0 ")


def _ecat_physics(img: Any, frame: int) -> dict[str, Any]:
    """What an ECAT header states of the tracer and of one frame (empty texts and zeros left
    out): radionuclide, tracer, half-life, units (DICOM's code), the frame's start and
    duration; the keys DICOM PET physics has (`dicom_tags.read_physics`)."""
    header, sub = img.header, img.get_subheaders().subheaders[frame]
    texts = {"radionuclide": _text(header["isotope_name"]),
             "radiopharmaceutical": _text(header["radiopharmaceutical"]),
             "pet_units": DICOM_UNITS.get(_text(header["data_units"]).lower(), ""),
             "manufacturer": "CTI/Siemens ECAT"}
    numbers = {"half_life_s": float(header["isotope_halflife"]),
               "frame_start_ms": float(sub["frame_start_time"]),
               "frame_duration_ms": float(sub["frame_duration"])}
    return {**{k: v for k, v in texts.items() if v},
            **{k: round(v, 4) for k, v in numbers.items()
               if np.isfinite(v) and (v > 0 or k == "frame_start_ms")}}


def _physics(img: Any, fmt: str, frame: int = 0) -> dict[str, Any]:
    """Acquisition parameters a PAR, MGH or ECAT header states (positive values only; an
    ECAT frame's own timing)."""
    header = img.header
    if fmt == "ecat":
        return _ecat_physics(img, frame)
    if fmt == "mgh":
        found = {name: np.degrees(header[key]) if key == "flip_angle" else header[key]
                 for key, name in MGH_PHYSICS.items()}
    elif fmt == "parrec":
        defs = header.image_defs
        found = {"tr_ms": np.ravel(header.general_info["repetition_time"])[0],
                 "te_ms": defs["echo_time"][0], "flip_angle_deg": defs["image_flip_angle"][0]}
    else:
        return {}
    return {k: round(float(v), 4) for k, v in found.items() if np.isfinite(v) and float(v) > 0}


def write_neuro(image: MedImage, path: str | Path, fmt: str) -> Path:
    """Write `image` as float32 MGH/MGZ or Analyze (.hdr + .img), atomically (the .img of an
    Analyze pair is renamed into place before its .hdr)."""
    from medq.io.nifti import nifti_affine

    path = Path(path)
    if fmt not in WRITABLE:
        raise InvalidParameter(f"medq reads {NAMES.get(fmt, fmt)} files but does not write "
                               f"them; write .nii.gz", path)
    if image.is_rgb:
        raise InvalidParameter(f"RGB photographs are not written as {NAMES[fmt]}; use "
                               ".png/.tif/.npy", path)
    data = np.ascontiguousarray(image.array.T, dtype=np.float32)
    if image.meta.get("one_slice") and data.ndim == 2:
        data = data[:, :, None]
    img = WRITABLE[fmt](data, nifti_affine(image)[0])
    if fmt == "analyze":
        header_path = path.with_suffix(".hdr")
        with atomic_path(header_path) as tmp, atomic_path(path.with_suffix(".img")) as tmp_img:
            nib.save(img, str(tmp))  # writes tmp and its .img
            tmp.with_suffix(".img").replace(tmp_img)
        return header_path
    for key, name in MGH_PHYSICS.items():  # the scan parameters FreeSurfer keeps
        if (value := image.physics.get(name)) is not None:
            img.header[key] = np.radians(value) if key == "flip_angle" else value
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path


def writable_name(name: str) -> str:
    """The file name a result of an input named `name` is written under: its own when medq
    writes its format, else the same stem as NIfTI (`scan.PAR` → `scan.nii.gz`)."""
    fmt = suffix_format(Path(name))
    if fmt is None or fmt in WRITABLE:
        return name
    ending = ".brik.gz" if name.lower().endswith(".brik.gz") else Path(name).suffix
    return name[:len(name) - len(ending)] + ".nii.gz"
