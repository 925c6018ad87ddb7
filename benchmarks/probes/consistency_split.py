"""Probe: what `medq restore`'s back-projection step does on held-out and on training sources.

Low-resolution and blur pairs at the benchmark's severities: `medq bench restore`'s held-out
items of those tasks, and a fixed plan of pairs from the training sources (of the kind the
network was trained on). Each item is assessed and described as `medq restore` does; on those
whose description opens the gate and reports low resolution or blur without noise, the
conditioned network is applied three ways: without a consistency step, with the low-pass step
(`consistency.back_project` at the described factor when low resolution is described; what
`medq restore` did before the full step, and still does when noise is also described) and with
the step `medq restore` takes (`consistency.consistent`: the acquisition and parameter that
explain the input, at most the described one). Prints per item and the mean change over the
network alone, per split and task. The training sources show what the step costs where the
network is already right; the held-out ones what it saves where it is not. Usage:
    python benchmarks/probes/consistency_split.py [--model restore-s]
"""

from __future__ import annotations

import argparse

import numpy as np

TASKS = ("low_resolution", "blur")
TRAIN_SOURCES = ("body_ct", "mni_ct_train", "mni_mr_train", "body_mr", "skull_lateral_xr",
                 "mni_pt_train")


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="restore-s")
    args = parser.parse_args()
    import torch

    from medq.assess.predictor import Assessor
    from medq.data.pairs import PairPlan, build_pairs, pair_arrays
    from medq.restore.apply import network_planes
    from medq.restore.benchmark import (
        LEVELS,
        described_condition,
        fidelity,
        restore_plane,
        test_plan,
    )
    from medq.restore.condition import MODALITY_GROUPS
    from medq.restore.consistency import back_project, consistent
    from medq.restore.models import load_restorer
    from medq.restore.normalise import Scale

    torch.set_num_threads(2)
    model = load_restorer(args.model)[0]
    assessor = Assessor(measures=False)
    plans = {"held-out": test_plan(2),  # `medq bench restore`'s items (cached)
             "training": PairPlan(split="train", tasks=TASKS, per_task=15, clean=0,
                                  combo_fraction=0.0, levels=LEVELS, max_side=512, seed=7,
                                  source_names=TRAIN_SOURCES)}
    gains: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for split, plan in plans.items():
        data = build_pairs(plan, progress=False)
        for i in range(len(data["shape"])):
            task = str(data["task"][i])
            if task not in TASKS:
                continue
            x, y = pair_arrays(data, i)
            scale = Scale(*data["scale"][i])
            group = MODALITY_GROUPS[int(data["modality"][i])]
            d = described_condition(assessor, x, scale, group, tuple(data["spacing"][i]))
            if not d["open"] or not d["acquisitions"] or d["noisy"]:
                continue
            acquisitions, cond = d["acquisitions"], d["cond"]
            factor = acquisitions.get("interpolated")

            def net(p: np.ndarray, cond: np.ndarray = cond) -> np.ndarray:
                return network_planes(model, [p], cond)[0][0]

            ways = {"none": net,
                    "low-pass": net if factor is None else
                    (lambda p, f=factor, n=net: back_project(n(p), p, f)),
                    "step": lambda p, a=acquisitions, n=net: consistent([p], [n(p)], a)[0][0]}
            ref = scale.inverse(y)
            found = {k: fidelity(scale.inverse(restore_plane(fn, x, group, scale)), ref,
                                 group == "CT")["psnr"] for k, fn in ways.items()}
            gains.setdefault((split, task), []).append(
                (found["low-pass"] - found["none"], found["step"] - found["none"]))
            said = ", ".join(f"{k} {v:.2f}" for k, v in acquisitions.items())
            print(f"{split:9s} {task:15s} {str(data['source'][i]):17s} level "
                  f"{float(data['level'][i]):5.2f} ({said})  net {found['none']:6.2f}  "
                  f"low-pass {found['low-pass']:6.2f}  step {found['step']:6.2f}", flush=True)
    print("\nmean change over the network alone (dB)")
    for (split, task), rows in gains.items():
        m = np.mean(rows, axis=0)
        print(f"{split:9s} {task:15s} n={len(rows):2d}  low-pass {m[0]:+.2f}  step {m[1]:+.2f}")


if __name__ == "__main__":
    main()
