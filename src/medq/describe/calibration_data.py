"""Calibration data of the finding detector: degraded items of the TRAINING sources (never the
test split), their evidence features, continuous severities per finding type and, with a model,
its finding-head outputs — built once in worker processes and cached under
`cache_dir()/describe/` by settings, feature version and item version (`data_path`).
`medq.describe.calibrate` fits the detector on them."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from medq.assess.detector import head_vector
from medq.assess.evidence import (
    FEATURE_NAMES,
    FEATURES_VERSION,
    evidence_rows,
    feature_names,
    feature_vector,
    ordered_extras,
    view_features,
)
from medq.data.cache import map_jobs, read_npz, write_npz
from medq.data.items import (
    LADDER_RUNGS,
    degraded_item,
    ladder_jobs,
    severity_ladder,
    severity_targets,
)
from medq.data.sources import source_named
from medq.errors import InputError, InvalidParameter

SEED_BASE = 7_000_000
"""Seeds of the calibration items (far from the quality benchmark's)."""

SOURCE_WEIGHT = {"MR": 3}
"""Share of each modality's sources in the calibration items: MR has nine finding types to
learn from one training source, the others four or fewer."""

def _jobs(n2d: int, n3d: int, source_names: tuple[str, ...] = ()
          ) -> list[tuple[str, str, int]]:
    """(training source, dim, seed) of every calibration item; MR sources weighted up; only the
    sources `source_names` where given (a dimension none of them has gets no items)."""
    from medq.data.sources import sources

    jobs: list[tuple[str, str, int]] = []
    for dim, count in (("2d", n2d), ("3d", n3d)):
        pool = [s for s in sources("train", dim) if not source_names or s.name in source_names
                for _ in range(SOURCE_WEIGHT.get(s.modality, 1))]
        if not pool:
            continue
        jobs += [(pool[i % len(pool)].name, dim, SEED_BASE + len(jobs) + i) for i in range(count)]
    return jobs


@lru_cache(maxsize=1)
def _assessor(model: str) -> Any:
    from medq.assess.predictor import Assessor

    return Assessor(model, measures=False, threads=1)


def _row(job: tuple[str, str, int], model: str | None, view: bool = False,
         zoom: str = "anywhere", extras: tuple[str, ...] = (), noisy_base: float = 0.0
         ) -> dict[str, Any] | None:
    """Features, targets (and head outputs) of one calibration item (`view`: the mean of the
    evidence rows, on views of at most `EVIDENCE_SIZE` px, instead of the full planes; `zoom`:
    the realism's zoom profile, `items.ZOOM_PROFILES`; `extras`: the full planes' detector extras,
    `evidence.DETECTOR_EXTRAS`; `noisy_base`: the items' chance of a noisy base,
    `items.degraded_item`); None when `model` refuses the image (a zoomed view that holds only
    air is blank)."""
    name, dim, seed = job
    image, records = degraded_item(source_named(name, "train"), dim, seed, clean_fraction=0.2,
                                   realism=True, zoom=zoom, noisy_base=noisy_base)
    row = {"x": _features(image, view, extras), "y": severity_targets(records),
           "modality": image.modality, "source": name, "dim": dim}
    if model:
        try:
            row["h"] = head_vector(_assessor(model).assess(image))
        except InputError:
            return None
    return row


def _features(image: Any, view: bool, extras: tuple[str, ...]) -> np.ndarray:
    """The detector's feature vector of one image: the mean of its evidence rows (`view`) or
    its full planes' features with `extras`."""
    return view_features(evidence_rows(image)) if view else feature_vector(image, extras=extras)


def _ladder(job: tuple[str, int], view: bool, zoom: str) -> dict[str, Any]:
    """Features and targets `[rungs, …]` of one severity ladder (`items.severity_ladder`)."""
    name, seed = job
    rungs, kind = severity_ladder(source_named(name, "train"), seed, zoom)
    return {"x": np.stack([_features(r, view, ()) for r in rungs]),
            "y": np.stack([severity_targets(list(r.meta.get("degradations", [])))
                           for r in rungs]),
            "modality": rungs[0].modality, "source": name, "kind": kind}


LADDER_SEED_BASE = 9_000_000
"""Seeds of the severity ladders (far from the calibration items' and the benchmark's)."""


def ladders_path(n: int, view: bool, zoom: str) -> Path:
    """Where `build_ladders` caches `n` ladders (keyed like `data_path`)."""
    from medq.data.bench import BENCH_VERSION

    return _cache_file("ladders", [n, LADDER_RUNGS, FEATURE_NAMES, FEATURES_VERSION,
                                   LADDER_SEED_BASE, BENCH_VERSION, view, zoom])


def _cache_file(stem: str, settings: list) -> Path:
    """The cache file `describe/<stem>-<key>.npz`, keyed by the hash of `settings`."""
    from medq.data.cache import cache_dir

    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:12]
    return cache_dir() / "describe" / f"{stem}-{key}.npz"


