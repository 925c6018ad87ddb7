"""Build speed of the cached training data: seconds per benchmark item by source, and the shared
projector (system matrix, forward and back projection, PET's MLEM) that CT and PET items spend
most of them in.

Usage: python benchmarks/build_speed.py [--items 80] [--config configs/mediqa_s.yaml]
Builds every `len(jobs) // items`-th job of the config's training split in this process (one
core, no cache; the jobs are in the order the build runs them, grouped by source) and prints the
mean per source and the single-core estimate for the whole split (divide by the build's worker
count, `medq.data.cache.build_workers`, for the wall time). Writes
benchmarks/results/build_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from medq.degrade.projection import Geometry

RESULTS = Path(__file__).parent / "results"


def timed(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best of `repeats` wall times of `fn()`, seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _forward_back(image: np.ndarray, geom: Geometry) -> np.ndarray:
    """One forward and one back projection of `image`."""
    from medq.degrade import projection as P

    return P.back(P.forward(image, geom), geom, (image.shape[-2], image.shape[-1]))


def projector_rows() -> list[dict[str, float | int]]:
    """Matrix assembly, one forward + back projection and a 10-iteration MLEM per grid size."""
    from medq.degrade import projection as P

    rows = []
    rng = np.random.default_rng(0)
    for size in (128, 256, 512):
        geom, shape = P.geometry((size, size)), (size, size)
        image = rng.random((1, size, size), dtype=np.float32)
        sino = P.forward(image, geom)  # also caches the matrix for the products below
        row = {"size": size, "views": geom.n_views,
               "matrix_s": timed(partial(P._matrix.__wrapped__, geom.size, geom.n_views,
                                         geom.n_det, True)),
               "forward_back_s": timed(partial(_forward_back, image, geom)),
               "mlem_2x10_s": timed(partial(P.mlem, np.stack([sino, sino]), geom, shape, 10),
                                    repeats=1)}
        rows.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
        print(f"projector {size}²  {geom.n_views} views: matrix {row['matrix_s']:.2f} s, "
              f"forward + back {row['forward_back_s']:.2f} s, MLEM (2 sinograms, 10 "
              f"iterations) {row['mlem_2x10_s']:.2f} s", flush=True)
    return rows


def item_rows(config: str, items: int) -> dict[str, object]:
    """Seconds per sampled training item, by source, and the single-core estimate."""
    from medq.data import bench
    from medq.train.config import load_config

    plan = load_config(config).bench
    jobs = bench.ordered_jobs(plan, "train")
    sample = jobs[::max(1, len(jobs) // items)]
    by_source: dict[str, list[float]] = defaultdict(list)
    for job in sample:
        t0 = time.perf_counter()
        bench._run(job, plan)
        by_source[f"{job[0]} {job[1]}"].append(time.perf_counter() - t0)
    mean = float(np.mean([t for ts in by_source.values() for t in ts]))
    for name, ts in sorted(by_source.items(), key=lambda kv: -sum(kv[1])):
        print(f"{name:22s} {len(ts):3d} items  {np.mean(ts):6.3f} s mean  {np.max(ts):6.3f} s max")
    print(f"{len(sample)} of {len(jobs)} training items: {mean:.3f} s per item, about "
          f"{mean * len(jobs) / 60:.0f} minutes of one core for the split")
    return {"config": config, "jobs": len(jobs), "sampled": len(sample),
            "seconds_per_item": round(mean, 4),
            "split_core_minutes": round(mean * len(jobs) / 60, 1),
            "by_source": {k: {"n": len(v), "mean_s": round(float(np.mean(v)), 4)}
                          for k, v in by_source.items()}}


def main() -> None:
    """Print the projector and per-item timings; write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=80)
    ap.add_argument("--config", default="configs/mediqa_s.yaml")
    args = ap.parse_args()
    from medq.workers import set_threads

    set_threads(1)  # a build worker's share
    out = {"machine": platform.machine(), "projector": projector_rows(),
           "items": item_rows(args.config, args.items)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "build_speed.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
