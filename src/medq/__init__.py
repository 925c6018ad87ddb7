"""medq: assess, describe and restore medical images (CT, MRI, PET, radiographs, fundus).

The public API is imported lazily so that `import medq` stays fast: `medq.load`, `medq.save`,
`medq.simulate`, `medq.assess`, `medq.describe` and `medq.restore`.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

__version__ = "0.1.0"

from medq.errors import InputError, MedqError, ModelError  # noqa: E402
from medq.image import MedImage  # noqa: E402

_LAZY = {"load": "medq.io", "save": "medq.io", "simulate": "medq.degrade"}
_SUBPACKAGES = ("assess", "describe", "restore")
_MODULES = ("io",)
"""Packages reachable as `medq.<name>` without an import of their own (medq's own messages
name `medq.io.from_array`)."""

__all__ = ["InputError", "MedImage", "MedqError", "ModelError", "__version__", *_LAZY,
           *_SUBPACKAGES]


class _CallablePackage(types.ModuleType):
    """A stage package that is also its entry point: `medq.assess(image)` calls
    `medq.assess.assess` while `medq.assess.iqms` stays a submodule."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__dict__["__entry__"](*args, **kwargs)


def callable_package(name: str, entry: Callable[..., Any]) -> None:
    """Make the package `name` callable as `entry`, with `entry`'s signature (for
    `inspect.signature` and notebooks' completion) and its docstring leading `help()`."""
    module = sys.modules[name]
    module.__class__ = _CallablePackage
    module.__entry__ = entry
    module.__signature__ = inspect.signature(entry)
    call = f"{name}{module.__signature__}"
    module.__doc__ = f"{call}\n\n{inspect.getdoc(entry)}\n\n{module.__doc__ or ''}"


def __dir__() -> list[str]:
    """The public names (`dir(medq)` in a notebook)."""
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES or name in _MODULES:  # callable packages: medq.assess(image)
        import importlib

        return importlib.import_module(f"medq.{name}")
    raise AttributeError(f"module 'medq' has no attribute {name!r}")
