"""Where and in what arithmetic the models run: CPU or CUDA GPU, float32 or bfloat16.

On CPUs with native bfloat16 dot products (AVX512-BF16, AMX) the models' linear layers,
convolutions and attention run about 1.5 times as fast under `torch.autocast` in bfloat16, and the
1–5 scores move by about 0.01 (`benchmarks/assess_speed.py` reports both precisions side by
side). Elsewhere bfloat16 is emulated and slower, so `"auto"` keeps float32 there. `medq assess`
defaults to `auto`; training runs in float32 unless its config says `precision: auto` (the
weights and the optimiser stay float32 either way: only the forward products are bfloat16).

Training can run on a CUDA GPU (`device:` in a training config, `medq train --device`): `auto`
takes the GPU when PyTorch sees one, and there `precision: auto` is bfloat16 where the GPU has
it natively. Shipped weights are saved on the CPU either way, so they load anywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from medq.errors import InvalidParameter

PRECISIONS = ("auto", "float32", "bfloat16")
"""Accepted values of `precision` (`medq assess --precision`)."""

DEVICES = ("auto", "cpu", "cuda")
"""Accepted values of a training config's `device` (`medq train --device`)."""


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device for `device`: `auto` is the first CUDA GPU when PyTorch sees one, else
    the CPU; `cuda` without a visible GPU is an InvalidParameter (not a silent CPU run)."""
    if device not in DEVICES:
        raise InvalidParameter(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InvalidParameter("device 'cuda' asked for, but PyTorch sees no CUDA GPU here "
                               "(use auto or cpu: --device on the command line, device: in "
                               "a training config)")
    return torch.device("cuda")


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's parameters live on (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def native_bfloat16() -> bool:
    """True when this CPU computes bfloat16 matrix products natively (oneDNN's own check)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def resolve_precision(precision: str = "auto", device: str = "cpu") -> str:
    """`float32` or `bfloat16`: `auto` is bfloat16 only where the device (`cpu` or `cuda`) has
    it natively."""
    if precision not in PRECISIONS:
        raise InvalidParameter(f"precision must be one of {', '.join(PRECISIONS)}, "
                               f"got {precision!r}")
    if precision == "auto":
        native = (torch.cuda.is_available() and torch.cuda.is_bf16_supported()
                  if device == "cuda" else native_bfloat16())
        return "bfloat16" if native else "float32"
    return precision


@contextlib.contextmanager
def model_precision(precision: str, device: str = "cpu") -> Iterator[None]:
    """Run the block's model calls on `device` (`cpu` or `cuda`) in `precision` (auto,
    float32 or bfloat16)."""
    if resolve_precision(precision, device) == "bfloat16":
        with torch.autocast(device, dtype=torch.bfloat16):
            yield
    else:
        yield
