"""Probe: blind BM3D with the noise σ from the wavelet estimate, the flat windows, or the truth.

On the first two items per denoising task of `medq bench restore`'s plan (its cached pairs),
prints the three σ (normalised units; the truth is the std of degraded − clean) and the PSNR of
the input and of BM3D given each. `restore.classical.estimate_sigma` takes the larger of the
first two. Usage (BM3D at 512² takes seconds per plane):
    python benchmarks/probes/bm3d_sigma.py [--tasks ct_low_dose,mr_noise] [--per-task 2]
"""

from __future__ import annotations

import argparse

import numpy as np
from skimage.restoration import estimate_sigma as wavelet_sigma

from medq.assess.iqms import noise_sigma_flat
from medq.data.pairs import build_pairs, pair_arrays
from medq.restore.benchmark import fidelity, restore_plane, test_plan
from medq.restore.classical import bm3d_plane
from medq.restore.condition import MODALITY_GROUPS
from medq.restore.normalise import Scale

TASKS = "ct_low_dose,pet_low_count,xr_quantum_noise,mr_noise"


def main() -> None:
    """Print one line per item."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=TASKS)
    parser.add_argument("--per-task", type=int, default=2)
    args = parser.parse_args()
    tasks, seen = args.tasks.split(","), {}
    data = build_pairs(test_plan(2), progress=False)
    for i, task in enumerate(str(t) for t in data["task"]):
        seen[task] = seen.get(task, 0) + 1
        if task not in tasks or seen[task] > args.per_task:
            continue
        x, y = pair_arrays(data, i)
        scale, group = Scale(*data["scale"][i]), MODALITY_GROUPS[int(data["modality"][i])]
        ref, plane = scale.inverse(y), x if x.ndim == 2 else x[0]
        sigmas = {"wavelet": float(wavelet_sigma(plane.astype(float))),
                  "flat": noise_sigma_flat(plane), "true": float(np.std(x - y))}
        row = {"input": fidelity(scale.inverse(x), ref, group == "CT")["psnr"]}
        for name, s in sigmas.items():
            out = restore_plane(lambda p, s=s: bm3d_plane(p, s), x, group, scale)
            row[name] = fidelity(scale.inverse(out), ref, group == "CT")["psnr"]
        print(task, data["source"][i], " ".join(f"σ {k} {v:.4f}" for k, v in sigmas.items()),
              " ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
