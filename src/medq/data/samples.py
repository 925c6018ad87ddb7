"""Bundled real samples: images that ship inside installed packages, loadable by name.

Nothing is ever downloaded. File-backed samples come from pydicom's test files, nilearn's MNI152
template and scikit-image's data folder; `pet_brain` and `xr_head` are derived from the real MNI152
T1 and tissue maps by medq's phantoms (there is no bundled PET or radiograph to ship).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medq.errors import InvalidParameter
from medq.image import MedImage


def _pydicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        raise InvalidParameter(f"pydicom test file {name} is not bundled with this pydicom")
    return Path(path)


def _nilearn_file(name: str) -> Path:
    import nilearn.datasets

    return Path(nilearn.datasets.__file__).parent / "data" / name


def _skimage_file(name: str) -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent / name


@dataclass(frozen=True)
class Sample:
    """One bundled sample: where it comes from and how to turn it into a MedImage."""

    name: str
    modality: str
    region: str
    origin: str
    locate: Callable[[], Path] | None = None  # file-backed samples
    build: Callable[[], MedImage] | None = None  # derived samples
    series: str = ""
    """The series description a file-backed sample's file lacks (its MR contrast), as medq's
    training sources of the same data state it."""

    @property
    def derived(self) -> bool:
        """True when the sample is computed from real data rather than read from a file."""
        return self.build is not None

    def path(self) -> Path | None:
        """The installed file behind the sample, or None for derived ones."""
        return self.locate() if self.locate else None


def _pet_brain() -> MedImage:
    from medq.data.phantoms import pet_brain

    return pet_brain()


def _xr_head() -> MedImage:
    from medq.data.phantoms import radiograph_head

    return radiograph_head()


MNI_T1 = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"

SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample("ct_small", "CT", "spine",
               "pydicom test file CT_small.dcm (GE CT, 120 kVp, thoracic spine)",
               locate=lambda: _pydicom_file("CT_small.dcm")),
        Sample("mr_small", "MR", "unknown", "pydicom test file MR_small.dcm (Toshiba MR)",
               locate=lambda: _pydicom_file("MR_small.dcm")),
        Sample("mni_t1", "MR", "brain", "nilearn MNI152 ICBM 2009a T1 template, 1 mm",
               locate=lambda: _nilearn_file(MNI_T1), series="T1w MNI152"),
        Sample("retina", "OP", "retina", "scikit-image retina.jpg fundus photograph",
               locate=lambda: _skimage_file("retina.jpg")),
        Sample("pet_brain", "PT", "brain",
               "FDG-like activity derived from nilearn's MNI152 grey/white-matter maps",
               build=_pet_brain),
        Sample("xr_head", "DX", "head",
               "digitally reconstructed radiograph of the MNI152 head", build=_xr_head),
    )
}


def get_sample(name: str) -> Sample:
    """The Sample called `name`; InvalidParameter listing the names when unknown."""
    try:
        return SAMPLES[name]
    except KeyError:
        raise InvalidParameter(
            f"unknown sample {name!r}; choose from {', '.join(SAMPLES)}") from None


def load_sample(name: str) -> MedImage:
    """Load a bundled sample as a MedImage (modality/region set where the file does not say)."""
    from medq.io import load

    sample = get_sample(name)
    if sample.build is not None:
        image = sample.build()
    else:
        image = load(sample.path(), modality=sample.modality)
        if image.region == "unknown" and sample.region != "unknown":
            image = image.evolve(region=sample.region)
    named = [n for n in image.meta.get("named", ()) if n != "modality"]  # the package's, not
    meta = dict(image.meta, sample=name, named=named)  # the user's: its prompts say "tags"
    if sample.series and not meta.get("series_description"):
        meta["series_description"] = sample.series
    return image.evolve(meta=meta)


def load_tissue_maps(resolution: int = 1) -> dict[str, MedImage]:
    """nilearn's bundled MNI152 grey/white-matter (and derived CSF) probability maps, (z, y, x)."""
    from medq.data.phantoms import mni_maps

    maps, spacing = mni_maps(resolution)
    return {key: MedImage(np.array(maps[key]), spacing, "MR", "brain",
                          meta={"tissue_map": key, "derived_from": "nilearn MNI152 templates"})
            for key in ("gm", "wm", "csf")}


def _state_region(path: Path, region: str) -> None:
    """Write `region` into the DICOM file `path` as BodyPartExamined where the file states none,
    so an exported sample reads as the region `medq samples` lists (the copy's only change)."""
    import pydicom

    ds = pydicom.dcmread(path)
    if region != "unknown" and not str(ds.get("BodyPartExamined") or "").strip():
        ds.BodyPartExamined = region.upper()
        ds.save_as(path)


def export_samples(directory: str | Path, names: list[str] | None = None) -> list[Path]:
    """Copy (file-backed) or write (derived) samples into `directory`; returns the written paths."""
    from medq.io import save, sniff, write_sidecar
    from medq.io.atomic import atomic_path, cannot_write, make_folder

    directory = make_folder(directory)
    written = []
    for name in names or list(SAMPLES):
        sample = get_sample(name)
        src = sample.path()
        if src is not None:
            dest = directory / f"{name}{''.join(src.suffixes)}"
            try:
                with atomic_path(dest) as tmp:
                    shutil.copyfile(src, tmp)
                    dicom = sniff(tmp) in ("dicom", "dicom-series")
                    if dicom:
                        _state_region(tmp, sample.region)
                if not dicom:  # headerless: say what it is
                    stated = {"Modality": sample.modality, "BodyPart": sample.region,
                              "SeriesDescription": sample.series, "Source": sample.origin}
                    write_sidecar(dest, {k: v for k, v in stated.items() if v}, fresh=True)
            except OSError as e:  # a read-only or full folder: the user's to fix (exit 2)
                raise cannot_write(e, dest) from e
        else:
            image = load_sample(name)
            suffix = ".nii.gz" if image.is_volume else ".dcm"
            dest = save(image, directory / f"{name}{suffix}")
        written.append(Path(dest))
    return written
