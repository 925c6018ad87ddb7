"""A quality run's folder: `model.pt` with its record, `metrics.json` and `card.md`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from medq.io.atomic import atomic_write_text
from medq.train.config import TrainConfig


def write_run(out: Path, model: Any, cfg: TrainConfig, record: dict[str, Any]) -> None:
    """Write a quality run's `model.pt` (with its record), `metrics.json` and `card.md`."""
    from medq.train.card import write_card

    out.mkdir(parents=True, exist_ok=True)
    model.save_checkpoint(out / "model.pt", medq=_jsonable(record))
    atomic_write_text(out / "metrics.json", json.dumps(_jsonable(record), indent=2,
                                                      allow_nan=False))
    write_card(out, cfg, record)


def _jsonable(obj: Any) -> Any:
    """Round-trip through JSON: numpy scalars → floats, non-finite numbers → None (null)."""
    return _finite(json.loads(json.dumps(obj, default=float)))


def _finite(obj: Any) -> Any:
    """`obj` with every NaN or ±inf float, at any depth, replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
