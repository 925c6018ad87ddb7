"""Probe: where a quality model breaks the order of its own training ladders.

Scores the first N severity ladders of the model ladders (`medq.data.bench.build_ladders`, the
1,200 of `configs/trials/mediqa_s_ladders.yaml`, built on first use: about 25 minutes on 2
cores) with each model and prints the mean score per rung beside the reference, and per pair
of neighbouring rungs the share of ladders whose worse rung does not score lower (overall and
per degradation kind). The ladders are training data of the ladder trials, so this is their
in-sample order. Usage:
    python benchmarks/probes/ladder_violations.py [--ladders 150] [MODEL ...]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    """Print each model's rung means and violation rates on the first `--ladders` ladders."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", default=["mediqa-s"])
    parser.add_argument("--ladders", type=int, default=150)
    args = parser.parse_args()
    import torch

    from medq.assess.weights import load_weights
    from medq.data import bench
    from medq.data.items import LADDER_RUNGS
    from medq.train.config import load_config

    rungs = LADDER_RUNGS + 1
    data = bench.build_ladders(load_config("configs/trials/mediqa_s_ladders.yaml").bench, 1200)
    items = np.arange(args.ladders * rungs)
    true = data["score"][items].reshape(-1, rungs)
    kinds = data["kind"][items][::rungs]
    for name in args.models:
        model = load_weights(name)[0].eval()
        scores = []
        with torch.no_grad():
            for chunk in np.array_split(items, max(1, len(items) // 50)):
                rows = data["offset"][chunk]
                out = model.run(torch.from_numpy(data["x"][rows].astype(np.float32)),
                                torch.from_numpy(data["prompt"][chunk]),
                                torch.from_numpy(data["m"][rows].astype(np.float32)))
                scores.append(out.score.float().numpy())
        found = np.concatenate(scores).reshape(-1, rungs)
        broken = np.diff(found, axis=1) >= 0
        print(f"== {name}: mean score per rung {np.round(found.mean(0), 2)} "
              f"(reference {np.round(true.mean(0), 2)})")
        print(f"   worse rung not lower, per pair: {np.round(broken.mean(0), 2)}")
        for kind in sorted(set(kinds)):
            pick = kinds == kind
            print(f"   {kind:18s} n={pick.sum():3d} {np.round(broken[pick].mean(0), 2)}")


if __name__ == "__main__":
    main()
