"""Assessment stage: `medq.assess(image)` → Assessment, plus its parts.

Parts: classical measures (`iqms`, `measures`), body masks (`masks`), salient slices (`slices`),
prompts (`prompts`, `prompt_classifier`), model inputs (`preprocess`), quality models
(`models`, `weights`), the batched `predictor.Assessor` and the `assessment.Assessment` record.
Submodules are imported on demand so that `import medq.assess` stays light. The package itself
is callable: `medq.assess(image_or_path)` is `medq.assess.assess(...)`.
"""

from __future__ import annotations

import sys
import types
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=2)
def _assessor(model: str, measures: bool) -> Any:
    from medq.assess.predictor import Assessor

    return Assessor(model, measures=measures)


def assess(image: Any, model: str | Path = "mediqa-s", measures: bool = True) -> Any:
    """Assess one MedImage or path with a shipped model (or checkpoint path) → Assessment."""
    return _assessor(str(model), measures).assess(image)


class _CallableModule(types.ModuleType):
    """Lets `medq.assess(...)` call `assess` while `medq.assess.iqms` stays a submodule."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return assess(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
