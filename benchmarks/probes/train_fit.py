"""Probe: how well does the shipped quality model fit its own training items?

A model that ranks the held-out split poorly may generalise poorly, or may not fit even what it
was trained on. This scores a random sample of the cached training split (the items `medq
train` used; built on first use, about 20 minutes) with the model alone and as `medq assess`
combines it with the evidence score, and prints SRCC overall and per training source beside the
mean score of the clean items (reference 5). Usage:
    python benchmarks/probes/train_fit.py [--model mediqa-s] [--n 600] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    """Score a sample of the training split and print how well the scores follow the reference."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    parser.add_argument("--n", type=int, default=600, help="training items scored")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    args = parser.parse_args()
    from medq.assess.weights import load_weights
    from medq.data.bench import BenchPlan, build
    from medq.metrics.correlation import srcc
    from medq.train.evaluate import assess_scores, predict

    data = build(BenchPlan(), "train")
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(len(data["score"]), min(args.n, len(data["score"])),
                              replace=False))
    sample = {k: v if k in ("x", "m") else v[pick] for k, v in data.items()}  # rows by offset
    model, _ = load_weights(args.model)
    model_scores = predict(model, sample)
    scores = assess_scores(model_scores, sample)
    target, source = sample["score"], sample["source"]
    print(f"{len(target)} training items: SRCC model {srcc(model_scores, target):.3f}, "
          f"medq assess {srcc(scores, target):.3f}")
    for name in np.unique(source):
        mine, clean = source == name, (source == name) & (target > 4.99)
        print(f"  {name:18s} n={mine.sum():3d}  SRCC {srcc(scores[mine], target[mine]):.3f}  "
              f"clean items ({clean.sum()}): model {model_scores[clean].mean():.2f}, "
              f"medq assess {scores[clean].mean():.2f}")


if __name__ == "__main__":
    main()
