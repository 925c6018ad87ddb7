"""Probe: how a quality model's score of a clean held-out MR depends on its stated pixel size.

Each held-out clean MR (pydicom's MR_small at 0.31 mm and the abdominal MR, and three axial
slices of the held-out MNI zone) is assessed as it is and restated at other in-plane pixel
sizes (same array, only `spacing` changes). The quality model reads the pixel size (the
evidence context `log_spacing`) because the engine's blur and motion levels are in mm, so a
clean image should keep its score across clinical pixel sizes. Prints model, evidence and
combined scores per image and pixel size for each model. Usage:
    python benchmarks/probes/pixel_size.py [MODEL ...]      (default: the shipped mediqa-s)
"""

from __future__ import annotations

import argparse

import numpy as np

PIXELS_MM = (0.2, 0.3, 0.5, 1.0, 2.0, 4.0)


def images() -> list[tuple[str, object]]:
    """(name, MedImage) of the clean held-out MR images."""
    from medq.data.sources import source_named

    out = []
    for name in ("mr_small", "mr_abdomen"):
        source = source_named(name, "test")
        out.append((name, source.draw(np.random.default_rng(0), "2d")))
    mni = source_named("mni_mr_test", "test")
    out += [(f"mni_mr_test/{seed}", mni.draw(np.random.default_rng(seed), "2d"))
            for seed in range(3)]
    return out


def main() -> None:
    """Print each model's scores of each clean image at its own and the probe's pixel sizes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", default=["mediqa-s"])
    args = parser.parse_args()
    from medq.assess.predictor import Assessor

    cases = images()
    for model in args.models:
        assessor = Assessor(model, measures=False)
        print(f"== {model}   model / evidence / combined score at pixel size (mm)")
        print(f"{'image':18s} {'own':>16s} " + " ".join(f"{p:>16.1f}" for p in PIXELS_MM))
        spread = []
        for name, image in cases:
            restated = [image] + [image.evolve(spacing=(p, p)) for p in PIXELS_MM]
            got = assessor.assess_many(restated)
            cells = [f"{a.model_score:4.2f}/{a.evidence_score:4.2f}/{a.score:4.2f}" for a in got]
            own = float(np.sqrt(image.spacing[0] * image.spacing[1]))
            print(f"{name:18s} " + " ".join(f"{c:>16s}" for c in cells) + f"   (own {own:.2f})")
            model_scores = [a.model_score for a in got[1:]]
            spread.append(max(model_scores) - min(model_scores))
        print(f"mean spread of the model score over pixel sizes: {np.mean(spread):.2f}")


if __name__ == "__main__":
    main()
