"""`medq train`: physics pretraining → score/finding fine-tuning, then slice weights.

Stages come from the config: each names its loss weights among `physics` (MSE on the
normalised log levels of the engine's records), `score` (MSE on the 1–5 score) and `findings`
(BCE on finding presence + CORAL BCE on ordinal severity). AdamW with linear warm-up then
cosine decay, gradient clipping. A final step fits the 3D slice-weight layer on frozen slice
features of the training volumes (`Q = Σ w̄_i q_i`, MSE on the volume score). The held-out test
split is scored at the end; checkpoint, metrics and model card go to the output folder.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medq.assess.assessment import USER_SCALE
from medq.assess.models import build_model
from medq.assess.models.blocks import IQAModel
from medq.assess.precision import model_device, model_precision, resolve_device
from medq.data import bench
from medq.data.items import LADDER_RUNGS
from medq.errors import InvalidParameter
from medq.io.atomic import atomic_path
from medq.train.config import Stage, TrainConfig
from medq.train.evaluate import evaluate, predict
from medq.train.losses import losses, rank_loss, stage_items
from medq.train.resume import Checkpointer, data_key, fingerprint
from medq.train.run_files import quality_run, write_run
from medq.train.steps import device_name, on_device, run_steps
from medq.workers import set_threads


def slice_pool(data: dict[str, np.ndarray], items: np.ndarray | None = None) -> np.ndarray:
    """`[(item, row of x)]` pairs of every stored slice of `items` (default all): 2D items and
    each valid 3D slice."""
    chosen = range(len(data["score"])) if items is None else np.flatnonzero(items)
    pairs = [(int(i), int(data["offset"][i]) + k) for i in chosen
             for k in range(int(data["n_valid"][i]))]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _batch(data: dict[str, np.ndarray], pairs: np.ndarray, rng: np.random.Generator,
           crop: int | None) -> dict[str, torch.Tensor]:
    """One augmented training batch (random flips; random crop for patch baselines)."""
    x = data["x"][pairs[:, 1]].astype(np.float32)
    flip = rng.random(len(x)) < 0.5
    x[flip] = x[flip, :, :, ::-1]
    if crop:
        s = x.shape[-1]
        y0, x0 = rng.integers(0, s - crop + 1, size=2)
        x = x[:, :, y0:y0 + crop, x0:x0 + crop]
    items = pairs[:, 0]
    m = bench.slice_measures(data, pairs[:, 1])
    return {"x": torch.from_numpy(np.ascontiguousarray(x)),
            **({"m": torch.from_numpy(m)} if m is not None else {}),
            "prompt": torch.from_numpy(data["prompt"][items]),
            "score": torch.from_numpy(data["score"][items]),
            "physics": torch.from_numpy(data["physics"][items]),
            "severity": torch.from_numpy(data["severity"][items]),
            "labelled": torch.from_numpy(data.get("labelled", np.ones(len(data["score"]),
                                                                      bool))[items]),
            **{k: torch.from_numpy(data[k][items]) for k in bench.OPTIONAL_KEYS if k in data}}


def _ladder_rows(ladders: dict[str, np.ndarray], n: int, rng: np.random.Generator
                 ) -> np.ndarray:
    """`[(item, row)]` of every rung of `n` ladders drawn at random, ladder by ladder."""
    rungs = LADDER_RUNGS + 1
    items = (rng.integers(0, len(ladders["ladder"]) // rungs, n)[:, None] * rungs
             + np.arange(rungs)).ravel()
    return np.stack([items, ladders["offset"][items]], axis=1)


def run_stage(model: IQAModel, data: dict[str, np.ndarray], stage: Stage, cfg: TrainConfig,
              rng: np.random.Generator, log: Any, ladders: dict[str, np.ndarray] | None = None,
              ck: Checkpointer | None = None, index: int = 0) -> list[dict[str, float]]:
    """Train all parameters for `stage.steps` steps (the `rank` loss on `ladders`); returns
    the logged loss history (`run_steps`)."""
    pool = slice_pool(data, stage_items(data, stage.losses))

    def terms_of(device: torch.device) -> dict[str, torch.Tensor]:
        batch = on_device(_batch(data, pool[rng.integers(0, len(pool), cfg.batch_size)], rng,
                                 cfg.train_crop), device)
        with model_precision(cfg.precision, device.type):
            terms = losses(model, batch, stage.losses, cfg.use_prompts)
            if stage.losses.get("rank") and ladders is not None:
                rows = _ladder_rows(ladders, cfg.ladder_batch, rng)
                rungs = on_device(_batch(ladders, rows, rng, cfg.train_crop), device)
                terms["rank"] = rank_loss(model, rungs, LADDER_RUNGS + 1, cfg.rank_margin,
                                          cfg.use_prompts)
        return terms

    return run_steps(model, stage, cfg, rng, log, terms_of, 0.9, ck, index)


@torch.no_grad()
def _volume_features(model: IQAModel, data: dict[str, np.ndarray], use_prompts: bool
                     ) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(slice features, slice scores, volume target) of every 3D item, model frozen."""
    model.eval()
    found, device = [], model_device(model)
    scored = data.get("scored", np.ones(len(data["score"]), bool))
    for i in np.flatnonzero((data["dim"] == "3d") & scored):
        x = torch.from_numpy(bench.item_slices(data, i)).to(device)
        p = torch.from_numpy(data["prompt"][i]).to(device) if use_prompts else None
        o, k = int(data["offset"][i]), int(data["n_valid"][i])
        out = model.run(x, p, bench.slice_measures(data, np.arange(o, o + k)))
        found.append((out.features, out.score, float(data["score"][i])))
    return found


