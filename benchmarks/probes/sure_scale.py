"""Probe: what SURE does to MR restorations for noise alone (`medq.restore.sure`), on training
and on held-out sources: it scales the network's noise correction, and `auto` takes BM3D's
output instead where SURE reads that closer to the clean image. Each MR image is degraded by
medq's engine (`mr_noise` at severities 0.6, 1.3, 2.0, 2.7) and by MONAI's Rician noise (σ 3, 6,
10 and 16 % of the image's std, as `benchmarks/independent.py`), then restored as `medq restore`
runs it (assess → describe → gate → network): with `auto` (SURE's scale, and BM3D where SURE
prefers it), with `net` (SURE's scale, the network alone) and with the network's whole
correction. Prints, per item restored for noise alone (by any; the whole correction may be
refused by `checks.took_anatomy`: +0.00), the PSNR gain over the input of each, the scale
(`-`: not estimated, so kept whole) and `BM3D` where `auto` took it; then the mean and the
worst gain per simulator. `train`: `--draws` 2D draws of each MR training source (the choices
in `medq.restore.sure` were made on such draws); `test`: the held-out MR files (pydicom's 64²
head and abdominal MR).
Usage:
    python benchmarks/probes/sure_scale.py [--split test|train|both] [--draws 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from independent import monai_rician  # noqa: E402

SEVERITIES = (0.6, 1.3, 2.0, 2.7)
RICIAN = (0.03, 0.06, 0.1, 0.16)


def images(split: str, draws: int) -> dict[str, object]:
    """The MR images of a split: training sources' 2D draws, or the held-out MR files."""
    from medq.data.sources import sources
    from medq.train.evaluate import held_out_images

    if split == "test":
        held = held_out_images()
        return {name: held[name] for name in ("mr_small", "mr_abdomen")}
    rng = np.random.default_rng(5)
    return {f"{s.name}#{k}": s.draw(rng, "2d") for s in sources("train") if s.modality == "MR"
            for k in range(draws)}


def _shown(alpha: float | None) -> str:
    """SURE's scale as printed: `-` where no plane's α could be estimated (kept whole)."""
    return "   -" if alpha is None else f"{alpha:.2f}"


def main() -> None:
    """Restore every item with and without the SURE scale; print the gains."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=("test", "train", "both"), default="test")
    parser.add_argument("--draws", type=int, default=4)
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.degrade import get_spec, simulate
    from medq.restore import pipeline, sure
    from medq.restore.benchmark import fidelity

    def psnr(clean: np.ndarray, array: np.ndarray) -> float:
        return fidelity(np.asarray(array, dtype=np.float64), clean, False)["psnr"]

    assessor = Assessor(measures=False)
    applies = sure.applies
    gains: dict[str, list[tuple[float, float, float]]] = {"mr_noise": [], "rician": []}
    variants = {"auto": ("auto", True), "net": ("net", True), "whole": ("net", False)}
    splits = ("train", "test") if args.split == "both" else (args.split,)
    for split in splits:
        for k, (name, image) in enumerate(images(split, args.draws).items()):
            clean = np.asarray(image.array, dtype=np.float64)
            spec = get_spec("mr_noise")
            items = [("mr_noise", s, simulate(image, "mr_noise", level=spec.level_at(s),
                                              seed=k)[0]) for s in SEVERITIES]
            items += [("rician", s, monai_rician(image, s, k)) for s in RICIAN]
            for kind, strength, degraded in items:
                base = psnr(clean, degraded.array)
                out = {}
                for variant, (method, scaled) in variants.items():
                    sure.applies = applies if scaled else (lambda *a: False)
                    try:
                        result = pipeline.restore(degraded, method, assessor=assessor,
                                                  reassess=False)
                    finally:
                        sure.applies = applies
                    out[variant] = (psnr(clean, result.image.array) - base, result,
                                    result.findings_addressed)
                if all(found != ["noise"] for *_, found in out.values()):
                    continue  # the gate left it alone, or not noise alone: SURE does not apply
                gains[kind].append(tuple(out[v][0] for v in variants))
                took = "BM3D" if out["auto"][1].denoiser == "bm3d" else "    "
                print(f"{split:5s} {name:16s} {kind:8s} {strength:5.2f}  input {base:6.2f} dB  "
                      f"auto {out['auto'][0]:+6.2f} {took}  net {out['net'][0]:+6.2f} "
                      f"(α {_shown(out['net'][1].sure_scale)})  whole {out['whole'][0]:+6.2f}",
                      flush=True)
    for kind, rows in gains.items():
        if rows:
            a = np.asarray(rows)
            print(f"{kind:8s} {len(a):3d} items  mean gain: " + ", ".join(
                f"{v} {a[:, i].mean():+.2f} dB" for i, v in enumerate(variants)) + "; worst: "
                + ", ".join(f"{v} {a[:, i].min():+.2f}" for i, v in enumerate(variants)))


if __name__ == "__main__":
    main()
