"""Restoration networks: registry, checkpoints, and loading shipped weights by name.

A checkpoint is `{"model": <class name>, "args": {...}, "state_dict": ..., "medq": <record>}`,
or for an ensemble (`RestoreEnsemble`) `{"model": "RestoreEnsemble", "members": [<checkpoint>,
…], "medq": <record>}`. Shipped ones live in `medq/weights/<name>.pt` (float16, loaded back as
float32) with their model card `<name>.md`. Any run folder's `model.pt` written by `medq train`
works as well.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medq.assess.weights import check_family, checkpoint_error, read_checkpoint, why
from medq.errors import ModelError
from medq.restore.models.ensemble import RestoreEnsemble
from medq.restore.models.unet import RestoreUNet

MODELS: dict[str, type[nn.Module]] = {"RestoreUNet": RestoreUNet}
"""Restoration model classes by checkpoint name."""

PRESETS: dict[str, dict[str, Any]] = {
    "restore-unet": {},
    "restore-unet-tiny": {"channels": (8, 16), "bottleneck": 1, "embed": 16, "prior_width": 8},
}
"""Named sizes usable as `model:` in a training config (`model_args` override them)."""

DEFAULT_RESTORER = "restore-s"
"""Shipped network used by `medq restore` when none is named."""


def build_model(name: str, **args: Any) -> RestoreUNet:
    """A fresh restoration network of preset `name` (with `args` overriding the preset)."""
    if name not in PRESETS:
        raise ModelError(f"unknown restoration model {name!r}; choose from {sorted(PRESETS)}")
    return RestoreUNet(**{**PRESETS[name], **args})


def _member_dict(model: nn.Module) -> dict[str, Any]:
    """The checkpoint entries (class, args, weights) of one network."""
    return {"model": type(model).__name__, "args": dict(model.args),
            "state_dict": model.state_dict()}


def save_checkpoint(model: nn.Module, path: str | Path, record: dict[str, Any]) -> None:
    """Write a checkpoint (architecture args + weights + training record) to `path`
    (atomically)."""
    from medq.io.atomic import atomic_path

    if isinstance(model, RestoreEnsemble):
        entries = {"model": "RestoreEnsemble",
                   "members": [_member_dict(m) for m in model.members], "medq": record}
    else:
        entries = {**_member_dict(model), "medq": record}
    with atomic_path(path) as tmp:
        torch.save(entries, tmp)


def _from_dict(ckpt: dict[str, Any]) -> nn.Module:
    """A network (or ensemble) from checkpoint entries, weights as float32."""
    if "members" in ckpt:
        return RestoreEnsemble([_from_dict(m) for m in ckpt["members"]])
    model = MODELS[ckpt["model"]](**ckpt["args"])
    model.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return model


def resolve(name_or_path: str | Path) -> Path:
    """Checkpoint path of a shipped restorer name, an existing file or a run folder;
    InvalidParameter (bad input) otherwise."""
    from medq.assess.weights import resolve as resolve_checkpoint

    return resolve_checkpoint(name_or_path, "restoration network")


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> tuple[nn.Module, dict[str, Any]]:
    """The network and record of checkpoint `path` as of its modification time `mtime`."""
    ckpt = read_checkpoint(path, "medq restoration checkpoint")
    check_family(ckpt, "restoration network", path)
    try:
        model = _from_dict(ckpt)
    except Exception as e:  # noqa: BLE001 — whatever the rebuild trips on
        raise checkpoint_error(f"not a medq restoration checkpoint ({why(e)})", path) from e
    return model.eval(), dict(ckpt.get("medq", {}))


def load_restorer(name_or_path: str | Path = DEFAULT_RESTORER
                  ) -> tuple[nn.Module, dict[str, Any]]:
    """(network in eval mode, training record) of a shipped name or a checkpoint (cached)."""
    path = resolve(name_or_path)
    return _load(str(path), path.stat().st_mtime)
