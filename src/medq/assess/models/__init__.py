"""Learned quality models behind one registry: MedIQA presets, CNNIQA and WaDIQaM.

Every model takes `[B, 1|3, H, W]` images in [0, 1] plus optional prompts and returns a
`ModelOutput` (score in 1…5, features, optional patch scores/weights, physics, findings);
`forward_volume` scores a stack of slices. Importing this package imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medq.errors import InvalidParameter

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a factory `(**config) -> IQAModel` under `name`."""

    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return wrap


def available_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_REGISTRY)


def build_model(name: str, **config: Any) -> Any:
    """Build the model `name`; keyword arguments override fields of its config."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise InvalidParameter(f"unknown model {name!r}; expected one of "
                               f"{available_models()}") from None
    return factory(**config)


from medq.assess.models import cnniqa, ensemble, mediqa, wadiqam  # noqa: E402  (they register)
from medq.assess.models.blocks import (  # noqa: E402
    FINDING_TYPES,
    SEVERITIES,
    IQAModel,
    ModelOutput,
    VolumeOutput,
    interpret_findings,
)


def checkpoint_class(name: str) -> Any:
    """The model class a checkpoint's `"model"` entry names; ModelError when unknown."""
    from medq.errors import ModelError

    classes = {c.__name__: c for c in (mediqa.MedIQA, cnniqa.CNNIQA, wadiqam.WaDIQaM,
                                       ensemble.SeedEnsemble)}
    if name not in classes:
        raise ModelError(f"unknown model class {name!r} in checkpoint; expected one of "
                         f"{sorted(classes)}")
    return classes[name]


__all__ = [
    "FINDING_TYPES", "SEVERITIES", "IQAModel", "ModelOutput", "VolumeOutput", "available_models",
    "build_model", "checkpoint_class", "cnniqa", "ensemble", "interpret_findings", "mediqa",
    "register_model", "wadiqam",
]
