"""Probe: how the shipped quality score answers the engine's noise at rising severity.

For each bundled sample, the score of the clean image and of the same image after the modality's
noise kind at continuous severities 0.2 … 3 (seed 1). A working model falls steadily; a model
already at its floor on the clean image does not move. Usage:
    python benchmarks/probes/score_response.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse

SAMPLES = (("mni_t1", "mr_noise"), ("ct_small", "ct_low_dose"), ("mr_small", "mr_noise"),
           ("pet_brain", "pet_low_count"), ("xr_head", "xr_quantum_noise"))
SEVERITIES = (0.2, 0.45, 1.0, 2.0, 3.0)


def main() -> None:
    """Print one line per sample: the clean score, then the score at each severity."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.data.samples import load_sample
    from medq.degrade import get_spec, simulate

    assessor = Assessor(args.model, measures=False)
    for name, kind in SAMPLES:
        image, spec = load_sample(name), get_spec(kind)
        row = [f"{name:9s} clean {assessor.assess(image).score:.2f}"]
        for value in SEVERITIES:
            degraded, _ = simulate(image, kind, level=spec.level_at(value), seed=1)
            row.append(f"s{value}:{assessor.assess(degraded).score:.2f}")
        print(" ".join(row), flush=True)


if __name__ == "__main__":
    main()
