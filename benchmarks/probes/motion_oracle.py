"""Probe: could better gating meet the +0.5 dB goal on MR motion? (docs/restoration.md)

Reads the items of the last `medq bench restore` (`benchmarks/results/restore.json`) and, on
the MR motion items BM3D ran on, prints each method's PSNR and the mean of an oracle that takes
per item the best of the input, the blind network and the network told the truth — an upper
bound for any gate choosing among them — against BM3D's. Usage (after `medq bench restore`):
    python benchmarks/probes/motion_oracle.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results" / "restore.json"
CHOICES = ("input", "net", "net+truth")


def main() -> None:
    """Print the MR motion items and the oracle's margin over BM3D."""
    items = [it for it in json.loads(RESULTS.read_text())["items"]
             if it["task"] == "mr_motion" and "bm3d" in it["metrics"]]
    for it in items:
        print(it["source"], f"level {it['level']:.2f}", {k: round(v["psnr"], 2)
                                                         for k, v in it["metrics"].items()})
    bm3d = np.mean([it["metrics"]["bm3d"]["psnr"] for it in items])
    oracle = np.mean([max(it["metrics"][k]["psnr"] for k in CHOICES) for it in items])
    print(f"{len(items)} items: BM3D {bm3d:.2f} dB, oracle {oracle:.2f} dB "
          f"({oracle - bm3d:+.2f})")


if __name__ == "__main__":
    main()
