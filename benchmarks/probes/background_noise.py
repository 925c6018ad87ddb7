"""Probe: does `medq assess` grade a real MR down for a noise-free background?

Many MR reconstructions suppress the background, so clean scans can have air with no noise. On
the held-out real MR images, Rician noise of σ = 0.5–2 % of the body's P99 is added to the air
only (outside the body mask) and to the whole image, and the scores are printed beside the
clean image's: a score that rises with noise in the air alone means the model reads clean air
as a defect. Usage:
    python benchmarks/probes/background_noise.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    """Score each held-out MR clean, with noise in its air only and with noise everywhere."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from medq.assess.masks import foreground_mask
    from medq.assess.predictor import Assessor
    from medq.train.evaluate import held_out_images

    assessor = Assessor(args.model, measures=False)
    for name, image in held_out_images().items():
        if image.modality != "MR":
            continue
        x = image.array.astype(np.float32)
        body = foreground_mask(x, "MR")
        ref = float(np.percentile(x[body], 99))
        print(f"{name}: air median {np.median(x[~body]) / ref:.3f} of the body's P99")
        rng = np.random.default_rng(0)
        for sigma in (0.0, 0.005, 0.01, 0.02):
            noisy = np.hypot(x + rng.normal(0, sigma * ref, x.shape),
                             rng.normal(0, sigma * ref, x.shape)).astype(np.float32)
            air_only = np.where(body, x, noisy)
            a, b = assessor.assess_many([image.evolve(array=air_only), image.evolve(array=noisy)])
            print(f"  σ {100 * sigma:.1f} %: air only {a.score:.2f} (model {a.model_score:.2f}, "
                  f"evidence {a.evidence_score:.2f}); everywhere {b.score:.2f} "
                  f"(model {b.model_score:.2f}, evidence {b.evidence_score:.2f})")


if __name__ == "__main__":
    main()
