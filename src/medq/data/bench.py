"""Deterministic, cached quality benchmark: sources × engine degradations → model inputs + targets.

Each item is one clean base image from a `Source` (2D, or a 3D slab) with zero, one or two
engine degradations at random continuous severities (uniform in severity value 0.2–3.2, so
mild to past severe is covered evenly). Its targets are computed from the engine's records:

- `score`: the **physics-derived reference score** `1 + 4·Π_k (1 − min(s_k, 3)/3)` from the
  continuous severities s_k of the applied degradations (5 = clean). It is not a radiologist's
  opinion; users fine-tune on their own scores (`medq train … --scores`).
- `physics`: per registered kind, the normalised log level `s_k / 3` (the level's position on
  the kind's log axis between "none" and "severe"; 0 when the kind was not applied).
- `severity`: per finding type, the ordinal severity 0–3 (none … severe) of the worst
  degradation with that finding.

Items are rendered with `medq.assess.preprocess` at the model's input size and stored as
float16 arrays in the cache folder (`MEDQ_CACHE_DIR`, default `~/.cache/medq`), keyed by the
plan's parameters, so a second build is a file read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from typing import Any

import numpy as np

from medq.assess.evidence import EVIDENCE_SIZE, FEATURES_VERSION, evidence_rows
from medq.assess.models.blocks import FINDING_TYPES, SEVERITIES
from medq.assess.preprocess import image_inputs
from medq.assess.prompts import encode, prompts_from_image
from medq.data.cache import cache_dir, cached_split, map_jobs, read_npz, write_npz
from medq.data.items import LADDER_RUNGS, degraded_item, ladder_jobs, severity_ladder
from medq.data.sources import Source, source_named, sources
from medq.degrade import available, get_spec
from medq.image import MedImage

KINDS: tuple[str, ...] = tuple(available())
"""Registered degradation kinds, in physics-target order."""

BENCH_VERSION = 9
"""Bumped whenever item generation changes, so stale caches are never reused (6: zoomed fields
of view anywhere in the image, 25–75 % per side, half of them at a small matrix; 7 was a reverted
trial's, whose caches must not be read; 8: blur records the FWHM it applied, and the evidence
rows of the measure fixes since 6 Dec 2026; 9: fundus photographs get camera noise,
`fundus_noise`)."""


ADDED = ("fine_pixels", "evidence_size", "native_crop", "noisy_base", "evidence_extras")
"""Plan settings added since version 6; at their defaults the items are as they were."""


@dataclass(frozen=True)
class BenchPlan:
    """How many items of each split and dimension to build, at what input size, from what seed
    (`fine_pixels`: the training realism's chance of a fine MR pixel size, `items.FINE_PIXELS`;
    `evidence_size`: the longest side of the views the items' evidence rows are taken on;
    `native_crop`: a grey input's second channel is its window at its own pixel size,
    `preprocess.native_crop`; `noisy_base`: the training items' chance of a noisy base,
    `items.degraded_item`; `evidence_extras`: features of `evidence.ROW_EXTRAS` appended to
    every evidence row)."""

    size: int = 224
    train_2d: int = 4000
    train_3d: int = 120
    test_2d_per_source: int = 50
    test_3d_per_source: int = 20
    seed: int = 0
    clean_fraction: float = 0.12
    pair_fraction: float = 0.25
    n_slices: int = 7
    fine_pixels: float = 0.0
    evidence_size: int = EVIDENCE_SIZE
    native_crop: bool = False
    noisy_base: float = 0.0
    evidence_extras: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """A plan read from JSON or YAML gives its extras as a list: kept as a tuple."""
        object.__setattr__(self, "evidence_extras", tuple(self.evidence_extras))

    def key(self) -> str:
        """Cache key of this plan (and the generator version); settings added after a version
        are left out at their defaults, so the plans before them keep their keys."""
        default = {f.name: f.default for f in fields(self)}
        kept = {k: v for k, v in asdict(self).items() if k not in ADDED or v != default[k]}
        text = json.dumps({**kept, "version": BENCH_VERSION, "kinds": KINDS,
                           "features": FEATURES_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


TRAINING_ONLY = ("train_2d", "train_3d", "fine_pixels", "noisy_base")
"""Plan settings that act on the training split alone (its size, and the realism only training
items get): plans differing only in them share one test split."""


def test_split_plan(plan: BenchPlan) -> BenchPlan:
    """The plan whose test split `plan`'s is: its training-only settings at their defaults (the
    same items, built and cached once for every such plan)."""
    default = {f.name: f.default for f in fields(plan) if f.name in TRAINING_ONLY}
    return replace(plan, **default)


def reference_score(severities: list[float]) -> float:
    """Physics-derived reference score `1 + 4·Π (1 − min(s, 3)/3)` of continuous severities."""
    keep = np.prod([1.0 - min(max(s, 0.0), 3.0) / 3.0 for s in severities]) if severities else 1.0
    return float(1.0 + 4.0 * keep)


def targets(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Score, physics vector and per-finding severities from a list of degradation records."""
    physics = np.zeros(len(KINDS), dtype=np.float32)
    severity = np.zeros(len(FINDING_TYPES), dtype=np.int64)
    values = []
    for rec in records:
        spec = get_spec(rec["name"])
        s = spec.severity_value(rec["level"])
        values.append(s)
        physics[KINDS.index(rec["name"])] = s / 3.0
        f = FINDING_TYPES.index(spec.finding)
        severity[f] = max(severity[f], SEVERITIES.index(spec.severity(rec["level"])))
    return {"score": reference_score(values), "physics": physics, "severity": severity}


