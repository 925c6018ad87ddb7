"""Restoration speed per 512² slice on CPU threads: the shipped networks vs BM3D, NLM and TV.

Usage: python benchmarks/restore_speed.py [--threads 2] [--repeats 3]
Target: the network is ≥ 10× faster than BM3D. The slice is a real 512² CT slice (pydicom's
693_J2KI sample) with engine low-dose noise, in normalised units. Results go to
benchmarks/results/restore_speed.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main() -> None:
    """Time every method on the slice and print one line each plus the BM3D / network ratio."""
    from medq.cli.bench_results import write_results
    from medq.data.sources import sources
    from medq.degrade import simulate
    from medq.restore.apply import network_planes
    from medq.restore.benchmark import time_per_slice
    from medq.restore.classical import classical_plane
    from medq.restore.models import load_restorer
    from medq.restore.normalise import scale_for

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="*", default=["restore-s", "restore-s-nocond"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    source = next(s for s in sources("test") if s.name == "ct_693")
    image = source.draw(None, "2d")
    noisy, _ = simulate(image, "ct_low_dose", severity="moderate", seed=0)
    plane = scale_for(noisy.array, "CT").forward(noisy.array)
    assert plane.shape == (512, 512), plane.shape
    fns = {m: (lambda p, net=load_restorer(m)[0]: network_planes(net, [p], None)[0][0])
           for m in args.models}
    fns.update({c: (lambda p, c=c: classical_plane(c, p)) for c in ("bm3d", "nlm", "tv")})
    seconds = {name: time_per_slice(fn, repeats=1 if name == "bm3d" else args.repeats,
                                    plane=plane) for name, fn in fns.items()}
    for name, s in seconds.items():
        print(f"{name:18s} {s:8.3f} s per 512² slice ({args.threads} threads)")
    ratio = seconds["bm3d"] / seconds[args.models[0]]
    print(f"BM3D / {args.models[0]}: {ratio:.1f}× (target ≥ 10×)")
    write_results(Path(__file__).parent / "results", "restore_speed.json",
                  {"threads": args.threads, "seconds_per_512": seconds, "bm3d_over_net": ratio})


if __name__ == "__main__":
    main()
