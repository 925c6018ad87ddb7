"""Description stage: an Assessment → a structured `QualityReport` with clinical text.

`report_from(assessment, image)` is pure (no model): findings from the assessment's finding
heads, cross-checked with the classical measures, a verdict from the score, and 2–5 sentences.
"""

from __future__ import annotations

from typing import Any

from medq.describe.schema import VERDICTS, Finding, QualityReport, verdict_for

__all__ = ["VERDICTS", "Finding", "QualityReport", "report_from", "verdict_for"]


def report_from(assessment: Any, image: Any = None) -> QualityReport:
    """The QualityReport of an Assessment (the image, when given, locates the findings)."""
    from medq.describe.text import build_report

    return build_report(assessment, image)
