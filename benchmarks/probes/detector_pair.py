"""Probe: do the full-resolution and the view calibrations of the finding detector describe
better together than the full-resolution one alone (what `medq describe` ships)?

On the cached description-benchmark items (test sources only, as `medq bench describe`), both
calibrations read each item (full planes: `evidence.feature_vector`; ≤256-px views: the mean of
`evidence.evidence_rows`); the description metrics (/8) and the finding-type accuracy are then
computed for findings from the full calibration, the view calibration, and their mean (presence
as a fraction of each calibration's threshold, severities averaged). Usage:
    python benchmarks/probes/detector_pair.py
"""

from __future__ import annotations

from typing import Any

import numpy as np


def collect() -> list[dict[str, Any]]:
    """Per item: modality, records, and both calibrations' (presence / threshold, severity)."""
    from medq.assess.detector import VIEW_CALIBRATION_PATH, load_detector
    from medq.assess.evidence import evidence_rows, feature_vector, view_features
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.describe.bench import DescribePlan, build_items, load_item

    full, view = load_detector(), load_detector(VIEW_CALIBRATION_PATH)
    rows = []
    for path in build_items(DescribePlan(), progress=False):
        image, header = load_item(path)
        row: dict[str, Any] = {"modality": image.modality, "dim": header["dim"],
                               "source": header["source"],
                               "records": header["meta"].get("degradations", [])}
        for name, det, x in (("full", full, feature_vector(image)[None]),
                             ("view", view, view_features(evidence_rows(image))[None])):
            prob, sev = det.predict(x)
            thr = np.array([det.threshold(t, image.modality) for t in FINDING_TYPES])
            row[name] = (prob[0] / thr, sev[0])
        rows.append(row)
    return rows


def main() -> None:
    """Print the description metrics of each basis (`findings_basis.evaluate`'s rule)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from findings_basis import evaluate

    rows = collect()
    print(f"{len(rows)} items")
    for name in ("full", "view"):
        print(f"{name}:", evaluate(rows, lambda r, j, k=name: r[k][0][j],
                                   lambda r, j, k=name: r[k][1][j]))
    for w in (0.25, 0.5):
        print(f"mean (view weight {w}):", evaluate(
            rows, lambda r, j, w=w: (1 - w) * r["full"][0][j] + w * r["view"][0][j],
            lambda r, j, w=w: (1 - w) * r["full"][1][j] + w * r["view"][1][j]))
    print("both must find it:", evaluate(
        rows, lambda r, j: min(r["full"][0][j], r["view"][0][j]),
        lambda r, j: 0.5 * (r["full"][1][j] + r["view"][1][j])))


if __name__ == "__main__":
    main()