def build_ladders(n: int, workers: int | None = None, view: bool = False, zoom: str = "anywhere"
                  ) -> dict[str, np.ndarray]:
    """`n` severity ladders of the 2D training sources (MR weighted up as for the items;
    cached): x `[n, rungs, features]`, y `[n, rungs, types]`, modality, source, kind."""
    path = ladders_path(n, view, zoom)
    cached = read_npz(path)
    if cached is not None:
        return cached
    jobs = ladder_jobs(n, LADDER_SEED_BASE, SOURCE_WEIGHT)
    made = map_jobs(partial(_ladder, view=view, zoom=zoom), jobs, workers, True,
                    "severity ladders", chunksize=2)
    data = {k: np.stack([r[k] for r in made]) for k in ("x", "y")}
    data.update({k: np.array([r[k] for r in made]) for k in ("modality", "source", "kind")})
    write_npz(path, data)
    return data


def model_sha(model: str) -> str:
    """SHA-256 (first 16 hex digits) of a shipped or local checkpoint file."""
    from medq.assess.weights import resolve

    return hashlib.sha256(resolve(model).read_bytes()).hexdigest()[:16]


def data_path(n2d: int, n3d: int, model: str | None = None, view: bool = False,
              zoom: str = "anywhere", extras: tuple[str, ...] = (), noisy_base: float = 0.0,
              source_names: tuple[str, ...] = ()) -> Path:
    """Where `build` caches the calibration data of these settings (keyed by them and by the
    feature and item versions; the default zoom profile, no noisy base and every source add
    nothing to the key)."""
    from medq.data.bench import BENCH_VERSION

    if view and extras:
        raise ValueError("detector extras are full-plane features: not with view")
    features = FEATURE_NAMES + ordered_extras(extras)
    return _cache_file("calibration", [n2d, n3d, features, FEATURES_VERSION, SEED_BASE,
                                       BENCH_VERSION, model and model_sha(model)]
                       + (["view"] if view else []) + ([zoom] if zoom != "anywhere" else [])
                       + ([f"noisy_base={noisy_base}"] if noisy_base else [])
                       + ([f"sources={','.join(sorted(source_names))}"] if source_names
                          else []))


def build(n2d: int, n3d: int, model: str | None = None, workers: int | None = None,
          view: bool = False, zoom: str = "anywhere", extras: tuple[str, ...] = (),
          noisy_base: float = 0.0, source_names: tuple[str, ...] = ()
          ) -> dict[str, np.ndarray]:
    """The calibration arrays (cached): x features, y severities, h heads, modality, source
    (`zoom`: the items' zoom profile, `items.ZOOM_PROFILES`; `extras`: full-plane detector
    extras appended to x, `evidence.DETECTOR_EXTRAS`; `noisy_base`: the items' chance of a
    noisy base, `items.degraded_item`; `source_names`: these training sources only)."""
    from medq.data.sources import sources

    unknown = set(source_names) - {s.name for s in sources("train")}
    if unknown:
        raise InvalidParameter(f"not training sources: {', '.join(sorted(unknown))}")
    path = data_path(n2d, n3d, model, view, zoom, extras, noisy_base, source_names)
    cached = read_npz(path)
    if cached is not None:
        return cached
    jobs = sorted(_jobs(n2d, n3d, source_names), key=lambda j: (j[0], j[1]))
    made = map_jobs(partial(_row, model=model, view=view, zoom=zoom, extras=tuple(extras),
                            noisy_base=noisy_base), jobs, workers, True, "calibration items",
                    chunksize=4)
    rows = [r for r in made if r is not None]
    if len(rows) < len(made):
        print(f"{len(made) - len(rows)} of {len(made)} items left out: {model} cannot assess them")
    data = {"x": np.stack([r["x"] for r in rows]), "y": np.stack([r["y"] for r in rows]),
            "features": np.array(FEATURE_NAMES + ordered_extras(extras)),
            "modality": np.array([r["modality"] for r in rows]),
            "source": np.array([r["source"] for r in rows]),
            "dim": np.array([r["dim"] for r in rows])}
    if model:
        data["h"] = np.stack([r["h"] for r in rows])
    write_npz(path, data)
    return data


DATA_KEYS = ("x", "y", "modality", "source", "dim")
"""Arrays of a calibration data file (plus `h` when it holds a model's head outputs)."""


def read_data(path: Path, heads: bool = False) -> dict[str, np.ndarray]:
    """A calibration data file (as `build` caches it), checked for what `fit` needs."""
    from medq.errors import UnreadableImage

    try:
        with np.load(path) as saved:
            data = {k: saved[k] for k in saved.files}
    except (OSError, ValueError) as e:
        raise UnreadableImage(f"not a calibration data file ({type(e).__name__})", path) from e
    missing = [k for k in (*DATA_KEYS, *(("h",) if heads else ())) if k not in data]
    if missing:
        raise InvalidParameter(f"calibration data file lacks {', '.join(missing)}"
                               + (" (built without --heads)" if missing == ["h"] else ""), path)
    try:
        feature_names(data["x"].shape[1])
    except ValueError as e:
        raise InvalidParameter(f"calibration data has {e}", path) from None
    return data