def make_item(source: Source, dim: str, seed: int, plan: BenchPlan, realism: bool = False
              ) -> dict[str, Any]:
    """Build one benchmark item (inputs + targets + provenance) deterministically from `seed`.

    `realism` (training split) gives the clean base image sub-threshold acquisition noise and
    sometimes a zoomed field of view (`medq.data.items`); that noise is part of the clean image
    and does not lower the score. `m` holds the per-slice evidence rows (the model's measures).
    """
    image, _ = degraded_item(source, dim, seed, plan.clean_fraction, plan.pair_fraction,
                             realism=realism, fine_pixels=plan.fine_pixels,
                             noisy_base=plan.noisy_base if realism else 0.0)
    return _item(image, source, dim, plan)


def _item(image: MedImage, source: Source, dim: str, plan: BenchPlan) -> dict[str, Any]:
    """The benchmark item of one degraded image: model inputs, evidence rows, prompts, targets
    from its engine records (the sub-threshold baseline's left out) and provenance."""
    records = [r for r in image.meta.get("degradations", []) if not r.get("baseline")]
    prompts = prompts_from_image(image)
    x, indices = image_inputs(image, plan.size, prompts.type, plan.n_slices,
                              native=plan.native_crop)
    m = evidence_rows(image, indices if image.is_volume else None, plan.evidence_size,
                      plan.evidence_extras)
    return {"x": x.astype(np.float16), "m": m, "prompt": encode(prompts),
            "source": source.name, "modality": source.modality, "dim": dim,
            "records": records, "slices": indices, **targets(records)}


def _jobs(plan: BenchPlan, split: str) -> list[tuple[str, str, int]]:
    """The (source name, dim, seed) list of a split, in a fixed order."""
    jobs: list[tuple[str, str, int]] = []
    base = plan.seed * 1_000_003 + (0 if split == "train" else 500_000)
    if split == "train":
        for dim, count in (("2d", plan.train_2d), ("3d", plan.train_3d)):
            pool = sources("train", dim)
            jobs += [(pool[i % len(pool)].name, dim, base + len(jobs) + i) for i in range(count)]
    else:
        for dim, count in (("2d", plan.test_2d_per_source), ("3d", plan.test_3d_per_source)):
            for src in sources("test", dim):
                jobs += [(src.name, dim, base + len(jobs) + i) for i in range(count)]
    return jobs


def ordered_jobs(plan: BenchPlan, split: str) -> list[tuple[str, str, int]]:
    """The (source name, dim, seed) of a split in the order its packed items are stored
    (grouped by source and dim, so the projector cache hits)."""
    return sorted(_jobs(plan, split), key=lambda j: (j[0], j[1]))


def _run(job: tuple[str, str, int], plan: BenchPlan) -> dict[str, Any]:
    name, dim, seed = job
    source = source_named(name)
    return make_item(source, dim, seed, plan, realism=source.split == "train")


