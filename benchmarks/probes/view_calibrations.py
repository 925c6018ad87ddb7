"""Probe: view-detector calibrations side by side, the model run once.

The assessment's score is the mean of the model's score and the evidence score the view
calibration (`assess/detector-view.json`) reads from the evidence rows, so calibrations can be
compared without re-running the model: the model's scores and every image's evidence rows are
taken once, then each calibration gives its evidence score. For each calibration file (or
`shipped`): the held-out SRCC of `medq assess` on the quality benchmark's test split (overall and
MR; `medq bench iqa`'s row "medq assess"), the severity ranking on the held-out real images with
the engine (`benchmarks/ranking.py`) and with the independent simulators
(`benchmarks/independent.py`, its "medq assess" column), mean over kinds and MR kinds alone.
Calibrations fitted before a feature was appended read their own columns of the rows.
Usage:
    python benchmarks/probes/view_calibrations.py shipped /tmp/view-s0.json ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ladder_parts(assessor: Any, ladders: list[tuple[str, str, list[Any]]]
                 ) -> list[tuple[str, list[float], list[np.ndarray], str]]:
    """(ladder key, model scores, evidence rows, modality) of each ladder."""
    from medq.assess.evidence import evidence_rows

    out = []
    for name, kind, ladder in ladders:
        found = assessor.assess_many(ladder)
        out.append((f"{name}/{kind}", [float(a.model_score) for a in found],
                    [evidence_rows(im) for im in ladder], ladder[0].modality))
    return out


def ranking(parts: list[tuple[str, list[float], list[np.ndarray], str]], detector: Any
            ) -> tuple[float, float]:
    """(mean over kinds, mean over MR kinds) of the ladders' Spearman with this detector."""
    from medq.assess.assessment import combined_score
    from medq.assess.detector import evidence_of
    from medq.assess.evidence import view_features
    from medq.train.evaluate import ladder_spearman, ranking_summary

    pairs = {}
    for key, model, rows, modality in parts:
        scores = [combined_score(m, evidence_of(detector, view_features(r), modality).score)
                  for m, r in zip(model, rows, strict=True)]
        pairs[key] = {"spearman": ladder_spearman(scores)}
    summary = ranking_summary(pairs)
    mr = [v for k, v in summary["per_kind"].items() if k.startswith("mr_")]
    return summary["mean"], float(np.mean(mr))


def main() -> None:
    """Print one line per calibration."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("calibrations", nargs="+", help="calibration JSON files, or 'shipped'")
    parser.add_argument("--model", default="mediqa-s")
    args = parser.parse_args()
    from independent import independent_ladders

    from medq.assess.detector import VIEW_CALIBRATION_PATH, load_detector
    from medq.assess.predictor import Assessor
    from medq.assess.weights import load_weights
    from medq.data.bench import BenchPlan, build
    from medq.train.evaluate import assess_scores, held_out_images, predict, ranking_ladders

    data = build(BenchPlan(), "test", progress=False)
    model, record = load_weights(args.model)
    pred = predict(model, data, bool(record.get("use_prompts", True)))
    y, mr = data["score"], data["modality"] == "MR"
    assessor = Assessor(args.model, measures=False)
    images = held_out_images()
    engine = ladder_parts(assessor, list(ranking_ladders(images)))
    independent = ladder_parts(assessor, list(independent_ladders(images)))
    print(f"{'calibration':34s} {'SRCC':>6s} {'MR':>6s} {'rank':>6s} {'MR':>6s} "
          f"{'indep':>6s} {'MR':>6s}")
    for name in args.calibrations:
        path = VIEW_CALIBRATION_PATH if name == "shipped" else Path(name)
        detector = load_detector(path)
        scores = assess_scores(pred, data, detector)
        cells = [spearmanr(y, scores)[0], spearmanr(y[mr], scores[mr])[0],
                 *ranking(engine, detector), *ranking(independent, detector)]
        print(f"{name[-34:]:34s} " + " ".join(f"{c:6.3f}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
