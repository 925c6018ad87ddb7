"""The optimisation steps shared by the quality model's and the restoration network's training:
AdamW on a warm-up + cosine schedule, gradient clipping, running loss averages, logging, a
progress bar, and the training state saved as it goes (`medq.train.resume`)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from medq.assess.precision import model_device
from medq.train.config import Stage, TrainConfig
from medq.train.resume import Checkpointer


def on_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """`batch` with every tensor moved to `device` (unchanged on the CPU)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _lr(stage: Stage, step: int) -> float:
    """Linear warm-up then cosine decay to 10 % of the stage's learning rate."""
    if step < stage.warmup:
        return stage.lr * (step + 1) / stage.warmup
    t = (step - stage.warmup) / max(1, stage.steps - stage.warmup)
    return stage.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def optimise(model: torch.nn.Module, opt: torch.optim.Optimizer, terms: dict[str, torch.Tensor],
             weights: dict[str, float], grad_clip: float, running: dict[str, float],
             momentum: float) -> None:
    """One optimiser step on the weighted loss terms; updates the running loss averages."""
    loss = sum(weights.get(k, 0.0) * v for k, v in terms.items())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    for k, v in terms.items():
        running[k] = momentum * running.get(k, v.item()) + (1 - momentum) * v.item()


PROGRESS_EVERY_S = 60.0
"""Seconds between a stage's progress lines in the log when stderr is no terminal (a batch job,
`nohup`: no progress bar there), besides the lines every `log_every` steps."""


def run_steps(model: torch.nn.Module, stage: Stage, cfg: TrainConfig, rng: np.random.Generator,
              log: Any, terms_of: Callable[[torch.device], dict[str, torch.Tensor]],
              momentum: float, ck: Checkpointer | None = None, index: int = 0
              ) -> list[dict[str, float]]:
    """The steps of one stage, quality model and restoration network alike: AdamW on the
    stage's learning-rate schedule over the loss terms `terms_of(device)` draws each step (a
    step with none is skipped), running averages logged every `cfg.log_every` steps; returns
    the logged history (and, when stderr is no terminal, a progress line every
    `PROGRESS_EVERY_S`, not in the history). `ck`: saves the training state as it goes (stage
    `index` of the run) and continues a saved one (`medq.train.resume`)."""
    device = model_device(model)
    opt = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=cfg.weight_decay)
    first, running, history = ck.stage_start(index, opt) if ck else (0, {}, [])
    model.train()
    started = last = time.time()
    quiet = not sys.stderr.isatty()
    for step in stage_steps(stage, first):
        for group in opt.param_groups:
            group["lr"] = _lr(stage, step)
        terms = terms_of(device)
        if not terms:
            continue
        optimise(model, opt, terms, stage.losses, cfg.grad_clip, running, momentum)
        logged = (step + 1) % cfg.log_every == 0 or step + 1 == stage.steps
        if logged or (quiet and time.time() - last >= PROGRESS_EVERY_S):
            seconds = round(time.time() - started, 1)
            if logged:
                history.append({"stage": stage.name, "step": step + 1, "seconds": seconds,
                                **running})
            log(f"{stage.name} step {step + 1}/{stage.steps} ({seconds:.0f} s) "
                + " ".join(f"{k}={v:.4f}" for k, v in running.items()))
            last = time.time()
        if ck:
            ck.step_done(index, stage.name, step + 1, model, opt, running, history, rng)
    return history


def stage_steps(stage: Stage, first: int = 0) -> Any:
    """The step numbers `first … stage.steps − 1` of a stage, with a progress bar on a terminal."""
    from rich.progress import track

    return track(range(first, stage.steps), description=f"stage {stage.name}", transient=True,
                 disable=not sys.stderr.isatty(), total=stage.steps, completed=first)


def device_name(device: torch.device) -> str:
    """`cpu`, or `cuda (<GPU name>)`, as logs and model cards show it."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
