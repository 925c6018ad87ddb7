"""Probe: does a wider field of view in the training crops let the network repair MR motion?

`restore-s` trains on 64² crops; MR motion spreads each line's error along the whole
phase-encode axis. This trains the shipped architecture (`restore-unet`, conditioned) on MR
motion pairs alone (the brain template's training zone and body anatomy recast as MR), twice with
the same steps and pixels per step: 64² crops in batches of 12 (as `restore-s`) and `--wide`²
crops in batches of 12·(64/wide)². Both, and the shipped `restore-s`, then restore
`medq bench restore`'s MR motion items told the true degradation (its `net+truth` column): PSNR
per item and the mean over all six and over BM3D's four. Runs go to `runs/probe-motion-<crop>`
(reused when there). Usage:
    python benchmarks/probes/motion_context.py [--steps 3000] [--wide 128]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np


def motion_config(crop: int, steps: int) -> Any:
    """A restoration config on MR motion pairs alone, `crop`² crops, 12·64² pixels per step."""
    from medq.train.config import Stage, TrainConfig

    plan = {"tasks": ["mr_motion"], "combo_fraction": 0.0, "max_side": 512}
    return TrainConfig(
        name=f"probe-motion-{crop}", model="restore-unet", task="restore", seed=0,
        batch_size=max(1, round(12 * (64 / crop) ** 2)), train_crop=crop, weight_decay=1e-4,
        log_every=500, pairs={
            "train": {**plan, "per_task": 240, "clean": 20, "source_names": ["mni_mr_train"]},
            "extra": {**plan, "per_task": 120, "clean": 0, "pseudo_mr": True,
                      "source_names": ["body_ct"]},
            "eval": {**plan, "per_task": 4, "clean": 0}},
        stages=[Stage("restore", steps, lr=6e-4, losses={"l1": 1.0, "prior": 0.05},
                      warmup=100)])


def trained(cfg: Any) -> str:
    """The checkpoint of `cfg`'s run (trained now unless its folder holds one)."""
    from medq.train.restore_loop import train_restorer

    path = cfg.output_dir() / "model.pt"
    if not path.exists():
        train_restorer(cfg, lambda message: print(message, flush=True))
    return str(path)


def main() -> None:
    """Train both crop sizes, then print each network's PSNR on the benchmark's motion items."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--wide", type=int, default=128)
    args = parser.parse_args()
    from medq.data.pairs import build_pairs, pair_arrays
    from medq.restore.benchmark import _net_fn, fidelity, restore_plane, test_plan
    from medq.restore.condition import MODALITY_GROUPS
    from medq.restore.models import load_restorer
    from medq.restore.normalise import Scale

    nets = {"restore-s": "restore-s",
            **{f"motion {c}²": trained(motion_config(c, args.steps)) for c in (64, args.wide)}}
    data = build_pairs(test_plan(2), progress=False)
    rows = []
    for i in np.flatnonzero(data["task"] == "mr_motion"):
        x, y = pair_arrays(data, int(i))
        scale, group = Scale(*data["scale"][i]), MODALITY_GROUPS[int(data["modality"][i])]
        row = {"input": fidelity(scale.inverse(x), scale.inverse(y), False)["psnr"]}
        for label, name in nets.items():
            fn = _net_fn(load_restorer(name)[0], data["cond"][i])
            out = restore_plane(fn, x, group, scale)
            row[label] = fidelity(scale.inverse(out), scale.inverse(y), False)["psnr"]
        rows.append(row)
        print(f"{data['source'][i]:12s} level {data['level'][i]:5.2f}  "
              + "  ".join(f"{k} {v:6.2f}" for k, v in row.items()), flush=True)
    for label, chosen in (("all six", rows), ("BM3D's four", rows[:4])):
        print(f"mean over {label}: " + "  ".join(
            f"{k} {np.mean([r[k] for r in chosen]):6.2f}" for k in rows[0]))


if __name__ == "__main__":
    main()
