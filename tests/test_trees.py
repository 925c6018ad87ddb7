"""Gradient-boosted trees exported as plain arrays (`medq.assess.trees`) predict as scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")


def test_exported_trees_predict_as_scikit_learn_on_real_data() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from medq.assess.trees import Forest, export, sigmoid

    x, y = load_breast_cancer(return_X_y=True)  # 569 real tumour measurements, bundled
    x = x.copy()
    x[::7, 0] = np.nan  # missing values take each split's learnt side
    clf = HistGradientBoostingClassifier(random_state=0, early_stopping=False).fit(x, y)
    reg = HistGradientBoostingRegressor(random_state=0, early_stopping=False).fit(x, x[:, 3])
    forest = Forest(json.loads(json.dumps(export([clf, reg, -1.5]))))  # through JSON, as shipped
    raw = forest.raw(x)
    assert raw.shape == (len(x), 3)
    assert np.allclose(sigmoid(raw[:, 0]), clf.predict_proba(x)[:, 1], rtol=0, atol=1e-6)
    assert np.allclose(raw[:, 1], reg.predict(x), rtol=1e-6, atol=1e-3)
    assert (raw[:, 2] == -1.5).all()  # a constant output: no trees
    assert ((sigmoid(raw[:, 0]) > 0.5) == y).mean() > 0.95  # it learnt the task
    one = forest.raw(x[5])  # a single row
    assert np.array_equal(one, raw[5:6])
