"""Arithmetic precision of the quality models: bfloat16 matrix products where the CPU has them.

On CPUs with native bfloat16 dot products (AVX512-BF16, AMX) the models' linear layers,
convolutions and attention run about twice as fast under `torch.autocast` in bfloat16, and the
1–5 scores move by about 0.01 (`benchmarks/assess_speed.py` reports both precisions side by
side). Elsewhere bfloat16 is emulated and slower, so `"auto"` keeps float32 there. `medq assess`
defaults to `auto`; training runs in float32 unless its config says `precision: auto` (the
weights and the optimiser stay float32 either way: only the forward products are bfloat16).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from medq.errors import InvalidParameter

PRECISIONS = ("auto", "float32", "bfloat16")
"""Accepted values of `precision` (`medq assess --precision`)."""


def native_bfloat16() -> bool:
    """True when this CPU computes bfloat16 matrix products natively (oneDNN's own check)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def resolve_precision(precision: str = "auto") -> str:
    """`float32` or `bfloat16`: `auto` is bfloat16 only where the CPU has it natively."""
    if precision not in PRECISIONS:
        raise InvalidParameter(f"precision must be one of {', '.join(PRECISIONS)}, "
                               f"got {precision!r}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


@contextlib.contextmanager
def model_precision(precision: str) -> Iterator[None]:
    """Run the block's model calls in `precision` (auto, float32 or bfloat16)."""
    if resolve_precision(precision) == "bfloat16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield
