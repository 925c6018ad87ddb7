"""Probe: how much the description metrics move with the seed of the full-resolution detector's
calibration fit, and with its data.

`medq describe` reads its findings from the full-resolution calibration of the finding detector
(`python -m medq.describe.calibrate`, `src/medq/assess/detector-full.json`), a small MLP
ensemble whose seed picks its validation split (which also sets the presence thresholds) and its
initial weights. This refits it on a calibration data file (by default the one the shipped
recipe builds, `--zoom central`, about 20 minutes on 2 cores the first time; `--zoom anywhere`
the benchmark's own zoom profile; `--data` names another cached file) for several
seeds, with one 80/20 split (the shipped recipe) and cross-fitted (`--folds 5`), and prints for
each fit the description total /8 and the finding-type accuracy (moderate or worse) on the
description benchmark's held-out items (the report rule of `findings_basis.evaluate`, which
reproduces `medq bench describe`) and on the calibration's own validation items (with its
spike and bias-field recall), then the shipped calibration's on the benchmark items.
`--ladders N`: each refit also learns to rank N full-plane severity ladders of the training
sources (`medq.describe.ladders`; tried, not shipped). Usage:
    python benchmarks/probes/describe_seeds.py [--data NPZ | --zoom central|anywhere] [--seeds 4]
                                               [--folds 1,5] [--extras spike_contrast]
                                               [--ladders N] [--trees 0.5]
`--trees W`: each one-split seed is also fitted blended with gradient-boosted trees of weight W
(`calibrate --trees`; tried, not shipped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from findings_basis import evaluate, item_rows, relative  # noqa: E402


def collect(extras: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Per description-benchmark item: the base fields and its full-plane features (with the
    detector `extras` asked for)."""
    from medq.assess.evidence import feature_vector

    return [{**row, "x": feature_vector(image, extras=extras)[None]}
            for image, row in item_rows()]


def described(detector: Any, rows: list[dict[str, Any]]) -> str:
    """The description metrics of one calibration on the collected items."""
    read = [dict(zip(("presence", "severity"), relative(detector, r["x"], r["modality"]),
                     strict=True), **r) for r in rows]
    return evaluate(read, lambda r, j: r["presence"][j], lambda r, j: r["severity"][j],
                    detector.normal_fraction)


def main() -> None:
    """Fit and print one line per (folds, seed), then the shipped calibration's line."""
    from medq.data.items import ZOOM_PROFILES

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--zoom", choices=tuple(ZOOM_PROFILES), default="central")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--folds", default="1,5")
    parser.add_argument("--extras", nargs="+", default=[],
                        help="also fit with these full-plane extras (evidence.DETECTOR_EXTRAS), "
                             "each seed beside its fit without them")
    parser.add_argument("--ladders", type=int, default=0,
                        help="severity ladders each refit also learns to rank (full planes, the "
                             "zoom profile's; default 0 as shipped; tried: 1000)")
    parser.add_argument("--trees", type=float, default=0.0,
                        help="also fit each one-split seed blended with gradient-boosted trees "
                             "of this weight (`calibrate --trees`; tried, not shipped)")
    args = parser.parse_args()
    from medq.assess.detector import Detector, load_detector
    from medq.assess.evidence import FEATURE_NAMES
    from medq.describe.calibrate import fit
    from medq.describe.calibration_data import build, build_ladders, data_path, read_data

    extras = tuple(args.extras)
    calibration = read_data(args.data) if args.data else build(3600, 150, zoom=args.zoom,
                                                               extras=extras)
    print("calibration data: "
          f"{(args.data or data_path(3600, 150, zoom=args.zoom, extras=extras)).name}")
    ladders = build_ladders(args.ladders, zoom=args.zoom) if args.ladders else None
    rows = collect(extras)
    widths = {"": len(FEATURE_NAMES)}
    if extras:
        widths[f" with {', '.join(extras)}"] = len(FEATURE_NAMES) + len(extras)
    for folds in (int(f) for f in args.folds.split(",")):
        for seed in range(args.seeds):
            variants = [(label, width, 0.0) for label, width in widths.items()]
            if args.trees and folds == 1:
                variants.append((f" with trees {args.trees:g}", len(FEATURE_NAMES), args.trees))
            for label, width, trees in variants:
                data = {**calibration, "x": calibration["x"][:, :width]}
                if "features" in data:  # the names of the columns kept
                    data["features"] = data["features"][:width]
                calib = fit(data, seed=seed, folds=folds, trees=trees,
                            ladders=ladders if width == len(FEATURE_NAMES) else None)
                found = described(Detector(calib), [{**r, "x": r["x"][:, :width]} for r in rows])
                own = calib["validation"]  # on the calibration's own validation items
                print(f"folds {folds} seed {seed}{label}: {found}; validation "
                      f"{own['description_metrics']['total']:.2f}/8, type accuracy "
                      f"{own['description_metrics']['type_accuracy']:.3f}, recall spike "
                      f"{own['per_type']['spike']['recall']:.2f}, bias field "
                      f"{own['per_type']['bias_field']['recall']:.2f}", flush=True)
    shipped = load_detector()
    width = len(FEATURE_NAMES) + len(shipped.extras)  # the features it reads
    print(f"shipped ({shipped.calibration['data_file']}): "
          f"{described(shipped, [{**r, 'x': r['x'][:, :width]} for r in rows])}")

if __name__ == "__main__":
    main()
