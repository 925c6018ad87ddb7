"""Probe: how much each rung of the held-out ranking ladders changes its image, beside the scores.

For every ladder of `benchmarks/ranking.py` (the held-out real images, each kind at its four
rising severities) prints the engine level of each rung, its NRMSE to the clean rung (RMS
difference over the clean image's range) and the model and evidence scores that `medq assess`
averages. A ladder whose rungs hardly differ from each other cannot be ranked by any score;
one whose NRMSE rises while a score does not is the score's failure. Usage:
    python benchmarks/probes/ranking_rungs.py [--model mediqa-s] [--images mr_small,mr_abdomen]
"""

from __future__ import annotations

import argparse


def main() -> None:
    """Print each selected ladder's levels, NRMSE per rung and the two scores per rung."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    parser.add_argument("--images", default="mr_small,mr_abdomen",
                        help="comma-separated held-out image names ('all' for every one)")
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.metrics.fidelity import nrmse
    from medq.train.evaluate import held_out_images, ranking_ladders

    images = held_out_images()
    if args.images != "all":
        images = {n: images[n] for n in args.images.split(",")}
    assessor = Assessor(args.model, measures=False)
    for name, kind, ladder in ranking_ladders(images):
        errors = [nrmse(rung.array, ladder[0].array, "range") for rung in ladder]
        levels = [rung.meta["degradations"][-1]["level"] for rung in ladder[1:]]
        got = assessor.assess_many(ladder)
        print(f"{name}/{kind}: levels " + " ".join(f"{v:.3g}" for v in levels))
        print("   NRMSE    " + " ".join(f"{v:5.3f}" for v in errors))
        print("   model    " + " ".join(f"{a.model_score:5.2f}" for a in got))
        print("   evidence " + " ".join(f"{a.evidence_score:5.2f}" for a in got))


if __name__ == "__main__":
    main()
