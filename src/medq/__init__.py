"""medq: assess, describe, restore and segment medical images (CT, MRI, PET, radiographs, fundus).

The public API is imported lazily so that `import medq` stays fast: `medq.load`, `medq.save`,
`medq.simulate`, `medq.assess` (and, as the stages land, describe/restore/segment).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from medq.errors import InputError, MedqError, ModelError  # noqa: E402
from medq.image import MedImage  # noqa: E402

_LAZY = {"load": "medq.io", "save": "medq.io", "simulate": "medq.degrade"}
_SUBPACKAGES = ("assess", "describe", "restore")

__all__ = ["InputError", "MedImage", "MedqError", "ModelError", "__version__", *_LAZY,
           *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:  # callable packages: medq.assess(image)
        import importlib

        return importlib.import_module(f"medq.{name}")
    raise AttributeError(f"module 'medq' has no attribute {name!r}")
