"""Findings of one image: the calibrated detector on the image's evidence, or the model's heads.

With the image at hand, every finding type the engine can produce for the modality
(`finding_types_for`) gets the detector's presence probability and continuous severity; a type
is reported when the probability reaches its calibrated threshold, with its severity, location
and evidence (the detector's numbers, the finding heads' raw outputs and the classical measures
that bear on it). Types whose probability is below the calibration's `normal_fraction` of their
threshold are `normal`: the text may say they are absent. The severities the detector estimates
below mild for the other types (from `BELOW_MILD_FLOOR`) go into the report's score
(`findings_score`). `decide` is that rule, shared with the calibration's validation and
the assessment's evidence score (both in `medq.assess.detector`).
An image whose planes are over `evidence.LARGE_PLANE` also gets the findings its assessment
read on its views and the full planes did not (`_with_view_findings`). Without an image, the
assessment's own findings (finding heads, thresholded in `medq.assess.assessment`) are used as
they are.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from medq.assess.assessment import EVIDENCE_MEASURES
from medq.assess.detector import detect_types, severity_for
from medq.assess.evidence import FEATURE_NAMES, reads_full_planes
from medq.assess.models.blocks import FINDING_TYPES
from medq.describe.schema import Finding
from medq.severity import SEVERITIES

KEY_FEATURES: dict[str, tuple[str, ...]] = {
    "noise": ("noise_hh", "noise_flat", "noise_bg"),
    "blur": ("sharpness", "crete_blur", "band_6"),
    "low_resolution": ("sharpness", "band_6", "band_7"),
    "aliasing": ("ac_high_max", "detail_anisotropy", "ghosting"),
    "motion": ("ghosting", "spectral_anisotropy"),
    "ghosting": ("ghosting", "ac_low_half"),
    "spike": ("spectral_peak", "spike_contrast"),
    "bias_field": ("field_span", "field_cv", "inu_range"),
    "streak": ("streak", "angular_cv"),
    "low_contrast": ("floor", "span", "ct_tissue"),
    "illumination": ("field_span", "field_cv"),
}
"""Evidence features quoted for each finding type (names of `medq.assess.evidence`)."""


@lru_cache(maxsize=8)
def _sha(model: str) -> str | None:
    from medq.describe.calibration_data import model_sha
    from medq.errors import ModelError

    try:
        return model_sha(model)
    except ModelError:
        return None


def detector_inputs(assessment: Any, image: Any, detector: Any) -> tuple[np.ndarray, bool]:
    """The detector's input vector and whether the model's heads are in it.

    A heads calibration of another checkpoint gets neutral head inputs (the calibration means),
    so the evidence features alone decide.
    """
    from medq.assess.detector import head_vector
    from medq.assess.evidence import feature_vector

    taken = getattr(assessment, "detector_features", None)  # by the Assessor's workers
    same = list(getattr(assessment, "shape", None) or []) == list(image.shape)  # its image
    if taken is not None and same and len(taken) == len(FEATURE_NAMES) + len(detector.extras):
        x = np.asarray(taken, dtype=np.float32)
    else:
        indices = [s["index"] for s in assessment.slices] if assessment.slices else None
        x = feature_vector(image, indices, detector.extras)
    if not detector.uses_heads:
        return x, False
    if _sha(assessment.model) == detector.calibration["model_sha"]:
        return np.concatenate([x, head_vector(assessment)]), True
    return np.concatenate([x, detector.mean[len(x):].astype(np.float32)]), False


def _evidence(kind: str, p: float, value: float, x: np.ndarray, assessment: Any,
              names: tuple[str, ...]) -> dict[str, Any]:
    """The finding's evidence: detector numbers, the features the detector read (`names`, in
    `x`'s order), the finding heads' outputs and the classical measures that bear on it."""
    ev: dict[str, Any] = {"probability": round(p, 3), "severity_value": round(value, 2)}
    ev.update({name: round(float(x[names.index(name)]), 3)
               for name in KEY_FEATURES.get(kind, ()) if name in names})
    head = (getattr(assessment, "finding_scores", None) or {}).get(kind)
    if head:
        ev["head_presence"] = head["presence"]
        ev["head_expected_severity"] = head["expected_severity"]
    measures = assessment.measures or {}
    ev.update({m: measures[m] for m in EVIDENCE_MEASURES.get(kind, ())
               if measures.get(m) is not None})
    return ev


def detect(assessment: Any, image: Any) -> tuple[list[Finding], list[str], list[float], bool]:
    """(findings worst first, normal types, sub-mild estimates, whether heads were used)."""
    from medq.assess.detector import load_detector
    from medq.describe.location import locate

    detector = load_detector()
    x, heads = detector_inputs(assessment, image, detector)
    names = FEATURE_NAMES + detector.extras
    prob, decision = detect_types(detector, x, image.modality)
    middle = None
    if assessment.slices:
        middle = assessment.slices[len(assessment.slices) // 2]["index"]
    findings = []
    for j, raw in decision.reported.items():
        kind, p, value = FINDING_TYPES[j], float(prob[j]), round(raw, 2)
        findings.append(Finding(kind, severity_for(value), round(p, 3),
                                locate(kind, image, middle),
                                _evidence(kind, p, value, x, assessment, names), value))
    normal = [FINDING_TYPES[j] for j in decision.normal]
    if reads_full_planes(image):
        findings, normal = _with_view_findings(findings, normal, assessment, image, middle)
    return sort_findings(findings), normal, decision.below, heads


def _with_view_findings(findings: list[Finding], normal: list[str], assessment: Any, image: Any,
                        middle: int | None) -> tuple[list[Finding], list[str]]:
    """An image read on its full planes (`evidence.reads_full_planes`) with the findings its
    assessment reports beyond them (its views' reading, `detector.worse_of`: blur wider than the
    calibration's images shows there only): each type at the worse severity, none stated absent
    that either reports."""
    from medq.describe.location import locate

    by_type = {f.type: f for f in findings}
    for found in assessment.findings or []:
        value = float(found.get("evidence", {}).get("severity_value", 0.0))
        mine = by_type.get(found["type"])
        if mine is not None and mine.severity_value >= value:
            continue
        by_type[found["type"]] = Finding(
            found["type"], severity_for(value), float(found["confidence"]),
            locate(found["type"], image, middle),
            {**found.get("evidence", {}), "read_on": "views"}, round(value, 2))
    return list(by_type.values()), [t for t in normal if t not in by_type]


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Worst first: by severity value, then confidence."""
    return sorted(findings, key=lambda f: (-f.severity_value, -f.confidence))


def from_heads(assessment: Any) -> list[Finding]:
    """The assessment's own findings (finding heads) as Finding objects."""
    out = []
    for f in assessment.findings:
        value = float(f.get("evidence", {}).get("expected_severity",
                                                SEVERITIES.index(f["severity"])))
        out.append(Finding(f["type"], f["severity"], float(f["confidence"]),
                           evidence=dict(f.get("evidence", {})), severity_value=round(value, 2)))
    return sort_findings(out)
