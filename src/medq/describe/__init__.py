"""Description stage: an Assessment (+ its image) → a structured `QualityReport` with clinical text.

`report_from(assessment, image)` needs no quality model of its own: findings come from the
calibrated finding detector (`medq.assess.detector`) on the image's evidence features
(`findings`), located coarsely (`location`), scored and phrased (`schema`, `text`); `metrics`
scores descriptions against the engine's ground truth and `bench` runs `medq bench describe`.
The package is callable: `medq.describe(image_path_or_array)` assesses and describes in one step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medq import callable_package
from medq.describe.schema import VERDICTS, Finding, QualityReport, verdict_for

__all__ = ["VERDICTS", "Finding", "QualityReport", "describe", "report_from", "verdict_for"]


def report_from(assessment: Any, image: Any = None) -> QualityReport:
    """The QualityReport of an Assessment (the image, when given, locates the findings): the
    image as a MedImage, a path or a NumPy array, read as the assessment read it; an image of
    another dimension or shape is refused (InvalidParameter). Without the image (an assessment
    of an array has no path to read it from), the findings are the assessment's finding heads
    alone, and the report's `basis` says so."""
    from medq.assess.assessment import Assessment, as_assessed, check_fits
    from medq.describe.report import build_report
    from medq.errors import InvalidParameter
    from medq.image import MedImage, graded_modality
    from medq.io.arrays import as_image, finite_pixels

    if not isinstance(assessment, Assessment):
        raise InvalidParameter(f"report_from takes an Assessment (medq.assess(image)), got "
                               f"{type(assessment).__name__}; medq.describe(image) assesses "
                               "and describes an image in one call")
    if image is not None and not isinstance(image, MedImage):  # read as the assessment read it
        told = (assessment.prompts or {}).get("modality")
        image = as_image(image, modality=graded_modality(told) if told and told != "OT" else None)
        size = tuple(assessment.spacing or ())  # an array states no pixel size: the one it
        if image.source is None and len(size) == len(image.spacing) and size != image.spacing:
            image = image.evolve(spacing=size,  # was assessed at
                                 meta={**image.meta, "spacing_assumed": False})
    if image is not None:
        image = finite_pixels(image)  # NaN or infinite pixels as the assessment read them
        check_fits(assessment, image)
        image = as_assessed(image, assessment)
    return build_report(assessment, image)


def describe(image: Any, model: str | Path = "mediqa-s", *, modality: str | None = None,
             region: str | None = None, spacing: float | Sequence[float] | None = None
             ) -> QualityReport:
    """Assess and describe one image → QualityReport: a MedImage, a path or a NumPy array, as
    `medq.assess` takes them (with the same `modality`, `region` and `spacing` overrides)."""
    from medq.assess import shared_assessor
    from medq.assess.assessment import Assessment
    from medq.errors import InvalidParameter
    from medq.image import graded_modality
    from medq.io.arrays import as_image

    if isinstance(image, Assessment):
        raise InvalidParameter("medq.describe takes the image (a path, an array or a MedImage), "
                               "not its Assessment: medq.describe.report_from(assessment, image) "
                               "describes an assessment")
    modality = graded_modality(modality)  # an alias (XR, PET, MRI) as its DICOM code
    loaded = as_image(image, modality=modality, region=region, spacing=spacing)
    assessor = shared_assessor(str(model), True, modality, describe=True)  # + detector input
    return report_from(assessor.assess(loaded), loaded)


callable_package(__name__, describe)
