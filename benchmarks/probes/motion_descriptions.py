"""Probe: what `medq restore`'s description says of `medq bench restore`'s MR motion items.

Rebuilds the benchmark's held-out pairs (`restore.benchmark.test_plan`, cached like the
benchmark's), keeps the `mr_motion` items, describes each degraded plane as `medq restore` does
(`Assessor(measures=False)` then `describe.report_from`) and prints its source, motion
amplitude (mm), findings and the findings that open the quality gate (`gate.to_repair`).
Usage:
    python benchmarks/probes/motion_descriptions.py [--per-level 2] [--task mr_motion]
"""

from __future__ import annotations

import argparse


def main() -> None:
    """Describe every degraded item of one task of the restoration benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-level", type=int, default=2)
    parser.add_argument("--task", default="mr_motion")
    args = parser.parse_args()

    from medq.assess.predictor import Assessor
    from medq.data.pairs import build_pairs, pair_arrays
    from medq.describe import report_from
    from medq.image import MedImage
    from medq.restore.benchmark import BENCH_TASKS, test_plan
    from medq.restore.condition import MODALITY_GROUPS
    from medq.restore.gate import to_repair
    from medq.restore.normalise import Scale

    data = build_pairs(test_plan(args.per_level, 12, BENCH_TASKS))
    assessor = Assessor(measures=False)
    for i in range(len(data["shape"])):
        if str(data["task"][i]) != args.task:
            continue
        x, _ = pair_arrays(data, i)
        group = MODALITY_GROUPS[int(data["modality"][i])]
        modality = {"XR": "DX"}.get(group, group)
        image = MedImage(Scale(*data["scale"][i]).inverse(x),
                         tuple(float(v) for v in data["spacing"][i]), modality)
        report = report_from(assessor.assess(image), image)
        found = [(f.type, f.severity, round(f.confidence, 2)) for f in report.findings]
        print(f"{data['source'][i]} level {float(data['level'][i]):.2f}: findings {found}; "
              f"gate opens for {to_repair(report) or 'nothing'}")


if __name__ == "__main__":
    main()
