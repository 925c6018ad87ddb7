"""Severity ranking on real images held out from all training (`make bench`).

For each held-out real image (pydicom CT and MR files, the skull radiograph) and each kind
(CT low dose and blur; MR undersampling, noise, motion, blur; radiograph noise and blur), the
image is scored clean and at four rising severities; Spearman(severity, falling score) is
averaged per kind and over kinds (goal ≥ 0.90). Writes benchmarks/results/ranking.json.
Usage: python benchmarks/ranking.py [--models mediqa-s,mediqa-s-nopretrain,...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="mediqa-s",
                        help="comma-separated shipped model names or checkpoint paths")
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.train.evaluate import held_out_images, ranking_check

    images = held_out_images()
    results = {}
    for model in args.models.split(","):
        result = ranking_check(Assessor(model, measures=False), images)
        print(f"== {model}")
        for name, pair in result["pairs"].items():
            scores = " ".join(f"{s:.2f}" for s in pair["scores"])
            print(f"{name:34s} ρ={pair['spearman']:+.2f}  scores clean→severe: {scores}")
        for kind, rho in result["per_kind"].items():
            print(f"{kind:20s} mean ρ = {rho:.3f}")
        print(f"mean over kinds: {result['mean']:.3f} (goal ≥ 0.90)")
        results[model] = result
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ranking.json").write_text(json.dumps(results, indent=2))  # {model: result}


if __name__ == "__main__":
    main()
