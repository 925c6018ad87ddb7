"""Medical image I/O: `load` any supported file or DICOM series folder, `save` by target suffix.

Formats: DICOM (file, gzipped file, series folder, enhanced multi-frame, compressed transfer
syntaxes), NIfTI (.nii/.nii.gz), MetaImage (.mha/.mhd) and NRRD (.nrrd/.nhdr), PNG/JPEG/TIFF and
NumPy .npy; through nibabel also FreeSurfer MGH/MGZ and Analyze (read and written), MINC,
PAR/REC, AFNI HEAD/BRIK and ECAT 7 PET (read: `medq.io.neuro`).
Every failure is a `medq.errors.InputError` subclass naming the path in one line. Non-finite
pixels: an image with no finite pixel raises `InvalidImage`; otherwise NaN/±inf are replaced by
the minimum finite value and the replaced fraction is recorded in `meta['nonfinite_fraction']`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medq.errors import (
    InvalidImage,
    InvalidParameter,
    MedqError,
    UnreadableImage,
    UnsupportedImage,
    unreadable,
)
from medq.image import MedImage
from medq.io import archive, dicom, dicom_series, dicom_write, gz, itk, neuro, nifti, raster
from medq.io.arrays import (
    as_image,
    finite_pixels,
    from_array,
    named_changes,
    with_nonfinite,
)
from medq.io.atomic import cannot_write
from medq.io.bids import (
    BIDS_META,
    carried_sidecar,
    inherited_sidecar,
    kept_sidecar,
    sidecar_acquisition,
)
from medq.io.polarity import as_displayed, integer_storage
from medq.io.sidecar import check_sidecar_writable, read_sidecar, write_sidecar
from medq.io.special import SPECIAL_REASON, is_special_file
from medq.io.units import infer_modality
from medq.io.volumes import VOLUME_MARK, missing, volume_in_file

__all__ = ["FORMATS", "NOT_IMAGE_SUFFIXES", "as_image", "check_writable", "from_array", "load",
           "load_series_files", "read_sidecar", "save", "sniff", "target_format",
           "write_sidecar"]

FORMATS = ("dicom", "dicom-series", "nifti", "metaimage", "nrrd", "png", "jpeg", "tiff", "npy",
           *neuro.FORMATS)
"""Values of `meta['format']` and of `sniff`."""

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"), (b"II+\x00", "tiff"), (b"MM\x00+", "tiff"), (b"\x93NUMPY", "npy"),
    (b"NRRD000", "nrrd"), (b"ObjectType = Image", "metaimage"),
)
_DUAL_TIFF = tuple(magic for magic, fmt in _MAGIC if fmt == "tiff")
"""A DICOM file's preamble may be a TIFF header (pydicom's MR_small is both): one cut short
before its DICM prefix is, by its name, a DICOM file cut short, not a TIFF."""

NOT_IMAGE_SUFFIXES = (".txt", ".md", ".json", ".csv", ".xml", ".html", ".pdf", ".py", ".yaml",
                      # what a PACS disc export carries beside its images: a viewer and its files
                      ".htm", ".js", ".css", ".exe", ".dll", ".ini", ".inf", ".cab", ".jar",
                      ".ico", ".log", ".ds_store", ".rtf", ".doc", ".docx", ".xls",
                      ".xlsx", ".icc", ".icm",
                      # databases (medq's own QC results among them) and their journals
                      *(f"{db}{journal}" for db in (".sqlite", ".sqlite3", ".db", ".db3")
                        for journal in ("", "-wal", "-shm", "-journal")),
                      *archive.ARCHIVE_ENDINGS, *itk.DATA_FILE_ENDINGS, *itk.SEGMENTATION_ENDINGS)
"""Name endings of files that are never images of their own (skipped when folders are walked;
the data files of detached MetaImage/NRRD headers are read through their header, 3D Slicer
segmentations are label maps; the data file of an Analyze, PAR/REC or AFNI pair is skipped by
`neuro.is_data_file`; an archive is opened only when named as an input, `medq.io.archive`)."""

EXPECTED = ("DICOM, NIfTI, MetaImage, NRRD, MGH/MGZ, Analyze, MINC, PAR/REC, AFNI, PNG, JPEG, "
            "TIFF or .npy")
"""The formats `load` reads, as error messages name them."""


def _suffix_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if path.suffix.lower() in dicom.DICOM_SUFFIXES:
        return "dicom"
    if path.suffix.lower() == ".npy":
        return "npy"
    if path.suffix.lower() in itk.ITK_FORMATS:
        return itk.ITK_FORMATS[path.suffix.lower()]
    if (fmt := neuro.suffix_format(path)) is not None:
        return fmt
    return raster.RASTER_FORMATS.get(path.suffix.lower())


def sniff(path: str | Path) -> str:
    """Name the format of `path` from its content first, then its suffix (one of `FORMATS`).

    Raises MissingInput, UnreadableImage (empty file) or UnsupportedImage (unknown kind of file).
    """
    p = Path(path)
    if dicom_series.series_in_folder(p):
        return "dicom-series"
    named = volume_in_file(p)
    if named:
        return sniff(named[0])
    if not p.exists():
        raise missing(p)
    if p.is_dir():
        return "dicom-series"
    if is_special_file(p):
        raise UnsupportedImage(SPECIAL_REASON, p)
    if archive.is_archive(p):
        raise archive.refusal(p)
    try:
        with open(p, "rb") as fh:
            head = fh.read(352)
    except OSError as e:
        raise UnreadableImage(f"cannot read file ({e.strerror or e})", p) from e
    if not head:
        raise UnreadableImage("file is empty", p)
    if head[128:132] == b"DICM":
        return "dicom"
    if len(head) < 132 and head.startswith(_DUAL_TIFF) and p.suffix.lower() in \
            dicom.DICOM_SUFFIXES:
        raise UnreadableImage(f"DICOM file cut short ({len(head)} bytes, before its DICM "
                              "prefix)", p)
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if (named := neuro.suffix_format(p)) is not None:  # a NIfTI pair's .hdr/.img too
        return named
    if head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:8] == b"n+2\x00":
        return "nifti"
    by_suffix = _suffix_format(p)
    if head.startswith(gz.GZIP_MAGIC) and by_suffix in raster.RASTER_FORMATS.values():
        by_suffix = None  # no picture is gzipped: a gzipped NIfTI or DICOM misnamed
    if by_suffix is not None:
        return by_suffix
    if p.name.lower().endswith(NOT_IMAGE_SUFFIXES):
        raise UnsupportedImage(f"unsupported file type {p.suffix!r}; expected {EXPECTED}", p)
    if head.startswith(gz.GZIP_MAGIC):
        return "dicom" if dicom.has_preamble(p) else "nifti"
    if is_text(head):  # a README or LOCKFILE of an export: never a DICOM, whose tags hold zeros
        raise UnsupportedImage("a plain-text file, not an image", p)
    return "dicom"  # no signature: a preamble-less DICOM is the only candidate left


def is_text(head: bytes) -> bool:
    """True when the first bytes of a file are plain text: UTF-8 (a character cut at the end
    allowed) of printable characters, tabs and line ends only. A DICOM data set without its
    preamble begins with tag numbers and lengths, which hold zero bytes, so it never is."""
    if not head or b"\0" in head:
        return False
    for cut in range(4):  # the read may end inside a multi-byte character
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return all(c.isprintable() or c in "\t\n\r\f\v" for c in text)
    return False


def _read(p: Path, fmt: str, volume: int | None = None) -> MedImage:
    """The image file `p` (format `fmt`) holds, or its `volume`-th volume (4D files)."""
    if volume is not None and fmt not in ("nifti", "metaimage", "nrrd", *neuro.FORMATS):
        raise InvalidParameter(f"only 4D NIfTI, MetaImage, NRRD, MGH, Analyze, MINC, PAR/REC "
                               f"and AFNI files have volumes to name with {VOLUME_MARK}", p)
    if fmt == "dicom-series":
        named = dicom_series.series_in_folder(p)
        return dicom_series.read_series(*named) if named else dicom_series.read_series(p)
    if fmt == "dicom":
        try:
            return dicom.read_file(p)
        except UnreadableImage as e:  # a file medq took for DICOM only for want of a signature
            if (p.suffix and p.suffix.lower() not in dicom.DICOM_SUFFIXES
                    and not dicom.has_preamble(p)):
                raise UnsupportedImage(f"unsupported file type {p.suffix!r}; expected "
                                       f"{EXPECTED}", p) from e
            raise
    if fmt == "nifti":
        return nifti.read_nifti(p, volume)
    if fmt == "npy":
        return raster.read_npy(p)
    if fmt in neuro.FORMATS:
        return neuro.read_neuro(p, fmt, volume)
    if fmt in ("metaimage", "nrrd"):
        return itk.read_itk(p, fmt, volume)
    return raster.read_raster(p, fmt)


def load(path: str | Path, *, modality: str | None = None, region: str | None = None) -> MedImage:
    """Load a medical image file, a DICOM series folder (its DICOM files only: other files in
    it are not read), one series of a folder holding several (`<folder>#<SeriesInstanceUID>`)
    or one volume of a 4D file (`<file>@volume=<k>`); `modality`/`region` override the file's."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameter(f"medq.load reads a file or folder path, not a {type(path).__name__}"
                               ": give arrays to medq.assess, describe or restore directly, or "
                               "make a MedImage with medq.io.from_array(array)")
    if not os.fspath(path).strip():  # Path("") is the current folder
        raise InvalidParameter("an empty path names no file or folder")
    p = Path(path)
    fmt = sniff(p)
    file, volume = volume_in_file(p) or (p, None)  # a volume of a 4D file: that file
    try:
        with nifti.quiet_header_checks():
            image = _read(file, fmt, volume)
        image = finite_pixels(image.evolve(source=str(p)) if file != p else image)
        changes = _sidecar_fields(file, image) if fmt not in ("dicom", "dicom-series") else {}
        changes.update(named_changes(changes.get("meta", image.meta), modality, region))
        if changes:  # a colour picture named as another modality: MedImage refuses it
            image = image.evolve(**changes)
        return infer_modality(image)
    except MedqError as e:  # named as given: `<file>@volume=<k>` too, not the file alone
        if e.path is None or (file != p and str(e.path) == str(file)):
            raise type(e)(e.reason, p) from e
        raise
    except Exception as e:  # last guard: no raw library exception escapes
        raise unreadable(e, p) from e


