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

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from findings_basis import evaluate, item_rows, relative  # noqa: E402


def collect() -> list[dict[str, Any]]:
    """Per item: the base fields and both calibrations' (presence / threshold, severity)."""
    from medq.assess.detector import VIEW_CALIBRATION_PATH, load_detector
    from medq.assess.evidence import evidence_rows, feature_vector, view_features

    full, view = load_detector(), load_detector(VIEW_CALIBRATION_PATH)
    rows = []
    for image, row in item_rows():
        row["full"] = relative(full, feature_vector(image)[None], image.modality)
        row["view"] = relative(view, view_features(evidence_rows(image))[None], image.modality)
        rows.append(row)
    return rows


def main() -> None:
    """Print the description metrics of each basis (`findings_basis.evaluate`'s rule)."""
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
