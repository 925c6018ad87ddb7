"""The finding detector: evidence features (+ finding heads) → per-type presence and severity.

A small MLP ensemble fitted by `medq.describe.calibrate` on the training sources and shipped as
JSON next to this module (plain numbers; inference is NumPy), in two calibrations:
`detector-full.json` on the full-resolution planes (`evidence.feature_vector`, what `medq
describe` reads: the evidence features, and any `evidence.DETECTOR_EXTRAS` its feature list
names) and `detector-view.json` on the quality model's views of at most 256 px (the mean of
`evidence.evidence_rows`, which `medq assess` computes anyway: its evidence score,
`read_evidence`, costs no extra pass over the pixels). For every finding type it gives P(present
at ≥ mild) and a continuous severity (0 none … 3 severe, the engine's scale), and holds the
per-type presence thresholds and the fraction of them below which a type is stated absent
(`normal_fraction`), chosen on held-out training items.

A calibration may carry **extensions** (`calibrate.extend`): for one modality group, nets fitted
on that group's items alone answer for the finding types they name (a type the engine has newly
learned to make for that modality, e.g. camera noise in photographs), on the same input scaling,
while every other type and group keeps the calibration's own nets.

When the calibration was fitted with a model's finding heads (`--heads`), it is tied to that
checkpoint's SHA-256: with any other model the head inputs are set to their calibration means
(neutral), so the evidence features alone decide and the report's `basis` says so.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from medq.assess.models.blocks import FINDING_TYPES, SEVERITIES
from medq.assess.trees import Forest, sigmoid
from medq.errors import ModelError

CALIBRATION_PATH = Path(__file__).with_name("detector-full.json")
"""The description's calibration (evidence features of the full planes only)."""

VIEW_CALIBRATION_PATH = Path(__file__).with_name("detector-view.json")
"""The assessment's calibration (evidence features of the ≤256-px views: `evidence_rows`)."""

SEVERITY_BOUNDS = (0.5, 1.5, 2.5)
"""Continuous severity (the engine's scale) where mild, moderate and severe begin."""

BELOW_MILD_FLOOR = 0.2
"""Sub-mild severity estimates from here up count in the findings' score (the engine's quality
benchmark draws continuous severities from 0.2)."""

NORMAL_FRACTION = 0.5
"""A type is stated absent below this fraction of its threshold, unless the calibration says
otherwise (`normal_fraction`, chosen on its validation items)."""

HEAD_NAMES = (*(f"head_presence_{t}" for t in FINDING_TYPES),
              *(f"head_severity_{t}" for t in FINDING_TYPES), "head_score")
"""Head features appended to the evidence features by a heads calibration."""