def load_series_files(files: Sequence[str | Path], source: str | Path) -> MedImage:
    """Load the given DICOM files as one series named `source` (their folder may hold others)."""
    from medq.io.dicom_series import read_series_files

    try:
        return finite_pixels(read_series_files(files, source))
    except MedqError:
        raise
    except Exception as e:  # last guard: no raw library exception escapes
        raise unreadable(e, source) from e


def _sidecar_fields(p: Path, image: MedImage) -> dict:
    """Fields a sidecar restores for formats without headers: medq's (modality, region, physics,
    spacing) and a BIDS / dcm2niix sidecar's acquisition (`medq.io.bids`), its keys kept in the
    meta for the sidecars of files written from the image (`kept_sidecar`)."""
    side = read_sidecar(p)
    stated = {**inherited_sidecar(p), **side}  # over what a BIDS dataset's files inherit
    fields = sidecar_acquisition(stated, p)  # modality, region, physics and meta it states
    own = side.get("Physics") if isinstance(side.get("Physics"), dict) else {}
    if own or "physics" in fields:  # the header's own, then medq's, then the BIDS keys
        fields["physics"] = {**fields.get("physics", {}), **own, **image.physics}
    if "meta" in fields:
        fields["meta"] = {**fields["meta"], **image.meta}
    if "modality" in fields and image.meta.get("modality_from"):  # stated after all
        fields["meta"] = {k: v for k, v in fields.get("meta", image.meta).items()
                          if k != "modality_from"}
    spacing = side.get("Spacing")
    if isinstance(spacing, list) and len(spacing) == len(image.spacing):
        fields["spacing"] = tuple(float(s) for s in spacing)
    kept = kept_sidecar(stated, image.shape, fields.get("spacing", image.spacing),
                        one_volume="volume" in image.meta)
    if kept:
        fields["meta"] = {**fields.get("meta", image.meta), **kept}
    return fields


