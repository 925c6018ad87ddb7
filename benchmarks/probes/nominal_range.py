"""Probe: which planes does the evidence's nominal intensity scale touch?

`medq.assess.evidence.nominal_scale` rescales a non-CT plane whose largest magnitude lies
outside `NOMINAL_RANGE` before its features are taken. It exists for quantitative maps and
extreme float exports; medq's own images should never reach it, or the shipped model and
detectors would read features they were not fitted on. This takes every non-CT plane the
features read (full plane and 256-px view) of the description benchmark's items and of a sample
of training-source items (12 2D and 3 3D draws per non-CT source, with the realism the
calibration uses), and prints how many were rescaled and the range of their maxima. Usage:
    python benchmarks/probes/nominal_range.py
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from findings_basis import item_rows  # noqa: E402


def training_images() -> Iterator[Any]:
    """A sample of the training sources' degraded items (non-CT sources)."""
    from medq.data.items import degraded_item
    from medq.data.sources import sources

    for source in sources("train"):
        for dim, draws in (("2d", 12), ("3d", 3)):
            for seed in range(draws):
                image, _ = degraded_item(source, dim, seed, realism=True)
                if image.modality != "CT":
                    yield image


def tally(images: Iterator[Any]) -> str:
    """How many planes and views of the images `nominal_scale` rescales, and their maxima."""
    from medq.assess.evidence import EVIDENCE_SIZE, _planes, nominal_scale, read_plane
    from medq.assess.filters import shrink

    count = rescaled = 0
    tops = []
    for image in images:
        for plane in _planes(image, None):
            for view in (plane, shrink(plane, EVIDENCE_SIZE)):
                values = read_plane(view, image.modality)
                tops.append(float(np.abs(values).max()))
                rescaled += nominal_scale(values, image.modality)[1]
                count += 1
    live = [t for t in tops if t > 0]
    return (f"{count} planes and views, {rescaled} rescaled; largest magnitudes "
            f"{min(live):.3g} … {max(live):.4g} ({len(tops) - len(live)} all-zero planes)")


def main() -> None:
    """Print the tally for the benchmark items and for the training sample."""
    bench = (image for image, _ in item_rows() if image.modality != "CT")
    print("description benchmark (non-CT):", tally(bench))
    print("training-source sample (non-CT):", tally(training_images()))


if __name__ == "__main__":
    main()
