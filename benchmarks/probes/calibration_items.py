"""Probe: are the full-plane calibration items this medq builds the same as another checkout's?

The description's calibration (`python -m medq.describe.calibrate`) is fitted on degraded
training items and their evidence features. This builds a sample of those items (every
`--every`-th job of the default 3600 + 150, `--count` of them) with this checkout's code and,
in a subprocess, with the code under `--other-src` (another checkout's `src`, e.g. one made by
`git worktree add ../v5 47e724c^`, the commit whose items the shipped `detector-full.json` was
fitted on), and prints how many items differ in their degradation records and pixels, and per
evidence feature the largest relative difference. Usage:
    python benchmarks/probes/calibration_items.py --other-src ../v5/src [--zoom central]
                                                  [--every 60] [--count 60]
"""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def dump(path: str, every: int, count: int, zoom: str) -> None:
    """Write the sampled items (pixels, features, records) of the importable medq to `path`."""
    from medq.assess.evidence import feature_vector
    from medq.data.items import degraded_item
    from medq.data.sources import sources

    try:
        from medq.describe.calibration_data import _jobs
    except ImportError:  # checkouts before calibration_data.py kept the jobs in calibrate
        from medq.describe.calibrate import _jobs
    kwargs = {"zoom": zoom} if "zoom" in inspect.signature(degraded_item).parameters else {}
    jobs = sorted(_jobs(3600, 150), key=lambda j: (j[0], j[1]))[::every][:count]
    out = {}
    for i, (name, dim, seed) in enumerate(jobs):
        src = next(s for s in sources("train") if s.name == name)
        image, records = degraded_item(src, dim, seed, clean_fraction=0.2, realism=True, **kwargs)
        out[f"a{i}"] = np.asarray(image.array, np.float32)
        out[f"x{i}"] = feature_vector(image)
        out[f"r{i}"] = np.array(repr([(r["name"], float(r["level"])) for r in records]))
    np.savez(path, n=len(jobs), **out)


def main() -> None:
    """Dump with both codes and print the differences."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--other-src", type=Path, required=True)
    parser.add_argument("--zoom", default="central", help="this checkout's zoom profile")
    parser.add_argument("--every", type=int, default=60)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--_dump", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._dump:
        dump(args._dump, args.every, args.count, args.zoom)
        return
    from medq.assess.evidence import feature_names

    with tempfile.TemporaryDirectory() as tmp:
        mine, theirs = f"{tmp}/mine.npz", f"{tmp}/theirs.npz"
        env = dict(os.environ, PYTHONPATH=str(args.other_src.resolve()))
        subprocess.run([sys.executable, __file__, "--other-src", str(args.other_src),
                        "--every", str(args.every), "--count", str(args.count),
                        "--_dump", theirs], env=env, check=True)
        dump(mine, args.every, args.count, args.zoom)
        a, b = dict(np.load(mine)), dict(np.load(theirs))
    n = int(a["n"])
    records = sum(str(a[f"r{i}"]) != str(b[f"r{i}"]) for i in range(n))
    pixels = sum(a[f"a{i}"].shape != b[f"a{i}"].shape or not np.array_equal(a[f"a{i}"], b[f"a{i}"])
                 for i in range(n))
    print(f"{n} items: degradation records differ in {records}, pixels in {pixels}")
    if a["x0"].shape != b["x0"].shape:
        print(f"features: {a['x0'].shape[0]} here, {b['x0'].shape[0]} there")
        return
    rel = np.max([np.abs(a[f"x{i}"] - b[f"x{i}"]) / (np.abs(b[f"x{i}"]) + 1e-12)
                  for i in range(n)], axis=0)
    names = feature_names(len(rel))
    differing = {names[j]: rel[j] for j in np.argsort(-rel) if rel[j] > 0}
    print("features equal" if not differing else "largest relative difference per feature: "
          + ", ".join(f"{k} {v:.1e}" for k, v in differing.items()))


if __name__ == "__main__":
    main()
