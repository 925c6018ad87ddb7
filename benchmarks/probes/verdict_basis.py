"""Probe: should the description's verdict follow its findings, the model's score, or both?

On the cached description-benchmark items (test sources only, as `medq bench describe`), each
item is assessed and described once (rows cached under `<cache>/probes/verdict-basis.npz`); then
the description metrics (/8) and the SRCC against the physics reference score are computed for
verdicts taken from (a) the findings' score (what `medq describe` ships), (b) the model's score
(what `medq assess` grades by) and (c) weighted means of the two. The findings stay the same in
every arm, so completeness and preciseness do not change; consistency and accuracy do. Usage:
    python benchmarks/probes/verdict_basis.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import spearmanr


def collect(model: str) -> dict[str, np.ndarray]:
    """Per item: reference score, model score, findings score, findings, normal types, records."""
    from medq.assess.predictor import Assessor
    from medq.data.cache import cache_dir, read_npz, write_npz
    from medq.describe import report_from
    from medq.describe.bench import DescribePlan, build_items, calibration_id, load_item

    path = cache_dir() / "probes" / f"verdict-basis-{model}-{calibration_id()}.npz"
    cached = read_npz(path)
    if cached is not None:
        return cached
    paths = build_items(DescribePlan(), progress=False)
    assessor = Assessor(model, batch_size=16, measures=False)
    rows = []
    for start in range(0, len(paths), 16):
        chunk = [load_item(p) for p in paths[start:start + 16]]
        for (image, header), a in zip(chunk, assessor.assess_many([c[0] for c in chunk]),
                                      strict=True):
            report = report_from(a, image)
            rows.append({"model": a.score, "described": report.score,
                         "findings": [(f.type, f.severity) for f in report.findings],
                         "normal": report.normal, "modality": image.modality,
                         "source": header["source"],
                         "records": header["meta"].get("degradations", [])})
    data = {"model": np.array([r["model"] for r in rows]),
            "described": np.array([r["described"] for r in rows]),
            "json": np.array([json.dumps({k: r[k] for k in ("findings", "normal", "modality",
                                                              "source", "records")},
                                         default=str) for r in rows])}
    write_npz(path, data)
    return data


def main() -> None:
    """Print metrics per verdict basis."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from medq.describe.metrics import reference, score_description
    from medq.describe.schema import verdict_for

    data = collect(args.model)
    items = [json.loads(str(s)) for s in data["json"]]
    ref = np.array([reference(it["records"])["score"] for it in items])
    print(f"{len(items)} items; SRCC model {spearmanr(ref, data['model'])[0]:.3f}, "
          f"findings {spearmanr(ref, data['described'])[0]:.3f}")
    for w in (0.0, 0.25, 0.5, 0.75, 1.0):
        score = (1 - w) * data["described"] + w * data["model"]
        rows = [score_description([{"type": t, "severity": s} for t, s in it["findings"]],
                                  it["normal"], verdict_for(float(v)), it["records"])
                for it, v in zip(items, score, strict=True)]
        mean = {k: np.mean([r[k] for r in rows]) for k in
                ("completeness", "preciseness", "consistency", "accuracy", "total")}
        print(f"model weight {w:.2f}: SRCC {spearmanr(ref, score)[0]:.3f}  " +
              "  ".join(f"{k} {v:.2f}" for k, v in mean.items()))


if __name__ == "__main__":
    main()
