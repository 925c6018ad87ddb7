"""Does the image or its evidence make `mediqa-s` score a held-out scan low? Swap them and see.

Scores MR_small (pydicom's 64² MR, held out) and a held-out MNI152 MR slice as they are, then
each image with the other's evidence rows (the per-slice measure input), and lists the evidence
features where MR_small stands furthest from the MNI slice in the model's standardised units.
Usage: python benchmarks/probes/evidence_swap.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np


def main() -> None:
    """Print the probe's numbers."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mediqa-s")
    args = ap.parse_args()
    from medq.assess.evidence import FEATURE_NAMES
    from medq.assess.loading import load_measured
    from medq.assess.predictor import Assessor
    from medq.data.sources import sources
    from medq.train.evaluate import held_out_images

    small = held_out_images()["mr_small"]
    mni = next(s for s in sources("test") if s.name == "mni_mr_test").draw(
        np.random.default_rng(1), "2d")
    assessor = Assessor(args.model, measures=False, threads=1)
    loaded = {name: load_measured(img, None, False)
              for name, img in (("MR_small", small), ("MNI slice", mni))}

    def score(image_of: str, evidence_of: str) -> float:
        item = replace(loaded[image_of], rows=loaded[evidence_of].rows)
        return assessor._chunk([item])[0].score

    for image_of in loaded:
        for evidence_of in loaded:
            value = score(image_of, evidence_of)
            print(f"image {image_of:10s} evidence {evidence_of:10s} score {value:.2f}")
    members = getattr(assessor.model, "members", [assessor.model])
    enc = next(m for m in members[0].modules() if type(m).__name__ == "MeasureEncoder")
    lo, hi, mu, sd = (getattr(enc, k).numpy() for k in ("low", "high", "mean", "std"))
    z = {n: (np.clip(v.rows[0], lo, hi) - mu) / sd for n, v in loaded.items()}
    gap = z["MR_small"] - z["MNI slice"]
    print("evidence furthest apart (first member's standardisation):")
    for i in np.argsort(-np.abs(gap))[:8]:
        print(f"  {FEATURE_NAMES[i]:18s} MR_small z {z['MR_small'][i]:+.2f}   "
              f"MNI slice z {z['MNI slice'][i]:+.2f}")


if __name__ == "__main__":
    main()
