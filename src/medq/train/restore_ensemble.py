"""Train a restoration ensemble: one recipe, differently prepared pairs per member, averaged.

`member_pairs` in a `task: restore` config lists, per member, overrides of its `pairs.train` and
`pairs.extra` plans (`{}` = the recipe as written). `medq train` trains each member into
`<output>/member-<k>/` (a complete run with checkpoint, metrics and card), reusing a member folder
that already holds a finished run of the same recipe, then writes the averaged network
(`medq.restore.models.RestoreEnsemble`) to `<output>/model.pt` with a card listing the members
and the held-out check of the ensemble and of each member.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from medq.jsonsafe import plain
from medq.train.config import TrainConfig, config_path

RECIPE_KEYS = ("fingerprint", "args", "train_plan", "extra_plan")
"""Record fields a finished member run must share with the planned one to be reused: every
config field that decides the weights (model, seed, steps, rates, crop, batch, …), the network's
built arguments (its preset's too) and the pair plans' cache keys."""


def member_config(cfg: TrainConfig, k: int) -> TrainConfig:
    """The config of member `k`: the pair plans with its overrides, its own folder."""
    pairs = {name: dict(plan or {}) for name, plan in cfg.pairs.items()}
    for name, changes in cfg.member_pairs[k].items():
        pairs[name] = {**pairs.get(name, {}), **(changes or {})}
    return dataclasses.replace(cfg, pairs=pairs, member_pairs=[],
                               output=str(cfg.output_dir() / f"member-{k}"))


def _plan_key(plan: dict[str, Any] | None) -> str | None:
    """The cache key of a recorded pair plan (fields added later count only when set)."""
    from medq.data.pairs import PairPlan

    if plan is None:
        return None
    fields = {f.name for f in dataclasses.fields(PairPlan)}
    return PairPlan(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in plan.items() if k in fields}).key()


def recipe(record: dict[str, Any]) -> dict[str, Any]:
    """The RECIPE_KEYS values of a run record, its pair plans as their cache keys."""
    out = {k: record.get(k) for k in RECIPE_KEYS}
    out["train_plan"], out["extra_plan"] = (_plan_key(record.get("train_plan")),
                                            _plan_key(record.get("extra_plan")))
    return out


def planned_recipe(cfg: TrainConfig) -> dict[str, Any]:
    """The recipe (`recipe`) a run of `cfg` would record."""
    from medq.restore.models import build_model
    from medq.train.restore_loop import plan_from
    from medq.train.resume import fingerprint

    extra = plan_from(cfg, "extra") if cfg.pairs.get("extra") else None
    planned = {"fingerprint": fingerprint(cfg),
               "args": dict(build_model(cfg.model, **cfg.model_args).args),
               "train_plan": plan_from(cfg, "train").key(),
               "extra_plan": extra.key() if extra else None}
    return plain(planned)  # as a record reads back


def finished_member(cfg: TrainConfig) -> dict[str, Any] | None:
    """The record of a finished run of exactly this member recipe in its folder, else None."""
    from medq.train.ensemble import finished_run

    planned = planned_recipe(cfg)
    return finished_run(cfg.output_dir(), lambda record: recipe(record) == planned)


def train_restore_ensemble(cfg: TrainConfig, log: Any) -> dict[str, Any]:
    """Train (or reuse) every member, then average them into `<output>/model.pt`."""
    from medq.train.ensemble import train_members
    from medq.train.restore_loop import train_restorer

    members = [member_config(cfg, k) for k in range(len(cfg.member_pairs))]
    records, folders = train_members(
        members, [f"{cfg.name}: member {k + 1}/{len(members)}" for k in range(len(members))],
        finished_member, lambda m: train_restorer(m, log), log)
    return assemble(cfg, folders, records, log)


def assemble(cfg: TrainConfig, folders: list[Path], records: list[dict[str, Any]], log: Any
             ) -> dict[str, Any]:
    """Average the members, run the held-out check, write checkpoint, metrics and card."""
    from medq.data.pairs import build_pairs
    from medq.restore.models import RestoreEnsemble, load_restorer, save_checkpoint
    from medq.train.restore_loop import evaluate_pairs, plan_from
    from medq.train.run_files import write_run

    model = RestoreEnsemble([load_restorer(f / "model.pt")[0] for f in folders]).eval()
    test = build_pairs(plan_from(cfg, "eval"), progress=sys.stderr.isatty())
    out = cfg.output_dir()
    out.mkdir(parents=True, exist_ok=True)
    record = {**records[0], "name": cfg.name, "output": str(out),
              "parameters": sum(r["parameters"] for r in records),
              "wall_time_s": round(sum(r["wall_time_s"] for r in records), 1),
              "members": [{"output": str(f), "pairs": cfg.member_pairs[k],
                           "wall_time_s": r["wall_time_s"], "metrics": r["metrics"]}
                          for k, (r, f) in enumerate(zip(records, folders, strict=True))],
              "metrics": evaluate_pairs(model, test, model.conditioning), "history": []}
    record = write_run(out, lambda path, rec: save_checkpoint(model, path, rec), cfg, record,
                       lambda rec: ensemble_card(cfg, rec, records))
    log(f"{cfg.name}: ensemble of {len(folders)} members → {out}")
    return record


def ensemble_card(cfg: TrainConfig, record: dict[str, Any], records: list[dict[str, Any]]
                  ) -> str:
    """The model card of an ensemble: what differs per member, the held-out check of the
    ensemble beside each member's, then each member's own card."""
    from medq.train.card import number
    from medq.train.restore_loop import card_text

    tasks = list(record["metrics"])
    head = "| task | input PSNR | ensemble | " + " | ".join(
        f"member {k}" for k in range(len(records))) + " |"
    rows = [head, "|---" * (3 + len(records)) + "|"]
    for task in tasks:
        m = record["metrics"][task]
        rows.append(f"| {task} | {number(m.get('input'), '.2f')} | "
                    f"{number(m.get('net'), '.2f')} | " + " | ".join(
                        number(r["metrics"].get(task, {}).get("net"), ".2f")
                        for r in records) + " |")
    members = "\n".join(
        f"- member {k}: " + (", ".join(f"`pairs.{plan}.{key}: {value}`"
                                     for plan, changes in over.items()
                                     for key, value in changes.items()) or "the pairs as written")
        for k, over in enumerate(cfg.member_pairs))
    sections = "\n\n".join(
        "## Member " + str(k) + "\n\n" + card_text(member_config(cfg, k), r).split("\n", 1)[1]
        .replace("\n## ", "\n### ") for k, r in enumerate(records))
    return f"""# {cfg.name}

An **ensemble of {len(records)} restoration networks** whose outputs are averaged
(`RestoreEnsemble`), trained by `medq train {config_path(cfg)}`: the same
network and budget, with differently prepared training pairs:
{members}

{record['parameters']} parameters in all, {record['wall_time_s']:.0f} s of training and pair
building summed over the members.

## Held-out check of the ensemble and its members
PSNR in normalised units on the {sum(m['n'] for m in record['metrics'].values())} held-out pairs
(no description given), as in each member's card below. `medq bench restore` has the full
benchmark (HU windows, classical baselines, medq's own descriptions).

{chr(10).join(rows)}

{sections}
"""
