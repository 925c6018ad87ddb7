"""Probe: which measurements move monotonically along the MR ranking ladders medq fails on?

`benchmarks/peers.py` finds MRIQC's EFC ranking the engine's MR motion and undersampling ladders
of the held-out real MRs almost perfectly where `medq assess` does not. This takes those
ladders (`benchmarks/ranking.py`'s: MR_small and the abdominal MR, clean then four rising
severities, seeds 0–3) and prints, per kind, the mean Spearman(severity, value) of EFC (on the
file's plane and on the model's ≤256-px view) and of evidence features the quality model
reads on that view (`medq.assess.evidence`). A feature near ±1 follows the kind on every ladder;
its sign says which way it moves (the model must learn that way as "worse"). About a minute.
Usage:
    python benchmarks/probes/ladder_features.py [--seeds 4]
"""

from __future__ import annotations

import argparse

import numpy as np

FEATURES = ("noise_hh", "noise_flat", "noise_bg", "sharpness", "band_7", "ghosting",
            "ac_high_max", "ac_low_max", "bg_level")
"""Evidence features printed beside EFC."""

KINDS = ("mr_motion", "mr_undersample", "mr_noise")
"""The MR ladders (blur is ranked right by medq already)."""


def ladder_values(ladder: list) -> dict[str, list[float]]:
    """EFC of the plane and of its view, and the `FEATURES` of its view, for every rung."""
    from medq.assess.evidence import EVIDENCE_SIZE, read_plane, slice_features
    from medq.assess.filters import shrink
    from medq.assess.iqms import efc

    out: dict[str, list[float]] = {"efc": [], "efc_view": [], **{f: [] for f in FEATURES}}
    for image in ladder:
        plane = np.asarray(image.array, dtype=np.float64)
        view = read_plane(shrink(plane, EVIDENCE_SIZE), image.modality)
        found = slice_features(view, image.modality)
        out["efc"].append(efc(plane))
        out["efc_view"].append(efc(view))
        for name in FEATURES:
            out[name].append(found[name])
    return out


def main() -> None:
    """Print the mean Spearman(severity, value) per kind and measurement."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    from scipy.stats import spearmanr

    from medq.train.evaluate import held_out_images, ranking_ladders

    held_out = held_out_images()
    images = {name: held_out[name] for name in ("mr_small", "mr_abdomen")}
    rhos: dict[tuple[str, str], list[float]] = {}
    for seed in range(args.seeds):
        for _, kind, ladder in ranking_ladders(images, seed):
            if kind not in KINDS:
                continue
            for name, values in ladder_values(ladder).items():
                rho = spearmanr(np.arange(len(values)), values)[0] if np.ptp(values) > 0 else 0.0
                rhos.setdefault((kind, name), []).append(float(rho))
    names = ("efc", "efc_view", *FEATURES)
    print(f"{'kind':16s}" + "".join(f"{n:>12s}" for n in names))
    for kind in KINDS:
        print(f"{kind:16s}" + "".join(f"{np.mean(rhos[(kind, n)]):+12.2f}" for n in names))
    print(f"Spearman(severity, value) over {args.seeds} seeds × 2 images per kind; EFC rises "
          "(worse) with every kind")


if __name__ == "__main__":
    main()
