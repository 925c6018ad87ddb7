"""How far the evidence features alone carry the score, and where the held-out scans differ.

Fits a gradient-boosted tree (scikit-learn) on each benchmark item's mean evidence row plus its
prompt one-hots, on the TRAINING split, and prints its SRCC on training and held-out items; then
the shipped `mediqa-s` held-out SRCC per test source and its mean score on clean held-out
items per modality (their reference score is 5). Usage: python benchmarks/probes/measures_only.py
"""

from __future__ import annotations

import numpy as np


def _features(data: dict[str, np.ndarray]) -> np.ndarray:
    rows = []
    for i in range(len(data["score"])):
        o, k = int(data["offset"][i]), int(data["n_valid"][i])
        rows.append(np.r_[data["m"][o:o + k].astype(np.float32).mean(0), data["prompt"][i]])
    return np.asarray(rows)


def main() -> None:
    """Print the probe's numbers."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from medq.assess.weights import load_weights
    from medq.data.bench import BenchPlan, build
    from medq.metrics.correlation import srcc
    from medq.train.evaluate import predict

    plan = BenchPlan()
    train, test = build(plan, "train"), build(plan, "test")
    tree = HistGradientBoostingRegressor(max_iter=500, learning_rate=0.05, random_state=0)
    tree.fit(_features(train), train["score"])
    fit_srcc = srcc(tree.predict(_features(train)), train["score"])
    held_srcc = srcc(tree.predict(_features(test)), test["score"])
    print(f"evidence-only tree: training SRCC {fit_srcc:.3f}, held-out SRCC {held_srcc:.3f}")
    model, _ = load_weights("mediqa-s")
    pred = predict(model, test)
    print(f"mediqa-s held-out SRCC {srcc(pred, test['score']):.3f}; per source:")
    for source in np.unique(test["source"]):
        sel = test["source"] == source
        print(f"  {source:14s} n={sel.sum():3d} SRCC {srcc(pred[sel], test['score'][sel]):.3f}")
    clean = test["score"] >= 5.0
    for modality in np.unique(test["modality"]):
        sel = clean & (test["modality"] == modality)
        if sel.any():
            print(f"  clean {modality}: n={sel.sum()} mean score {pred[sel].mean():.2f} "
                  "(reference 5)")


if __name__ == "__main__":
    main()
