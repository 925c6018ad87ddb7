"""Restoration stage: `medq.restore(image)` → RestoreResult (assess, describe, restore, re-assess).

Parts: intensity normalisation (`normalise`), the conditioning vector (`condition`), classical
baselines (`classical`: BM3D, NLM, TV), the restoration networks (`models`), plane-wise
application (`apply`), the gated pipeline (`pipeline`) and the benchmark (`benchmark`).
Submodules are imported on demand; the package itself is callable: `medq.restore(image)` is
`medq.restore.restore(image)`.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def restore(image: Any, method: str = "auto", assessment: Any = None, **options: Any) -> Any:
    """Restore one MedImage (gated by its assessment) → `pipeline.RestoreResult`."""
    from medq.restore.pipeline import restore as run

    return run(image, method, assessment, **options)


def __getattr__(name: str) -> Any:
    if name == "RestoreResult":
        from medq.restore.pipeline import RestoreResult

        return RestoreResult
    raise AttributeError(f"module 'medq.restore' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """Lets `medq.restore(...)` call `restore` while `medq.restore.models` stays a submodule."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return restore(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
