"""Description stage: an Assessment (+ its image) → a structured `QualityReport` with clinical text.

`report_from(assessment, image)` needs no quality model of its own: findings come from the
calibrated finding detector on the image's evidence features (`findings`, `detector`,
`features`), located coarsely (`location`), scored and phrased (`schema`, `text`); `metrics`
scores descriptions against the engine's ground truth and `bench` runs `medq bench describe`.
The package is callable: `medq.describe(image_or_path)` assesses and describes in one step.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

from medq.describe.schema import VERDICTS, Finding, QualityReport, verdict_for

__all__ = ["VERDICTS", "Finding", "QualityReport", "describe", "report_from", "verdict_for"]


def report_from(assessment: Any, image: Any = None) -> QualityReport:
    """The QualityReport of an Assessment (the image, when given, locates the findings)."""
    from medq.describe.report import build_report

    return build_report(assessment, image)


def describe(image: Any, model: str | Path = "mediqa-s") -> QualityReport:
    """Assess and describe one MedImage or path with a shipped model (or checkpoint path)."""
    from medq.assess import assess
    from medq.image import MedImage

    assessment = assess(image, model=model, measures=True)
    return report_from(assessment, image if isinstance(image, MedImage) else None)


class _CallableModule(types.ModuleType):
    """Lets `medq.describe(...)` call `describe` while `medq.describe.text` stays a submodule."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return describe(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
