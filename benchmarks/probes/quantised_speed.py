"""Probe: would int8 dynamic quantisation of the Linear layers speed up a `mediqa-s` member on a
CPU without native bfloat16? Times one freshly built member (random weights: the speed does not
depend on them) in float32 and with `torch.ao.quantization.quantize_dynamic` on 1 and 2 threads,
batch 16 at 224², best of 3. Usage:
    python benchmarks/probes/quantised_speed.py
"""

from __future__ import annotations

import time
import warnings

import torch


def main() -> None:
    """Print slices/s of float32 and int8-Linear members on one and two threads."""
    from medq.assess.models import build_model

    warnings.filterwarnings("ignore")  # quantize_dynamic's deprecation notice
    torch.manual_seed(0)
    model = build_model("mediqa-s").eval()
    quantised = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                       dtype=torch.qint8)
    x = torch.rand(16, 3, 224, 224)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            for name, member in (("float32", model), ("int8 Linear", quantised)):
                member(x[:2])
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    member(x)
                    best = min(best, time.perf_counter() - start)
                print(f"{threads} thread{'s' if threads > 1 else ''}, {name}: "
                      f"{len(x) / best:.1f} slices/s")


if __name__ == "__main__":
    main()