def pack(items: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Stack items into arrays: slices flat in `x` `[S, 3, H, W]`, item i at `offset[i]`.

    `labelled` marks items with engine records (physics and finding targets); items without
    (`labelled: False`, e.g. user-scored images) train the score only.
    """
    counts = np.array([it["x"].shape[0] for it in items])
    x = np.concatenate([it["x"] for it in items])
    m = np.concatenate([it["m"] for it in items]) if all("m" in it for it in items) else None
    return {"x": x, "n_valid": counts, **({"m": m} if m is not None else {}),
            "offset": np.r_[0, np.cumsum(counts)[:-1]],
            "prompt": np.stack([it["prompt"] for it in items]),
            "score": np.array([it["score"] for it in items], dtype=np.float32),
            "physics": np.stack([it["physics"] for it in items]),
            "severity": np.stack([it["severity"] for it in items]),
            "labelled": np.array([it.get("labelled", True) for it in items]),
            "source": np.array([it["source"] for it in items]),
            "modality": np.array([it["modality"] for it in items]),
            "dim": np.array([it["dim"] for it in items]),
            **{k: np.stack([it[k] for it in items]) for k in OPTIONAL_KEYS
               if all(k in it for it in items)}}


OPTIONAL_KEYS = ("scored", "acquisition", "acq_known")
"""Per-item arrays some packed sets have (`medq.train.acquisition`: images without a score
and the acquisition their headers state); `concat` fills them in for sets without."""


def _filled(data: dict[str, np.ndarray], key: str, like: np.ndarray) -> np.ndarray:
    """`data[key]`, or what it means where absent: every item scored, no acquisition stated."""
    if key in data:
        return data[key]
    n = len(data["score"])
    return np.ones(n, bool) if key == "scored" else np.zeros((n, *like.shape[1:]), like.dtype)


def concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Two packed sets as one (`b`'s items after `a`'s; their slice rows alike)."""
    if ("m" in a) != ("m" in b):
        raise ValueError("one packed set has evidence rows and the other has none")
    out = {k: np.concatenate([a[k], b[k]]) for k in a
           if k not in OPTIONAL_KEYS and k != "offset" and k in b}
    out["offset"] = np.concatenate([a["offset"], b["offset"] + len(a["x"])])
    for key in OPTIONAL_KEYS:
        like = a.get(key, b.get(key))
        if like is not None:
            out[key] = np.concatenate([_filled(a, key, like), _filled(b, key, like)])
    return out


LADDER_SEED_OFFSET = 800_000
"""Seeds of the model's severity ladders, after the plan's base (the test split's start at
500,000, the calibration's ladders at 9,000,000)."""
LADDER_WEIGHT = {"MR": 3}
"""Share of each modality's training sources in the model's ladders (MR scores worst)."""


def make_ladder(job: tuple[str, int], plan: BenchPlan) -> list[dict[str, Any]]:
    """The benchmark items of one severity ladder (`items.severity_ladder`: a 2D training
    image clean, then one engine kind at rising severities), rung by rung."""
    name, seed = job
    source = source_named(name, "train")
    rungs, kind = severity_ladder(source, seed, fine_pixels=plan.fine_pixels)
    return [{**_item(rung, source, "2d", plan), "kind": kind} for rung in rungs]


def build_ladders(plan: BenchPlan, n: int, workers: int | None = None, progress: bool = True
                  ) -> dict[str, np.ndarray]:
    """`n` severity ladders of the training sources as packed items (`pack`; cached beside
    the plan's splits): rung r of ladder i is item `i·(LADDER_RUNGS + 1) + r`, `ladder` and
    `kind` name each item's ladder and its degradation kind."""
    path = cache_dir() / "bench" / plan.key() / f"ladders-{n}.npz"
    cached = read_npz(path)
    if cached is not None:
        return cached
    jobs = ladder_jobs(n, plan.seed * 1_000_003 + LADDER_SEED_OFFSET, LADDER_WEIGHT)
    made = map_jobs(partial(make_ladder, plan=plan), jobs, workers, progress,
                    "building severity ladders", chunksize=2)
    items = [item for ladder in made for item in ladder]
    packed = {**pack(items), "ladder": np.repeat(np.arange(n), LADDER_RUNGS + 1),
              "kind": np.array([item["kind"] for item in items])}
    write_npz(path, packed)
    return packed


def item_slices(data: dict[str, np.ndarray], i: int) -> np.ndarray:
    """The stored `[n, 3, H, W]` slices of item i (float32)."""
    o, n = int(data["offset"][i]), int(data["n_valid"][i])
    return data["x"][o:o + n].astype(np.float32)


def slice_measures(data: dict[str, np.ndarray], rows: Any) -> np.ndarray | None:
    """The evidence rows `[len(rows), F]` of stored slices `rows` (None when not stored)."""
    return data["m"][rows].astype(np.float32) if "m" in data else None


def build(plan: BenchPlan, split: str, workers: int | None = None, progress: bool = True
          ) -> dict[str, np.ndarray]:
    """Build (or read from the cache) one split of the benchmark as packed arrays."""
    return cached_split(
        cache_dir() / "bench" / plan.key(), split, plan,
        lambda: map_jobs(partial(_run, plan=plan), ordered_jobs(plan, split), workers, progress,
                         f"building {split} benchmark"),
        pack, ("source", "dim", "records", "score"))
