"""Probe: how much the assessment's evidence score moves with the seed of its calibration fit.

The view calibration of the finding detector (`python -m medq.describe.calibrate --view`) is a
small MLP ensemble whose seed picks its validation split (which also sets the presence
thresholds) and its initial weights. This refits it on the cached calibration data (built on
first use, about 13–20 minutes on 2 cores; `--zoom` picks the items' zoom profile, `anywhere`
as shipped or `central` as the full-plane calibration's) for several seeds, with one 80/20
split (`--folds 1`, the shipped recipe) and cross-fitted (`--folds 5`), and prints for each fit
the held-out SRCC of the evidence score alone and of `medq assess`'s score (the mean with the
model's score, on the quality benchmark's test split, as `medq bench iqa`), and the severity
ranking of
`benchmarks/ranking.py` (same ladders, same model scores). The mean over seeds is what a recipe
is worth; one fit is a draw from it. Usage:
    python benchmarks/probes/detector_seeds.py [--model mediqa-s] [--zoom anywhere|central]
                                               [--seeds 4] [--folds 1,5]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from scipy.stats import spearmanr


def held_out(model: str) -> dict[str, Any]:
    """The test split's references, model scores and evidence features, and the ranking
    ladders' model scores and evidence features."""
    from medq.assess.evidence import evidence_rows, view_features
    from medq.assess.predictor import Assessor
    from medq.assess.weights import load_weights
    from medq.data.bench import BenchPlan, build
    from medq.train.evaluate import held_out_images, predict, ranking_ladders

    test = build(BenchPlan(), "test", progress=False)
    net, record = load_weights(model)
    features = np.stack([view_features(test["m"][int(o):int(o) + int(k)])
                         for o, k in zip(test["offset"], test["n_valid"], strict=True)])
    assessor = Assessor(model, measures=False)
    ladders = [(f"{name}/{kind}", ladder[0].modality,
                [view_features(evidence_rows(x)) for x in ladder],
                [a.model_score for a in assessor.assess_many(ladder)])
               for name, kind, ladder in ranking_ladders(held_out_images())]
    return {"y": test["score"], "modality": test["modality"], "features": features,
            "model": predict(net, test, bool(record.get("use_prompts", True))),
            "ladders": ladders}


def rates(detector: Any, data: dict[str, Any]) -> tuple[float, float, float]:
    """(evidence SRCC, `medq assess` SRCC, ranking mean over kinds) of one fitted detector."""
    from medq.assess.assessment import combined_score
    from medq.assess.detector import evidence_of
    from medq.train.evaluate import ladder_spearman, ranking_summary

    ev = np.array([evidence_of(detector, x, str(m)).score
                   for x, m in zip(data["features"], data["modality"], strict=True)])
    both = np.array([combined_score(m, e) for m, e in zip(data["model"], ev, strict=True)])
    pairs = {}
    for pair, modality, xs, model_scores in data["ladders"]:
        scores = [combined_score(m, evidence_of(detector, x, modality).score)
                  for x, m in zip(xs, model_scores, strict=True)]
        pairs[pair] = {"spearman": ladder_spearman(scores)}
    return (float(spearmanr(data["y"], ev)[0]), float(spearmanr(data["y"], both)[0]),
            ranking_summary(pairs)["mean"])


def main() -> None:
    """Fit, score and print one line per (folds, seed) and the mean per folds setting."""
    from medq.data.items import ZOOM_PROFILES

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    parser.add_argument("--zoom", choices=tuple(ZOOM_PROFILES), default="anywhere")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--folds", default="1,5")
    args = parser.parse_args()
    from medq.assess.detector import Detector
    from medq.describe.calibrate import fit
    from medq.describe.calibration_data import build

    data = held_out(args.model)
    calibration = build(3600, 150, view=True, zoom=args.zoom)
    for folds in (int(f) for f in args.folds.split(",")):
        found = []
        for seed in range(args.seeds):
            found.append(rates(Detector(fit(calibration, seed=seed, folds=folds)), data))
            print(f"folds {folds} seed {seed}: evidence SRCC {found[-1][0]:.3f}, "
                  f"medq assess SRCC {found[-1][1]:.3f}, ranking {found[-1][2]:.3f}", flush=True)
        mean = np.mean(found, axis=0)
        print(f"folds {folds}, mean of {args.seeds} seeds: evidence {mean[0]:.3f}, "
              f"medq assess {mean[1]:.3f}, ranking {mean[2]:.3f}")


if __name__ == "__main__":
    main()
