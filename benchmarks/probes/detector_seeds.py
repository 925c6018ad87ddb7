"""Probe: how much the assessment's evidence score moves with the seed of its calibration fit.

The view calibration of the finding detector (`python -m medq.describe.calibrate --view`) is a
small MLP ensemble whose seed picks its validation split (which also sets the presence
thresholds) and its initial weights. This refits it on the cached calibration data (built on
first use, about 13–20 minutes on 2 cores; `--zoom` picks the items' zoom profile, `anywhere`
as shipped or `central` as the full-plane calibration's) for several seeds, with one 80/20
split (`--folds 1`, the shipped recipe) and cross-fitted (`--folds 5`), and prints for each fit
the held-out SRCC of the evidence score alone and of `medq assess`'s score (the mean with the
model's score, on the quality benchmark's test split, as `medq bench iqa`; also on its MR
items), the severity ranking of `benchmarks/ranking.py` and the ranking on the independent
simulators' ladders of `benchmarks/independent.py` (each also over MR kinds alone; same ladders,
same model scores, the model run once), and `samples`, the smallest lead of a clean bundled
sample over its moderately degraded version in the new user's check of
`tests/test_assess_shipped.py` (which asks for more than 0.25). The mean over seeds is what a
recipe is worth; one fit is a draw from it. `--ladders N`: each refit also learns to rank N
severity ladders of the training sources (`medq.describe.ladders`; tried, not shipped).
`--calibrations FILE … [shipped]` judges calibration files instead of refitting (its `shipped`
line reproduces the three benchmarks on seed 0's ladders). `--ladder-seeds N` draws both sets of
ladders with seeds 0 … N−1 and ranks over all of them (each kind's mean over the draws, as
`benchmarks/ranking.py` and `benchmarks/independent.py` report them). Usage:
    python benchmarks/probes/detector_seeds.py [--model mediqa-s [--member K]]
                                               [--zoom anywhere|central]
                                               [--seeds 4] [--folds 1,5] [--ladders N]
                                               [--calibrations FILE ... shipped]
                                               [--ladder-seeds 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLUMNS = ("evidence", "assess", "assess MR", "ranking", "ranking MR", "independent",
           "independent MR", "samples")
"""What `rates` gives, in order (SRCC of the evidence score and of `medq assess`, rankings,
and the smallest lead of a clean sample over its degraded version, `sample_pairs`)."""

SAMPLE_PAIRS = {"ct_small": "ct_low_dose", "mr_small": "mr_undersample",
                "mni_t1": "mr_undersample"}
"""The new user's check (`tests/test_assess_shipped.py`): each clean sample must score above
its moderate version of this kind (seed 1), as files written and read back by medq."""


def sample_pairs(assessor: Any) -> list[tuple[str, list, list[float]]]:
    """(modality, [clean, degraded] view features, their model scores) of each sample pair,
    made as `medq samples --export` and `medq simulate --severity moderate --seed 1` make them."""
    import tempfile

    from medq.assess.evidence import view_features
    from medq.assess.loading import load_measured
    from medq.data.samples import load_sample
    from medq.degrade import simulate
    from medq.io import load, save

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind in SAMPLE_PAIRS.items():
            clean = Path(save(load_sample(name), Path(tmp) / name))
            worse = simulate(load(clean), kind, severity="moderate", seed=1)[0]
            paths = [clean, Path(save(worse, Path(tmp) / f"degraded_{name}"))]
            loaded = [load_measured(path, None, False) for path in paths]
            out.append((loaded[0].image.modality, [view_features(x.rows) for x in loaded],
                        [a.model_score for a in assessor.assess_many(paths)]))
    return out


def ladder_inputs(assessor: Any, ladders: Any, seed: int = 0
                  ) -> list[tuple[str, str, list, list[float]]]:
    """(ladder key, modality, each rung's view features, each rung's model score); the key
    (`seed <seed> <image>/<kind>`) keeps the draws of one image and kind apart."""
    from medq.assess.evidence import evidence_rows, view_features

    return [(f"seed {seed} {name}/{kind}", ladder[0].modality,
             [view_features(evidence_rows(x)) for x in ladder],
             [a.model_score for a in assessor.assess_many(ladder)])
            for name, kind, ladder in ladders]


def held_out(model: str, ladder_seeds: int = 1) -> dict[str, Any]:
    """The test split's references, model scores and evidence features, and the engine's and
    the independent simulators' ranking ladders' model scores and evidence features."""
    from independent import independent_ladders

    from medq.assess.evidence import view_features
    from medq.assess.predictor import Assessor
    from medq.assess.weights import load_weights
    from medq.data.bench import BenchPlan, build
    from medq.train.evaluate import held_out_images, predict, ranking_ladders

    net, record = load_weights(model)
    plan = BenchPlan(**record["bench_plan"]) if record.get("bench_plan") else BenchPlan()
    test = build(plan, "test", progress=False)  # the model's own inputs (a trial's plan)
    features = np.stack([view_features(test["m"][int(o):int(o) + int(k)])
                         for o, k in zip(test["offset"], test["n_valid"], strict=True)])
    assessor = Assessor(model, measures=False)
    images = held_out_images()
    return {"y": test["score"], "modality": test["modality"], "features": features,
            "model": predict(net, test, bool(record.get("use_prompts", True))),
            "ladders": [row for seed in range(ladder_seeds) for row in
                        ladder_inputs(assessor, ranking_ladders(images, seed), seed)],
            "independent": [row for seed in range(ladder_seeds) for row in
                            ladder_inputs(assessor, independent_ladders(images, seed), seed)],
            "samples": sample_pairs(assessor)}


def _ranking(detector: Any, ladders: list) -> tuple[float, float]:
    """(mean over kinds, mean over MR kinds) of the ladders' Spearman with this detector."""
    from medq.assess.assessment import combined_score
    from medq.assess.detector import evidence_of
    from medq.train.evaluate import ladder_spearman, ranking_summary

    pairs = {}
    for pair, modality, xs, model_scores in ladders:
        scores = [combined_score(m, evidence_of(detector, x, modality).score)
                  for x, m in zip(xs, model_scores, strict=True)]
        pairs[pair] = {"spearman": ladder_spearman(scores)}
    summary = ranking_summary(pairs)
    mr = [v for k, v in summary["per_kind"].items() if k.startswith("mr_")]
    return summary["mean"], float(np.mean(mr))