def target_format(p: Path) -> str:
    """The format `save` writes a path in (its suffix; `.gz` alone: gzipped DICOM; a folder or no
    suffix: a DICOM series); InvalidParameter for a suffix medq does not write."""
    fmt = _suffix_format(p)
    if fmt is not None:
        return fmt
    if p.suffix.lower() == ".gz":  # not .nii.gz: a gzipped DICOM file, as medq reads them
        return "dicom"
    if p.is_dir() or not p.suffix:
        return "dicom-series"
    raise InvalidParameter(f"unknown output format {p.suffix!r}; use .dcm, a folder (DICOM "
                           "series), .nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr, .mgz, .mgh, .hdr, "
                           ".png, .jpg, .tif or .npy", p)


GRID_FORMATS = ("nifti", "metaimage", "nrrd", *neuro.FORMATS)
"""Formats that store one spacing per axis (an affine or origin + spacing), not each slice's
position."""


def check_writable(image: MedImage, path: str | Path) -> str:
    """The format `path` names (`target_format`), once it is known to hold `image`:
    InvalidParameter for a volume as PNG/JPEG, and for a series whose slices are unevenly spaced
    (`meta['slice_gaps']`) in a format of one slice spacing, which would put the slices after a
    gap out of place. Cheap: the commands call it before their work."""
    p = Path(path)
    fmt = target_format(p)
    if image.is_volume and fmt in ("png", "jpeg"):
        raise InvalidParameter(f"{fmt.upper()} holds one 2D image; save volumes as .tif, .nii.gz, "
                               ".npy or a DICOM series folder", p)
    if fmt == "dicom":
        dicom_write.refuse_volume_as_file(image, p)
    gaps = image.meta.get("slice_gaps")
    if image.is_volume and image.meta.get("irregular_spacing") and fmt in GRID_FORMATS:
        what = dicom.gaps_text(gaps) if gaps else "uneven spacing"
        suffix = ".nii.gz" if p.name.lower().endswith(".nii.gz") else p.suffix
        raise InvalidParameter(f"its slices are unevenly spaced ({what}): a {suffix} file keeps "
                               "one slice spacing and would put slices out of place; write a "
                               "DICOM series folder to keep each slice's position", p)
    return fmt


