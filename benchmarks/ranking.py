"""Severity ranking on real images held out from all training (`make bench`).

For each held-out real image (pydicom CT and MR files, the skull radiograph) and each kind
(CT low dose and blur; MR undersampling, noise, motion, blur; radiograph noise and blur), the
image is scored clean and at four rising severities; Spearman(severity, falling score) is
averaged per kind and over kinds (goal ≥ 0.90). Each ladder is one random draw of the engine
(a k-space mask, a motion trajectory, a noise realisation), so the ladders are drawn with
`--seeds` seeds (default 0–3) and the result is the mean over them, beside each seed's own
(seed 0 alone is the number medq reported before several seeds were drawn).
Writes benchmarks/results/ranking.json.
Usage: python benchmarks/ranking.py [--models mediqa-s,mediqa-s-nopretrain,...] [--seeds 4]
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
    parser.add_argument("--seeds", type=int, default=4,
                        help="draw the ladders with seeds 0 … N−1 (default 4)")
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.train.evaluate import held_out_images, ranking_check, ranking_over_seeds

    images = held_out_images()
    results = {}
    for model in args.models.split(","):
        assessor = Assessor(model, measures=False)
        per_seed = {seed: ranking_check(assessor, images, seed)
                    for seed in range(max(1, args.seeds))}
        print(f"== {model}")
        for seed, result in per_seed.items():
            for name, pair in result["pairs"].items():
                scores = " ".join(f"{s:.2f}" for s in pair["scores"])
                print(f"seed {seed} {name:34s} ρ={pair['spearman']:+.2f}  scores clean→severe:"
                      f" {scores}")
        result = ranking_over_seeds(per_seed)
        kinds = list(result["per_kind"])
        w = max(map(len, kinds)) + 2
        print(f"{'mean ρ per kind':16s}" + "".join(f"{k:>{w}s}" for k in kinds) + f"{'mean':>8s}")
        rows = [(f"seed {s}", r) for s, r in per_seed.items()] + [("over the seeds", result)]
        for label, r in rows:
            print(f"{label:16s}" + "".join(f"{r['per_kind'][k]:{w}.3f}" for k in kinds)
                  + f"{r['mean']:8.3f}")
        low, high = result["mean_range"]
        print(f"mean over kinds: {result['mean']:.3f} over {len(per_seed)} seeds (seeds from"
              f" {low:.3f} to {high:.3f}; goal ≥ 0.90)")
        results[model] = result
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ranking.json").write_text(json.dumps(results, indent=2))  # {model: result}


if __name__ == "__main__":
    main()
