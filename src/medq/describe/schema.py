"""The structured description: `Finding` and `QualityReport`, and the verdict and severity rules.

Verdicts follow MedQ-Bench's three levels and the 1–5 score: ≥ 3.5 `good` (good or excellent
grade), ≥ 2.5 `usable` (acceptable), below `reject` (poor or non-diagnostic, the images
`medq assess` flags for recall). Severities use the engine's continuous scale (0 none … 3 severe,
bounds at 0.5 / 1.5 / 2.5), and a report's score is the one the engine's reference score would
give those severities, `1 + 4·Π(1 − min(s, 3)/3)` (with the detector's sub-mild estimates of the
other types counting at most as one more mild finding: `medq.assess.detector.findings_score`), so
the verdict follows from the findings.
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


def score_for(values: list[float]) -> float:
    """1–5 score of continuous finding severities: the engine's reference score of them."""
    from medq.data.bench import reference_score

    return reference_score([float(v) for v in values])



@dataclass
class Finding:
    """One quality problem: type, severity, confidence, coarse location and its evidence.

    `severity_value` is the continuous severity (engine scale, 0.5–3.5 for a reported finding);
    `confidence` the detector's probability that the problem is present at mild or worse.
    """

    type: str
    severity: str
    confidence: float
    location: str = "global"
    evidence: dict[str, Any] = field(default_factory=dict)
    severity_value: float = 0.0


@dataclass
class QualityReport:
    """What `medq describe` says about one image (structured findings plus clinical text).

    `score` is the score of the findings (`medq.assess.detector.findings_score`) and `verdict`
    is `verdict_for(score)`;
    `assess_score` is the score `medq assess` gives (its quality model's score and its evidence
    score combined), `model_score` the quality model's own score (as in the Assessment).
    `normal` lists the finding types the text states are absent. `basis` says
    where the findings come from: `detector` (the calibrated evidence detector on the image),
    `detector + finding heads` (a calibration that also reads this model's finding heads) or
    `finding heads` (no image: the model's own findings). `modality_source` says where
    `modality` came from, in the words of the prompts' sources (`medq.assess.prompts.SOURCES`):
    `tags` (the file or its sidecar states it), `values` (read from the pixel values:
    Hounsfield units, a colour picture), `predicted` (the prompt classifier's sure guess,
    `medq.assess.guess`), `user` (`--modality`, or `modality=` in Python) or `default` (`OT`:
    nothing said it); None in a report from a medq that did not record it.
    """

    modality: str
    region: str
    score: float
    verdict: str
    findings: list[Finding]
    text: str
    path: str | None = None
    model: str = ""
    assess_score: float | None = None
    model_score: float | None = None
    normal: list[str] = field(default_factory=list)
    basis: str = "detector"
    lossy_compression: dict[str, Any] | None = None
    """What the file's header states about lossy compression (`Assessment.lossy_compression`)."""
    slice_gaps: dict[str, Any] | None = None
    """How a DICOM series' slices are unevenly spaced (`Assessment.slice_gaps`)."""
    noisy_slices: dict[str, Any] | None = None
    """A volume's slices noisier than those around them (`Assessment.noisy_slices`)."""
    modality_source: str | None = None
    """Where `modality` came from (see the class docstring)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (`path` first and `modality_source` after `modality`, as in
        `medq describe --json`)."""
        data = asdict(self)
        source = data.pop("modality_source")
        return {"path": data.pop("path"), "modality": data.pop("modality"),
                "modality_source": source, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        """The report `to_dict` (or one object of `medq describe --json`) describes, its
        findings as `Finding`s again."""
        findings = [f if isinstance(f, Finding) else Finding(**f)
                    for f in data.get("findings", [])]
        return cls(**{**data, "findings": findings})
