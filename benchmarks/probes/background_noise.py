"""Probe: where added noise moves `medq assess`'s score of the held-out real MR images.

Many MR reconstructions suppress the background, so clean scans can have air with no noise. On
the held-out real MR images, Rician noise of σ = 0.5–2 % of the body's P99 is added to the air
only (outside every piece of anatomy, `masks.air_mask`), to the anatomy only and to the whole
image, and the scores are printed beside the clean image's: a score that rises with noise in
the air alone means the model reads clean air as a defect; one that rises with noise in the
anatomy means a reading of the clean anatomy fades under noise. Then, for the clean image and
the strongest noise in the anatomy, what the evidence score counts per finding type (the view
detector's confidence-weighted severities). Usage:
    python benchmarks/probes/background_noise.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    """Score each held-out MR clean and with noise in its air, its anatomy or everywhere."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from medq.assess.detector import read_evidence
    from medq.assess.evidence import evidence_rows
    from medq.assess.masks import air_mask, body_and_anatomy
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.assess.predictor import Assessor
    from medq.train.evaluate import held_out_images

    assessor = Assessor(args.model, measures=False)
    places = ("air only", "anatomy only", "everywhere")
    for name, image in held_out_images().items():
        if image.modality != "MR":
            continue
        x = image.array.astype(np.float32)
        body, anatomy = body_and_anatomy(x, "MR")
        air = air_mask(body, anatomy)
        ref = float(np.percentile(x[body], 99))
        print(f"{name}: air median {np.median(x[air]) / ref:.3f} of the body's P99")
        rng = np.random.default_rng(0)
        strongest = x
        for sigma in (0.0, 0.005, 0.01, 0.02):
            noisy = np.hypot(x + rng.normal(0, sigma * ref, x.shape),
                             rng.normal(0, sigma * ref, x.shape)).astype(np.float32)
            variants = [np.where(air, noisy, x), np.where(air, x, noisy), noisy]
            found = assessor.assess_many([image.evolve(array=v) for v in variants])
            print(f"  σ {100 * sigma:.1f} %: " + "; ".join(
                f"{p} {a.score:.2f} (model {a.model_score:.2f}, evidence {a.evidence_score:.2f})"
                for p, a in zip(places, found, strict=True)))
            strongest = variants[1]
        for label, array in (("clean", x), ("σ 2 % in the anatomy", strongest)):
            weighted = read_evidence(evidence_rows(image.evolve(array=array)), "MR").weighted
            counted = zip(FINDING_TYPES, weighted, strict=True)
            print(f"  {label}: " + ", ".join(f"{t} {w:.2f}" for t, w in counted if w >= 0.05))


if __name__ == "__main__":
    main()
