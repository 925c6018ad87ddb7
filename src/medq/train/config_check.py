"""Checks of a training config's values, each error naming the key path (`stages[1].lr`).

`typed` holds every field of a config section to its declared type (a whole number for `int`, a
number for `float` — a numeric string too, since YAML 1.1 reads `3e-4` as text —, true/false
for `bool`, text for `str`, a mapping or list where one is declared); `check_ranges` holds the
values to what training can use (steps ≥ 0, learning rates and gradient clipping > 0, loss
weights ≥ 0 with one > 0 among the task's losses in every stage with steps, an `output` that
names only `{name}`, …); `check_sections` builds what the config describes that would otherwise
fail only after the data is built: the model with its `model_args` (on PyTorch's meta device,
no memory) and a restoration config's pair plans.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

from medq.errors import InvalidParameter

QUALITY_LOSSES = ("physics", "score", "findings", "rank", "acquisition")
"""Loss terms of a quality model's stages."""

RESTORE_LOSSES = ("l1", "ssim", "prior")
"""Loss terms of a restoration network's stages (`task: restore`)."""

PAIR_SECTIONS = ("train", "extra", "eval")
"""The pair plans a restoration config may set (`pairs:`)."""


def _bad(name: str, what: str, value: Any) -> InvalidParameter:
    return InvalidParameter(f"{name}: {what}, got {value!r}")