NONFINITE_FORMATS = ("nifti", "metaimage", "nrrd", "npy")
"""Formats `save` writes as float32 as they are, NaN and infinite pixels included (a restored
map keeps its undefined voxels: `io.arrays.with_nonfinite`); the others refuse them."""


def save(image: MedImage | np.ndarray, path: str | Path, *, reference: str | Path | None = None,
         description: str | None = None, modality: str | None = None, region: str | None = None,
         spacing: float | Sequence[float] | None = None) -> Path:
    """Write `image` atomically in the format named by `path`'s suffix; return the path written.

    `image` is a MedImage or a NumPy array (`as_image`: `modality`, `region` and `spacing` in mm
    say what the array cannot, and replace a MedImage's own); an integer grey array is written
    in its own type where the format stores it (NIfTI, MetaImage, NRRD), else as the format
    writes floats.

    `.dcm` → derived DICOM file (2D), `.gz` (not `.nii.gz`) the same gzipped; folder / no
    suffix → derived DICOM series (IM00001.dcm, …);
    `.nii`/`.nii.gz`; `.mha`/`.mhd`/`.nrrd`/`.nhdr`; `.mgz`/`.mgh`; `.hdr`/`.img` (Analyze, both
    files); `.png`/`.jpg`/`.tif`; `.npy` (MINC, PAR/REC, AFNI and ECAT are read only). `reference`
    is a DICOM file or series folder whose header is the template (default: the image's own
    source DICOM files); `description` becomes DerivationDescription (DICOM), descrip (NIfTI),
    a `medq_description` key (NRRD) or a PNG text chunk. A MONOCHROME1 image (`io.polarity`) is
    written to any format but DICOM as it is shown, bone bright: none of them says how to show
    it. Formats without a header (and MetaImage
    and NRRD, whose headers lack them) get a JSON sidecar (`<stem>.json`, or `<name>.json` when
    the stem's names another file: `medq.io.sidecar`) with modality, region, spacing and physics,
    over the keys of the BIDS / dcm2niix sidecar the image was read with
    (`medq.io.bids.carried_sidecar`: those of its voxel grid only while shape and spacing hold).
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InvalidParameter(f"save needs a file or folder path, got {path!r}")
    p = Path(path)
    named = target_format(p)
    pixels = image.array if isinstance(image, MedImage) else image
    if isinstance(pixels, np.ndarray) and pixels.dtype.kind == "f" and not np.isfinite(
            pixels).all() and named not in NONFINITE_FORMATS:
        raise InvalidImage("cannot save an image with NaN or infinite pixels in this format "
                           "(NIfTI, MetaImage, NRRD and .npy keep them)", p)
    given = not isinstance(image, MedImage)  # an array: its own dtype is in meta["dtype"]
    image = as_image(image, modality=modality, region=region, spacing=spacing, finite=False)
    stored = integer_storage(image.meta.get("dtype", "float32")) if given else {}
    if stored and not image.is_rgb:  # an int16 array is written as int16
        image = image.evolve(meta={**image.meta, **stored})
    if image.meta.get("nonfinite") and named in NONFINITE_FORMATS:  # the NaN/inf pixels that
        image = image.evolve(array=with_nonfinite(image.array, image))  # reading set aside
    fmt = check_writable(image, p)
    try:
        if fmt in ("dicom", "dicom-series"):
            return dicom_write.write_dicom(image, p, reference=reference, description=description)
        check_sidecar_writable(p)  # before the image: a failed record replaces nothing
        image = as_displayed(image)  # no photometric tag: a MONOCHROME1 image as shown
        extra: dict = {}  # what a format's sidecar adds (a grey JPEG's value map)
        if fmt == "nifti":
            written = nifti.write_nifti(image, p, description=description)
        elif fmt == "npy":
            written = raster.write_npy(image, p)
        elif fmt in ("metaimage", "nrrd"):
            written = itk.write_itk(image, p, description=description)
        elif fmt in neuro.FORMATS:
            written = neuro.write_neuro(image, p, fmt)
        else:
            written, extra = raster.write_raster(image, p, description=description)
        stated = {name: image.meta[key] for name, key in BIDS_META.items()
                  if image.meta.get(key)}  # the words the MR contrast is read from
        write_sidecar(written, {**carried_sidecar(image),  # the input's, under medq's own
                                "Modality": image.modality, "BodyPart": image.region,
                                "Spacing": list(image.spacing), "Physics": image.physics,
                                **stated, **extra}, fresh=True)
        return written
    except MedqError as e:
        if e.path is None:
            raise type(e)(e.reason, p) from e
        raise
    except OSError as e:
        raise cannot_write(e, p) from e
