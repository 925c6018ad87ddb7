"""Gradient-boosted trees for the finding detector: fitted by scikit-learn, kept as plain arrays,
predicted in NumPy.

The finding detector can blend its MLP ensemble with gradient-boosted trees
(`medq.describe.calibrate --trees W`; tried, not shipped: docs/trials.md). scikit-learn fits
them at calibration time (`fit_forest`); the calibration JSON keeps every tree as flat node
arrays (`export`), so inference needs no scikit-learn and walks all trees of all outputs at
once (`Forest.raw`), one level per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def export(models: list[Any]) -> dict[str, Any]:
    """Flat, JSON-ready node arrays of fitted `HistGradientBoostingClassifier` (binary) or
    `HistGradientBoostingRegressor` models, one output column each; a model given as a number
    is a constant output (a type never seen present: no trees). Leaf values keep 7 significant
    digits, split thresholds all of theirs."""
    nodes: dict[str, list] = {k: [] for k in ("feature", "threshold", "left", "right",
                                              "value", "missing_left")}
    roots, columns, baseline = [], [], []
    for column, model in enumerate(models):
        if isinstance(model, (int, float)):
            baseline.append(float(model))
            continue
        baseline.append(float(np.ravel(model._baseline_prediction)[0]))
        for per_class in model._predictors:  # one predictor per boosting iteration
            tree = per_class[0].nodes
            offset = len(nodes["feature"])
            roots.append(offset)
            columns.append(column)
            leaf = tree["is_leaf"].astype(bool)
            nodes["feature"] += np.where(leaf, -1, tree["feature_idx"]).tolist()
            nodes["threshold"] += tree["num_threshold"].astype(float).tolist()
            nodes["left"] += np.where(leaf, -1, tree["left"] + offset).tolist()
            nodes["right"] += np.where(leaf, -1, tree["right"] + offset).tolist()
            nodes["value"] += [float(f"{v:.7g}") for v in np.where(leaf, tree["value"], 0.0)]
            nodes["missing_left"] += tree["missing_go_to_left"].astype(int).tolist()
    return {"nodes": nodes, "roots": roots, "columns": columns, "baseline": baseline}


def fit_forest(x: np.ndarray, y: np.ndarray, allowed: np.ndarray, seed: int) -> dict[str, Any]:
    """Per finding type a gradient-boosted presence classifier and severity regressor
    (scikit-learn's histogram GBM, its defaults, on the clipped features of the items that can
    have the type), exported as plain arrays (`export`): outputs are every
    type's presence log-odds, then every type's severity. Trees do not extrapolate past the
    values they were split on, which keeps them level on scans unlike the training items."""
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    except ImportError as e:
        from medq.errors import ModelError

        raise ModelError("gradient-boosted trees need scikit-learn (pip install -e '.[dev]')"
                         ) from e

    presence: list[Any] = []
    severity: list[Any] = []
    for j in range(y.shape[1]):
        rows = allowed[:, j]
        target = y[rows, j] >= 0.5
        if 0 < target.sum() < target.size:
            presence.append(HistGradientBoostingClassifier(
                random_state=seed, early_stopping=False).fit(x[rows], target))
            severity.append(HistGradientBoostingRegressor(
                random_state=seed, early_stopping=False).fit(x[rows], y[rows, j]))
        else:  # never (or always) present: constant outputs
            share = float(np.clip(target.mean() if target.size else 0.0, 1e-4, 1 - 1e-4))
            presence.append(float(np.log(share / (1 - share))))
            severity.append(float(y[rows, j].mean()) if target.size else 0.0)
    return export(presence + severity)


class Forest:
    """Loaded `export` arrays: `raw(x)` is each output's baseline plus its trees' leaf values."""

    def __init__(self, exported: dict[str, Any]) -> None:
        nodes = exported["nodes"]
        self.feature = np.asarray(nodes["feature"], dtype=np.int64)
        self.threshold = np.asarray(nodes["threshold"], dtype=np.float64)
        self.left = np.asarray(nodes["left"], dtype=np.int64)
        self.right = np.asarray(nodes["right"], dtype=np.int64)
        self.value = np.asarray(nodes["value"], dtype=np.float64)
        self.missing_left = np.asarray(nodes["missing_left"], dtype=bool)
        self.roots = np.asarray(exported["roots"], dtype=np.int64)
        self.columns = np.asarray(exported["columns"], dtype=np.int64)
        self.baseline = np.asarray(exported["baseline"], dtype=np.float64)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """`[n, outputs]` raw predictions (log-odds for a classifier) of the rows of `x`."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        at = np.broadcast_to(self.roots, (len(x), self.roots.size)).copy()
        rows = np.arange(len(x))[:, None]
        while True:
            inner = self.feature[at] >= 0
            if not inner.any():
                break
            v = x[rows, np.where(inner, self.feature[at], 0)]
            go_left = np.where(np.isnan(v), self.missing_left[at], v <= self.threshold[at])
            at = np.where(inner, np.where(go_left, self.left[at], self.right[at]), at)
        out = np.tile(self.baseline, (len(x), 1))
        np.add.at(out, (rows, self.columns[None, :]), self.value[at])
        return out


def sigmoid(raw: np.ndarray) -> np.ndarray:
    """Logistic function (a binary classifier's log-odds → probability)."""
    return 1.0 / (1.0 + np.exp(-raw))
