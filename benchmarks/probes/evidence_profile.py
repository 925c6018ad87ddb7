"""Probe: where a 512² CT slice's evidence rows (`evidence.evidence_rows`) spend their time.

Times `evidence_rows` on one core for pydicom's 693_J2KI slice as the test split draws it, then
prints cProfile's top functions by own time (the streak index's median networks and line sums,
the Gaussian filters, …). Usage:
    OMP_NUM_THREADS=1 python benchmarks/probes/evidence_profile.py [--repeats 10] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np


def main() -> None:
    """Time the evidence rows of one slice, then profile them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    import torch

    from medq.assess.evidence import evidence_rows
    from medq.data.sources import sources

    torch.set_num_threads(1)
    source = next(s for s in sources("test") if s.name == "ct_693")
    image = source.draw(np.random.default_rng(0), "2d")
    evidence_rows(image)  # warm-up: caches and imports
    start = time.perf_counter()
    for _ in range(args.repeats):
        evidence_rows(image)
    print(f"{image.shape} {image.modality}: "
          f"{(time.perf_counter() - start) / args.repeats * 1000:.1f} ms per slice, one core")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.repeats):
        evidence_rows(image)
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
