"""A quality run's folder: `model.pt` with its record, `metrics.json` and `card.md`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medq.io.atomic import atomic_write_text
from medq.jsonsafe import plain
from medq.train.config import TrainConfig


def write_run(out: Path, model: Any, cfg: TrainConfig, record: dict[str, Any]) -> None:
    """Write a quality run's `model.pt` (with its record), `metrics.json` and `card.md`."""
    from medq.train.card import write_card

    out.mkdir(parents=True, exist_ok=True)
    model.save_checkpoint(out / "model.pt", medq=plain(record))
    atomic_write_text(out / "metrics.json", json.dumps(plain(record), indent=2,
                                                      allow_nan=False))
    write_card(out, cfg, record)
