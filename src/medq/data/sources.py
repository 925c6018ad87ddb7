"""Source images of the quality benchmark, each on one side of the train/test split.

A `Source` draws a clean base image (2D, or 3D where it can) with randomised geometry: crop,
flip, matrix size and, for CT, the display window. Splits are by source, so no source image
or volume region is seen by both training and testing:

- **test** (held out from all training): pydicom's real CT (CT_small 128², 693_J2KI 512²,
  J2K head 512²) and MR (MR_small 64², an abdominal MR 300×484) files, the AP skull
  radiograph sample, the right half of the retina photograph, and the z-zone 45–70 % of the
  MNI152 head (as MR T1, head pseudo-CT and FDG-like PET, 2D slices and 3D slabs).
- **train**: the rest of the MNI152 head (same three modalities, axial/coronal/sagittal),
  lateral skull radiographs, random chest/abdomen CT phantoms and their radiographs, the
  left half of the retina photograph, and MR-like slices of the body phantoms (random tissue
  contrast, `phantoms.pseudo_mr`).

The MNI-derived sources share one subject; their split is by z-zone (stated in the model card).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from scipy import ndimage

from medq.image import MedImage

TEST_ZONE = (0.45, 0.70)
"""Fraction of the MNI152 z extent (inferior → superior) held out for testing."""

CT_WINDOWS = ((40.0, 80.0), (40.0, 120.0), (40.0, 400.0), (50.0, 350.0), (-600.0, 1500.0),
              (300.0, 1500.0))
"""CT display windows (centre, width) drawn for training images: brain, soft tissue, lung, bone."""

MNI_SIZES = {"train": (128, 512), "test": (128, 320)}
"""Longest side (px) of the MNI152 2D slices per split. Training reaches 512, the matrix of
nearly every clinical CT, so a model learns how a 512² scan looks once shrunk to its input;
the held-out test slices keep the sizes they have always had."""

BODY_CT_MATRICES = (128, 192, 256, 320, 384, 512)
BODY_CT_FOV = (250.0, 450.0)
"""Matrix sizes and field of view (mm) of the body CT phantom slices: 0.5–3.5 mm pixels."""


@dataclass(frozen=True)
class Source:
    """A provider of clean base images: `draw(rng, dim)` returns a fresh MedImage."""

    name: str
    modality: str
    split: str
    dims: tuple[str, ...]
    draw: Callable[[np.random.Generator, str], MedImage]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start/stop pairs of the True runs of a 1D mask."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0]))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _zone_mask(nz: int, split: str) -> np.ndarray:
    """Boolean z mask of the MNI zone belonging to `split`."""
    z = (np.arange(nz) + 0.5) / nz
    test = (z >= TEST_ZONE[0]) & (z < TEST_ZONE[1])
    return test if split == "test" else ~test


@lru_cache(maxsize=6)
def _mni_volume(modality: str, resolution: int) -> MedImage:
    """The MNI152-derived volume of a modality (MR T1, CT pseudo-CT, PT FDG-like)."""
    from medq.data import phantoms
    from medq.data.samples import load_sample

    if modality == "MR":
        t1 = load_sample("mni_t1")
        if resolution == 1:
            return t1
        maps, spacing = phantoms.mni_maps(resolution)
        return MedImage(np.array(maps["t1"]), spacing, "MR", "brain", meta=dict(t1.meta))
    if modality == "CT":
        return phantoms.head_pseudo_ct(resolution)
    return phantoms.pet_brain(resolution)


def resize_longest(array: np.ndarray, spacing: tuple[float, ...], longest: int
                   ) -> tuple[np.ndarray, tuple[float, ...]]:
    """Resample a 2D (or `(y, x, 3)`) array so its longer side is `longest` pixels."""
    h, w = array.shape[:2]
    f = longest / max(h, w)
    zoom = (f, f, 1) if array.ndim == 3 else (f, f)
    out = ndimage.zoom(array, zoom, order=1, prefilter=False)
    return out.astype(np.float32), (spacing[0] / f, spacing[1] / f)


def augment_2d(array: np.ndarray, spacing: tuple[float, ...], rng: np.random.Generator,
               sizes: tuple[int, int]) -> tuple[np.ndarray, tuple[float, ...]]:
    """Random crop (75–100 % per side), flips and matrix size (longest side in `sizes`)."""
    h, w = array.shape[:2]
    ch, cw = int(h * rng.uniform(0.75, 1.0)), int(w * rng.uniform(0.75, 1.0))
    y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    a = array[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        a = a[:, ::-1]
    if rng.random() < 0.3:
        a = a[::-1]
    longest = int(rng.choice(np.arange(sizes[0], sizes[1] + 1, 32)))
    return resize_longest(np.ascontiguousarray(a), spacing[-2:], longest)


def _with_window(image: MedImage, rng: np.random.Generator) -> MedImage:
    """Give a CT image a random display window in its meta (as a DICOM file would state)."""
    if image.modality != "CT":
        return image
    center, width = CT_WINDOWS[rng.integers(len(CT_WINDOWS))]
    meta = dict(image.meta, window_center=center * rng.uniform(0.8, 1.2) if center > 0 else center,
                window_width=width * rng.uniform(0.8, 1.25))
    return image.evolve(meta=meta)


def _mni_source(modality: str, split: str) -> Source:
    """MNI152-derived slices (any orientation for training, axial for testing) and slabs."""
    region = "brain" if modality != "CT" else "head"
    meta = {"series_description": "T1w MNI152"} if modality == "MR" else {}

    def draw(rng: np.random.Generator, dim: str) -> MedImage:
        if dim == "3d":
            vol = _mni_volume(modality, 2)
            runs = [r for r in _runs(_zone_mask(vol.shape[0], split)) if r[1] - r[0] >= 12]
            start, stop = runs[int(rng.integers(len(runs)))]
            depth = int(rng.integers(12, min(24, stop - start) + 1))
            z0 = int(rng.integers(start, stop - depth + 1))
            arr = vol.array[z0:z0 + depth]
            if rng.random() < 0.5:
                arr = arr[:, :, ::-1]
            img = MedImage(np.ascontiguousarray(arr), vol.spacing, modality, region, meta=meta)
            return _with_window(img, rng)
        vol = _mni_volume(modality, 1)
        runs = _runs(_zone_mask(vol.shape[0], split))
        z0, z1 = runs[int(rng.integers(len(runs)))]
        arr = vol.array[z0:z1]
        axis = 0 if split == "test" else int(rng.choice([0, 0, 1, 2]))
        other = tuple(i for i in range(3) if i != axis)
        profile = (arr > arr.min() + 1e-3).mean(axis=other)
        index = int(rng.choice(np.flatnonzero(profile > 0.25 * profile.max())))
        plane = np.take(arr, index, axis=axis)
        plane = plane[::-1] if axis else plane  # superior at the top
        spacing = tuple(s for i, s in enumerate(vol.spacing) if i != axis)
        a, sp = augment_2d(plane, spacing, rng, MNI_SIZES[split])
        return _with_window(MedImage(a, sp, modality, region, meta=meta), rng)

    return Source(f"mni_{modality.lower()}_{split}", modality, split, ("2d", "3d"), draw)


def _pydicom(name: str) -> Callable[[], MedImage]:
    """Loader of a pydicom test file."""

    def load() -> MedImage:
        from medq.data.samples import _pydicom_file
        from medq.io import load as load_image

        return load_image(_pydicom_file(name))

    return load


def _retina_half(side: str) -> Callable[[], MedImage]:
    """Loader of the left or right half of the retina photograph."""

    def load() -> MedImage:
        from medq.data.samples import load_sample

        image = load_sample("retina")
        w = image.shape[1]
        a = image.array[:, : w // 2] if side == "left" else image.array[:, w // 2:]
        return image.evolve(array=np.ascontiguousarray(a))

    return load


def _body_ct(rng: np.random.Generator, dim: str) -> MedImage:
    """A random chest/abdomen CT phantom slice with randomised matrix size and window."""
    from medq.data.phantoms import random_body_ct

    n = int(rng.choice(BODY_CT_MATRICES))
    fov = rng.uniform(*BODY_CT_FOV)
    img = MedImage(random_body_ct(rng, (n, n)), (fov / n, fov / n), "CT", "chest")
    return _with_window(img, rng)


def _body_mr(rng: np.random.Generator, dim: str) -> MedImage:
    """An MR-like slice (random tissue contrast) of a random chest/abdomen phantom; its tissue
    texture is fainter than the CT phantom's, since the contrast map can steepen it."""
    from medq.data.phantoms import pseudo_mr, random_body_ct

    n, fov = 256, rng.uniform(300, 450)
    hu = random_body_ct(rng, (n, n), texture_hu=float(rng.uniform(2.0, 8.0)))
    ct = MedImage(hu, (fov / n, fov / n), "CT", "abdomen")
    mr = pseudo_mr(ct, rng)
    a, sp = augment_2d(mr.array, mr.spacing, rng, (64, 512))
    return mr.evolve(array=a, spacing=sp)


