"""Restoration of held-out real images degraded by independent simulators (`make bench`).

The images and simulators of `benchmarks/independent.py` that make restoration tasks
(`RESTORE_KINDS`: scikit-image Radon CT noise, MONAI k-space masks and Rician noise, TorchIO
motion and blur, radiograph Poisson noise), at the two middle strengths of each ladder, restored
as `medq restore` does (`auto`: assess → describe → gate → network) and by blind BM3D
(`--method bm3d`, applied whatever the description says, as a user without medq would). PSNR
against the clean image (CT in the [−160, 240] HU window, as `medq bench restore`), per kind:
the input's, and each method's gain over it; and how often medq's re-assessed score rose where
it repaired (`medq restore`'s before/after). Writes benchmarks/results/independent_restore.json
(independent_restore_files.json for your own FILEs, as in `benchmarks/independent.py`). Each
ladder is one random draw of the simulators: with `--seeds N` (default 1; BM3D takes about
3 minutes a seed) the ladders of seeds SEED … SEED+N−1 are all restored, every item keeps its
seed, and the means per kind pool them (each seed's own mean over kinds beside). Usage:
    python benchmarks/independent_restore.py [FILE ...] [--modality M] [--seed 0] [--seeds 1]
        [--rungs 2,3] [--restorer NAME_OR_CHECKPOINT] [--output JSON]
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from independent import (  # noqa: E402
    independent_ladders,
    ladder_images,
    ladder_parser,
    results_file,
)

RESTORE_KINDS = ("ct_sinogram_noise", "blur", "mr_kspace_undersampling", "mr_rician_noise",
                 "mr_motion", "xr_quantum_noise")
"""The independent kinds that are restoration tasks of `medq restore` (ghosts, spikes and bias
fields are described, not repaired)."""


def psnr_of(image: Any, clean: np.ndarray, is_ct: bool) -> float:
    """PSNR of an image against the clean plane (CT in the [−160, 240] HU window, as `medq bench
    restore`)."""
    from medq.restore.benchmark import fidelity

    return fidelity(np.asarray(image.array, dtype=np.float64), clean, is_ct)["psnr"]


def per_kind(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind: the items' count, mean input PSNR, each method's mean gain over the input and
    how many medq repaired."""
    summary = {}
    for kind in sorted({r["kind"] for r in items}):
        rows = [r for r in items if r["kind"] == kind]
        summary[kind] = {"n": len(rows), "input_psnr": float(np.mean([r["input"] for r in rows])),
                         **{f"{m}_gain_db": float(np.mean([r[m] - r["input"] for r in rows]))
                            for m in ("auto", "bm3d")},
                         "repaired": sum(bool(r["addressed"]) for r in rows)}
    return summary


def main() -> None:
    """Restore the middle rungs of every independent ladder and print PSNR gains per kind."""
    parser = ladder_parser(__doc__)
    parser.add_argument("--rungs", default="2,3", help="ladder rungs (1 mildest … 4 severest)")
    parser.add_argument("--restorer", help="restoration network of `auto`: a shipped name or a "
                                           "checkpoint such as runs/<run>/model.pt (restore-s)")
    parser.add_argument("--output", type=Path, help="JSON file to write (default: "
                                                    "benchmarks/results/independent_restore.json)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="restore the ladders of seeds SEED … SEED+N−1 (default 1)")
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.restore.pipeline import restore

    rungs = [int(r) for r in args.rungs.split(",")]
    assessor = Assessor(measures=False)
    items, seconds = [], defaultdict(float)
    seeds = list(range(args.seed, args.seed + max(1, args.seeds)))
    images = ladder_images(args.images, args.modality)
    for seed, (name, kind, ladder) in ((s, lad) for s in seeds
                                       for lad in independent_ladders(images, s)):
        if kind not in RESTORE_KINDS:
            continue
        clean = np.asarray(ladder[0].array, dtype=np.float64)
        is_ct = ladder[0].modality == "CT"
        for rung in rungs:
            degraded = ladder[rung]
            row = {"seed": seed, "image": name, "kind": kind, "rung": rung,
                   "input": psnr_of(degraded, clean, is_ct)}
            for method in ("auto", "bm3d"):
                t0 = time.perf_counter()
                result = restore(degraded, method, assessor=assessor, model=args.restorer,
                                 reassess=method == "auto", force=method == "bm3d")
                seconds[method] += time.perf_counter() - t0
                row[method] = psnr_of(result.image, clean, is_ct)
                if method == "auto":
                    row.update(addressed=result.findings_addressed, before=result.before,
                               after=result.after)
            items.append(row)
            gains = {m: row[m] - row["input"] for m in ("auto", "bm3d")}
            print(f"seed {seed} {name + '/' + kind:36s} rung {rung}: input {row['input']:6.2f} dB  "
                  f"medq {gains['auto']:+6.2f}  BM3D {gains['bm3d']:+6.2f}"
                  f"  (medq repaired: {', '.join(row['addressed']) or 'nothing'})", flush=True)
    summary = per_kind(items)
    by_seed = {seed: per_kind([r for r in items if r["seed"] == seed]) for seed in seeds}
    print(f"{'kind':26s} {'n':>3s} {'input dB':>9s} {'medq':>7s} {'BM3D':>7s} {'repaired':>9s}")
    for kind, s in summary.items():
        print(f"{kind:26s} {s['n']:3d} {s['input_psnr']:9.2f} {s['auto_gain_db']:+7.2f} "
              f"{s['bm3d_gain_db']:+7.2f} {s['repaired']:5d}/{s['n']}")
    medq = float(np.mean([s["auto_gain_db"] for s in summary.values()]))
    bm3d = float(np.mean([s["bm3d_gain_db"] for s in summary.values()]))
    print(f"{'mean over kinds':26s} {'':3s} {'':9s} {medq:+7.2f} {bm3d:+7.2f}   "
          f"(medq − BM3D {medq - bm3d:+.2f} dB; seconds: medq {seconds['auto']:.0f}, "
          f"BM3D {seconds['bm3d']:.0f})")
    seed_means = {seed: {m: float(np.mean([s[f"{m}_gain_db"] for s in found.values()]))
                         for m in ("auto", "bm3d")} for seed, found in by_seed.items()}
    if len(seeds) > 1:
        print("per seed, mean over kinds (medq / BM3D): " + ", ".join(
            f"{seed} {g['auto']:+.2f} / {g['bm3d']:+.2f}" for seed, g in seed_means.items()))
    repaired = [r for r in items if r["addressed"]]
    rose = [r for r in repaired if r["after"] > r["before"]]
    print(f"re-assessed score rose on {len(rose)} of {len(repaired)} repaired rungs, PSNR fell "
          f"on {sum(r['auto'] < r['input'] for r in rose)} of those (the score is no check of "
          "the restoration's fidelity)")
    (args.output or results_file("independent_restore", bool(args.images))).write_text(json.dumps(
        {"seeds": seeds, "rungs": rungs, "restorer": args.restorer or "restore-s",
         "items": items, "per_kind": summary, "per_seed_mean_gain_db": seed_means,
         "mean_gain_db": {"auto": medq, "bm3d": bm3d}, "seconds": dict(seconds)}, indent=2))


if __name__ == "__main__":
    main()
