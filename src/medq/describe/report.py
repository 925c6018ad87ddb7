"""Assessment (+ image) → QualityReport: findings, their score and verdict, and the text.

The image is the one assessed: given, or loaded from `assessment.path`. With it, findings come
from the calibrated detector (`medq.describe.findings.detect`); the report's score is the score
of those findings and the detector's sub-mild estimates (`medq.assess.detector.findings_score`)
and the verdict follows from it, so verdict and findings never disagree. Without an image (an
in-memory image not passed on), the report falls back to the model's own findings and score
(`basis` = "finding heads").
"""

from __future__ import annotations

from typing import Any

from medq.assess.detector import findings_score
from medq.describe.schema import QualityReport, verdict_for


def _image_of(assessment: Any, image: Any) -> Any:
    """The image to describe: the given one, else the assessed file (None when neither)."""
    if image is not None or not assessment.path:
        return image
    from medq.errors import MedqError
    from medq.io import load

    try:
        return load(assessment.path, modality=assessment.modality)
    except (MedqError, OSError, ValueError):
        return None


def modality_source(assessment: Any) -> str:
    """Where the assessment's modality came from, as its prompts name the modality's source
    (`tags`, `values`, `predicted`, `user`); `default` for `OT`, which nothing said (a CT guess
    fills the prompt only, `medq.assess.guess.ADOPTED`)."""
    from medq.assess.assessment import prompted_source

    return "default" if assessment.modality == "OT" else prompted_source(assessment)


def build_report(assessment: Any, image: Any = None) -> QualityReport:
    """Build the QualityReport of an Assessment (the image locates and checks the findings)."""
    from medq.describe.findings import detect, from_heads
    from medq.describe.text import compose, said_normal
    from medq.io.polarity import as_displayed

    image = _image_of(assessment, image)
    if image is not None:
        image = as_displayed(image)  # as the assessment read it
        findings, normal, below, heads = detect(assessment, image)
        score = findings_score([f.severity_value for f in findings], below)
        basis = "detector + finding heads" if heads else "detector"
    else:
        findings, normal = from_heads(assessment), []
        score, basis = float(assessment.score), "finding heads"
    verdict = verdict_for(score)
    lossy = getattr(assessment, "lossy_compression", None)
    gaps = getattr(assessment, "slice_gaps", None)
    outliers = getattr(assessment, "noisy_slices", None)
    normal = said_normal(normal, outliers)
    model_score = getattr(assessment, "model_score", None)
    text = compose(findings, normal, verdict, assessment.modality, assessment.slices,
                   assessment.shape, lossy, gaps, outliers)
    prompts = assessment.prompts or {}
    return QualityReport(modality=assessment.modality, region=str(prompts.get("region", "unknown")),
                         score=round(score, 3), verdict=verdict, findings=findings, text=text,
                         path=assessment.path, model=assessment.model,
                         assess_score=assessment.score,
                         model_score=model_score,
                         normal=normal, basis=basis,
                         lossy_compression=lossy, slice_gaps=gaps, noisy_slices=outliers,
                         modality_source=modality_source(assessment))