def _body_xr(rng: np.random.Generator, dim: str) -> MedImage:
    """A radiograph (DRR) of a random 3D chest/abdomen phantom."""
    from medq.data.phantoms import radiograph_from_volume, random_body_ct

    n = int(rng.choice([96, 128, 160]))
    vol = MedImage(random_body_ct(rng, (n, n, n)), (3.0, 3.0, 3.0), "CT", "chest")
    return radiograph_from_volume(vol, "ap")


def _skull_lateral(rng: np.random.Generator, dim: str) -> MedImage:
    """Lateral skull radiograph (DRR) with randomised crop and size."""
    from medq.data.phantoms import radiograph_from_volume

    xr = radiograph_from_volume(_mni_volume("CT", 1), "lat")
    a, sp = augment_2d(xr.array, xr.spacing, rng, (128, 320))
    return xr.evolve(array=a, spacing=sp)


def _xr_head() -> MedImage:
    from medq.data.samples import load_sample

    return load_sample("xr_head")


def _from_loader(name: str, modality: str, split: str, loader: Callable[[], MedImage],
                 sizes: tuple[int, int] | None = None) -> Source:
    """A real file (or bundled sample) as a source; geometry kept unless `sizes` is given."""

    def draw(rng: np.random.Generator, dim: str) -> MedImage:
        image = loader()
        if sizes is None:
            return image
        a, sp = augment_2d(image.array, image.spacing, rng, sizes)
        return image.evolve(array=a, spacing=sp)

    return Source(name, modality, split, ("2d",), draw)


