"""Training speed of the quality models: optimiser steps/s of `medq train`'s own step (the
score, finding and physics losses, AdamW, gradient clipping) on each device PyTorch sees.

Usage: python benchmarks/train_speed.py [--models mediqa-s mediqa-b] [--devices cpu cuda]
                                       [--batch 16] [--steps 30]
Writes benchmarks/results/train_speed.json. On the CPU only `mediqa-s` runs by default
(`mediqa-b`, the paper-size variant, is for GPUs); the batches are random tensors of the real
shapes, so the numbers are the model's arithmetic alone, not the data pipeline's.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from medq.assess.models import build_model
from medq.assess.models.blocks import FINDING_TYPES
from medq.assess.precision import model_precision, resolve_precision
from medq.assess.prompts import PROMPT_DIM
from medq.data.bench import KINDS
from medq.train.losses import losses
from medq.train.steps import optimise
from medq.workers import set_threads

RESULTS = Path(__file__).parent / "results"
WEIGHTS = {"score": 1.0, "findings": 0.3, "physics": 0.1}
"""The loss weights of the shipped recipe's score stage."""


def random_batch(batch: int, size: int, n_measures: int, device: torch.device
                 ) -> dict[str, torch.Tensor]:
    """A training batch of the real shapes (random values), on `device`."""
    g = torch.Generator().manual_seed(0)
    out = {"x": torch.rand(batch, 3, size, size, generator=g),
           "m": torch.randn(batch, n_measures, generator=g),
           "prompt": torch.zeros(batch, PROMPT_DIM),
           "score": 1 + 4 * torch.rand(batch, generator=g),
           "physics": torch.rand(batch, len(KINDS), generator=g),
           "severity": torch.randint(0, 4, (batch, len(FINDING_TYPES)), generator=g),
           "labelled": torch.ones(batch, dtype=torch.bool)}
    return {k: v.to(device) for k, v in out.items()}


def steps_per_second(name: str, device: torch.device, batch: int, steps: int,
                     precision: str) -> dict[str, float | int | str]:
    """Timed optimiser steps of model `name` (after three warm-up steps) on `device`."""
    model = build_model(name, n_physics=len(KINDS), n_measures=43).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = random_batch(batch, model.config.image_size, 43, device)
    running: dict[str, float] = {}

    def step() -> None:
        with model_precision(precision, device.type):
            terms = losses(model, data, WEIGHTS, True)
        optimise(model, opt, terms, WEIGHTS, 1.0, running, 0.9)

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = steps / (time.perf_counter() - t0)
    return {"model": name, "device": str(device), "batch": batch, "steps": steps,
            "precision": resolve_precision(precision, device.type),
            "parameters": model.n_parameters(), "steps_per_s": round(rate, 2),
            "images_per_s": round(rate * batch, 1),
            "loss_finite": bool(np.isfinite(list(running.values())).all())}


def main() -> None:
    """Print one line per model and device; write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="*", default=["mediqa-s", "mediqa-b"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--devices", nargs="*", default=["cpu", "cuda"],
                    help="among cpu and cuda; cuda is left out where PyTorch sees no GPU")
    args = ap.parse_args()
    threads = set_threads()
    devices = [torch.device(d) for d in args.devices
               if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    rows = []
    for device in devices:
        for name in args.models:
            if device.type == "cpu" and name == "mediqa-b":
                continue  # hours per recipe on a few cores: the GPU variant
            steps = args.steps if device.type == "cuda" else max(3, args.steps // 3)
            row = steps_per_second(name, device, args.batch, steps, args.precision)
            if device.type == "cuda":
                row["gpu"] = torch.cuda.get_device_name(device)
            rows.append(row)
            print(f"{name:10s} {row['device']:5s} {row['precision']:9s} "
                  f"{row['parameters'] / 1e6:7.2f} M params  {row['steps_per_s']:8.2f} steps/s "
                  f"({row['images_per_s']:.0f} images/s, batch {args.batch})", flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = {"torch": torch.__version__, "cpu_threads": threads, "machine": platform.machine(),
           "rows": rows}
    (RESULTS / "train_speed.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
