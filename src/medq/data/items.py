"""Degraded images with engine ground truth, for calibrating the finding detector and benchmarking.

`degraded_item` mirrors `medq.data.bench.make_item`: a clean base image from a `Source` gets
zero, one or two engine degradations at continuous severities drawn uniformly from 0.2–3.2, and
keeps the image itself (the quality benchmark keeps only model inputs). For calibration on the
training sources, `realism=True` makes the clean base image look more like a real scan before
it is degraded: the modality's acquisition noise, point-spread function (and, for MR, a faint
coil field) at a sub-threshold ("none") severity, because the training sources are noise-free,
perfectly sharp and flat phantoms while real scans never are, and (for 40 % of grey
2D images) a zoomed field of view (a 25–75 % crop anywhere in the image, half of them then
stored at a small matrix), because real scans are often reconstructed inside the body with no
air around it, off-centre (an orbit, a knee, a heart) and at small matrices (`fine_pixels`
then states that share of MR images at 0.2–0.6 mm pixels, `FINE_PIXELS`; off by default). The
description's full-plane calibration zooms by the `central` profile instead (`zoom="central"`:
30 %, the middle 45–75 % per side at the source's matrix), on which it types findings better.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.assess.models.blocks import FINDING_TYPES
from medq.data.sources import Source
from medq.degrade import available, get_spec, simulate
from medq.degrade.generic import coarse_matrix
from medq.errors import InvalidParameter
from medq.image import MedImage

BASELINE = {"CT": ("blur", "ct_low_dose"), "MR": ("mr_bias_field", "blur", "mr_noise"),
            "PT": ("pet_low_count",), "DX": ("blur", "xr_quantum_noise"),
            "CR": ("blur", "xr_quantum_noise")}
"""Acquisition effects added below the mild bound to training images, per modality, in the
order they act: the system's point-spread function (a sub-millimetre FWHM: a phantom is sharp to
the last pixel, a real 512² scan at 0.5 mm pixels is not), for MR a faint receive-coil field
(no real MR is perfectly flat), then noise. PET phantoms are blurred at their source already."""

BASELINE_RANGE = (0.05, 0.45)
"""Continuous severity range of the baseline noise (all below mild, 0.5)."""

ZOOM = (0.4, (0.25, 0.75))
"""Probability of a zoomed field of view, and the range of its crop fraction per side."""

SMALL_MATRIX = (0.5, (48, 160))
"""Probability that a zoomed field of view is stored at a small matrix, and that matrix's range
(longer side, pixels; never larger than the crop)."""

FINE_PIXELS = ("MR", (0.2, 0.6))
"""Modality and range (mm, drawn log-uniform) of the fine in-plane pixel size a realism image
may be stated at (`degraded_item(fine_pixels=p)`; the benchmark's `fine_pixels`, 0 by default:
tried, not shipped). Small-part coils and high-resolution sequences (knee, wrist, orbit) acquire
0.2–0.5 mm pixels at any matrix, down to 64², while the MR training slices state 0.29–6.8 mm
(1 % below 0.34) and few small matrices at fine pixels. The content stays; the engine's
millimetre levels (blur FWHM, motion amplitude) then act on the stated grid."""

CENTRAL_ZOOM = (0.3, (0.45, 0.75))
"""The `central` zoom profile (the benchmark's version-5 realism): probability of a zoomed
field of view and its crop fraction per side, centred, kept at the source's matrix."""

ZOOM_PROFILES = {"anywhere": ZOOM, "central": CENTRAL_ZOOM}
"""How `realism` zooms (`degraded_item(zoom=...)`), by name: `anywhere` (`ZOOM`, then
`SMALL_MATRIX`; the benchmark and the training sets) or `central` (`CENTRAL_ZOOM`; the items the
description's full-plane calibration is fitted on, `medq.describe.calibrate --zoom central`)."""

SEVERITY_RANGE = (0.2, 3.2)
"""Continuous severity range of the applied degradations (as the quality benchmark)."""

NOISY_BASE_RANGE = (0.5, 2.0)
"""Continuous severity range of a noisy base (`degraded_item(noisy_base=p)`): from mild to
moderate, where real scans' own noise sits on the engine's scales
(`benchmarks/probes/noise_scale.py`: CT_small 2.1, MR_small 1.6, the abdominal MR 0.6)."""


RING_MATRIX = (1.1, 1.45)
"""Range of the factor by which a ringing clean MR image's acquisition matrix is coarser than
its grid (`with_ringing`): below the engine's mild low resolution (1.5), so the image stays
clean on the engine's scale."""
RING_TAPER = (0.0, 0.3)
"""Range of the raised-cosine roll-off (fraction of the kept frequencies) of `with_ringing`:
from a hard k-space edge to a mild apodisation filter, as scanners apply."""


def with_ringing(image: MedImage, rng: np.random.Generator) -> MedImage:
    """The image as a scanner reconstructs it from a coarser acquisition matrix (`RING_MATRIX`)
    zero-filled back to the grid, with a random roll-off (`RING_TAPER`), recorded as nothing.

    Real MR images are Fourier reconstructions of a finite k-space, so their sharp edges carry
    Gibbs ringing, and many are zero-filled to a finer display matrix; the MR training sources
    (a smooth template, phantoms recast as MR) have none. A network that never saw ringing in a
    clean image reads it as an artefact to remove and bends the edges of a real scan
    (`benchmarks/probes/lowres_simulators.py`). Part of the clean image: nothing is recorded.
    """
    array = coarse_matrix(image.array, float(rng.uniform(*RING_MATRIX)), "kspace",
                          float(rng.uniform(*RING_TAPER)), magnitude=True)
    return image.evolve(array=array.astype(np.float32))


def kinds_for(modality: str) -> list[str]:
    """Degradation kinds the engine applies to a modality."""
    return [k for k in available() if modality in get_spec(k).modalities]


def noise_kind(modality: str) -> str | None:
    """The engine's noise degradation of a modality (its kind whose finding is noise)."""
    return next((k for k in kinds_for(modality) if get_spec(k).finding == "noise"), None)


def _apply(image: MedImage, kind: str, value: float, rng: np.random.Generator) -> MedImage:
    """Apply one kind at continuous severity `value` (a few retries on impossible levels)."""
    spec = get_spec(kind)
    for _ in range(5):
        try:
            return simulate(image, kind, level=spec.level_at(value),
                            seed=int(rng.integers(2**31)))[0]
        except InvalidParameter:
            value = float(rng.uniform(*SEVERITY_RANGE))
    return image


def zoomed(image: MedImage, rng: np.random.Generator, profile: str = "anywhere") -> MedImage:
    """A crop of a 2D grey image: 25–75 % per side anywhere, sometimes at a smaller matrix, or
    (`profile="central"`) 45–75 % per side in the middle."""
    from skimage.transform import resize

    h, w = image.shape
    fy, fx = rng.uniform(*ZOOM_PROFILES[profile][1], size=2)
    ch, cw = max(32, int(h * fy)), max(32, int(w * fx))
    if profile == "central":
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        return image.evolve(array=np.ascontiguousarray(image.array[y0:y0 + ch, x0:x0 + cw]))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = image.array[y0:y0 + ch, x0:x0 + cw]
    spacing = image.spacing
    longest = int(rng.integers(SMALL_MATRIX[1][0], SMALL_MATRIX[1][1] + 1))
    if rng.random() < SMALL_MATRIX[0] and longest < max(ch, cw):
        f = longest / max(ch, cw)
        shape = (max(16, round(ch * f)), max(16, round(cw * f)))
        crop = resize(crop, shape, order=1, anti_aliasing=True, preserve_range=True)
        spacing = (spacing[0] * ch / shape[0], spacing[1] * cw / shape[1])
    return image.evolve(array=np.ascontiguousarray(crop, dtype=np.float32), spacing=spacing)


def maybe_zoomed(image: MedImage, rng: np.random.Generator, zoom: str) -> MedImage:
    """The realism's zoomed field of view (`zoomed`) of a grey 2D image of at least 96 px, at
    the zoom profile's probability; other images as they are."""
    if not image.is_rgb and not image.is_volume \
            and rng.random() < ZOOM_PROFILES[zoom][0] and min(image.shape) >= 96:
        return zoomed(image, rng, zoom)
    return image


def maybe_fine_pixels(image: MedImage, rng: np.random.Generator, probability: float
                      ) -> MedImage:
    """The image stated at a fine pixel size (`FINE_PIXELS`, same array) with `probability`;
    other modalities, or a probability of 0, as they are, with no draw from `rng`."""
    if probability <= 0 or image.modality != FINE_PIXELS[0] or rng.random() >= probability:
        return image
    size = float(np.exp(rng.uniform(*np.log(FINE_PIXELS[1]))))
    scale = size / float(np.sqrt(image.spacing[-2] * image.spacing[-1]))
    spacing = (*image.spacing[:-2], image.spacing[-2] * scale, image.spacing[-1] * scale)
    return image.evolve(spacing=spacing)


def realistic_geometry(image: MedImage, rng: np.random.Generator, zoom: str,
                       fine_pixels: float = 0.0) -> MedImage:
    """The realism's field of view (`maybe_zoomed`), then its pixel size (`maybe_fine_pixels`)."""
    return maybe_fine_pixels(maybe_zoomed(image, rng, zoom), rng, fine_pixels)


def _mark_baseline(image: MedImage) -> MedImage:
    """Flag the last degradation record as baseline realism (part of the clean image)."""
    records = [dict(r) for r in image.meta.get("degradations", [])]
    if records:
        records[-1]["baseline"] = True
    return image.evolve(meta=dict(image.meta, degradations=records))


def degraded_item(source: Source, dim: str, seed: int, clean_fraction: float = 0.12,
                  pair_fraction: float = 0.25, realism: bool = False, zoom: str = "anywhere",
                  fine_pixels: float = 0.0, noisy_base: float = 0.0
                  ) -> tuple[MedImage, list[dict[str, Any]]]:
    """One deterministic (image, degradation records) pair from a source and a seed (`zoom`:
    the realism's zoom profile, one of `ZOOM_PROFILES`; `fine_pixels`: the realism's chance
    of a fine pixel size, `FINE_PIXELS`).

    `noisy_base`: the chance that the base image first gets its modality's noise
    (`noise_kind`) at a severity in `NOISY_BASE_RANGE`, recorded like any degradation (so it
    counts in the reference), before the drawn degradations act on it. Real scans carry such
    noise, and motion, undersampling or blur smear it: trained only on quiet bases, a model reads
    a noisy scan that moved as *less* noisy, hence better (`benchmarks/probes/noisy_base.py`).
    0 (the default) draws nothing extra, so the items of existing plans stay as they were.
    """
    if zoom not in ZOOM_PROFILES:
        raise InvalidParameter(f"zoom must be one of {', '.join(ZOOM_PROFILES)}, got {zoom!r}")
    rng = np.random.default_rng(seed)
    image = source.draw(rng, dim)
    if realism:
        image = realistic_geometry(image, rng, zoom, fine_pixels)
    kinds = kinds_for(image.modality)
    u = rng.random()
    n = 0 if u < clean_fraction else (2 if u < clean_fraction + pair_fraction else 1)
    chosen = [str(k) for k in rng.choice(kinds, size=min(n, len(kinds)), replace=False)] \
        if n else []
    noise = noise_kind(image.modality)
    base_noise = None  # a noisy base's severity: the modality's noise, applied first
    if noisy_base > 0 and noise and rng.random() < noisy_base:
        chosen = [k for k in chosen if k != noise]
        base_noise = float(rng.uniform(*NOISY_BASE_RANGE))
    applied = {*chosen, *([noise] if base_noise is not None else [])}
    for kind in BASELINE.get(image.modality, ()) if realism else ():
        if kind not in applied:
            image = _mark_baseline(_apply(image, kind, float(rng.uniform(*BASELINE_RANGE)), rng))
    if base_noise is not None:
        image = _apply(image, noise, base_noise, rng)
    for kind in chosen:
        image = _apply(image, kind, float(rng.uniform(*SEVERITY_RANGE)), rng)
    return image, list(image.meta.get("degradations", []))


LADDER_RUNGS = 4
"""Degraded rungs of a severity ladder (after its clean rung): one severity drawn in each of
as many equal parts of `SEVERITY_RANGE`."""


def severity_ladder(source: Source, seed: int, zoom: str = "anywhere", fine_pixels: float = 0.0
                    ) -> tuple[list[MedImage], str]:
    """One deterministic severity ladder of a 2D training image (`realism` as in
    `degraded_item`): the clean image with its sub-threshold baseline, then one kind of the
    engine at `LADDER_RUNGS` rising severities, each rung with the same baseline realisation
    (the kind's own baseline left out, as `degraded_item` leaves it out) and the same seed of
    the kind, so the rungs differ only by the kind's severity. Returns (rungs, kind)."""
    if zoom not in ZOOM_PROFILES:
        raise InvalidParameter(f"zoom must be one of {', '.join(ZOOM_PROFILES)}, got {zoom!r}")
    rng = np.random.default_rng(seed)
    image = realistic_geometry(source.draw(rng, "2d"), rng, zoom, fine_pixels)
    kind = str(rng.choice(kinds_for(image.modality)))
    baseline = [(k, float(rng.uniform(*BASELINE_RANGE)), int(rng.integers(2**31)))
                for k in BASELINE.get(image.modality, ())]
    edges = np.linspace(*SEVERITY_RANGE, LADDER_RUNGS + 1)
    values = [float(rng.uniform(lo, hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    kind_seed = int(rng.integers(2**31))

    def based(skip: str | None) -> MedImage:
        out = image
        for k, value, k_seed in baseline:
            if k != skip:
                out = _mark_baseline(_apply(out, k, value, np.random.default_rng(k_seed)))
        return out

    under = based(kind)
    return [based(None)] + [_apply(under, kind, v, np.random.default_rng(kind_seed))
                            for v in values], kind


def ladder_jobs(n: int, seed_base: int, weight: dict[str, int] | None = None
                ) -> list[tuple[str, int]]:
    """(2D training source, seed) of `n` severity ladders, the sources in turn, each
    modality's repeated `weight[modality]` times (default once)."""
    from medq.data.sources import sources

    weight = weight or {}
    pool = [s.name for s in sources("train", "2d") for _ in range(weight.get(s.modality, 1))]
    return [(pool[i % len(pool)], seed_base + i) for i in range(n)]


def severity_targets(records: list[dict[str, Any]]) -> np.ndarray:
    """Continuous severity (0 … 3.5) per finding type (FINDING_TYPES order): the worst record."""
    out = np.zeros(len(FINDING_TYPES), dtype=np.float32)
    for rec in records:
        spec = get_spec(rec["name"])
        i = FINDING_TYPES.index(spec.finding)
        out[i] = max(out[i], spec.severity_value(rec["level"]))
    return out
