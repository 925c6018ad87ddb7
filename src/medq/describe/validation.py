"""Description metrics of detector outputs on calibration items (from their ground truth).

On calibration items the engine's ground truth is the continuous severity per finding type
(`items.severity_targets`), which determines the reference findings (≥ mild) and the reference
verdict, so the description metrics (`medq.describe.metrics`) can be computed for any set of
presence thresholds without re-running the detector: the same rule as a report
(`medq.assess.detector.decide`: reported at the threshold with at least mild severity, stated
absent below `normal_fraction` of it, sub-mild estimates kept) and the same score
(`medq.assess.detector.findings_score`) give each item's findings and verdict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.assess.detector import NORMAL_FRACTION, decide, findings_score, severity_for
from medq.assess.models.blocks import FINDING_TYPES
from medq.describe.metrics import score_against
from medq.describe.schema import score_for, verdict_for


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
         refs: list[dict[str, Any]], normal_fraction: float = NORMAL_FRACTION
         ) -> list[dict[str, Any]]:
    """Metric rows of every item for per-item thresholds `[n, types]`."""
    out = []
    for i, ref in enumerate(refs):
        d = decide(prob[i], sev[i], allowed[i], thresholds[i], normal_fraction)
        pred = {FINDING_TYPES[j]: severity_for(v) for j, v in d.reported.items()}
        normal = [FINDING_TYPES[j] for j in d.normal]
        verdict = verdict_for(findings_score(list(d.reported.values()), d.below))
        row = score_against(pred, normal, verdict, ref)
        row["type_hits"] = [(t, t in pred) for t, s in ref["findings"].items()
                            if s in ("moderate", "severe")]
        out.append(row)
    return out


def threshold_matrix(thresholds: dict[str, float], groups: np.ndarray) -> np.ndarray:
    """`[n, types]` thresholds of items from `type@group` (else `type`) entries."""
    return np.array([[thresholds.get(f"{t}@{g}", thresholds.get(t, 0.5)) for t in FINDING_TYPES]
                     for g in groups.tolist()])
