"""Restoration speed per 512² slice on CPU threads: the shipped networks vs BM3D, NLM and TV.

Usage: python benchmarks/restore_speed.py [--threads 2] [--repeats 3] [--volume-slices 8]
Target: the network is ≥ 10× faster than BM3D. The slice is a real 512² CT slice (pydicom's
693_J2KI sample) with engine low-dose noise, in normalised units. Also timed: BM3D over a
volume's slices (MNI T1 slices with engine MR noise) one after another on one core, and as
`medq restore` runs them (`classical.classical_planes`: one worker process per usable core),
with the largest difference between the two outputs. Results go to
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
    ap.add_argument("--volume-slices", type=int, default=8,
                    help="slices of the BM3D volume timing (0 skips it)")
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
    volume = bm3d_volume(args.volume_slices) if args.volume_slices > 0 else None
    write_results(Path(__file__).parent / "results", "restore_speed.json",
                  {"threads": args.threads, "seconds_per_512": seconds, "bm3d_over_net": ratio,
                   "bm3d_volume": volume})


def bm3d_volume(slices: int) -> dict:
    """Seconds of BM3D over `slices` MNI T1 slices (233×197, engine MR noise) one after
    another, and on `classical_planes`' worker processes; the outputs' largest difference."""
    import time

    import numpy as np

    from medq.data.samples import load_sample
    from medq.degrade import simulate
    from medq.restore.classical import classical_plane, classical_planes
    from medq.restore.normalise import scale_for
    from medq.workers import usable_cores

    t1 = load_sample("mni_t1")
    start = t1.shape[0] // 2 - slices // 2
    noisy, _ = simulate(t1.with_array(t1.array[start:start + slices]), "mr_noise",
                        severity="moderate", seed=0)
    planes = list(scale_for(noisy.array, "MR").forward(noisy.array))
    t0 = time.perf_counter()
    serial = [classical_plane("bm3d", p) for p in planes]
    t1_ = time.perf_counter()
    pooled = classical_planes("bm3d", planes)
    t2 = time.perf_counter()
    out = {"slices": slices, "shape": list(planes[0].shape), "workers": usable_cores(),
           "serial_s": round(t1_ - t0, 2), "workers_s": round(t2 - t1_, 2),
           "max_difference": float(max(np.abs(a - b).max() for a, b in zip(serial, pooled,
                                                                            strict=True)))}
    print(f"BM3D over {slices} slices {tuple(planes[0].shape)}: {out['serial_s']} s on one core,"
          f" {out['workers_s']} s on {out['workers']} worker processes (largest difference "
          f"{out['max_difference']:.1e})")
    return out


if __name__ == "__main__":
    main()
