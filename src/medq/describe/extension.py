"""Extend a shipped detector calibration to finding types newly made for one modality group.

When the engine learns a degradation for a modality (camera noise in photographs), the
calibration's nets never saw that type there: their output for it is untrained. Refitting every
net would redraw the whole detector (the split's luck moves the held-out SRCC by ±0.03, see
`calibrate.fit`); an extension instead fits a small ensemble on that group's items alone, on the
calibration's own input scaling, for the named types only, and leaves every other type and
group as it was (`detector.Detector.predict` reads it). Its presence threshold (`type@group`) is
chosen on a held-out 20 % of those items, as `calibrate.fit` chooses the calibration's own.

    python -m medq.describe.calibrate [--view] --extend OP:noise --sources retina_left \\
        --n2d 3000 --n3d 0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.assess.models.blocks import FINDING_TYPES
from medq.describe.calibrate import (
    ENSEMBLE,
    HIDDEN,
    STEPS,
    _best_threshold,
    _fit_one,
    allowed_matrix,
    column_names,
    type_validation,
    validation_masks,
)
from medq.errors import InvalidParameter


def parse_extension(text: str) -> tuple[str, tuple[str, ...]]:
    """`GROUP:TYPE[,TYPE…]` (e.g. `OP:noise`) as (group, types): a modality group and finding
    types the engine makes for it (checked before any item is built)."""
    from medq.assess.assessment import finding_types_for
    from medq.assess.evidence import MODALITY_GROUPS

    group, _, names = text.partition(":")
    group = group.strip().upper()
    types = tuple(dict.fromkeys(t.strip() for t in names.split(",") if t.strip()))
    unknown = [t for t in types if t not in FINDING_TYPES]
    if not group or not types or unknown:
        raise InvalidParameter(f"--extend takes GROUP:TYPE[,TYPE…] with types among "
                               f"{', '.join(FINDING_TYPES)}; got {text!r}")
    if group not in MODALITY_GROUPS:
        raise InvalidParameter(f"--extend: {group!r} is no modality group; choose from "
                               f"{', '.join(MODALITY_GROUPS)}")
    made = finding_types_for("DX" if group == "XR" else group)
    if any(t not in made for t in types):
        raise InvalidParameter(f"--extend: the engine makes no {', '.join(types)} for {group} "
                               f"(it makes {', '.join(made)})")
    return group, types


def extend(calib: dict[str, Any], data: dict[str, np.ndarray], group: str,
           types: tuple[str, ...], seed: int = 0, steps: int = STEPS, ensemble: int = ENSEMBLE,
           hidden: int = HIDDEN) -> dict[str, Any]:
    """`calib` with an extension for `types` in modality `group`, fitted on `data`'s items of
    that group (80 %; thresholds and validation numbers on the other 20 %); an earlier
    extension of the group is replaced, everything else kept."""
    from medq.assess.detector import Detector, _layers, ensemble_output
    from medq.assess.evidence import modality_group
    from medq.workers import set_threads

    if column_names(data) != list(calib["features"]):
        raise InvalidParameter("the data's features are not the calibration's: build the items "
                               "with the calibration's settings (--view, extras, no heads)")
    rows = np.array([modality_group(str(m)) == group for m in data["modality"]])
    columns = [FINDING_TYPES.index(t) for t in types]
    if not rows.any() or not allowed_matrix(data["modality"][rows])[:, columns].all():
        raise InvalidParameter(f"no items of {group} that can have {', '.join(types)}: the "
                               "engine must make those types for that modality")
    set_threads(1)
    base = Detector(calib)
    z = base.standardised(data["x"][rows])[1].astype(np.float32)
    y = data["y"][rows][:, columns].astype(np.float32)
    allowed = np.ones(y.shape, dtype=bool)
    held = validation_masks(len(z), seed, 1)[0]
    nets = [_fit_one(z[~held], y[~held], allowed[~held], seed + j, steps, hidden)
            for j in range(ensemble)]
    prob, sev = ensemble_output(_layers(nets), z[held].astype(np.float64), len(types))
    sev = np.clip(sev, 0.0, 3.5)
    thresholds, report = dict(calib["thresholds"]), {}
    for k, kind in enumerate(types):
        value = y[held, k]
        thresholds[f"{kind}@{group}"] = t = round(_best_threshold(prob[:, k], value), 3)
        report[kind] = {**type_validation(prob[:, k] >= t, sev[:, k], value),
                        "severity_spearman": _spearman(sev[:, k], value)}
    extension = {"group": group, "types": list(types), "nets": nets, "seed": seed,
                 "trained_on": {"items": int((~held).sum()),
                                "sources": sorted(set(data["source"][rows].tolist()))},
                 "validation": {"items": int(held.sum()), "per_type": report}}
    kept = [e for e in calib.get("extensions", ()) if e["group"] != group]
    return {**calib, "thresholds": thresholds, "extensions": [*kept, extension]}


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman correlation of two arrays (None when either is constant)."""
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return round(float(spearmanr(a, b)[0]), 3)