def _number(value: Any, name: str) -> float:
    """A finite number (a numeric string accepted: YAML 1.1 reads `3e-4` as text)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _bad(name, "must be a number", value) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(name, "must be a number", value)
    return float(value)


def _whole(value: Any, name: str) -> int:
    """A whole number (an integral number or numeric string accepted)."""
    number = _number(value, name) if not isinstance(value, bool) else None
    if number is None or number != int(number):
        raise _bad(name, "must be a whole number", value)
    return int(number)


def coerce(value: Any, hint: Any, name: str) -> Any:
    """`value` held to the type `hint` (InvalidParameter naming `name` otherwise)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], name)
    if hint is bool:
        if not isinstance(value, bool):
            raise _bad(name, "must be true or false", value)
        return value
    if hint is int:
        return _whole(value, name)
    if hint is float:
        return _number(value, name)
    if hint is str:
        if not isinstance(value, str):
            raise _bad(name, "must be text", value)
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise _bad(name, "must be a mapping", value)
        return {k: coerce(v, args[1], f"{name}.{k}") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _bad(name, "must be a list", value)
        item = args[0] if args else Any
        out = [coerce(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    return value


def typed(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """`data`'s fields held to their types in dataclass `cls` (`where`: the key path prefix)."""
    hints = typing.get_type_hints(cls)
    return {k: coerce(v, hints[k], f"{where}{k}") for k, v in data.items()}


def _at_least(value: float | None, low: float, name: str, strict: bool = False) -> None:
    if value is not None and (value <= low if strict else value < low):
        raise _bad(name, f"must be {'>' if strict else '≥'} {low:g}", value)


def trains_none_of(stage: Any, losses: tuple[str, ...]) -> bool:
    """Whether a stage with steps weights none of `losses` (it would train nothing of them)."""
    return stage.steps > 0 and not any(stage.losses.get(k) for k in losses)


def check_stages(cfg: Any) -> None:
    """Every stage: steps ≥ 0, lr > 0, warm-up ≥ 0, loss names of the task with weights ≥ 0, and
    a stage with steps weights one of them (it would train nothing)."""
    from medq.train.config import LOSS_NAMES

    if cfg.task in ("quality", "restore") and not cfg.stages:
        raise InvalidParameter("stages: a config needs at least one stage (name, steps, lr, "
                               "losses)")
    task_losses = RESTORE_LOSSES if cfg.task == "restore" else QUALITY_LOSSES
    for i, stage in enumerate(cfg.stages):
        at = f"stages[{i}]"
        _at_least(stage.steps, 0, f"{at}.steps")
        _at_least(stage.lr, 0, f"{at}.lr", strict=True)
        _at_least(stage.warmup, 0, f"{at}.warmup")
        for loss, weight in stage.losses.items():
            if loss not in LOSS_NAMES:
                raise InvalidParameter(f"{at}.losses: unknown loss {loss!r}; a {cfg.task} "
                                       f"stage weights some of {', '.join(task_losses)}")
            if weight and loss not in task_losses and cfg.task in ("quality", "restore"):
                raise InvalidParameter(f"{at}.losses: {loss!r} is no {cfg.task} loss; a "
                                       f"{cfg.task} stage weights some of "
                                       f"{', '.join(task_losses)}")
            _at_least(weight, 0, f"{at}.losses.{loss}")
        if trains_none_of(stage, task_losses):
            raise InvalidParameter(f"{at} ({stage.name!r}) has {stage.steps} steps but weights "
                                   f"none of the {cfg.task} losses ({', '.join(task_losses)}): "
                                   "it would train nothing")
    n_physics = (getattr(cfg, "model_args", None) or {}).get("n_physics")
    if n_physics is not None and any(s.steps and s.losses.get("physics") for s in cfg.stages):
        from medq.data.bench import KINDS

        if n_physics != len(KINDS):
            raise _bad("model_args.n_physics", f"must be {len(KINDS)}, one output per "
                       f"degradation kind of the engine ({', '.join(KINDS)}), for the physics "
                       "loss", n_physics)
    if cfg.task in ("quality", "restore") and not any(s.steps for s in cfg.stages) \
            and not getattr(cfg, "init", None):
        raise InvalidParameter("stages: no stage has steps, so the run would save an untrained "
                               "model as finished (give steps, or init: a checkpoint to "
                               "evaluate)")


def check_ranges(cfg: Any) -> None:
    """The config's numbers within what training can use, and its output template."""
    check_stages(cfg)
    for key, low, strict in (("seed", 0, False), ("grad_clip", 0, True), ("batch_size", 1, False),
                             ("ensemble", 1, False), ("rank_margin", 0, False),
                             ("checkpoint_every_s", 0, False),
                             ("weight_decay", 0, False), ("slice_steps", 0, False),
                             ("log_every", 1, False), ("ladders", 0, False),
                             ("ladder_batch", 1, False), ("train_crop", 16, False)):
        _at_least(getattr(cfg, key), low, key, strict)
    plan = cfg.bench
    for key, low in (("size", 16), ("train_2d", 0), ("train_3d", 0), ("test_2d_per_source", 0),
                     ("test_3d_per_source", 0), ("seed", 0), ("n_slices", 1),
                     ("evidence_size", 32)):
        _at_least(getattr(plan, key), low, f"bench.{key}")
    for key in ("clean_fraction", "pair_fraction", "fine_pixels", "noisy_base"):
        value = getattr(plan, key)
        if not 0.0 <= value <= 1.0:
            raise _bad(f"bench.{key}", "must lie in 0–1", value)
    try:
        cfg.output.format(name=cfg.name)
    except (KeyError, IndexError, ValueError):
        raise _bad("output", "may name the run as {name} and no other placeholder (write a "
                   "literal brace twice)", cfg.output) from None


def check_sections(cfg: Any) -> None:
    """Build what the config names before any data work: the model with its `model_args` (on
    the meta device) and, for a restoration config, its pair plans (each member's too)."""
    import torch

    from medq.assess.evidence import ordered_row_extras
    from medq.errors import ModelError

    try:
        ordered_row_extras(cfg.bench.evidence_extras)
    except ValueError as e:
        raise InvalidParameter(f"bench.evidence_extras: {e}") from None
    if cfg.task != "restore" and cfg.pairs:  # member_pairs: refused by `config_from_dict`
        raise InvalidParameter(f"pairs is for task: restore; this config trains task: "
                               f"{cfg.task}")
    if cfg.task == "prompts":
        _check_prompt_args(cfg)
        return
    if cfg.task == "restore":
        from medq.restore.models import build_model
        _check_pairs(cfg)
    else:
        from medq.assess.models import build_model
    try:
        with torch.device("meta"):
            build_model(cfg.model, **cfg.model_args)
    except (ModelError, TypeError, ValueError) as e:
        reason = getattr(e, "reason", None) or str(e)
        raise InvalidParameter(f"model_args {cfg.model_args} do not build {cfg.model}: "
                               f"{reason}") from None


def _check_pairs(cfg: Any) -> None:
    """A restoration config's `pairs` (and every member's overrides) make pair plans."""
    import dataclasses

    from medq.train.restore_ensemble import member_config
    from medq.train.restore_loop import plan_from

    unknown = sorted(set(cfg.pairs) - set(PAIR_SECTIONS))
    if unknown:
        raise InvalidParameter(f"pairs: unknown plan(s) {', '.join(unknown)}; a restoration "
                               f"config sets some of {', '.join(PAIR_SECTIONS)}")
    members = [member_config(cfg, k) for k in range(len(cfg.member_pairs))] or [cfg]
    for k, member in enumerate(members):
        for which in PAIR_SECTIONS:
            where = f"member_pairs[{k}].{which}" if cfg.member_pairs else f"pairs.{which}"
            if not isinstance(member.pairs.get(which) or {}, dict):
                raise _bad(where, "must be a mapping", member.pairs.get(which))
            try:
                plan = plan_from(dataclasses.replace(member, output="."), which)
            except (TypeError, ValueError) as e:
                raise InvalidParameter(f"{where}: {e}") from None
            _check_pair_ranges(plan, where)


PAIR_COUNTS = ("per_task", "clean", "seed")
"""Pair plan fields that count (whole numbers ≥ 0)."""
PAIR_SHARES = ("combo_fraction", "fine_ct", "soft", "resampling", "ringing", "coarse_mr")
"""Pair plan fields that are shares of the pairs (0 … 1)."""


def _check_pair_ranges(plan: Any, where: str) -> None:
    """InvalidParameter naming `where.<field>` for a pair plan value training cannot use: a
    negative count (it trained on the clean pairs alone, and the card repeated "-6 pairs"), a
    share outside 0 … 1, a largest side under 16 px."""
    for name in PAIR_COUNTS:
        value = getattr(plan, name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _bad(f"{where}.{name}", "must be a whole number ≥ 0", value)
    for name in PAIR_SHARES:
        value = getattr(plan, name, 0.0)
        if not 0.0 <= float(value) <= 1.0:
            raise _bad(f"{where}.{name}", "must lie in 0 … 1", value)
    if getattr(plan, "max_side", 16) < 16:
        raise _bad(f"{where}.max_side", "must be at least 16 (pixels)", plan.max_side)


def _check_prompt_args(cfg: Any) -> None:
    """The prompt classifier's config: its one model and the arguments its training takes."""
    import inspect

    from medq.assess.prompt_classifier import train_classifier

    if cfg.model != "prompt-classifier":
        raise InvalidParameter(f"unknown model {cfg.model!r} for task 'prompts'; expected "
                               "prompt-classifier")
    takes = sorted(set(inspect.signature(train_classifier).parameters) - {"seed", "log"})
    unknown = sorted(set(cfg.model_args) - set(takes))
    if unknown:
        raise InvalidParameter(f"model_args: unknown {', '.join(unknown)}; the prompt "
                               f"classifier takes some of {', '.join(takes)}")
    for key, value in cfg.model_args.items():
        _at_least(_whole(value, f"model_args.{key}"), 1, f"model_args.{key}")
