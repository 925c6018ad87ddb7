"""Probe: the evidence score of `medq assess` beside the model's score, and its variants.

On the cached held-out split of the quality benchmark (`medq bench iqa`), SRCC against the
physics reference score of the model's score alone, the evidence score alone
(`medq.assess.detector.read_evidence` on each item's stored evidence rows) and their weighted
means (0.5 is what `medq assess` reports), overall, per modality and per test source. Then three
ways of turning the view detector's outputs into a score: the score of the reported findings
and the sub-mild estimates (`findings`, `detector.findings_score`, what `medq describe` grades
by), the reference score of every type's continuous severity (`continuous`), and of the
severities weighted by presence over threshold (`confidence`, `detector.confidence_score`, what
`medq assess` ships) — SRCC on the held-out split (alone and in the mean with the model) and on
the calibration's own validation items (20 % of the training-source items, where such a choice
is made; needs the cached `--view` calibration data), and the mean score each gives the clean
validation items (their reference score is 5: a variant that grades clean images down is not
fit to ship, whatever it ranks). Usage:
    python benchmarks/probes/evidence_score.py [--model mediqa-s]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import spearmanr


def variants(prob: np.ndarray, sev: np.ndarray, modality: str, detector: object
             ) -> dict[str, float]:
    """The three scores of one image's detector outputs `[types]`."""
    from medq.assess.assessment import finding_types_for
    from medq.assess.detector import confidence_score, decide, findings_score
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.data.bench import reference_score

    allowed = np.array([t in finding_types_for(modality) for t in FINDING_TYPES])
    thr = np.array([detector.threshold(t, modality) for t in FINDING_TYPES])
    d = decide(prob, sev, allowed, thr, detector.normal_fraction)
    return {"findings": findings_score(list(d.reported.values()), d.below),
            "continuous": reference_score([float(s) for s in sev[allowed] if s >= 0.2]),
            "confidence": confidence_score(prob, sev, allowed, thr)}


def main() -> None:
    """Print the SRCC tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from medq.assess.detector import VIEW_CALIBRATION_PATH, load_detector
    from medq.assess.evidence import modality_group, view_features
    from medq.assess.weights import load_weights
    from medq.data.bench import BenchPlan, build
    from medq.data.cache import cache_dir
    from medq.train.evaluate import predict

    data = build(BenchPlan(), "test", progress=False)
    model, record = load_weights(args.model)
    pred = predict(model, data, bool(record.get("use_prompts", True)))
    det = load_detector(VIEW_CALIBRATION_PATH)
    y = data["score"]
    rows = []
    for i in range(len(y)):
        o, k = int(data["offset"][i]), int(data["n_valid"][i])
        prob, sev = det.predict(view_features(data["m"][o:o + k])[None],
                                modality_group(str(data["modality"][i])))
        rows.append(variants(prob[0], sev[0], str(data["modality"][i]), det))
    score = {name: np.array([r[name] for r in rows]) for name in rows[0]}
    ev = score["confidence"]
    groups = [("overall", np.ones(len(y), bool))]
    groups += [(m, data["modality"] == m) for m in sorted(set(data["modality"].tolist()))]
    groups += [(s, data["source"] == s) for s in sorted(set(data["source"].tolist()))]
    print(f"{'group':14s} {'n':>4s} {'model':>6s} {'evidence':>8s} " +
          " ".join(f"w={w:.2f}" for w in (0.25, 0.4, 0.5, 0.6, 0.75)))
    for name, sel in groups:
        line = f"{name:14s} {sel.sum():4d} {spearmanr(y[sel], pred[sel])[0]:6.3f} " \
               f"{spearmanr(y[sel], ev[sel])[0]:8.3f}"
        for w in (0.25, 0.4, 0.5, 0.6, 0.75):  # w = weight of the evidence score
            line += f" {spearmanr(y[sel], (1 - w) * pred[sel] + w * ev[sel])[0]:6.3f}"
        print(line)
    print("\nscore variants on the held-out split (alone / mean with the model):")
    for name, s in score.items():
        both = spearmanr(y, 0.5 * pred + 0.5 * s)[0]
        print(f"  {name:14s} {spearmanr(y, s)[0]:.3f} / {both:.3f}")
    calib = json.loads(VIEW_CALIBRATION_PATH.read_text())
    path = cache_dir() / "describe" / str(calib.get("data_file", ""))
    if not path.is_file():
        print(f"\n(no cached calibration data {path.name}: run python -m medq.describe.calibrate "
              "--view to see the variants on its validation items)")
        return
    with np.load(path) as saved:
        x, targets, modality = saved["x"], saved["y"], saved["modality"]
    from medq.data.bench import reference_score
    from medq.describe.calibrate import validation_masks

    # the items `calibrate.fit` validated on (calibrations written before `seed` and `folds` were
    # recorded used seed 0 and one 80/20 split)
    val = np.logical_or.reduce(validation_masks(len(x), int(calib.get("seed", 0)),
                                                int(calib.get("folds", 1))))
    ref = np.array([reference_score([float(v) for v in t if v > 0]) for t in targets[val]])
    groups = np.array([modality_group(str(m)) for m in modality[val]])
    prob, sev = np.zeros((int(val.sum()), len(det.types))), np.zeros((int(val.sum()),
                                                                       len(det.types)))
    for g in set(groups.tolist()):  # each modality group with its extension, where it has one
        prob[groups == g], sev[groups == g] = det.predict(x[val][groups == g], g)
    found = [variants(p, s, str(m), det) for p, s, m in zip(prob, sev, modality[val],
                                                             strict=True)]
    clean = ref >= 5.0
    print(f"\nscore variants alone on the calibration's {int(val.sum())} validation items "
          f"(SRCC; mean score of its {int(clean.sum())} clean items):")
    for name in score:
        values = np.array([f[name] for f in found])
        print(f"  {name:14s} {spearmanr(ref, values)[0]:.3f}; {values[clean].mean():.2f}")


if __name__ == "__main__":
    main()
