"""Probe: how much of its input does a restoration for noise take out? (`checks.removed_share`)

For CT_small (the bundled 128-px CT) and two held-out test CTs, each degraded by `ct_low_dose`
at mild / moderate / severe (seed 0), this restores the image as `medq restore` runs it with
`force=True` (so the check under test does not act) and prints the share it took out (the std of
input − output inside the body over the input's flat-window noise σ, the quantity
`REMOVED_LIMIT` bounds) and the PSNR before and after in the [−160, 240] HU window. Restorations
that removed noise read about 1; CT_small's, which smears its bone, read more. Usage:
    python benchmarks/probes/removed_share.py
"""

from __future__ import annotations

import numpy as np

from medq.data.samples import load_sample
from medq.data.sources import sources
from medq.degrade import simulate
from medq.metrics.fidelity import psnr
from medq.restore.checks import REMOVED_LIMIT, removed_share
from medq.restore.pipeline import restore

WINDOW = (-160.0, 240.0)


def main() -> None:
    """Print one line per image and severity."""
    held_out = {s.name: s for s in sources("test")}
    images = [("ct_small", load_sample("ct_small"))] + [
        (name, held_out[name].draw(np.random.default_rng(0), "2d"))
        for name in ("ct_head_j2k", "mni_ct_test")]
    print(f"limit {REMOVED_LIMIT}")
    for name, clean in images:
        for severity in ("mild", "moderate", "severe"):
            noisy, _ = simulate(clean, "ct_low_dose", severity=severity, seed=0)
            result = restore(noisy, "auto", reassess=False, force=True)
            share = removed_share(noisy.array, result.image.array, "CT")
            print(f"{name:12s} {severity:8s} described {result.findings_addressed}  "
                  f"share {share:.2f}  PSNR {psnr(noisy.array, clean.array, window=WINDOW):.2f}"
                  f" → {psnr(result.image.array, clean.array, window=WINDOW):.2f} dB")


if __name__ == "__main__":
    main()
