"""The structured description: `Finding` and `QualityReport`, and the verdict rule.

Verdicts follow MedQ-Bench's three levels and the assessment's 1–5 score: ≥ 3.5 `good`
(good or excellent grade), ≥ 2.5 `usable` (acceptable), below `reject` (poor or non-diagnostic,
the images `medq assess` flags for recall).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("good", "usable", "reject")
"""Verdict levels, best first."""

VERDICT_BOUNDS = ((3.5, "good"), (2.5, "usable"))
"""Lowest score of each verdict above `reject`."""


def verdict_for(score: float) -> str:
    """Verdict (good / usable / reject) of a 1–5 quality score."""
    return next((name for bound, name in VERDICT_BOUNDS if score >= bound), "reject")


@dataclass
class Finding:
    """One quality problem: type, severity, confidence, coarse location and its evidence."""

    type: str
    severity: str
    confidence: float
    location: str = "global"
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class QualityReport:
    """What `medq describe` says about one image (structured findings plus clinical text)."""

    modality: str
    region: str
    score: float
    verdict: str
    findings: list[Finding]
    text: str
    path: str | None = None
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (`path` first, as in `medq describe --json`)."""
        data = asdict(self)
        return {"path": data.pop("path"), **data}
