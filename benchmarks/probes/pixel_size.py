"""Probe: how a quality model's score of a clean held-out MR depends on its stated pixel size.

Each held-out clean MR (pydicom's MR_small at 0.31 mm and the abdominal MR, and three axial
slices of the held-out MNI zone) is assessed as it is and restated at other in-plane pixel
sizes (same array, only `spacing` changes). The quality model reads the pixel size (the
evidence context `log_spacing`) because the engine's blur and motion levels are in mm, so a
clean image should keep its score across clinical pixel sizes. Prints model, evidence and
combined scores per image and pixel size for each model, and the pixel size below which each
model's measure input is clipped (its training items' 0.5th percentile). `--training P …` also
prints the pixel sizes of the MR training slices of the benchmark with `fine_pixels: P` (0: the
default benchmark; a split not yet cached is built, about 20 minutes). Usage:
    python benchmarks/probes/pixel_size.py [MODEL ...] [--training 0 0.3]
"""

from __future__ import annotations

import argparse

import numpy as np

PIXELS_MM = (0.2, 0.3, 0.5, 1.0, 2.0, 4.0)


def images() -> list[tuple[str, object]]:
    """(name, MedImage) of the clean held-out MR images."""
    from medq.data.sources import source_named
    from medq.train.evaluate import held_out_images

    held_out = held_out_images()
    out = [(name, held_out[name]) for name in ("mr_small", "mr_abdomen")]
    mni = source_named("mni_mr_test", "test")
    out += [(f"mni_mr_test/{seed}", mni.draw(np.random.default_rng(seed), "2d"))
            for seed in range(3)]
    return out


def clipping_floor(model: str) -> list[float]:
    """Each member's smallest pixel size (mm) its measure input tells apart (`log_spacing`'s
    clipping floor)."""
    from medq.assess.evidence import FEATURE_NAMES
    from medq.assess.weights import load_weights

    net = load_weights(model)[0]
    i = FEATURE_NAMES.index("log_spacing")
    return [float(np.exp(m.measures.low[i].item())) for m in getattr(net, "members", [net])]


def training_pixels(fine_pixels: float) -> str:
    """Pixel sizes (mm) of the MR training slices of the benchmark with `fine_pixels`."""
    from dataclasses import replace

    from medq.assess.evidence import FEATURE_NAMES
    from medq.data.bench import build
    from medq.train.config import load_config

    plan = replace(load_config("configs/mediqa_s.yaml").bench, fine_pixels=fine_pixels)
    data = build(plan, "train")
    mr = np.repeat(data["modality"], data["n_valid"]) == "MR"
    rows = data["m"][mr].astype(np.float32)
    pixel = np.exp(rows[:, FEATURE_NAMES.index("log_spacing")])
    small = np.exp(rows[:, FEATURE_NAMES.index("log_matrix")]) < 100
    return (f"fine_pixels {fine_pixels}: MR training slices at {pixel.min():.2f}–{pixel.max():.2f}"
            f" mm, 1 % below {np.quantile(pixel, 0.01):.2f} mm; of the {small.sum()} whose shorter"
            f" side is under 100 px, {(small & (pixel < 0.6)).sum()} under 0.6 mm")


def main() -> None:
    """Print each model's scores of each clean image at its own and the probe's pixel sizes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="*", default=["mediqa-s"])
    parser.add_argument("--training", type=float, nargs="*", default=[])
    args = parser.parse_args()
    from medq.assess.predictor import Assessor

    for fine_pixels in args.training:
        print(training_pixels(fine_pixels))
    cases = images()
    for model in args.models:
        assessor = Assessor(model, measures=False)
        floors = ", ".join(f"{f:.2f}" for f in clipping_floor(model))
        print(f"== {model}   model / evidence / combined score at pixel size (mm); pixel sizes"
              f" clipped below {floors} mm")
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
