"""Probe: NaN pixels of a MedImage given to `medq.restore` (the Python API). CT_small with
engine low-dose noise and a 10×10 NaN patch (0.61 % of its pixels); prints the share of NaN
pixels in the network's and BM3D's restored arrays (before medq read a MedImage's NaN as it
reads a file's, the network's output was 74 % NaN and BM3D's 24 %).
Usage:
    python benchmarks/probes/nan_restore.py
"""

from __future__ import annotations

import warnings

import numpy as np


def main() -> None:
    import medq
    from medq.data.samples import load_sample
    from medq.degrade import simulate

    warnings.simplefilter("ignore")
    noisy, _ = simulate(load_sample("ct_small"), "ct_low_dose", 2.5, seed=0)
    holed = noisy.array.copy()
    holed[10:20, 10:20] = np.nan
    image = noisy.evolve(array=holed)
    print(f"in: {np.isnan(holed).mean():.2%} NaN")
    for method in ("net", "bm3d"):
        result = medq.restore(image, method=method, reassess=False)
        print(f"{method}: {np.isnan(result.array).mean():.2%} NaN")


if __name__ == "__main__":
    main()
