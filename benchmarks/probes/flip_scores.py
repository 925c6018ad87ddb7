"""Probe: does the quality model's score depend on the image's orientation, and would averaging
over flips (test-time augmentation) help?

Scores `medq bench iqa`'s held-out test split with the shipped model as stored, left-right and
up-down flipped, turned by 180° and transposed (the measure input, orientation-free features,
stays as taken), and prints for each the SRCC of the model's score and of `medq assess`'s (with
the evidence score), the mean and largest change of a score, and the SRCC of the scores averaged
over the orientations. About a minute with the benchmark cached.
Usage:
    python benchmarks/probes/flip_scores.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse

import numpy as np

ORIENTATIONS = {
    "left-right": lambda a: a[..., ::-1],
    "up-down": lambda a: a[..., ::-1, :],
    "180°": lambda a: a[..., ::-1, ::-1],
    "transposed": lambda a: np.swapaxes(a, -1, -2),
}
"""The views scored besides the stored one (on the `[items, channels, y, x]` stack)."""


def main() -> None:
    """Print the SRCCs and score changes per orientation, then of the averages."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from medq.assess.weights import load_weights
    from medq.data.bench import BenchPlan, build
    from medq.metrics.correlation import srcc
    from medq.train.evaluate import assess_scores, predict
    from medq.workers import set_threads

    set_threads()
    model, record = load_weights(args.model)
    data = build(BenchPlan(**record["bench_plan"]), "test", progress=False)
    target, stored = data["score"], data["x"]
    preds = {"as stored": predict(model, data)}
    for name, turn in ORIENTATIONS.items():
        data["x"] = np.ascontiguousarray(turn(stored))
        preds[name] = predict(model, data)
    data["x"] = stored
    base = preds["as stored"]
    print(f"{'orientation':22s} {'model SRCC':>10s} {'assess SRCC':>11s} {'mean |Δ|':>9s} "
          f"{'max |Δ|':>8s}")
    for name, pred in preds.items():
        change = np.abs(pred - base)
        print(f"{name:22s} {srcc(pred, target):10.4f} "
              f"{srcc(assess_scores(pred, data), target):11.4f} {change.mean():9.3f} "
              f"{change.max():8.3f}")
    for label, names in (("mean of stored + l-r", ["as stored", "left-right"]),
                         ("mean of all five", list(preds))):
        pred = np.mean([preds[n] for n in names], axis=0)
        print(f"{label:22s} {srcc(pred, target):10.4f} "
              f"{srcc(assess_scores(pred, data), target):11.4f}")


if __name__ == "__main__":
    main()