def rates(detector: Any, data: dict[str, Any]) -> tuple[float, ...]:
    """One fitted detector's numbers, in `COLUMNS` order."""
    from medq.assess.assessment import combined_score
    from medq.assess.detector import evidence_of

    ev = np.array([evidence_of(detector, x, str(m)).score
                   for x, m in zip(data["features"], data["modality"], strict=True)])
    both = np.array([combined_score(m, e) for m, e in zip(data["model"], ev, strict=True)])
    mr = data["modality"] == "MR"
    leads = [np.subtract(*[combined_score(m, evidence_of(detector, x, modality).score)
                           for x, m in zip(xs, models, strict=True)])
             for modality, xs, models in data["samples"]]
    return (float(spearmanr(data["y"], ev)[0]), float(spearmanr(data["y"], both)[0]),
            float(spearmanr(data["y"][mr], both[mr])[0]),
            *_ranking(detector, data["ladders"]), *_ranking(detector, data["independent"]),
            float(min(leads)))


def _line(label: str, values: Any) -> str:
    """One printed row: a label and the numbers under `COLUMNS`."""
    return f"{label:34s} " + " ".join(f"{v:>{max(len(c), 6)}.3f}" for c, v in
                                      zip(COLUMNS, values, strict=True))


def member_checkpoint(model: str, k: int, folder: Path) -> str:
    """Member `k` of a seed-ensemble checkpoint written alone (with the ensemble's record) into
    `folder`: a checkpoint `held_out` can load like any run's."""
    import torch

    from medq.assess.weights import resolve

    ckpt = torch.load(resolve(model), map_location="cpu", weights_only=True)
    members = ckpt.get("members") or []
    if not 0 <= k < len(members):
        raise SystemExit(f"{model} has {len(members)} ensemble members; --member {k} is not one")
    record = {key: v for key, v in ckpt.get("medq", {}).items() if key != "ensemble_seeds"}
    path = folder / f"member-{k}.pt"
    torch.save({**members[k], "medq": record}, path)
    return str(path)


def main() -> None:
    """Fit (or read), score and print one line per fit and the mean per folds setting."""
    from medq.data.items import ZOOM_PROFILES

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mediqa-s")
    parser.add_argument("--member", type=int, default=None,
                        help="judge member K of a seed-ensemble --model alone (0: its first seed)")
    parser.add_argument("--zoom", choices=tuple(ZOOM_PROFILES), default="anywhere")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--folds", default="1,5")
    parser.add_argument("--ladders", type=int, default=0,
                        help="severity ladders each refit also learns to rank (default 0, as "
                             "the shipped calibration; tried: 1000)")
    parser.add_argument("--calibrations", nargs="+", default=None,
                        help="judge these calibration files ('shipped': the shipped view "
                             "calibration) instead of refitting")
    parser.add_argument("--ladder-seeds", type=int, default=1,
                        help="draw the ranking ladders with seeds 0 … N−1 (default 1: seed 0)")
    args = parser.parse_args()
    from medq.assess.detector import VIEW_CALIBRATION_PATH, Detector, load_detector
    from medq.describe.calibrate import fit
    from medq.describe.calibration_data import build, build_ladders

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model if args.member is None else member_checkpoint(args.model, args.member,
                                                                         Path(tmp))
        data = held_out(model, max(1, args.ladder_seeds))
    print(f"{'':34s} " + " ".join(f"{c:>6s}" for c in COLUMNS))
    if args.calibrations:
        for name in args.calibrations:
            path = VIEW_CALIBRATION_PATH if name == "shipped" else Path(name)
            print(_line(name[-34:], rates(load_detector(path), data)), flush=True)
        return
    calibration = build(3600, 150, view=True, zoom=args.zoom)
    ladders = build_ladders(args.ladders, view=True, zoom=args.zoom) if args.ladders else None
    for folds in (int(f) for f in args.folds.split(",")):
        found = []
        for seed in range(args.seeds):
            fitted = fit(calibration, seed=seed, folds=folds, ladders=ladders)
            found.append(rates(Detector(fitted), data))
            print(_line(f"folds {folds} seed {seed}", found[-1]), flush=True)
        print(_line(f"folds {folds}, mean of {args.seeds} seeds", np.mean(found, axis=0)))


if __name__ == "__main__":
    main()
