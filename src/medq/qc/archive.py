"""A QC test archive: bundled real samples × engine degradations as DICOM, plus corrupt files.

Each degraded image is written as a derived DICOM with its own SeriesInstanceUID: 2D slices as
single files (`<sample>/<sample>_<kind>_<severity>_<n>.dcm`) and a few MR brain volumes as series
folders (`series/<kind>_<n>/IM00001.dcm`, …). `corrupt/` holds an empty file, random bytes, a
truncated DICOM and a text file named `.dcm`; a README.txt at the top is not an image at all.
Used by the tests, the QC benchmark and `medq qc make-archive`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from medq.image import MedImage

SERIES_SLICES = 8
"""Slices of each generated volume (written as one series folder)."""

FILES_PER_SERIES = 50
"""One series per this many DICOM files requested."""

FAST_SAMPLES = ("ct_small", "mr_small", "mni_t1")
"""Samples that load in well under a second (the MNI T1 gives 2D slices and the volumes)."""

ALL_SAMPLES = (*FAST_SAMPLES, "xr_head", "pet_brain", "retina")
"""Every bundled sample (the derived radiograph and PET take a few seconds each to build)."""

CORRUPT = ("empty.dcm", "random.dcm", "truncated.dcm", "not_an_image.dcm")
"""Files of `corrupt/`: each one is an item that must end as an error."""


def _slices(image: MedImage, count: int) -> list[MedImage]:
    """`count` axial 2D slices through the middle half of a volume (a 2D image: itself)."""
    if not image.is_volume:
        return [image]
    depth = image.shape[0]
    picks = np.linspace(depth * 0.3, depth * 0.7, count).astype(int)
    return [image.evolve(array=np.ascontiguousarray(image.array[z]), spacing=image.spacing[1:],
                         meta={**image.meta, "slice": int(z)}) for z in picks]


def _bases(samples: tuple[str, ...]) -> list[tuple[str, MedImage]]:
    """(name, 2D image) pairs to degrade, from the bundled samples."""
    from skimage.transform import resize

    from medq.data.samples import load_sample

    bases: list[tuple[str, MedImage]] = []
    for name in samples:
        image = load_sample(name)
        if image.is_rgb and max(image.shape[:2]) > 512:  # fundus: a screening-size photograph
            scale = 512 / max(image.shape[:2])
            shape = (round(image.shape[0] * scale), round(image.shape[1] * scale), 3)
            image = image.evolve(array=resize(image.array, shape, anti_aliasing=True)
                                 .astype(np.float32),
                                 spacing=tuple(s / scale for s in image.spacing[:2]))
        bases += [(name, s) for s in _slices(image, 3)]
    return bases


def _variants(modality: str) -> Iterator[tuple[str, str]]:
    """Endless (kind, severity) cycle of the engine's degradations for a modality."""
    from medq.degrade import available

    return itertools.cycle(itertools.product(available(modality), ("mild", "moderate", "severe")))


def _volume(index: int) -> MedImage:
    """A small MR brain volume (8 slices, 2 mm in-plane) from the MNI T1, offset by `index`."""
    from medq.data.samples import load_sample

    t1 = load_sample("mni_t1")
    start = 50 + (index * 7) % 60
    arr = np.ascontiguousarray(t1.array[start:start + SERIES_SLICES * 8:8, ::2, ::2])
    sp = t1.spacing
    return t1.evolve(array=arr, spacing=(sp[0] * 8, sp[1] * 2, sp[2] * 2))


def _write_corrupt(folder: Path, template: Path, seed: int) -> list[Path]:
    """The corrupt files (see CORRUPT); `template` is a valid DICOM to truncate."""
    from medq.io.atomic import atomic_path

    rng = np.random.default_rng(seed)
    data = template.read_bytes()
    contents = (b"", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                data[: len(data) * 3 // 5],
                b"Reading list for the QA meeting\nnot an image, despite the name\n")
    written = []
    for name, content in zip(CORRUPT, contents, strict=True):
        with atomic_path(folder / name) as tmp:
            tmp.write_bytes(content)
        written.append(folder / name)
    return written


def make_archive(directory: str | Path, n: int = 40, *, samples: tuple[str, ...] = FAST_SAMPLES,
                 corrupt: bool = True, seed: int = 0) -> dict[str, Any]:
    """Write a test archive of about `n` DICOM files; returns what a QC run must find in it.

    The result holds `items` (every item path as discovery names it, sorted), `corrupt` (the
    items that must fail), `files` (DICOM files written) and `series` (series folders).
    """
    from medq.degrade import simulate
    from medq.io import save
    from medq.io.atomic import atomic_write_text, make_folder

    root = make_folder(Path(directory).expanduser().resolve())
    n_series = max(1, n // FILES_PER_SERIES) if n >= 2 * SERIES_SLICES else 0
    n_files = max(0, n - n_series * SERIES_SLICES)
    bases = _bases(tuple(samples))
    cycles = {mod: _variants(mod) for mod in {img.modality for _, img in bases}}
    items: list[str] = []
    for i in range(n_files):
        name, base = bases[i % len(bases)]
        kind, severity = next(cycles[base.modality])
        image, _ = simulate(base, kind, severity=severity, seed=seed + i)
        path = save(image, root / name / f"{name}_{kind}_{severity}_{i:05d}.dcm")
        items.append(str(path))
    series: list[str] = []
    mr = _variants("MR")
    for j in range(n_series):
        kind, severity = next(mr)
        image, _ = simulate(_volume(j), kind, severity=severity, seed=seed + n_files + j)
        series.append(str(save(image, root / "series" / f"{kind}_{severity}_{j:03d}")))
    broken: list[str] = []
    if corrupt:
        template = Path(items[0]) if items else Path(series[0]) / "IM00001.dcm"
        broken = [str(p) for p in _write_corrupt(root / "corrupt", template, seed)]
        atomic_write_text(root / "README.txt", "medq QC test archive: not an image\n")
    return {"items": sorted(items + series + broken), "corrupt": broken,
            "files": n_files + n_series * SERIES_SLICES, "series": series}
