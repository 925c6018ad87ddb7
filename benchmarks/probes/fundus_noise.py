"""Probe: camera noise in fundus photographs, read and restored on the held-out photograph.

The engine's `fundus_noise` (shot and read noise on linear light) at rising levels on draws of
the held-out right half of the retina photograph (`retina_right`, never calibrated on): per
draw and level, the true continuous severity beside what `medq assess` reads (the noise
finding's severity, or none) and its score; with `--restore`, also the PSNR of the input, of
`medq restore` (auto: the network conditioned on the description) and of BM3D on each
channel, against the clean draw, and the blue channel's PSNR before and after `medq restore`
with the photons a pixel at the retina's median brightness counts (the blue channel gets
fewer: its white-balance gain is the largest). Usage:
    python benchmarks/probes/fundus_noise.py [--draws 4] [--restore]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

LEVELS = (0.01, 0.02, 0.04, 0.08, 0.15)
"""Noise σ as a fraction of the retina's robust maximum (`fundus_noise`'s level)."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of [0, 1] images."""
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def main() -> None:
    """Print each draw's ladder: true severity, what medq reads, and the restorations."""
    import medq
    from medq.data.sources import sources
    from medq.degrade import get_spec, simulate
    from medq.restore.pipeline import restore

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--restore", action="store_true")
    args = ap.parse_args()
    spec = get_spec("fundus_noise")
    source = next(s for s in sources("test") if s.name == "retina_right")
    errors, gains = [], {"auto": [], "bm3d": []}
    for draw in range(args.draws):
        clean = source.draw(np.random.default_rng(draw), "2d")
        a = medq.assess(clean)
        found = {f["type"]: f["severity"] for f in a.findings}
        print(f"draw {draw} {clean.shape}: clean score {a.score:.2f}, noise "
              f"{found.get('noise', 'none')}")
        for level in LEVELS:
            noisy, record = simulate(clean, "fundus_noise", level=level, seed=draw)
            a = medq.assess(noisy)
            noise = next((f for f in a.findings if f["type"] == "noise"), None)
            read = noise["evidence"]["severity_value"] if noise else 0.0
            truth = spec.severity_value(level)
            errors.append(read - truth)
            line = (f"  level {level:.2f}: true {truth:.2f} ({spec.severity(level)}), read "
                    f"{read:.2f} ({noise['severity'] if noise else 'none'}), score {a.score:.2f}")
            if args.restore:
                base = psnr(noisy.array, clean.array)
                line += f"; PSNR input {base:.2f}"
                for method in gains:
                    started = time.time()
                    out = restore(noisy, method=method, reassess=False)
                    gains[method].append(psnr(out.image.array, clean.array) - base)
                    line += (f", {method} {gains[method][-1]:+.2f} dB "
                             f"({time.time() - started:.1f} s)")
                    if method == "auto":
                        blue = [psnr(a.array[..., 2], clean.array[..., 2]) for a in (noisy,
                                                                                  out.image)]
                line += (f"; blue {blue[0]:.1f} → {blue[1]:.1f} dB "
                         f"({record.params['photons_at_reference']:.0f} photons)")
            print(line, flush=True)
    print(f"severity read − true: mean {np.mean(errors):+.2f}, mean |·| "
          f"{np.mean(np.abs(errors)):.2f} over {len(errors)} rungs")
    if args.restore:
        print("mean gain over the input: " + ", ".join(
            f"{m} {np.mean(g):+.2f} dB" for m, g in gains.items()))


if __name__ == "__main__":
    main()
