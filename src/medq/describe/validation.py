"""Description metrics of detector outputs on calibration items (from their ground truth).

On calibration items the engine's ground truth is the continuous severity per finding type
(`items.severity_targets`), which determines the reference findings (≥ mild) and the reference
verdict, so the description metrics (`medq.describe.metrics`) can be computed for any set of
presence thresholds without re-running the detector: a type is reported when its probability
reaches the threshold (severity from the predicted value, at least mild), stated absent below
`NORMAL_FRACTION` of it, and the verdict is the reference-score rule of the reported severities
— exactly as `medq.describe.findings` and `report` do. `tune` raises each type's threshold
where that improves the mean total /8 on those (training-source) items.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.assess.models.blocks import FINDING_TYPES
from medq.describe.findings import NORMAL_FRACTION
from medq.describe.metrics import score_against
from medq.describe.schema import score_for, severity_for, verdict_for


def references(y: np.ndarray) -> list[dict[str, Any]]:
    """Reference findings and verdict of each item from its continuous severities."""
    out = []
    for row in y:
        found = {t: severity_for(float(v)) for t, v in zip(FINDING_TYPES, row, strict=True)
                 if v >= 0.5}
        out.append({"findings": found, "verdict": verdict_for(score_for([v for v in row
                                                                         if v > 0]))})
    return out


def rows(prob: np.ndarray, sev: np.ndarray, allowed: np.ndarray, thresholds: np.ndarray,
         refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metric rows of every item for per-item thresholds `[n, types]`."""
    out = []
    for i, ref in enumerate(refs):
        report = allowed[i] & (prob[i] >= thresholds[i])
        values = {FINDING_TYPES[j]: max(float(sev[i, j]), 0.5) for j in np.flatnonzero(report)}
        pred = {t: severity_for(v) for t, v in values.items()}
        normal = [FINDING_TYPES[j] for j in np.flatnonzero(
            allowed[i] & (prob[i] < NORMAL_FRACTION * thresholds[i]))]
        row = score_against(pred, normal, verdict_for(score_for(list(values.values()))), ref)
        row["type_hits"] = [(t, t in pred) for t, s in ref["findings"].items()
                            if s in ("moderate", "severe")]
        out.append(row)
    return out


def threshold_matrix(thresholds: dict[str, float], groups: np.ndarray) -> np.ndarray:
    """`[n, types]` thresholds of items from `type@group` (else `type`) entries."""
    return np.array([[thresholds.get(f"{t}@{g}", thresholds.get(t, 0.5)) for t in FINDING_TYPES]
                     for g in groups.tolist()])
