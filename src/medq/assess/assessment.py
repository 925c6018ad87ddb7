"""The Assessment: score, grade, findings, measures, prompts, slices, model (DESIGN, Assessment).

The score is the mean of two estimates of the physics-derived reference score (`combined_score`):
the quality model's (`model_score`) and the **evidence score** (`evidence_score`: the reference
score of every finding type's severity as the calibrated detector, `medq.assess.detector`, reads
it from the image's evidence rows — computed on the same ≤256-px views the model reads, or, for
planes over `evidence.LARGE_PLANE` px, by the description's calibration on the full planes
too, and for noise alone partly or wholly there where its views average noise away
(`detector.assessed_evidence`) —, each weighted by the detector's confidence:
`detector.confidence_score`). The two err differently — each
ranks some held-out sources better than the other — and on the held-out test split their mean
ranks quality better than either (`medq bench iqa`, row "medq assess"). Both parts are kept in
the Assessment. A model fine-tuned on a user's own ratings (`medq train --scores`; its
checkpoint's `score_scale` is "user") gives the score alone: its scale is the raters', not the
reference score the evidence estimates.
Grades follow the 1–5 score: ≥ 4.5 excellent, ≥ 3.5 good, ≥ 2.5 acceptable, ≥ 1.5 poor, else
non-diagnostic; `recall` is true for poor and non-diagnostic images. Findings are the ones
behind the evidence score (`findings_from`): a type is reported when the detector's presence
probability reaches its calibrated threshold, with the severity named from its continuous
estimate, the probability as confidence and, as evidence, that estimate plus the classical
measures that bear on the finding (`medq describe` reads the same detector on the full-resolution
planes and may refine them). Only finding types the engine can produce for the image's
modality are reported (`finding_types_for`: the modality its file states, or the one the prompt
classifier is sure of, `as_assessed`; an image of unknown modality gets the generic types only).
`suspected` lists the doubtful types that pull the evidence score down as much as a mild finding
or more without being reported (`suspected_from`), so a score below "good" with no finding still
says why. `finding_scores` keeps the raw head outputs of every type (presence probability and
expected severity), for callers that calibrate their own thresholds (`medq.describe`).
`lossy_compression` repeats what the file's header states about lossy compression (a DICOM
flagged lossy, e.g. a JPEG 2000 CT at 339:1): a fact about the file, not read from the pixels,
so it changes neither the score nor the findings. `slice_gaps` is the same kind of fact about a
DICOM series whose slices are unevenly spaced (`medq.io.dicom.slice_gaps`: missing slices, the
largest step), None for an evenly spaced one. `noisy_slices` is read from the pixels of every
slice of a volume: the slices noisier than those around them, which the salient slices may miss
(`medq.assess.noisy_slices`); it too is stated beside the score, not in it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from medq.assess.models.blocks import FINDING_TYPES
from medq.errors import InvalidParameter
from medq.severity import GRADES  # noqa: F401 (the grades of `grade_for`, imported from here too)

EVIDENCE_MEASURES: dict[str, tuple[str, ...]] = {
    "noise": ("noise_sigma", "noise_sigma_flat", "snr"),
    "blur": ("sharpness", "blur"),
    "low_resolution": ("sharpness", "laplacian_variance"),
    "aliasing": ("ghosting_ratio",),
    "motion": ("ghosting_ratio", "efc"),
    "ghosting": ("ghosting_ratio",),
    "spike": ("spike_contrast", "qi_1"),
    "bias_field": ("inu_range", "snr"),
    "streak": ("streak_index",),
    "low_contrast": ("dynamic_range", "fber"),
    "illumination": ("dynamic_range",),
}
"""Classical measures quoted as evidence for each finding type."""


EVIDENCE_WEIGHT = 0.5
"""Weight of the evidence score in the assessment's score (the model's is the rest): a plain
mean, fixed beforehand rather than fitted on the test split."""


USER_SCALE = "user"
"""`score_scale` of a checkpoint fine-tuned on its users' own ratings (`medq train --scores`): the
evidence score estimates the physics-derived reference score, another scale, so it is reported
beside the model's but not mixed into the score."""


