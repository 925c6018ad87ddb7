"""Probe: is the ghosting a clean real MR shows a ghost, or signal just outside the body?

`ghosting_ratio` compares the background inside the object's phase-encode band with the rest of
the background, outside the body dilated by `margin` px (3 in the evidence features). Signal
that hugs the body — ringing at its edge, a coil's brighter noise floor nearby — falls in the
band too and fades as the margin grows; a ghost, a displaced copy of the object, does not. This
prints the ratio per phase-encode axis at growing margins for the held-out real MR images
clean, with TorchIO ghosts (`benchmarks/independent.py`, rung 2) and with MONAI Rician noise
(rung 3), on the plane the evidence features read (`evidence.read_plane`). Usage:
    python benchmarks/probes/ghost_margin.py [--margins 3,6,10,15,20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from independent import independent_ladders  # noqa: E402


def main() -> None:
    """Print the ghosting ratio at each margin, per image, version and phase-encode axis."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--margins", default="3,6,10,15,20")
    args = parser.parse_args()
    from medq.assess.artifacts import ghosting_ratio
    from medq.assess.evidence import read_plane
    from medq.assess.masks import body_and_anatomy
    from medq.train.evaluate import held_out_images

    margins = [int(m) for m in args.margins.split(",")]
    mr = {n: im for n, im in held_out_images().items() if im.modality == "MR"}
    versions = {}
    for name, kind, ladder in independent_ladders(mr):
        versions.setdefault(f"{name} clean", ladder[0])
        if kind == "mr_ghosting":
            versions[f"{name} TorchIO ghosts (rung 2)"] = ladder[2]
        if kind == "mr_rician_noise":
            versions[f"{name} Rician noise (rung 3)"] = ladder[3]
    print(f"{'image':40s} {'PE axis':>7s} " + " ".join(f"{'m=' + str(m):>7s}" for m in margins))
    for label, image in versions.items():
        plane = read_plane(image.array, image.modality)
        body, anatomy = body_and_anatomy(plane, image.modality)
        for axis, axis_name in ((-2, "rows"), (-1, "cols")):
            ratios = [ghosting_ratio(plane, body, pe_axis=axis, margin=m, tissue=anatomy)
                      for m in margins]
            print(f"{label:40s} {axis_name:>7s} " + " ".join(f"{r:+7.4f}" for r in ratios))


if __name__ == "__main__":
    main()
