"""The volumes of one 4D file judged against each other: which one stands out below the rest.

A diffusion or fMRI series is many volumes of one acquisition; a volume that motion, a spike or
a dropout spoiled scores well below its siblings even when every volume is noisy by nature (a
high b-value). `outlying_volumes` flags, per file of at least `MIN_VOLUMES` assessed volumes,
those whose score lies more than `max(MIN_DROP, SPREAD_FACTOR · σ)` below the file's median,
σ = the median absolute deviation / 0.6745 (`iqms.mad_sigma`) (robust to the outliers themselves).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from medq.assess.iqms import mad_sigma

MIN_VOLUMES = 3
"""Fewest assessed volumes of a file for a median to judge them by."""

MIN_DROP = 0.5
"""Smallest drop below the median (score points) that flags a volume."""

SPREAD_FACTOR = 3.0
"""How many robust standard deviations below the median flag a volume."""


def outlying_volumes(scores: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """For each `<file>@volume=<k>` path whose score stands out below its file's volumes:
    `{"series_median", "below_median", "volumes"}`; other paths are ignored."""
    from medq.io.volumes import VOLUME_MARK

    files: dict[str, dict[str, float]] = {}
    for path, score in scores.items():
        if VOLUME_MARK in path:
            files.setdefault(path.rsplit(VOLUME_MARK, 1)[0], {})[path] = float(score)
    found: dict[str, dict[str, float]] = {}
    for volumes in files.values():
        if len(volumes) < MIN_VOLUMES:
            continue
        median, spread = mad_sigma(np.asarray(list(volumes.values())))
        limit = max(MIN_DROP, SPREAD_FACTOR * spread)
        for path, score in volumes.items():
            if median - score > limit:
                found[path] = {"series_median": round(median, 3),
                               "below_median": round(median - score, 3),
                               "volumes": len(volumes)}
    return found
