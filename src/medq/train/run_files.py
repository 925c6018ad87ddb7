"""A run's folder: `model.pt` with its record, `metrics.json`, `card.md` and `config.yaml`, the
config as it ran (every default written out; `medq train RUN/config.yaml` trains it again)."""

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
    write_config(out, cfg, record)
    write_card(out, cfg, record)


def write_config(out: Path, cfg: TrainConfig, record: dict[str, Any]) -> Path:
    """Write `out/config.yaml`: the config as this run trained by it, every default written out,
    so the run can be trained again after its own config file changed (or when the config was
    changed in Python); its first lines name the command, with the `--scores`/`--tagged` data
    the run also read."""
    import dataclasses

    import yaml

    from medq.train.card import train_command

    data = dataclasses.asdict(cfg)
    data.pop("config_file", None)
    text = (f"# The config run {cfg.name} was trained by (read from "
            f"{cfg.config_file or 'Python'}), every default written out; its command:\n"
            f"#   {train_command(cfg, record)}\n"
            + yaml.safe_dump(plain(data), sort_keys=False))
    return atomic_write_text(out / "config.yaml", text)