SOURCES: tuple[Source, ...] = (
    *(_mni_source(m, s) for s in ("train", "test") for m in ("MR", "CT", "PT")),
    Source("body_ct", "CT", "train", ("2d",), _body_ct),
    Source("body_mr", "MR", "train", ("2d",), _body_mr),
    Source("body_xr", "DX", "train", ("2d",), _body_xr),
    Source("skull_lateral_xr", "DX", "train", ("2d",), _skull_lateral),
    _from_loader("retina_left", "OP", "train", _retina_half("left"), (256, 512)),
    _from_loader("ct_small", "CT", "test", _pydicom("CT_small.dcm")),
    _from_loader("ct_693", "CT", "test", _pydicom("693_J2KI.dcm")),
    _from_loader("ct_head_j2k", "CT", "test", _pydicom("J2K_pixelrep_mismatch.dcm")),
    _from_loader("mr_small", "MR", "test", _pydicom("MR_small.dcm")),
    _from_loader("mr_abdomen", "MR", "test", _pydicom("examples_overlay.dcm")),
    _from_loader("xr_head", "DX", "test", _xr_head),
    _from_loader("retina_right", "OP", "test", _retina_half("right"), (384, 384)),
)
"""Every benchmark source, train and test."""


@cache
def stored_lossy(name: str) -> dict | None:
    """What the file header of source `name` states about lossy compression
    (`meta['lossy_compression']`), None when it states none: such a base image may not be
    clean (pydicom's 693_J2KI, `ct_693`, is JPEG 2000 at 339:1), which benchmarks that treat
    every base as clean must say."""
    source = source_named(name)
    image = source.draw(np.random.default_rng(0), source.dims[0])
    return image.meta.get("lossy_compression")


def lossy_sources(names: list[str]) -> dict[str, dict]:
    """Those of `names` whose file states lossy compression, with what it states: benchmarks
    whose references treat every base image as clean say so beside their tables."""
    return {n: lossy for n in names if (lossy := stored_lossy(n))}


def sources(split: str | None = None, dim: str | None = None) -> list[Source]:
    """The sources of a split (`train`/`test`, None for all) that can give `dim` images."""
    return [s for s in SOURCES if (split is None or s.split == split)
            and (dim is None or dim in s.dims)]


def source_named(name: str, split: str | None = None) -> Source:
    """The source called `name` (of `split` when given)."""
    return next(s for s in sources(split) if s.name == name)