def fit_slice_weights(model: IQAModel, data: dict[str, np.ndarray], cfg: TrainConfig,
                      rng: np.random.Generator) -> float | None:
    """Fit the slice-weight layer on frozen features of the training volumes; final loss."""
    volumes = _volume_features(model, data, cfg.use_prompts)
    if not volumes or cfg.slice_steps <= 0:
        return None
    opt = torch.optim.Adam(model.slice_head.parameters(), lr=1e-3)
    model.slice_head.train()
    loss = torch.tensor(0.0)
    for _ in range(cfg.slice_steps):
        pick = rng.integers(0, len(volumes), min(16, len(volumes)))
        loss = torch.stack([(model.slice_head(volumes[j][0], volumes[j][1])[0]
                             - volumes[j][2]) ** 2 for j in pick]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return loss.item()


def _initial_model(cfg: TrainConfig) -> IQAModel:
    """A fresh model from the registry, or `cfg.init`'s checkpoint (a path or a shipped name;
    `NAME#k` is member k of a seed ensemble)."""
    if not cfg.init:
        return build_model(cfg.model, **cfg.model_args)
    from medq.assess.weights import load_weights

    name, _, member = cfg.init.partition("#")
    model, record = load_weights(name)
    if hasattr(model, "members"):
        if not member:
            raise InvalidParameter(f"init {name!r} is a seed ensemble: fine-tune its members")
        model = model.members[int(member)]
    model = copy.deepcopy(model)
    model.match_physics_targets(record.get("physics_targets"), bench.KINDS)
    return model


def check_init(cfg: TrainConfig) -> Any:
    """`cfg.init`'s model (None without one), checked before any data is built: a member `#k`
    only of a seed ensemble and within its members, and the architecture `cfg.model` names
    (a CNNIQA checkpoint under `model: mediqa-tiny` trained CNNIQA and was carded otherwise)."""
    if not cfg.init:
        return None
    from medq.assess.weights import load_weights

    name, hashed, member = cfg.init.partition("#")
    model, record = load_weights(name)
    members = getattr(model, "members", None)
    if hashed and members is None:
        raise InvalidParameter(f"init: {name!r} is one model, not a seed ensemble: drop "
                               f"'#{member}'", cfg.config_file or None)
    if hashed and not (member.isdigit() and int(member) < len(members)):
        raise InvalidParameter(f"init: {name!r} has {len(members)} members (#0 … "
                               f"#{len(members) - 1}), not #{member}", cfg.config_file or None)
    trained = record.get("model")  # the registry's architecture name
    if trained and trained != cfg.model:
        raise InvalidParameter(f"init: {name!r} is a {trained} checkpoint, but the config's "
                               f"model is {cfg.model}; name the same architecture",
                               cfg.config_file or None)
    return model


def ensemble_size(cfg: TrainConfig) -> tuple[int, bool]:
    """(members to train, whether `cfg.init` is a seed ensemble whose members seed them)."""
    model = check_init(cfg)
    if model is None or "#" in cfg.init:
        return cfg.ensemble, False
    members = len(getattr(model, "members", ()))
    if members and cfg.ensemble not in (1, members):
        raise InvalidParameter(f"init {cfg.init!r} has {members} members but the config asks "
                               f"for ensemble: {cfg.ensemble}")
    return max(cfg.ensemble, members), bool(members)


def train(cfg: TrainConfig, data: dict[str, np.ndarray] | None = None,
          test: dict[str, np.ndarray] | None = None, log: Any = None,
          scores: dict[str, Any] | None = None,
          tagged: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every stage of `cfg`, fit slice weights, evaluate, write checkpoint + card
    (`scores`: what `medq.train.scores.describe` says of a `--scores` set handed over;
    `tagged`: `{"train", "test", "summary"}` of `acquisition.load_tagged`, images whose
    headers state their acquisition, trained on beside `data`)."""
    log = log or (lambda msg: print(f"medq train: {msg}", file=sys.stderr, flush=True))
    if cfg.task == "prompts":
        return train_prompt_classifier(cfg, log)
    if cfg.task == "restore":
        from medq.train.restore_ensemble import train_restore_ensemble
        from medq.train.restore_loop import train_restorer

        return (train_restore_ensemble if cfg.member_pairs else train_restorer)(cfg, log)
    n_members, split_init = ensemble_size(cfg)
    if n_members > 1:
        from medq.train.ensemble import train_ensemble

        cfg = dataclasses.replace(cfg, ensemble=n_members)
        return train_ensemble(cfg, functools.partial(train, scores=scores, tagged=tagged),
                              data, test, log, split_init, tagged)
    threads = set_threads()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    building = time.time()
    built = data is None  # else handed over (a --scores set): the resume state is keyed by it
    data = data if data is not None else build_split(cfg, "train", log)
    test = test if test is not None else build_split(cfg, "test", log)
    started = time.time()  # the wall time is the training's; a first build's is its own
    if tagged:
        data = bench.concat(data, tagged["train"])
    log(f"{cfg.name}: {len(data['score'])} training items, {len(test['score'])} test items, "
        f"{threads} threads, on {device_name(device)}")
    if (cfg.output_dir() / "model.pt").exists():
        log(f"{cfg.name}: {cfg.output_dir()} holds a finished run: its model.pt, card.md and "
            "metrics.json are replaced when this run ends (give -o another folder to keep it)")
    model = _initial_model(cfg)
    if tagged:
        from medq.assess.acquisition import TARGETS

        model.add_acquisition_head(len(TARGETS))
    if model.uses_measures and not cfg.init:
        n = model.config.n_measures
        if "m" not in data or data["m"].shape[1] != n:
            got = data["m"].shape[1] if "m" in data else 0
            raise InvalidParameter(f"{cfg.model} takes {n} measures per slice but the training "
                                   f"data has {got} (medq.assess.evidence.FEATURE_NAMES)")
        model.measures.fit(data["m"])
    ladders = bench.build_ladders(cfg.bench, cfg.ladders) if cfg.ladders else None
    ck = Checkpointer(cfg, log, None if built and not tagged else data)
    ck.restore(model, rng)
    model.to(device)  # after the builds: their worker processes fork from this one
    history = ck.run_stages(cfg.stages, lambda index, stage: run_stage(
        model, data, stage, cfg, rng, log, ladders, ck, index))
    slice_loss = fit_slice_weights(model, data, cfg, rng)
    wall = time.time() - started + ck.elapsed_before
    metrics = evaluate(predict(model, test, cfg.use_prompts), test)
    if tagged:
        from medq.train.acquisition import held_out_metrics  # TARGETS: imported above

        tagged_record = {**tagged["summary"], "targets": list(TARGETS),
                         "metrics": held_out_metrics(model, tagged["test"], cfg.use_prompts)}
    model.to("cpu")  # checkpoints load anywhere
    out = cfg.output_dir()
    record = {"name": cfg.name, "model": cfg.model, "seed": cfg.seed, "threads": threads,
              "device": device_name(device),
              "bench_key": cfg.bench.key(), "bench_plan": dataclasses.asdict(cfg.bench),
              "output": str(cfg.output_dir()),
              "wall_time_s": round(wall, 1), "build_time_s": round(started - building, 1),
              "steps": {s.name: s.steps for s in cfg.stages},
              "slice_steps": cfg.slice_steps, "slice_loss": slice_loss,
              "train_items": int(len(data["score"])), "test_items": int(len(test["score"])),
              "use_prompts": cfg.use_prompts, "init": cfg.init,
              "fingerprint": fingerprint(cfg), "data_key": data_key(data),
              "model_args": model_args(model, cfg),
              "physics_targets": list(bench.KINDS),
              "image_size": int(data["x"].shape[-1]), "metrics": metrics, "history": history,
              "resumed": ck.resumed,
              **({"scores": scores, "score_scale": USER_SCALE} if scores else {}),
              **({"tagged": tagged_record} if tagged else {})}
    quality_run(out, model, cfg, record)
    ck.done()
    log(f"{cfg.name}: done in {wall:.0f} s; {srcc_summary(metrics['overall'])} → {out}")
    return record


def model_args(model: Any, cfg: TrainConfig) -> dict[str, Any]:
    """The sizes a run's model has, as its card states them: the config's `model_args`, and the
    physics and measure inputs of the model itself (from `init:`, those of the starting weights,
    which a fine-tuning config does not restate)."""
    sizes = getattr(model, "config", None)
    found = {k: getattr(sizes, k) for k in ("n_physics", "n_measures") if hasattr(sizes, k)}
    if getattr(sizes, "n_acquisition", 0):
        found["n_acquisition"] = sizes.n_acquisition
    return {**cfg.model_args, **found}


def build_split(cfg: TrainConfig, split: str, log: Any) -> dict[str, np.ndarray]:
    """The benchmark split of `cfg`'s plan (`bench.build`, with the progress bar `medq bench
    iqa` shows), announced first: built on a cold cache, it takes long."""
    log(f"{split} benchmark (plan {cfg.bench.key()}): read from the cache, or built now "
        "(the first build takes a while; cached for later runs)")
    return bench.build(cfg.bench, split)


def srcc_summary(m: dict[str, Any]) -> str:
    """`test SRCC 0.812`, or why it is not computed (with the RMSE where that is defined)."""
    from medq.train.card import number

    if number(m.get("srcc")) != "–":
        return f"test SRCC {number(m['srcc'])}"
    rmse = number(m.get("rmse_raw"))
    tail = f"; RMSE {rmse} (no logistic map)" if rmse != "–" else ""
    return f"test SRCC not computed: {m.get('not_computed', 'undefined')}{tail}"


def train_prompt_classifier(cfg: TrainConfig, log: Any) -> dict[str, Any]:
    """Train the prompt classifier (`task: prompts`); `model_args` go to `train_classifier`."""
    from medq.assess.prompt_classifier import train_classifier
    from medq.train.card import prompt_card_text

    set_threads()
    started = time.time()
    net, record = train_classifier(seed=cfg.seed, log=log, **cfg.model_args)
    record.update(name=cfg.name, model="PromptNet", wall_time_s=round(time.time() - started, 1))
    out = cfg.output_dir()

    def save(path: Path, rec: dict[str, Any]) -> None:
        with atomic_path(path) as tmp:
            torch.save({"model": "PromptNet", "state_dict": net.state_dict(), "medq": rec}, tmp)

    write_run(out, save, cfg, record, lambda rec: prompt_card_text(cfg, rec, net))
    log(f"{cfg.name}: modality accuracy {record['test_modality_accuracy']:.3f} → {out}")
    return record