def combined_score(model_score: float, evidence: float, scale: str = "reference") -> float:
    """The assessment's 1–5 score: `EVIDENCE_WEIGHT`-weighted mean of the model's and the
    evidence score; the model's alone when it was fine-tuned on user ratings (`USER_SCALE`)."""
    if scale == USER_SCALE:
        return float(model_score)
    return (1.0 - EVIDENCE_WEIGHT) * float(model_score) + EVIDENCE_WEIGHT * float(evidence)


def grade_for(score: float) -> str:
    """Grade name of a 1–5 score."""
    return next(name for bound, name in GRADES if score >= bound)


def finding_types_for(modality: str) -> tuple[str, ...]:
    """Finding types the engine can produce for a modality (radiographs share CR/DX).

    An unknown modality (`OT`: neither the file, a sidecar, `--modality`, its values nor a sure
    prompt classifier say what the image is) gets the generic acquisition effects only, the
    types the engine makes in two or more of CT, MR, PET, radiographs and photographs (noise,
    blur, low resolution, low contrast): a CT streak or an MR ghost is not claimed for an image
    nobody knows to be CT or MR.
    """
    from medq.assess.evidence import MODALITY_GROUPS, modality_group
    from medq.degrade import available, get_spec

    if modality == "OT":
        spans: dict[str, set[str]] = {}
        for kind in available():
            spec = get_spec(kind)
            spans.setdefault(spec.finding, set()).update(
                g for g in map(modality_group, spec.modalities) if g in MODALITY_GROUPS)
        return tuple(f for f in FINDING_TYPES if len(spans.get(f, ())) >= 2)
    found = {get_spec(k).finding for k in available({"CR": "DX"}.get(modality, modality))}
    return tuple(f for f in FINDING_TYPES if f in found)


