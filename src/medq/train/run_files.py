"""A run's folder: `model.pt` with its record, `metrics.json`, `card.md` and `config.yaml`, the
config as it ran (every default written out; `medq train RUN/config.yaml` trains it again)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medq.io.atomic import atomic_write_text
from medq.jsonsafe import plain
from medq.train.config import TrainConfig


def write_run(out: Path, save_model: Callable[[Path, dict[str, Any]], Any], cfg: TrainConfig,
              record: dict[str, Any], card: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """Write a run's folder: `model.pt` by `save_model(path, record)`, `metrics.json`,
    `config.yaml` and `card.md` (`card(record)`), the record written JSON-safe
    (`jsonsafe.plain`: a NaN loss is null, never JSON's invalid `NaN`); returns that record, as
    a finished run's reads back."""
    from medq.io.atomic import make_folder

    out = make_folder(out)
    safe = plain(record)
    save_model(out / "model.pt", safe)
    atomic_write_text(out / "metrics.json", json.dumps(safe, indent=2, allow_nan=False))
    write_config(out, cfg, safe)
    atomic_write_text(out / "card.md", card(safe))
    return safe


def quality_run(out: Path, model: Any, cfg: TrainConfig, record: dict[str, Any]) -> None:
    """`write_run` of a quality model (its record inside the checkpoint, `card.card_text`)."""
    from medq.train.card import card_text

    write_run(out, lambda path, rec: model.save_checkpoint(path, medq=rec), cfg, record,
              lambda rec: card_text(cfg, rec))


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
