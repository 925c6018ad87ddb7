"""Deterministic, cached restoration pairs (degraded, clean) from the benchmark sources.

Each pair is one clean 2D image drawn from a `Source` of the requested split, degraded by the
engine for one restoration task at a continuous severity (uniform in severity value, mild to
past severe) and, for a share of the pairs, a second degradation of the same modality (e.g. blur
then noise); a share of pairs stays clean (target = input) so a network learns to leave good
images alone. Both images are normalised with the *degraded* image's scale
(`medq.restore.normalise`, as at run time) and stored as float16 in the cache
(`medq.data.cache.cache_dir()/restore/<key>/<split>.npz`), keyed by the plan, so a second build
is a file read. Test pairs come only from held-out test sources.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np

from medq.data.cache import cache_dir, cached_split, map_jobs
from medq.data.items import with_ringing
from medq.data.phantoms import pseudo_mr
from medq.data.sources import Source, sources
from medq.degrade import get_spec, simulate
from medq.degrade.generic import coarse_matrix
from medq.errors import InvalidParameter
from medq.restore.condition import modality_group, truth, vector
from medq.restore.normalise import scale_for

PAIRS_VERSION = 3
"""Bumped whenever pair generation changes, so stale caches are never reused (2: pixel
spacing stored with each pair; 3: training sources reach 512² matrices)."""

TASKS: dict[str, tuple[str, ...]] = {
    "ct_low_dose": ("CT",),
    "ct_sparse_view": ("CT",),
    "mr_undersample": ("MR",),
    "mr_noise": ("MR",),
    "mr_motion": ("MR",),
    "pet_low_count": ("PT",),
    "blur": ("CT", "MR", "PT", "DX"),
    "low_resolution": ("CT", "MR", "PT", "DX"),
    "xr_quantum_noise": ("DX",),
}
"""Restoration tasks (engine kinds) and the modalities their pairs are drawn from."""

SECOND: dict[str, tuple[str, ...]] = {
    "CT": ("ct_low_dose", "blur"), "MR": ("mr_noise", "blur", "mr_undersample"),
    "PT": ("pet_low_count", "blur"), "DX": ("xr_quantum_noise", "blur"),
}
"""Second degradations of combined pairs, per modality (noise is always applied last)."""

NOISE_KINDS = ("ct_low_dose", "mr_noise", "pet_low_count", "xr_quantum_noise")
"""Kinds applied after the others in a combined pair (noise enters at acquisition's end)."""


@dataclass(frozen=True)
class PairPlan:
    """Which pairs to build: split, tasks, counts, severity range, sizes and the seed."""

    split: str = "train"
    tasks: tuple[str, ...] = tuple(TASKS)
    per_task: int = 100
    clean: int = 60
    combo_fraction: float = 0.2
    severity_range: tuple[float, float] = (0.3, 3.2)
    max_side: int = 320
    seed: int = 0
    source_names: tuple[str, ...] = field(default_factory=tuple)
    levels: tuple[float, ...] = ()
    """Fixed continuous severities, cycled over each task's pairs (no combinations); empty:
    random severities in `severity_range`."""
    pseudo_mr: bool = False
    """Draw CT sources and recast them as MR (`pseudo_mr`) for every pair: body anatomy that
    fills the field of view, unlike the brain template, for MR tasks that generalise."""
    fine_ct: float = 0.0
    """Share of CT pairs whose clean image is first upsampled 1.6–2.4× (pixel size divided
    alike) before it is degraded: the 0.4–0.5 mm pixels of a real 512² head CT."""
    soft: float = 0.0
    """Share of pairs whose clean image is first softened by a Gaussian point-spread function of
    `SOFT_FWHM_PX` pixels, in input and target alike (`_soften`)."""
    soft_skip: tuple[str, ...] = ()
    """Tasks whose clean images are never softened by `soft`, e.g. the denoising tasks, so that a
    network learns what noise is on pixel-sharp images only (tried for `restore-s`, not shipped:
    docs/trials.md has the numbers)."""
    resampling: float = 0.0
    """Share of low-resolution degradations brought back to the grid otherwise than by the
    engine's linear interpolation (`_resample`): cubic interpolation, or for MR the zero-filled
    k-space of a coarser acquisition matrix (Gibbs ringing), so the network learns super-resolution
    of any reconstruction, not of one interpolator's trace."""
    ringing: float = 0.0
    """Share of MR pairs whose clean image is first reconstructed from a truncated k-space
    (`items.with_ringing`): the Gibbs ringing a real MR image carries at its sharp edges, part
    of the clean image (target and input alike), so the network learns to keep it."""
    coarse_mr: float = 0.0
    """Share of MR pairs whose clean image is first shrunk 2–4× (area-averaged, pixel size
    multiplied alike, at least `COARSE_MIN_SIDE` px): anatomy that is dense at the pixel scale,
    as on a small real matrix (a 64² MR), so the network learns that such detail is not noise."""

    def key(self) -> str:
        """Cache key of this plan (and the generator version); later fields count when set."""
        fields = asdict(self)
        for later in ("pseudo_mr", "fine_ct", "soft", "soft_skip", "resampling", "ringing",
                      "coarse_mr"):
            if not fields[later]:
                del fields[later]  # plans without them keep their caches
        text = json.dumps({**fields, "version": PAIRS_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pool(plan: PairPlan, modalities: tuple[str, ...]) -> list[Source]:
    """Sources of the plan's split giving 2D images of the modalities."""
    if plan.pseudo_mr:
        modalities = ("CT",)
    found = [s for s in sources(plan.split, "2d") if s.modality in modalities
             and (not plan.source_names or s.name in plan.source_names)]
    if not found:
        raise InvalidParameter(f"no {plan.split} source for {'/'.join(modalities)}")
    return found


def _apply(image: Any, kind: str, rng: np.random.Generator, plan: PairPlan,
           severity: float | None = None) -> Any:
    """Degrade `image` by `kind` at a random (or given) continuous severity."""
    spec = get_spec(kind)
    for _ in range(4):
        value = severity if severity is not None else float(rng.uniform(*plan.severity_range))
        try:
            out = simulate(image, kind, level=spec.level_at(value),
                           seed=int(rng.integers(2**31)))[0]
        except InvalidParameter:
            severity = None  # a level this image cannot take: draw another
            continue
        if kind == "low_resolution" and plan.resampling and rng.random() < plan.resampling:
            out = _resample(image, out, rng)
        return out
    return image


def _resample(before: Any, after: Any, rng: np.random.Generator) -> Any:
    """`after` (the engine's low resolution of `before`) with its coarse matrix brought back to
    the grid another way: cubic interpolation, or for MR half the time zero-filled k-space with a
    random raised-cosine taper (0–0.5). The record keeps the engine's kind and factor and notes
    the reconstruction."""
    record = dict(after.meta["degradations"][-1])
    kspace = before.modality == "MR" and rng.random() < 0.5
    how, taper = ("kspace", float(rng.uniform(0.0, 0.5))) if kspace else ("cubic", 0.0)
    array = coarse_matrix(before.array, record["level"], how, taper, magnitude=kspace)
    record["params"] = {**record.get("params", {}), "upsampling": how, "taper": round(taper, 3)}
    meta = {**after.meta, "degradations": [*after.meta["degradations"][:-1], record]}
    return after.evolve(array=array.astype(np.float32), meta=meta)


def _fit(image: Any, max_side: int) -> Any:
    """Centre-crop an image so no side exceeds `max_side` and both are multiples of 8."""
    h, w = image.shape[:2]
    nh, nw = min(h, max_side) // 8 * 8, min(w, max_side) // 8 * 8
    y0, x0 = (h - nh) // 2, (w - nw) // 2
    return image.evolve(array=np.ascontiguousarray(image.array[y0:y0 + nh, x0:x0 + nw]))


SOFT_FWHM_PX = (0.5, 3.0)
"""Range of the full width at half maximum (pixels) of a softened clean image's PSF."""


def _soften(image: Any, rng: np.random.Generator) -> Any:
    """The image through a Gaussian PSF of random FWHM (`SOFT_FWHM_PX`), recorded as nothing.

    Real scans are softer than their pixel grid (a 512² head CT at 0.43 mm pixels has edges
    several pixels wide), while the phantoms are sharp to the last pixel; a network that only saw
    pixel-sharp targets learns to sharpen every edge it meets and draws halos around a real
    scan's skull when told of mild blur or low resolution. The softening is part of the clean image
    (target and input alike), not a degradation to repair, so it leaves no record.
    """
    fwhm_mm = float(rng.uniform(*SOFT_FWHM_PX)) * float(np.mean(image.spacing[-2:]))
    return image.evolve(array=simulate(image, "blur", level=fwhm_mm, seed=0)[0].array)


def _finer(image: Any, factor: float) -> Any:
    """The image upsampled by `factor` (cubic), its pixel size divided alike."""
    from skimage.transform import resize

    h, w = image.shape[:2]
    array = resize(image.array, (round(h * factor), round(w * factor)), order=3,
                   preserve_range=True, anti_aliasing=False).astype(np.float32)
    return image.evolve(array=array, spacing=tuple(s / factor for s in image.spacing))


COARSE_MIN_SIDE = 48
"""Shortest side (px) a `coarse_mr` shrink leaves."""


def _coarser(image: Any, factor: float) -> Any:
    """The image shrunk by `factor` (area-averaged, to at least `COARSE_MIN_SIDE` px a side), its
    pixel size multiplied alike."""
    from skimage.transform import resize

    h, w = image.shape[:2]
    factor = max(1.0, min(factor, min(h, w) / COARSE_MIN_SIDE))
    shape = (round(h / factor), round(w / factor))
    array = resize(image.array, shape, order=1, anti_aliasing=True,
                   preserve_range=True).astype(np.float32)
    spacing = tuple(s * f for s, f in zip(image.spacing, (h / shape[0], w / shape[1]),
                                          strict=True))
    return image.evolve(array=array, spacing=spacing)


def make_pair(task: str, seed: int, plan: PairPlan, severity: float | None = None
              ) -> dict[str, Any]:
    """One pair for `task` (or a clean pair for task `clean`), deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    mods = TASKS.get(task, ("CT", "MR", "PT", "DX"))
    pool = _pool(plan, mods)
    source = pool[int(rng.integers(len(pool)))]
    clean = source.draw(rng, "2d")
    if plan.fine_ct and clean.modality == "CT" and rng.random() < plan.fine_ct:
        clean = _finer(clean, float(rng.uniform(1.6, 2.4)))
    clean = _fit(clean, plan.max_side)
    if plan.pseudo_mr:
        clean = pseudo_mr(clean, rng)
    if plan.coarse_mr and clean.modality == "MR" and rng.random() < plan.coarse_mr:
        clean = _fit(_coarser(clean, float(rng.uniform(2.0, 4.0))), plan.max_side)
    if plan.ringing and clean.modality == "MR" and rng.random() < plan.ringing:
        clean = with_ringing(clean, rng)
    if plan.soft and rng.random() < plan.soft and task not in plan.soft_skip:
        clean = _soften(clean, rng)
    image = clean
    if task != "clean":
        kinds = [task]
        if severity is None and rng.random() < plan.combo_fraction:
            extra = [k for k in SECOND[clean.modality] if k != task
                     and get_spec(k).finding != get_spec(task).finding]
            kinds.append(str(rng.choice(extra)))
        kinds.sort(key=lambda k: k in NOISE_KINDS)
        for kind in kinds:
            image = _apply(image, kind, rng, plan, severity if kind == task else None)
    records = image.meta.get("degradations", [])
    scale = scale_for(image.array, image.modality)
    presence, sev = truth(records)
    return {"x": scale.forward(image.array).astype(np.float16),
            "y": scale.forward(clean.array).astype(np.float16),
            "cond": vector(presence, sev, image.modality), "task": task,
            "source": source.name, "modality": modality_group(image.modality),
            "level": next((float(r["level"]) for r in records if r["name"] == task), 0.0),
            "scale": np.array([scale.offset, scale.scale], np.float64), "records": records,
            "spacing": np.asarray(image.spacing[-2:], np.float64)}


def _jobs(plan: PairPlan) -> list[tuple[str, int, float | None]]:
    """The (task, seed, fixed severity or None) list of a plan, in a fixed order."""
    base = plan.seed * 1_000_003 + (0 if plan.split == "train" else 500_000)
    levels = plan.levels or (None,)
    jobs = [(t, base + 1000 * i + j, levels[j % len(levels)]) for i, t in enumerate(plan.tasks)
            for j in range(plan.per_task)]
    return jobs + [("clean", base + 900_000 + j, None) for j in range(plan.clean)]


def pack(pairs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Stack pairs of different shapes: flat pixels, per-pair shape and offset."""
    shapes = np.array([p["x"].shape for p in pairs], np.int64)
    sizes = shapes.prod(axis=1)
    return {"x": np.concatenate([p["x"].ravel() for p in pairs]),
            "y": np.concatenate([p["y"].ravel() for p in pairs]),
            "shape": shapes, "offset": np.r_[0, np.cumsum(sizes)[:-1]],
            "cond": np.stack([p["cond"] for p in pairs]),
            "modality": np.array([p["modality"] for p in pairs]),
            "scale": np.stack([p["scale"] for p in pairs]),
            "spacing": np.stack([p["spacing"] for p in pairs]),
            "task": np.array([p["task"] for p in pairs]),
            "level": np.array([p["level"] for p in pairs], np.float64),
            "source": np.array([p["source"] for p in pairs])}


def concat(*packs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Join packed pair sets (offsets shifted)."""
    shift = np.cumsum([0] + [len(p["x"]) for p in packs[:-1]])
    out = {k: np.concatenate([p[k] for p in packs]) for k in packs[0] if k != "offset"}
    out["offset"] = np.concatenate([p["offset"] + s for p, s in zip(packs, shift, strict=True)])
    return out


def pair_arrays(data: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
    """(degraded, clean) normalised float32 images of pair i."""
    o, (h, w) = int(data["offset"][i]), data["shape"][i]
    n = int(h * w)
    return (data["x"][o:o + n].reshape(h, w).astype(np.float32),
            data["y"][o:o + n].reshape(h, w).astype(np.float32))


def _run(job: tuple[str, int, float | None], plan: PairPlan) -> dict[str, Any]:
    return make_pair(job[0], job[1], plan, job[2])


def build_pairs(plan: PairPlan, workers: int | None = None, progress: bool = True
                ) -> dict[str, np.ndarray]:
    """Build (or read from the cache) the pairs of a plan as packed arrays."""
    return cached_split(
        cache_dir() / "restore" / plan.key(), plan.split, plan,
        lambda: map_jobs(partial(_run, plan=plan), _jobs(plan), workers, progress,
                         f"building {plan.split} restoration pairs", chunksize=4),
        pack, ("task", "source", "records"))
