"""Probe: do the scores still fall with motion and undersampling when the image is noisy first?

Real scans are never noise-free: pydicom's CT_small and MR_small carry the noise of the engine's
moderate levels (`benchmarks/probes/noise_scale.py`). For the MNI T1's held-out zone (the
training template, where the shipped model ranks every ladder) and the held-out real MRs this
draws the ranking ladders of MR undersampling and MR motion (`RANKING_SEVERITIES`, seeds 0–3)
twice: on the image as it is, and on the image with the engine's MR noise at severity 1.6
(MR_small's own level) added first. For each it prints the mean Spearman(severity, falling
score) of the model's score, of the evidence score and of `medq assess`'s (their mean). Motion
and undersampling smear noise: a score that reads the smeared image as less noisy rises where
it should fall. About 2 minutes.
Usage:
    python benchmarks/probes/noisy_base.py [--model mediqa-s] [--base 1.6] [--seeds 4]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    """Print the mean ladder Spearman per image, kind and base (as is / noisy first)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    parser.add_argument("--base", type=float, default=1.6,
                        help="severity of the MR noise added to the base image first")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.data.sources import source_named
    from medq.degrade import get_spec, simulate
    from medq.train.evaluate import RANKING_SEVERITIES, held_out_images, ladder_spearman

    held_out = held_out_images()
    images = {"mni_mr_test": source_named("mni_mr_test", "test").draw(np.random.default_rng(0),
                                                                        "2d"),
              "mr_abdomen": held_out["mr_abdomen"], "mr_small": held_out["mr_small"]}
    assessor = Assessor(args.model, measures=False)
    noise = get_spec("mr_noise")
    print(f"{'image':12s} {'base':10s} {'kind':15s} {'model ρ':>8s} {'evidence ρ':>11s} "
          f"{'assess ρ':>9s}  per seed (assess)")
    for name, image in images.items():
        noisy = simulate(image, "mr_noise", level=noise.level_at(args.base), seed=7)[0]
        for label, base in (("as is", image), (f"noise {args.base:g}", noisy)):
            for kind in ("mr_undersample", "mr_motion"):
                spec = get_spec(kind)
                model, evidence, score = [], [], []
                for seed in range(args.seeds):
                    ladder = [base] + [simulate(base, kind, level=spec.level_at(s), seed=seed)[0]
                                       for s in RANKING_SEVERITIES]
                    found = assessor.assess_many(ladder)
                    model.append(ladder_spearman([r.model_score for r in found]))
                    evidence.append(ladder_spearman([r.evidence_score for r in found]))
                    score.append(ladder_spearman([r.score for r in found]))
                print(f"{name:12s} {label:10s} {kind:15s} {np.mean(model):+8.2f} "
                      f"{np.mean(evidence):+11.2f} {np.mean(score):+9.2f}  "
                      + " ".join(f"{v:+.2f}" for v in score),
                      flush=True)


if __name__ == "__main__":
    main()
