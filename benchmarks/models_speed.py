"""Inference speed of the registered quality models: slices/s at 224², batch 32, on CPU threads.

Usage: python benchmarks/models_speed.py [--threads 2] [--batch 32] [--size 224] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from medq.assess.models import available_models, build_model


def slices_per_second(name: str, batch: int, size: int, repeats: int) -> tuple[float, int]:
    """Best-of-`repeats` eval throughput of model `name` and its parameter count."""
    model = build_model(name).eval()
    x = torch.rand(batch, 3, size, size)
    with torch.inference_mode():
        model(x[:2])  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t0)
    return batch / best, model.n_parameters()


def main() -> None:
    """Print one line per model."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.models or [n for n in available_models() if n not in ("mediqa-tiny",)]
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
          f"{args.size}x{args.size}")
    for name in names:
        rate, params = slices_per_second(name, args.batch, args.size, args.repeats)
        print(f"{name:12s} {params / 1e6:7.2f} M params  {rate:8.1f} slices/s")


if __name__ == "__main__":
    main()
