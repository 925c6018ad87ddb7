"""Probe: where do `ct_sparse_view`'s streaks come from on CT_small, whose anatomy runs off its
edges? (docs/engine.md, *Known limits of the CT projector*)

The projector sees nothing beyond the image, so anatomy cut by its edge ends in a false step to
air. For CT_small degraded at several view counts this prints the RMS error (output − input, in
HU) in the 10-pixel band along the edge and inside it, and the band's share of the error energy
(the band is 29 % of the area); then the error's std for 20–33 views, which falls unevenly. A
centred disc phantom that fits inside the field shows the same sweep for comparison. Usage:
    python benchmarks/probes/sparse_view_edge.py
"""

from __future__ import annotations

import numpy as np

from medq.data.samples import load_sample
from medq.degrade import simulate
from medq.image import MedImage

BAND = 10


def _error(image: MedImage, views: int) -> np.ndarray:
    return simulate(image, "ct_sparse_view", level=views)[0].array - image.array


def main() -> None:
    """Print the band's share per view count, then the error's std along a sweep."""
    ct = load_sample("ct_small")
    band = np.zeros(ct.shape, bool)
    band[:BAND], band[-BAND:], band[:, :BAND], band[:, -BAND:] = True, True, True, True
    ring = np.ones(ct.shape, bool)
    ring[2:-2, 2:-2] = False
    print(f"CT_small {ct.shape}: edge band {band.mean():.0%} of the area; outer 2-pixel ring "
          f"mean {ct.array[ring].mean():.0f} HU")
    for views in (24, 60, 120):
        err = _error(ct, views)
        share = float((err[band] ** 2).sum() / (err ** 2).sum())
        print(f"{views:4d} views: RMS {np.sqrt((err[band] ** 2).mean()):6.1f} HU in the band, "
              f"{np.sqrt((err[~band] ** 2).mean()):6.1f} inside; band share {share:.0%}")
    yy, xx = np.mgrid[:128, :128] - 63.5
    disc = MedImage(np.where(np.hypot(yy, xx) < 50, 40.0, -1000.0).astype(np.float32),
                    ct.spacing, "CT")
    for name, image in (("CT_small", ct), ("disc", disc)):
        stds = [float(_error(image, v).std()) for v in range(20, 34)]
        print(f"{name}, error std at 20–33 views: " + " ".join(f"{s:.1f}" for s in stds))


if __name__ == "__main__":
    main()
