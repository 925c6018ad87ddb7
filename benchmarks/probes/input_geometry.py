"""Probe: what input geometry lets the quality model see real-scan quality?

Trains mediqa-s on a small benchmark (1,600 2D training items, 30 test items per 2D test source;
physics 250 + score 450 steps, seed 0) with one of three input geometries and prints test SRCC
overall, per modality and within each test source:

- `fit`: the shipped preprocessing (longer side resized to 224, zero-padded);
- `native`: the scan's own pixels (centre 224² crop, or zero padding when smaller);
- `twoview`: grey images as three channels (fitted view, native crop, fitted view).

The geometry is swapped by replacing `medq.assess.preprocess.resize_square` inside this process
only (benchmark workers are forked from it), and each arm uses its own cache folder
(`<cache>/probes/geometry-<arm>`), so medq's own benchmark cache is never touched. About 15 min
per arm on one core. Usage:
    python benchmarks/probes/input_geometry.py fit|native|twoview
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

SIZE = 224


def native_square(array: np.ndarray, size: int) -> np.ndarray:
    """`(y, x)` or `(y, x, 3)` in [0, 1] → `[C, size, size]`: centre crop / zero pad, no resize."""
    a = np.asarray(array, dtype=np.float32)
    t = a.transpose(2, 0, 1) if a.ndim == 3 else a[None]
    h, w = t.shape[1:]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    t = t[:, y0:y0 + size, x0:x0 + size]
    out = np.zeros((t.shape[0], size, size), np.float32)
    top, left = (size - t.shape[1]) // 2, (size - t.shape[2]) // 2
    out[:, top:top + t.shape[1], left:left + t.shape[2]] = t
    return np.clip(out, 0.0, 1.0)


def use_geometry(arm: str) -> None:
    """Swap the resize step of `medq.assess.preprocess` for the arm's geometry."""
    import medq.assess.preprocess as pp

    fitted = pp.resize_square

    def two_view(array: np.ndarray, size: int) -> np.ndarray:
        f = fitted(array, size)
        return f if f.shape[0] != 1 else np.concatenate([f, native_square(array, size), f])

    if arm != "fit":
        pp.resize_square = native_square if arm == "native" else two_view


def main() -> None:
    """Build the arm's small benchmark, train, print the SRCC table as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("arm", choices=("fit", "native", "twoview"))
    args = parser.parse_args()
    from medq.data.cache import cache_dir

    out = cache_dir() / "probes" / f"geometry-{args.arm}"
    os.environ["MEDQ_CACHE_DIR"] = str(out)
    use_geometry(args.arm)
    from scipy.stats import spearmanr

    from medq.assess.models.mediqa import MedIQA
    from medq.data import bench
    from medq.train.config import config_from_dict
    from medq.train.evaluate import predict
    from medq.train.loop import train

    cfg = config_from_dict({
        "name": f"geometry-{args.arm}", "model": "mediqa-s", "model_args": {"n_physics": 15},
        "seed": 0, "batch_size": 16, "slice_steps": 0, "log_every": 100, "output": str(out / "run"),
        "bench": {"size": SIZE, "train_2d": 1600, "train_3d": 0, "test_2d_per_source": 30,
                  "test_3d_per_source": 0},
        "stages": [{"name": "physics", "steps": 250, "lr": 3e-4, "losses": {"physics": 1.0},
                    "warmup": 30},
                   {"name": "score", "steps": 450, "lr": 3e-4, "warmup": 30,
                    "losses": {"score": 1.0, "findings": 0.3, "physics": 0.1}}]})
    data, test = bench.build(cfg.bench, "train"), bench.build(cfg.bench, "test")
    record = train(cfg, data, test)
    pred = predict(MedIQA.from_checkpoint(out / "run" / "model.pt").eval(), test)
    within = {s: round(float(spearmanr(pred[test["source"] == s],
                                       test["score"][test["source"] == s])[0]), 3)
              for s in sorted(set(test["source"]))}
    print(json.dumps({"arm": args.arm,
                      "srcc": {k: round(v["srcc"], 3) for k, v in record["metrics"].items()
                               if isinstance(v, dict) and "srcc" in v},
                      "within_source": within,
                      "within_mean": round(float(np.nanmean(list(within.values()))), 3)}))


if __name__ == "__main__":
    main()
