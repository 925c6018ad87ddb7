"""Severity ranking on real images held out from all training (`make bench`).

For each held-out real image (pydicom CT and MR files, the skull radiograph) and each kind
(CT low dose and blur; MR undersampling, noise, motion, blur; radiograph noise and blur), the
image is scored clean and at four rising severities; Spearman(severity, falling score) is
averaged per kind and over kinds (goal ≥ 0.90). Writes benchmarks/results/ranking.json.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    from medq.assess.predictor import Assessor
    from medq.train.evaluate import held_out_images, ranking_check

    result = ranking_check(Assessor("mediqa-s", measures=False), held_out_images())
    for name, pair in result["pairs"].items():
        scores = " ".join(f"{s:.2f}" for s in pair["scores"])
        print(f"{name:34s} ρ={pair['spearman']:+.2f}  scores clean→severe: {scores}")
    for kind, rho in result["per_kind"].items():
        print(f"{kind:20s} mean ρ = {rho:.3f}")
    print(f"mean over kinds: {result['mean']:.3f} (goal ≥ 0.90)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ranking.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
