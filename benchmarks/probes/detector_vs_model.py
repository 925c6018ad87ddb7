"""Probe: does the description's finding-based score rank quality better than the model's score?

On the cached description-benchmark items (test sources only, `medq bench describe`), SRCC
against the physics reference score of (a) the model's score and (b) the score implied by the
calibrated findings of `medq describe` (`QualityReport.score`), overall, per modality and per
source. Usage:
    python benchmarks/probes/detector_vs_model.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import spearmanr


def main() -> None:
    """Assess and describe every item, print SRCC of both scores per group."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.data.bench import reference_score
    from medq.degrade import get_spec
    from medq.describe import report_from
    from medq.describe.bench import DescribePlan, build_items, load_item

    paths = build_items(DescribePlan(), progress=False)
    assessor = Assessor(args.model, batch_size=16, measures=False)
    ref, model, described, modality, source = [], [], [], [], []
    for start in range(0, len(paths), 16):
        chunk = [load_item(p) for p in paths[start:start + 16]]
        for (image, header), a in zip(chunk, assessor.assess_many([c[0] for c in chunk]),
                                      strict=True):
            records = header["meta"].get("degradations", [])
            ref.append(reference_score([get_spec(r["name"]).severity_value(r["level"])
                                        for r in records]))
            model.append(a.score)
            described.append(report_from(a, image).score)
            modality.append(image.modality)
            source.append(header["source"])
    ref_a, model_a, described_a = map(np.array, (ref, model, described))
    groups = [("overall", np.ones(len(ref), bool))]
    groups += [(m, np.array(modality) == m) for m in sorted(set(modality))]
    groups += [(s, np.array(source) == s) for s in sorted(set(source))]
    print(f"{'group':14s} {'n':>4s} {'model':>6s} {'described':>9s}")
    for name, sel in groups:
        print(f"{name:14s} {sel.sum():4d} {spearmanr(ref_a[sel], model_a[sel])[0]:6.2f} "
              f"{spearmanr(ref_a[sel], described_a[sel])[0]:9.2f}")


if __name__ == "__main__":
    main()