def clean_number(value: Any) -> float | None:
    """A JSON-safe float: NaN and ±inf become None."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def findings_from(evidence: Any, measures: dict[str, float | None]) -> list[dict[str, Any]]:
    """Findings list (worst first) of the evidence detector's decision (`detector.Evidence`):
    type, severity, the presence probability as confidence and, as evidence, the detector's
    continuous severity plus the classical measures that bear on that finding."""
    from medq.assess.detector import severity_for

    out = []
    for j, raw in evidence.decision.reported.items():
        kind, value = FINDING_TYPES[j], round(raw, 2)  # named as shown, as the description does
        ev: dict[str, Any] = {"severity_value": value}
        ev.update({m: measures[m] for m in EVIDENCE_MEASURES.get(kind, ())
                   if measures.get(m) is not None})
        out.append({"type": kind, "severity": severity_for(value),
                    "confidence": round(float(evidence.prob[j]), 3), "evidence": ev})
    return sorted(out, key=lambda f: (-f["evidence"]["severity_value"], -f["confidence"]))


def suspected_from(evidence: Any) -> list[dict[str, Any]]:
    """The doubtful types that lower the evidence score as much as a mild finding or more: not
    reported (presence below its threshold), but a confidence-weighted severity of at least mild
    (`detector.confidence_weighted`). Type, severity named from that weighted value, and the
    presence probability as confidence; most probable first."""
    from medq.assess.detector import SEVERITY_BOUNDS, severity_for

    out = [{"type": FINDING_TYPES[j], "severity": severity_for(float(v)),
            "confidence": round(float(evidence.prob[j]), 3)}
           for j, v in enumerate(evidence.weighted)
           if j not in evidence.decision.reported and v >= SEVERITY_BOUNDS[0]]
    return sorted(out, key=lambda f: -f["confidence"])


def finding_scores_from(presence: np.ndarray, expected: np.ndarray
                        ) -> dict[str, dict[str, float]]:
    """Raw finding-head outputs per type: `{type: {"presence", "expected_severity"}}`."""
    return {kind: {"presence": round(float(presence[i]), 4),
                   "expected_severity": round(float(expected[i]), 4)}
            for i, kind in enumerate(FINDING_TYPES)}


@dataclass
class Assessment:
    """What `medq assess` says about one image (DESIGN, Assessment)."""

    score: float
    grade: str
    recall: bool
    findings: list[dict[str, Any]]
    measures: dict[str, float | None]
    prompts: dict[str, Any]
    slices: list[dict[str, Any]] | None
    model: str
    path: str | None = None
    modality: str = "OT"
    shape: list[int] = field(default_factory=list)
    finding_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    model_score: float | None = None
    evidence_score: float | None = None
    suspected: list[dict[str, Any]] = field(default_factory=list)
    lossy_compression: dict[str, Any] | None = None
    """How the file's header says its pixels were lossy compressed (`medq.io.dicom_tags.
    lossy_compression`: ratio, method, transfer syntax), None when it does not say so."""
    slice_gaps: dict[str, Any] | None = None
    """How a DICOM series' slices are unevenly spaced (`medq.io.dicom.slice_gaps`: usual
    spacing, smallest and largest step, gaps, missing slices), None when they are even."""
    noisy_slices: dict[str, Any] | None = None
    """A volume's slices noisier than the slices around them (`medq.assess.noisy_slices`:
    slices, an empty list when none is, runs, the largest ratio, how many were compared, and
    for a DICOM series their InstanceNumbers and files), read on every slice with the classical
    measures; None when they were not compared: 2D images, `--no-measures`, fewer than 8
    slices with anatomy. Like `slice_gaps` it changes neither the score nor the findings,
    which come from the salient slices."""
    nonfinite_fraction: float | None = None
    """The share of pixels that were NaN or infinite in the file (read as 0, or as its smallest
    value where it goes below 0: `medq.io.arrays.finite_pixels`), None when every pixel was a
    number."""
    acquisition: dict[str, dict[str, Any]] | None = None
    """A model with an acquisition head (`medq train --tagged`): per target of the image's
    modality, the head's estimate from the pixels beside what the header states
    (`medq.assess.acquisition.report`); None for models without one (the shipped ones)."""
    detector_features: list[float] | None = field(default=None, repr=False, compare=False)
    """The description's full-plane detector features of the image, when the Assessor took
    them for a description (`Assessor(describe=True)`); not part of the JSON output."""

    spacing: list[float] | None = field(default=None, repr=False, compare=False)
    """The pixel size (mm) the image was assessed at, so that `medq.describe.report_from`
    reads an array given again at the same size; not part of the JSON output."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (`path` first, as in `medq assess --json`; without the detector
        features and the spacing, internal hand-overs to the description)."""
        data = asdict(self)
        data.pop("detector_features")
        data.pop("spacing")
        return {"path": data.pop("path"), **data}


def prompted_source(assessment: Any) -> str:
    """Where the assessment's modality prompt came from (`tags`, `values`, `predicted`, `user`,
    `default`: `medq.assess.prompts.Prompts.source`)."""
    sources = (assessment.prompts or {}).get("source") or {}
    return str(sources.get("modality", "default"))


def as_assessed(image: Any, assessment: Assessment) -> Any:
    """The image (a MedImage) as `assessment` read it: a modality its file does not state but
    the assessment took from the prompt classifier is given to it by the same rule
    (`medq.assess.guess.with_guessed_modality`), so its description and restoration read it as
    that modality too."""
    from medq.assess.guess import with_guessed_modality

    if prompted_source(assessment) != "predicted":
        return image
    return with_guessed_modality(image, (assessment.prompts or {}).get("modality"))


def check_fits(assessment: Assessment, image: Any) -> None:
    """InvalidParameter (naming the image) unless `assessment` can be the Assessment of `image`
    (a MedImage): not of another dimension (a 2D assessment cannot gate a volume), nor of
    another shape."""
    said = (assessment.prompts or {}).get("dimension")
    own = "3d" if image.is_volume else "2d"
    if said in ("2d", "3d") and said != own:
        raise InvalidParameter(f"the assessment is of a {said.upper()} image, this image is "
                               f"{own.upper()}: assess this image", image.source)
    if assessment.shape and tuple(assessment.shape) != tuple(image.shape):
        raise InvalidParameter(f"the assessment is of an image of shape "
                               f"{tuple(assessment.shape)}, this image is {tuple(image.shape)}: "
                               "assess this image", image.source)
