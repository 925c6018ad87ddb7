"""Report → clinical sentences (first version: one sentence per finding plus the verdict)."""

from __future__ import annotations

from typing import Any

from medq.describe.schema import Finding, QualityReport, verdict_for


def build_report(assessment: Any, image: Any = None) -> QualityReport:
    """Build the QualityReport of an Assessment."""
    findings = [Finding(f["type"], f["severity"], f["confidence"],
                        evidence=dict(f.get("evidence", {}))) for f in assessment.findings]
    verdict = verdict_for(assessment.score)
    lines = [f"There is {f.severity} {f.type.replace('_', ' ')}." for f in findings]
    lines = lines or ["No noise, blur or artifact is evident."]
    text = " ".join([*lines, f"Overall, the quality of this image is {verdict}."])
    prompts = assessment.prompts or {}
    return QualityReport(modality=assessment.modality, region=str(prompts.get("region", "unknown")),
                         score=assessment.score, verdict=verdict, findings=findings, text=text,
                         path=assessment.path, model=assessment.model)
