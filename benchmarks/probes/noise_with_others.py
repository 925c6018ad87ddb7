"""Probe: does the finding detector still see noise when a second degradation follows it?

Most of the description benchmark's missed noise findings are on items with two degradations.
For a held-out clean image of each noise kind's source (the MNI-derived test PET, MR and CT
slices) this applies the kind at the moderate boundary (severity 1.5), alone and followed by
blur or low contrast at their own moderate boundary (as `degraded_item` may combine them), and
prints the detector's noise probability (`medq describe`'s calibration; the threshold in
brackets) and the severities of the findings it reports. About 30 s. Usage:
    python benchmarks/probes/noise_with_others.py [--seeds 3]
"""

from __future__ import annotations

import argparse

import numpy as np

KINDS = {"mni_pt_test": "pet_low_count", "mni_mr_test": "mr_noise", "mni_ct_test": "ct_low_dose"}
"""Held-out source → its noise kind."""

FOLLOWERS = (None, "blur", "low_contrast")
"""What follows the noise: nothing, or a second degradation at its moderate boundary."""


def noise_probability(assessor, image, detector) -> tuple[float, float, list[str]]:
    """(noise probability, its threshold, reported findings) of one image."""
    from medq.assess.detector import _read, decide
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.describe.findings import detector_inputs

    assessment = assessor.assess(image)
    x, _ = detector_inputs(assessment, image, detector)
    prob, sev, allowed, thresholds = _read(detector, x[None], image.modality)
    decision = decide(prob, sev, allowed, thresholds, detector.normal_fraction)
    j = FINDING_TYPES.index("noise")
    return (float(prob[j]), float(thresholds[j]),
            [FINDING_TYPES[k] for k in sorted(decision.reported)])


def main() -> None:
    """Print the noise probability per source, follower and seed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    from medq.assess.detector import load_detector
    from medq.assess.predictor import Assessor
    from medq.data.sources import source_named
    from medq.degrade import get_spec, simulate

    assessor, detector = Assessor(describe=True), load_detector()
    for name, kind in KINDS.items():
        print(f"\n{name}: {kind} at severity 1.5 ({get_spec(kind).level_at(1.5):.4g} "
              f"{get_spec(kind).unit})")
        for follower in FOLLOWERS:
            cells = []
            for seed in range(args.seeds):
                image = source_named(name, "test").draw(np.random.default_rng(seed), "2d")
                image = simulate(image, kind, level=get_spec(kind).level_at(1.5), seed=seed)[0]
                if follower:
                    level = get_spec(follower).level_at(1.5)
                    image = simulate(image, follower, level=level, seed=seed)[0]
                p, threshold, found = noise_probability(assessor, image, detector)
                cells.append(f"{p:5.3f} [{threshold:.3f}] {'+'.join(found) or '-'}")
            print(f"  then {follower or 'nothing':13s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
