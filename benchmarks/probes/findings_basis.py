"""Probe: which basis gives better descriptions, the calibrated detector or the finding heads?

On the cached description-benchmark items (test sources only, as `medq bench describe`), the
description metrics (/8) and the finding-type accuracy (moderate or worse) of findings taken from
(a) the calibrated detector on the evidence features (what `medq describe` ships), (b) the quality
model's finding heads alone (presence ≥ 0.5 and expected severity ≥ 0.5, as
`medq.assess.assessment.findings_from`) and (c) a blend of the two, and the largest head output
per finding type (are the heads trained at all?). Usage:
    python benchmarks/probes/findings_basis.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import numpy as np


def item_rows() -> Iterator[tuple[Any, dict[str, Any]]]:
    """Each cached description-benchmark item (test sources, as `medq bench describe`) and the
    fields every probe row needs: modality, dim, source and the applied degradations."""
    from medq.describe.bench import DescribePlan, build_items, load_item

    for path in build_items(DescribePlan(), progress=False):
        image, header = load_item(path)
        yield image, {"modality": image.modality, "dim": header["dim"],
                      "source": header["source"],
                      "records": header["meta"].get("degradations", [])}


def relative(detector: Any, x: np.ndarray, modality: str) -> tuple[np.ndarray, np.ndarray]:
    """A calibration's (presence as a fraction of each type's threshold, severity) for one
    feature vector `[1, features]`: a type is reported where the first reaches 1."""
    from medq.assess.evidence import modality_group
    from medq.assess.models.blocks import FINDING_TYPES

    prob, sev = detector.predict(x, modality_group(modality))
    thr = np.array([detector.threshold(t, modality) for t in FINDING_TYPES])
    return prob[0] / thr, sev[0]


def collect(model: str) -> list[dict[str, Any]]:
    """Per item: the base fields, detector presence/threshold and severity, head outputs."""
    from medq.assess.detector import load_detector
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.assess.predictor import Assessor
    from medq.describe.findings import detector_inputs

    assessor = Assessor(model, batch_size=16, measures=False)
    detector = load_detector()
    rows = []
    for image, row in item_rows():
        a = assessor.assess(image)
        presence, sev = relative(detector, detector_inputs(a, image, detector)[0],
                                 image.modality)
        row.update(presence=presence, sev=sev,
                   hp=np.array([a.finding_scores[t]["presence"] for t in FINDING_TYPES]),
                   he=np.array([a.finding_scores[t]["expected_severity"]
                                for t in FINDING_TYPES]))
        rows.append(row)
    return rows


def evaluate(rows: list[dict[str, Any]], presence: Any, severity: Any,
             normal_fraction: float | None = None) -> str:
    """Description metrics when `presence(row, j)` ≥ 1 reports type j, by the report's own rule
    (`findings.decide` with `normal_fraction`, by default the shipped calibration's, and
    `findings_score`)."""
    from medq.assess.assessment import finding_types_for
    from medq.assess.detector import decide, findings_score, load_detector, severity_for
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.describe.bench import group_of, summary
    from medq.describe.metrics import score_description
    from medq.describe.schema import Finding, verdict_for

    if normal_fraction is None:
        normal_fraction = load_detector().normal_fraction
    scored = []
    for r in rows:
        kinds = finding_types_for(r["modality"])
        n = len(FINDING_TYPES)
        d = decide(np.array([presence(r, j) for j in range(n)]),
                   np.array([severity(r, j) for j in range(n)]),
                   np.array([t in kinds for t in FINDING_TYPES]), np.ones(n), normal_fraction)
        findings = [Finding(FINDING_TYPES[j], severity_for(v), 1.0, severity_value=v)
                    for j, v in d.reported.items()]
        verdict = verdict_for(findings_score(list(d.reported.values()), d.below))
        row = score_description(findings, [FINDING_TYPES[j] for j in d.normal], verdict,
                                r["records"])
        row.update(group=group_of(r["modality"]), dim=r["dim"], source=r["source"])
        scored.append(row)
    overall = summary(scored)["overall"]
    return (f"{overall['total']:.2f}/8, type accuracy {overall['type_accuracy']:.3f} "
            f"(completeness {overall['completeness']:.2f}, preciseness "
            f"{overall['preciseness']:.2f}, accuracy {overall['accuracy']:.2f})")


def main() -> None:
    """Print the metrics of each basis and the heads' largest outputs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from medq.assess.models.blocks import FINDING_TYPES

    rows = collect(args.model)
    print(f"{len(rows)} items")
    print("detector:", evaluate(rows, lambda r, j: r["presence"][j],
                                lambda r, j: r["sev"][j]))
    print("heads:   ", evaluate(rows, lambda r, j: 2 * r["hp"][j] * (r["he"][j] >= 0.5),
                                lambda r, j: r["he"][j]))
    for w in (0.25, 0.5):
        print(f"blend {w}: ", evaluate(
            rows, lambda r, j, w=w: (1 - w) * r["presence"][j] + w * 2 * r["hp"][j],
            lambda r, j, w=w: (1 - w) * r["sev"][j] + w * r["he"][j]))
    top = np.max([r["hp"] for r in rows], axis=0)
    print("largest head presence per type:",
          ", ".join(f"{t} {v:.2f}" for t, v in zip(FINDING_TYPES, top, strict=True)))


if __name__ == "__main__":
    main()
