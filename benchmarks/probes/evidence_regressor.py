"""Probe: how far do the classical evidence features alone go at predicting the quality score?

For every third training job and every test job of the default quality benchmark plan, the
degraded image is rebuilt (`medq.data.items.degraded_item`, the same draw as the benchmark),
its evidence vector computed (`medq.assess.evidence.feature_vector`) and a regressor fitted on
the training rows (scikit-learn histogram gradient boosting, and a 64-64 MLP on clipped,
standardised features). Prints test SRCC overall, per modality and within each test source,
and the mean prediction for the clean real test images. Arms:

- `native`: features on the image's own pixels, training images as the engine makes them;
- `realism`: the same, training images with sub-threshold acquisition noise and zoomed views;
- `view`: realism, and features on a view of at most 256 px (what mediqa-s reads).

Rows are cached per arm under `<cache>/probes/evidence-<arm>` (≈ 15 min per arm on 2 cores).
Usage:
    python benchmarks/probes/evidence_regressor.py native|realism|view
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

ARMS = {"native": (False, None), "realism": (True, None), "view": (True, 256)}


def row(job: tuple[str, str, int], split: str, arm: str) -> dict:
    """Features, reference score and provenance of one benchmark job."""
    from medq.assess.evidence import evidence_rows, feature_vector
    from medq.data.bench import BenchPlan, targets
    from medq.data.items import degraded_item
    from medq.data.sources import sources

    realism, longest = ARMS[arm]
    name, dim, seed = job
    source = next(s for s in sources() if s.name == name)
    plan = BenchPlan()
    image, records = degraded_item(source, dim, seed, plan.clean_fraction, plan.pair_fraction,
                                   realism=realism and split == "train")
    records = [r for r in records if not r.get("baseline")]
    f = evidence_rows(image, None, longest).mean(axis=0) if longest else feature_vector(image)
    return {"f": f, "score": targets(records)["score"], "source": name,
            "modality": source.modality, "clean": not records}


def rows(split: str, arm: str) -> dict[str, np.ndarray]:
    """The cached feature rows of a split."""
    from medq.data.bench import BenchPlan, _jobs
    from medq.data.cache import cache_dir, map_jobs, read_npz, write_npz

    path = cache_dir() / "probes" / f"evidence-{arm}" / f"{split}.npz"
    found = read_npz(path)
    if found is not None:
        return found
    jobs = _jobs(BenchPlan(), split)
    jobs = sorted(jobs[::3] if split == "train" else jobs, key=lambda j: (j[0], j[1]))
    items = map_jobs(partial(row, split=split, arm=arm), jobs, 2, True, f"{arm} {split}")
    data = {k: np.array([it[k] for it in items]) for k in items[0]}
    write_npz(path, data)
    return data


def report(name: str, pred: np.ndarray, test: dict[str, np.ndarray]) -> None:
    """Print SRCC overall, per modality and per source, and clean-image means."""
    from scipy.stats import spearmanr

    y = test["score"]
    print(f"{name}: overall SRCC {spearmanr(pred, y)[0]:.3f}")
    for key in ("modality", "source"):
        parts = []
        for v in np.unique(test[key]):
            sel = test[key] == v
            parts.append(f"{v} {spearmanr(pred[sel], y[sel])[0]:+.2f}")
        print(f"  per {key}: " + ", ".join(parts))
    clean = [f"{s} {pred[(test['source'] == s) & test['clean']].mean():.2f}"
             for s in np.unique(test["source"]) if ((test["source"] == s) & test["clean"]).any()]
    print("  mean score of clean test images (target 5): " + ", ".join(clean))


def main() -> None:
    """Build (or read) the rows of an arm, fit both regressors, print the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("arm", choices=sorted(ARMS))
    args = parser.parse_args()
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.neural_network import MLPRegressor

    train, test = rows("train", args.arm), rows("test", args.arm)
    x, xt = np.nan_to_num(train["f"]), np.nan_to_num(test["f"])
    hgb = HistGradientBoostingRegressor(max_iter=400, learning_rate=0.05, random_state=0)
    report("gradient boosting", hgb.fit(x, train["score"]).predict(xt), test)
    lo, hi = np.percentile(x, [0.5, 99.5], axis=0)
    mean, std = np.clip(x, lo, hi).mean(0), np.clip(x, lo, hi).std(0) + 1e-6
    z, zt = (np.clip(x, lo, hi) - mean) / std, (np.clip(xt, lo, hi) - mean) / std
    mlp = MLPRegressor(hidden_layer_sizes=(64, 64), alpha=1e-3, max_iter=800, random_state=0,
                       early_stopping=True)
    report("MLP", mlp.fit(z, train["score"]).predict(zt), test)


if __name__ == "__main__":
    main()
