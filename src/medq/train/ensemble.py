"""Train a seed ensemble: the same recipe with seeds `seed … seed + n − 1`, averaged.

`ensemble: 3` in a training config makes `medq train` train each member into
`<output>/seed-<k>/` (a complete run with its own checkpoint, metrics and card), then write the
averaged model (`medq.assess.models.ensemble.SeedEnsemble`) to `<output>/model.pt` with a card
that lists every member's test metrics beside the ensemble's. A member folder that already holds
a finished run of the same recipe (every config field that decides the weights,
`resume.fingerprint`, and the training arrays' `resume.data_key`) is reused, so an
interrupted ensemble resumes where it stopped, and a changed learning rate, batch or scores file
trains anew. Fine-tuning (`init:`) from an ensemble checkpoint
fine-tunes each member from its own weights.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medq.assess.models.ensemble import SeedEnsemble, member_from_dict
from medq.assess.precision import resolve_device
from medq.train.config import TrainConfig

RECIPE_KEYS = ("fingerprint", "bench_key", "data_key")
"""Record fields a finished member run must share with the planned one to be reused: every
config field that decides the weights (model, seed, steps, rates, `init`, …), the benchmark's
cache key (its generator's version beside the plan) and the training arrays' key."""


def member_config(cfg: TrainConfig, k: int, split_init: bool = False) -> TrainConfig:
    """The config of member `k`: seed `cfg.seed + k`, its own folder, one model (fine-tuned
    from member k of `cfg.init` when `split_init`)."""
    init = f"{cfg.init}#{k}" if split_init else cfg.init
    return dataclasses.replace(cfg, seed=cfg.seed + k, ensemble=1, init=init,
                               output=str(cfg.output_dir() / f"seed-{cfg.seed + k}"))


def planned_record(cfg: TrainConfig, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """The RECIPE_KEYS values a run of `cfg` on the training arrays `data` (its plan's split,
    or a `--scores` set) writes into its record."""
    from medq.train.resume import data_key, fingerprint

    return {"fingerprint": fingerprint(cfg), "bench_key": cfg.bench.key(),
            "data_key": data_key(data)}


def finished_run(folder: Path, matches: Callable[[dict[str, Any]], bool]
                 ) -> dict[str, Any] | None:
    """The record of a finished run in `folder` (model.pt beside metrics.json) for which
    `matches(record)` holds, else None: how ensembles reuse members trained earlier."""
    try:
        record = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return record if (folder / "model.pt").is_file() and matches(record) else None


def finished_member(cfg: TrainConfig, data: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """The record of a finished run of exactly this member recipe on `data` in its folder, else
    None."""
    planned = planned_record(cfg, data)
    return finished_run(cfg.output_dir(),
                        lambda record: all(record.get(k) == planned[k] for k in RECIPE_KEYS))


def train_ensemble(cfg: TrainConfig, train_one: Any, data: dict[str, np.ndarray] | None,
                   test: dict[str, np.ndarray] | None, log: Any, split_init: bool = False,
                   tagged: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or reuse) every member with `train_one(cfg, data, test, log)`, then average
    (`tagged`: the images with stated acquisitions `train_one` trains on beside `data`)."""
    from medq.data.bench import concat
    from medq.train.loop import build_split

    data = data if data is not None else build_split(cfg, "train", log)
    test = test if test is not None else build_split(cfg, "test", log)
    trained_on = concat(data, tagged["train"]) if tagged else data  # what a member's key covers
    members = [member_config(cfg, k, split_init) for k in range(cfg.ensemble)]
    records, folders = train_members(
        members, [f"{cfg.name}: member {k + 1}/{cfg.ensemble} (seed {m.seed})"
                  for k, m in enumerate(members)],
        lambda m: finished_member(m, trained_on), lambda m: train_one(m, data, test, log), log)
    return assemble(cfg, folders, records, test, log, tagged)


def train_members(members: list[TrainConfig], labels: list[str],
                  finished: Callable[[TrainConfig], dict[str, Any] | None],
                  train_one: Callable[[TrainConfig], dict[str, Any]], log: Any
                  ) -> tuple[list[dict[str, Any]], list[Path]]:
    """Train every member of an ensemble, or reuse one `finished` finds done in its folder (a
    run stopped after some members goes on from the next); their records and folders."""
    records, folders = [], []
    for member, label in zip(members, labels, strict=True):
        record = finished(member)
        if record is None:
            log(label)
            record = train_one(member)
        else:
            log(f"{label} reused from {member.output_dir()}")
        records.append(record)
        folders.append(member.output_dir())
    return records, folders


def assemble(cfg: TrainConfig, folders: list[Path], records: list[dict[str, Any]],
             test: dict[str, np.ndarray], log: Any, tagged: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """Average the members' checkpoints, evaluate on `test`, write checkpoint, metrics, card."""
    from medq.train.card import number
    from medq.train.evaluate import evaluate, predict
    from medq.train.loop import srcc_summary
    from medq.train.run_files import quality_run

    members = [member_from_dict(torch.load(f / "model.pt", map_location="cpu",
                                           weights_only=True)) for f in folders]
    model = SeedEnsemble(members).to(resolve_device(cfg.device))
    metrics = evaluate(predict(model, test, cfg.use_prompts), test)
    model.to("cpu")
    out = cfg.output_dir()
    record = {**records[0], "name": cfg.name, "output": str(out), "seed": cfg.seed,
              "ensemble_seeds": [r["seed"] for r in records],
              "wall_time_s": round(sum(r["wall_time_s"] for r in records), 1),
              "members": [{"seed": r["seed"], "output": str(f), "wall_time_s": r["wall_time_s"],
                           "metrics": r["metrics"]} for r, f in zip(records, folders, strict=True)],
              "metrics": metrics, "history": []}
    if tagged:
        from medq.train.acquisition import held_out_metrics

        record["tagged"] = {**records[0]["tagged"], **tagged["summary"],  # as loaded this time
                            "metrics": held_out_metrics(model, tagged["test"], cfg.use_prompts)}
    quality_run(out, model, cfg, record)
    log(f"{cfg.name}: ensemble of {len(members)} seeds, {srcc_summary(metrics['overall'])} "
        "(members' SRCC: " + ", ".join(number(r["metrics"]["overall"]["srcc"]) for r in records)
        + f") → {out}")
    return record
