"""Probe: a low-pass consistency step for noise-only restorations (tried, not shipped).

When the description reports noise and no low resolution or blur, `medq restore` returns the
network's output as it is. The trial gives it the input's content below a Gaussian of `--sigma`
pixels, y + G_σ(x − y) (`consistency.low_pass_step`, as the low-resolution case does with
noise), so that a shading or a shifted level the network brought is taken back. This probe
swaps that step in for the run (the shipped code is untouched) and prints, for the noise rungs
of `benchmarks/independent.py`'s ladders, medq's gain over the input with and without it; with
`--bench` it also runs `medq bench restore` with the step into a temporary folder and prints
each task's described − BM3D margin. Usage:
    python benchmarks/probes/noise_low_pass.py [--sigma 2] [--bench]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))
from independent import independent_ladders  # noqa: E402
from independent_restore import psnr_of  # noqa: E402

NOISE_KINDS = ("ct_sinogram_noise", "mr_rician_noise", "xr_quantum_noise")


def with_noise_step(sigma: float) -> None:
    """Make `medq restore` and `medq bench restore` take the low-pass step for noise alone."""
    import medq.restore.benchmark as benchmark
    import medq.restore.pipeline as pipeline
    from medq.restore.consistency import consistent, low_pass_step

    def patched(measured, restored, acquisitions, noisy=False):  # noqa: ANN001, ANN202
        if noisy and not acquisitions and restored:
            return ([low_pass_step(y, x, sigma) for x, y in zip(measured, restored, strict=True)],
                    {"step": "low-pass", "sigma_px": sigma})
        return consistent(measured, restored, acquisitions, noisy)

    pipeline.consistent = benchmark.consistent = patched


def independent_gains() -> dict[str, float]:
    """medq's PSNR gain over the input on every noise rung of the independent ladders."""
    from medq.assess.predictor import Assessor
    from medq.restore.pipeline import restore
    from medq.train.evaluate import held_out_images

    assessor = Assessor(measures=False)
    gains: dict[str, float] = {}
    for name, kind, ladder in independent_ladders(held_out_images()):
        if kind not in NOISE_KINDS:
            continue
        clean, is_ct = np.asarray(ladder[0].array, float), ladder[0].modality == "CT"
        for rung, degraded in enumerate(ladder[1:], start=1):
            out = restore(degraded, "auto", assessor=assessor, reassess=False).image
            gains[f"{name}/{kind}/{rung}"] = (psnr_of(out, clean, is_ct)
                                              - psnr_of(degraded, clean, is_ct))
    return gains


def main() -> None:
    """Print the gains without and with the step (and the benchmark's margins with `--bench`)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--bench", action="store_true")
    args = parser.parse_args()
    shipped = independent_gains()
    with_noise_step(args.sigma)
    trial = independent_gains()
    for key in shipped:
        print(f"{key:40s} shipped {shipped[key]:+6.2f}  with the step {trial[key]:+6.2f} dB")
    print(f"mean over {len(shipped)} noise rungs: shipped {np.mean(list(shipped.values())):+.2f},"
          f" with the step {np.mean(list(trial.values())):+.2f} dB")
    if args.bench:
        from typer.main import get_command

        from medq.cli import app

        with tempfile.TemporaryDirectory() as tmp:
            get_command(app).main(["bench", "restore", "--results", tmp], standalone_mode=False)
            tasks = json.loads((Path(tmp) / "restore.json").read_text())["summary"]["tasks"]
        for task, row in tasks.items():
            margin = row["described_minus_bm3d_db"]
            print(f"{task:18s} described − BM3D with the step {margin:+.2f}")
        print(f"mean {np.mean([r['described_minus_bm3d_db'] for r in tasks.values()]):+.2f} dB")


if __name__ == "__main__":
    main()
