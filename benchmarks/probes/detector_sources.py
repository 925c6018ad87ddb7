"""Probe: how the finding detector's recipe carries over to a source it was not fitted on.

Leave-one-source-out on a cached calibration data file (`python -m medq.describe.calibrate`
caches it under `cache_dir()/describe/`; training sources only, never the test split): for each
training source, the recipe (`calibrate._fit_one`, an ensemble of two) is fitted on the other
sources' items and predicts that source's; the presence thresholds (`calibrate.thresholds_for`)
are then chosen on these out-of-source predictions; printed is the SRCC of the
confidence-weighted score (`detector.confidence_score`, what `medq assess` uses) against the
engine's reference score, pooled and per left-out source. The calibration's own validation
(20 % of items from the same sources) cannot tell how a recipe fares on a new scanner; this
comes closer, with the caveat that the training sources are phantoms and one template subject,
not real scans. Usage:
    python benchmarks/probes/detector_sources.py --data PATH [--hidden 64] [--dropout 0.0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


def out_of_source(data: dict[str, np.ndarray], hidden: int, dropout: float,
                  members: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Presence probabilities and severities `[n, types]` of every item, each predicted by nets
    fitted without its source."""
    from medq.assess.detector import Detector
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.describe import calibrate as cal

    x, y = data["x"].astype(np.float32), data["y"].astype(np.float32)
    allowed = cal.allowed_matrix(data["modality"])
    prob, sev = np.zeros(y.shape), np.zeros(y.shape)
    for name in sorted(set(data["source"].tolist())):
        out = data["source"] == name
        lo, hi, mean, std = cal.scaling(x, ~out)
        z = ((np.clip(x, lo, hi) - mean) / std).astype(np.float32)
        nets = [cal._fit_one(z[~out], y[~out], allowed[~out], 1 + 10 * k, hidden=hidden,
                             dropout=dropout) for k in range(members)]
        det = Detector({"types": list(FINDING_TYPES), "low": lo, "high": hi, "mean": mean,
                        "std": std, "nets": nets, "thresholds": {}})
        prob[out], sev[out] = det.predict(x[out])
    return prob, sev


def main() -> None:
    """Print the pooled and per-source SRCC."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="calibration data file (.npz)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.0)
    args = parser.parse_args()
    from medq.assess.detector import confidence_score
    from medq.assess.evidence import modality_group
    from medq.data.bench import reference_score
    from medq.describe import calibrate as cal
    from medq.describe.validation import threshold_matrix
    from medq.workers import set_threads

    set_threads(1)
    data = cal.read_data(args.data)
    prob, sev = out_of_source(data, args.hidden, args.dropout)
    allowed = cal.allowed_matrix(data["modality"])
    groups = np.array([modality_group(m) for m in data["modality"]])
    thr = threshold_matrix(cal.thresholds_for(prob, data["y"], allowed, groups), groups)
    score = np.array([confidence_score(prob[i], sev[i], allowed[i], thr[i])
                      for i in range(len(prob))])
    ref = np.array([reference_score([float(v) for v in t if v > 0]) for t in data["y"]])
    print(f"{args.data.name}: {len(ref)} items, hidden {args.hidden}, dropout {args.dropout}")
    print(f"pooled SRCC (each source predicted by nets fitted without it): "
          f"{spearmanr(ref, score)[0]:.3f}")
    for name in sorted(set(data["source"].tolist())):
        sel = data["source"] == name
        print(f"  {name:18s} {sel.sum():5d}  {spearmanr(ref[sel], score[sel])[0]:.3f}")


if __name__ == "__main__":
    main()
