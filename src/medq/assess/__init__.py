"""Assessment stage: `medq.assess(image)` → Assessment, plus its parts.

Parts: classical measures (`iqms`, `measures`), body masks (`masks`), salient slices (`slices`),
prompts (`prompts`, `prompt_classifier`), model inputs (`preprocess`), quality models
(`models`, `weights`), the batched `predictor.Assessor` and the `assessment.Assessment` record.
Submodules are imported on demand so that `import medq.assess` stays light. The package itself
is callable: `medq.assess(image_path_or_array)` is `medq.assess.assess(...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from medq import callable_package


@lru_cache(maxsize=4)
def shared_assessor(model: str, measures: bool, modality: str | None,
                    describe: bool = False) -> Any:
    """The Assessor of these settings, loaded once per process (the last four kept)."""
    from medq.assess.predictor import Assessor

    return Assessor(model, measures=measures, modality=modality, describe=describe)


def assess(image: Any, model: str | Path = "mediqa-s", measures: bool = True, *,
           modality: str | None = None, region: str | None = None,
           spacing: float | Sequence[float] | None = None) -> Any:
    """Assess one image → Assessment: a MedImage, a path (file, DICOM series folder) or a NumPy
    array (`(y, x)`, `(z, y, x)` or colour `(y, x, 3)`; `medq.io.from_array`), with a shipped
    model or a checkpoint path. `modality`, `region` and `spacing` (mm) replace what the input
    states (an array states nothing: OT, or CT for Hounsfield values, at 1 mm)."""
    from medq.image import graded_modality
    from medq.io.arrays import as_image

    code = graded_modality(modality)  # an alias (XR, PET, MRI) as its DICOM code
    item = as_image(image, modality=code, region=region, spacing=spacing)
    return shared_assessor(str(model), measures, code).assess(item)


callable_package(__name__, assess)