def head_vector(assessment: Any) -> np.ndarray:
    """The model's raw finding scores and its own score (`model_score`) of an Assessment, as
    HEAD_NAMES."""
    scores = getattr(assessment, "finding_scores", None) or {}
    if not scores:
        raise ModelError("the assessment has no raw finding scores (finding_scores)")
    pres = [scores[t]["presence"] for t in FINDING_TYPES]
    sev = [scores[t]["expected_severity"] for t in FINDING_TYPES]
    own = getattr(assessment, "model_score", None)
    return np.asarray([*pres, *sev, float(assessment.score if own is None else own)],
                      dtype=np.float32)


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
        self.nets = _layers(calibration["nets"])
        self.extensions = {e["group"]: (tuple(e["types"]), _layers(e["nets"]))
                           for e in calibration.get("extensions", ())}
        self.thresholds = {t: float(calibration["thresholds"].get(t, 0.5)) for t in self.types}
        self.normal_fraction = float(calibration.get("normal_fraction", NORMAL_FRACTION))
        self.uses_heads = bool(calibration.get("model_sha"))
        trees = calibration.get("trees")
        self.trees = (Forest(trees), float(trees["weight"])) if trees else None
        from medq.assess.evidence import DETECTOR_EXTRAS

        # the full-plane extras this calibration reads after the evidence features
        self.extras = tuple(n for n in calibration.get("features", ()) if n in DETECTOR_EXTRAS)
        names = list(calibration.get("features", ()))
        self.fixed = {names.index(n): float(v) for n, v in calibration.get("fixed", {}).items()
                      if n in names}

    def threshold(self, kind: str, modality: str) -> float:
        """Presence threshold of a finding type for a modality."""
        from medq.assess.evidence import modality_group

        return det_threshold(self.calibration, kind, modality_group(modality))

    def predict(self, x: np.ndarray, group: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean over the ensemble of P(present) and the continuous severity (clipped to 0–3.5),
        blended with the calibration's gradient-boosted trees where it has them; for images of
        a modality `group` the calibration extends, its extension's types from their own nets.

        Features the calibration holds `fixed` are set to their value, the rest clipped to the
        calibration items' range (no extrapolation).
        """
        clipped, z = self.standardised(x)
        n = len(self.types)
        prob, sev = ensemble_output(self.nets, z, n)
        if self.trees is not None:  # blended with gradient-boosted trees on the clipped features
            forest, weight = self.trees
            raw = forest.raw(clipped)
            prob = (1 - weight) * prob + weight * sigmoid(raw[:, :n])
            sev = (1 - weight) * sev + weight * raw[:, n:]
        if group in self.extensions:
            types, nets = self.extensions[group]
            columns = [self.types.index(t) for t in types]
            prob[:, columns], sev[:, columns] = ensemble_output(nets, z, len(types))
        return prob, np.clip(sev, 0.0, 3.5)

    def standardised(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature vectors `[items, features]` as the nets read them: the `fixed` features set
        to their value (`FIXED_FEATURES`: a volume is read as its slices are), every feature
        clipped to the calibration items' range, then standardised; (clipped, standardised)."""
        clipped = np.clip(with_fixed(x, self.fixed), self.low, self.high)
        return clipped, (clipped - self.mean) / self.std


def with_fixed(x: np.ndarray, columns: dict[int, float]) -> np.ndarray:
    """Float64 copy of feature vectors `[items, features]` with each of `columns` (index →
    value) set to its value."""
    out = np.array(np.atleast_2d(x), dtype=np.float64)
    for column, value in columns.items():
        out[:, column] = value
    return out


FIXED_FEATURES = {"is_3d": 0.0}
"""Features a calibration reads at a fixed value (`fixed` in its JSON): whether the image is a
volume. The features of a volume are the means over its salient slices, as a slice's are its
own; fitted on it, the nets learned from the calibration's few volumes to read the same slices
as less noisy in a volume than alone (a 60×50 four-slice MR series with Rician noise read mild
noise, each of its slices moderate) and gave 2D and 3D images different scales; held at 0 (read
as slices), the held-out 3D items score better on both benchmarks (`docs/description.md`)."""


def _layers(nets: list[list[dict[str, Any]]]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """A calibration's nets as (weight, bias) arrays per layer."""
    return [[(np.asarray(layer["w"]), np.asarray(layer["b"])) for layer in net] for net in nets]


def ensemble_output(nets: list[list[tuple[np.ndarray, np.ndarray]]], z: np.ndarray, n: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Mean over MLPs (ReLU between layers) of P(present) and the raw severity of `n` types,
    from standardised features `z` `[items, features]`."""
    probs, sevs = [], []
    for layers in nets:
        h = z
        for k, (w, b) in enumerate(layers):
            h = h @ w + b
            if k < len(layers) - 1:
                h = np.maximum(h, 0.0)
        probs.append(sigmoid(h[:, :n]))
        sevs.append(h[:, n:])
    return np.mean(probs, axis=0), np.mean(sevs, axis=0)


@lru_cache(maxsize=4)
def _load(path: str) -> Detector:
    try:
        return Detector(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"finding detector calibration unreadable ({type(e).__name__}: {e})",
                         path) from e


def load_detector(path: str | Path | None = None) -> Detector:
    """The description's shipped (or a given) calibration, loaded once."""
    return _load(str(path or CALIBRATION_PATH))


def severity_for(value: float) -> str:
    """Severity name (none / mild / moderate / severe) of a continuous severity value."""
    return SEVERITIES[sum(value >= b for b in SEVERITY_BOUNDS)]


class Decision(NamedTuple):
    """What one image's detector outputs say: reported types, types stated absent, sub-mild."""

    reported: dict[int, float]
    """Type index → continuous severity (at least mild) of each reported finding."""
    normal: list[int]
    """Type indices stated absent."""
    below: list[float]
    """Sub-mild severity estimates (`BELOW_MILD_FLOOR` ≤ s < 0.5) of the unreported types."""


def decide(prob: np.ndarray, sev: np.ndarray, allowed: np.ndarray, thresholds: np.ndarray,
           normal_fraction: float) -> Decision:
    """The report rule on one image's `[types]` detector outputs and presence thresholds."""
    report = allowed & (prob >= thresholds)
    normal = allowed & (prob < normal_fraction * thresholds)
    below = allowed & ~report & (sev >= BELOW_MILD_FLOOR)
    return Decision({int(j): max(float(sev[j]), 0.5) for j in np.flatnonzero(report)},
                    [int(j) for j in np.flatnonzero(normal)],
                    [min(float(sev[j]), 0.49) for j in np.flatnonzero(below)])


def findings_score(values: list[float], below: list[float] = ()) -> float:
    """1–5 score of reported severities and the detector's sub-mild estimates of the other types.

    The engine's reference score (`medq.data.bench.reference_score`) counts every applied
    degradation, mild or not, so the estimates below mild (`below`, each < 0.5) lower the score
    too, but together by no more than one more mild finding would:
    `max(ref(values + below), ref(values + [0.5]))`. A verdict of this score thus stays within
    what the reported findings allow.
    """
    from medq.data.bench import reference_score

    values = [float(v) for v in values]
    return max(reference_score([*values, *below]), reference_score([*values, 0.5]))


def confidence_weighted(prob: np.ndarray, sev: np.ndarray, allowed: np.ndarray,
                        thresholds: np.ndarray) -> np.ndarray:
    """Each type's severity estimate weighted by the detector's confidence in it,
    `s_j · min(1, p_j / t_j)`; 0 for the types the modality cannot have."""
    weight = np.minimum(1.0, prob / np.maximum(thresholds, 1e-6))
    return np.where(allowed, sev * weight, 0.0)


def confidence_score(prob: np.ndarray, sev: np.ndarray, allowed: np.ndarray,
                     thresholds: np.ndarray) -> float:
    """1–5 reference score (`medq.data.bench.reference_score`) of the confidence-weighted
    severities (`confidence_weighted`). A type at or above its presence threshold counts fully,
    as a reported finding does; a doubtful one in proportion to its probability, so the score
    moves smoothly as a degradation grows past what the detector is sure of, instead of jumping
    when a finding crosses its threshold."""
    return weighted_score(confidence_weighted(prob, sev, allowed, thresholds), allowed)


def weighted_score(weighted: np.ndarray, allowed: np.ndarray) -> float:
    """1–5 reference score of confidence-weighted severities (`confidence_weighted`) over the
    types the modality can have."""
    from medq.data.bench import reference_score

    return reference_score([float(v) for v in weighted[allowed]])


def _read(detector: Detector, x: np.ndarray, modality: str
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's presence probabilities and severities `[types]`, with the mask of the types
    the engine can produce for its modality and their presence thresholds."""
    from medq.assess.evidence import modality_group

    prob, sev = detector.predict(x, modality_group(modality))
    return (prob[0], sev[0], _allowed(modality),
            np.array([detector.threshold(t, modality) for t in FINDING_TYPES]))


def detect_types(detector: Detector, x: np.ndarray, modality: str
                 ) -> tuple[np.ndarray, Decision]:
    """(presence probabilities, decision) of one image's feature vector `x`, over the finding
    types the engine can produce for its modality."""
    prob, sev, allowed, thresholds = _read(detector, x, modality)
    return prob, decide(prob, sev, allowed, thresholds, detector.normal_fraction)


class Evidence(NamedTuple):
    """What a calibration reads from one image (the views', or for a large image the worse of
    the views' and the full planes' readings: `worse_of`)."""

    score: float
    """The score of every type's confidence-weighted severity (`weighted_score`): the
    assessment's evidence score."""
    prob: np.ndarray
    """Presence probability per finding type (FINDING_TYPES order)."""
    decision: Decision
    """Reported types with their severities, types stated absent, sub-mild estimates."""
    weighted: np.ndarray
    """Confidence-weighted severity per type (`confidence_weighted`), what the score counts."""


def evidence_of(detector: Detector, x: np.ndarray, modality: str) -> Evidence:
    """What a calibration reads from one image's feature vector `x` (its score, presence
    probabilities, decision and confidence-weighted severities)."""
    prob, sev, allowed, thresholds = _read(detector, np.asarray(x)[None], modality)
    decision = decide(prob, sev, allowed, thresholds, detector.normal_fraction)
    weighted = confidence_weighted(prob, sev, allowed, thresholds)
    return Evidence(weighted_score(weighted, allowed), prob, decision, weighted)


PIXEL_TYPES = ("noise",)
"""The finding types the full planes add to the views' reading of an image whose views average
its pixel-level noise away (`evidence.EvidencePass.noise_weight`)."""


def assessed_evidence(rows: np.ndarray, features: np.ndarray | None, image: Any,
                      noise_weight: float = 0.0) -> Evidence:
    """An image's assessment evidence: the view calibration on its evidence rows
    (`read_evidence`); for an image whose planes its views shrink too far
    (`evidence.reads_full_planes`), the worse per type of that and the description's full-plane
    calibration on its full-plane `features` (`worse_of`): pixel-level noise shows on the full
    planes only, blur wider than the calibration's images on the views only; for one whose
    views average noise away (`noise_weight` > 0), `PIXEL_TYPES` alone moved that far from the
    views' reading towards the worse of the two. The full planes are read when that calibration
    reads features alone."""
    from medq.assess.evidence import FEATURE_NAMES, reads_full_planes

    view = read_evidence(rows, image.modality)
    detector = load_detector()
    if features is None or detector.uses_heads \
            or len(features) != len(FEATURE_NAMES) + len(detector.extras):
        return view
    if reads_full_planes(image):
        weight = np.ones(len(FINDING_TYPES))
    elif noise_weight > 0.0:
        weight = np.array([noise_weight if t in PIXEL_TYPES else 0.0 for t in FINDING_TYPES])
    else:
        return view
    return worse_of(view, evidence_of(detector, features, image.modality), image.modality,
                    weight)


def worse_of(a: Evidence, b: Evidence, modality: str,
             weight: float | np.ndarray = 1.0) -> Evidence:
    """Two readings of one image as one, each finding type as the worse of the two: the larger
    confidence-weighted severity and presence probability (each reading's against its own
    thresholds), reported when either reports it, at the larger of the reported and weighted
    severities (within one reading a reported type's weighted severity is its severity, so the
    score, `weighted_score` of the weighted severities, counts what the findings say), stated
    absent when both do. `weight` (one number, or one per finding type, 0–1): how far each type
    moves from `a`'s reading to that worse one (clipped to 0–1) — probabilities, weighted and
    reported severities interpolated, so the score moves smoothly with it; a type only `b`
    reports is reported, and one only `a` states absent is no longer stated so, once the
    weight reaches a half (below it a type whose weighted severity has grown shows among the
    assessment's suspected types). No sub-mild estimates (the assessment reads none)."""
    w = np.broadcast_to(np.clip(np.nan_to_num(np.asarray(weight, dtype=np.float64)), 0.0, 1.0),
                        (len(FINDING_TYPES),))
    weighted = a.weighted + w * (np.maximum(a.weighted, b.weighted) - a.weighted)
    reported = {}
    for j in {*a.decision.reported, *b.decision.reported}:
        mine = a.decision.reported.get(j, float(a.weighted[j]))
        worse = max(a.decision.reported.get(j, 0.0), b.decision.reported.get(j, 0.0),
                    float(max(a.weighted[j], b.weighted[j])))
        if j in a.decision.reported or w[j] >= 0.5:  # a reported finding is at least mild
            reported[j] = max(mine + float(w[j]) * (worse - mine), SEVERITY_BOUNDS[0])
    normal = [j for j in a.decision.normal if j in b.decision.normal or w[j] < 0.5]
    return Evidence(weighted_score(weighted, _allowed(modality)),
                    a.prob + w * (np.maximum(a.prob, b.prob) - a.prob),
                    Decision(reported, sorted(normal), []), weighted)


def _allowed(modality: str) -> np.ndarray:
    """The mask over FINDING_TYPES of the types the engine can produce for a modality."""
    from medq.assess.assessment import finding_types_for

    kinds = finding_types_for(modality)
    return np.array([t in kinds for t in FINDING_TYPES])


def read_evidence(rows: np.ndarray, modality: str) -> Evidence:
    """The view calibration (`VIEW_CALIBRATION_PATH`) on evidence rows `[slices, features]`
    (`medq.assess.evidence.evidence_rows`, averaged over the slices)."""
    from medq.assess.evidence import view_features

    return evidence_of(_load(str(VIEW_CALIBRATION_PATH)), view_features(rows), modality)

