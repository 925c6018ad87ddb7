"""The finding detector: evidence features (+ finding heads) → per-type presence and severity.

A small MLP ensemble fitted by `medq.describe.calibrate` on the training sources and shipped as
`calibration.json` next to this module (plain numbers; inference is NumPy). For every finding
type it gives P(present at ≥ mild) and a continuous severity (0 none … 3 severe, the engine's
scale), and holds the per-type presence thresholds and the fraction of them below which a type
is stated absent (`normal_fraction`), chosen on held-out training items.

When the calibration was fitted with a model's finding heads (`--heads`), it is tied to that
checkpoint's SHA-256: with any other model the head inputs are set to their calibration means
(neutral), so the evidence features alone decide and the report's `basis` says so.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from medq.assess.models.blocks import FINDING_TYPES
from medq.errors import ModelError

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
"""The shipped calibration (evidence features only)."""

NORMAL_FRACTION = 0.5
"""A type is stated absent below this fraction of its threshold, unless the calibration says
otherwise (`normal_fraction`, chosen on its validation items)."""

HEAD_NAMES = (*(f"head_presence_{t}" for t in FINDING_TYPES),
              *(f"head_severity_{t}" for t in FINDING_TYPES), "head_score")
"""Head features appended to the evidence features by a heads calibration."""


def head_vector(assessment: Any) -> np.ndarray:
    """The model's raw finding scores and score of an Assessment, as HEAD_NAMES."""
    scores = getattr(assessment, "finding_scores", None) or {}
    if not scores:
        raise ModelError("the assessment has no raw finding scores (finding_scores)")
    pres = [scores[t]["presence"] for t in FINDING_TYPES]
    sev = [scores[t]["expected_severity"] for t in FINDING_TYPES]
    return np.asarray([*pres, *sev, float(assessment.score)], dtype=np.float32)


def det_threshold(calibration: dict[str, Any], kind: str, group: str) -> float:
    """Presence threshold of a type for a modality group (`type@group`, else the type's)."""
    thresholds = calibration["thresholds"]
    return float(thresholds.get(f"{kind}@{group}", thresholds.get(kind, 0.5)))


class Detector:
    """A loaded calibration: `predict(x)` → (presence probabilities, severities), `[n, types]`."""

    def __init__(self, calibration: dict[str, Any]) -> None:
        self.calibration = calibration
        self.types = tuple(calibration["types"])
        self.low = np.asarray(calibration.get("low", -np.inf), dtype=np.float64)
        self.high = np.asarray(calibration.get("high", np.inf), dtype=np.float64)
        self.mean = np.asarray(calibration["mean"], dtype=np.float64)
        self.std = np.asarray(calibration["std"], dtype=np.float64)
        self.nets = [[(np.asarray(layer["w"]), np.asarray(layer["b"])) for layer in net]
                     for net in calibration["nets"]]
        self.thresholds = {t: float(calibration["thresholds"].get(t, 0.5)) for t in self.types}
        self.normal_fraction = float(calibration.get("normal_fraction", NORMAL_FRACTION))
        self.uses_heads = bool(calibration.get("model_sha"))

    def threshold(self, kind: str, modality: str) -> float:
        """Presence threshold of a finding type for a modality."""
        from medq.assess.evidence import modality_group

        return det_threshold(self.calibration, kind, modality_group(modality))

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean over the ensemble of P(present) and the continuous severity (clipped to 0–3.5).

        Features are first clipped to the calibration items' range (no extrapolation).
        """
        z = (np.clip(np.atleast_2d(x), self.low, self.high) - self.mean) / self.std
        probs, sevs = [], []
        for layers in self.nets:
            h = z
            for k, (w, b) in enumerate(layers):
                h = h @ w + b
                if k < len(layers) - 1:
                    h = np.maximum(h, 0.0)
            n = len(self.types)
            probs.append(1.0 / (1.0 + np.exp(-h[:, :n])))
            sevs.append(h[:, n:])
        return np.mean(probs, axis=0), np.clip(np.mean(sevs, axis=0), 0.0, 3.5)


@lru_cache(maxsize=4)
def _load(path: str) -> Detector:
    try:
        return Detector(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"finding detector calibration unreadable ({type(e).__name__}: {e})",
                         path) from e


def load_detector(path: str | Path | None = None) -> Detector:
    """The shipped (or given) calibration, loaded once."""
    return _load(str(path or CALIBRATION_PATH))
