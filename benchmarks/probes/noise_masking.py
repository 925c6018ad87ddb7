"""Probe: where added noise raises the abdominal MR's score (`benchmarks/independent.py`'s
Rician ladder on it rises from clean to strong noise).

pydicom's clean abdominal MR (a held-out real image) is scored by `medq assess` (model and
evidence score) with Gaussian noise of σ = 2, 5, 10, 20 (the body's median is about 230)
added everywhere, in the air outside every piece of anatomy only (`masks.air_mask`), or inside
it only, each magnitude-rectified like a Rician image; then, for the clean image and the
strongest noise in the anatomy, what the evidence score counts per finding type (the view
detector's confidence-weighted severities). Usage:
    python benchmarks/probes/noise_masking.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    """Print one line per variant."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from medq.assess.detector import read_evidence
    from medq.assess.evidence import evidence_rows
    from medq.assess.masks import air_mask, body_and_anatomy
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.assess.predictor import Assessor
    from medq.train.evaluate import held_out_images

    image = held_out_images()["mr_abdomen"]
    a = np.asarray(image.array, dtype=np.float64)
    air = air_mask(*body_and_anatomy(a, "MR"))
    rng = np.random.default_rng(0)
    variants = {"clean": a}
    for sigma in (2, 5, 10, 20):
        for where, inside in (("everywhere", np.ones_like(air)), ("air only", air),
                              ("anatomy only", ~air)):
            noisy = np.abs(a + sigma * rng.normal(size=a.shape))
            variants[f"σ {sigma:2d} {where}"] = np.where(inside, noisy, a)
    found = Assessor(args.model, measures=False).assess_many(
        [image.with_array(v.astype(np.float32)) for v in variants.values()])
    print(f"air median {np.median(a[air]):.0f}, anatomy median {np.median(a[~air]):.0f}")
    for name, result in zip(variants, found, strict=True):
        print(f"{name:22s} score {result.score:.2f}  model {result.model_score:.2f}  "
              f"evidence {result.evidence_score:.2f}")
    for name in ("clean", "σ 20 anatomy only"):
        weighted = read_evidence(evidence_rows(image.with_array(
            variants[name].astype(np.float32))), "MR").weighted
        print(f"{name:22s} " + " ".join(f"{t} {w:.2f}" for t, w in zip(FINDING_TYPES, weighted,
                                                                      strict=True) if w >= 0.05))


if __name__ == "__main__":
    main()
