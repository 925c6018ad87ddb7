"""The command line of `python -m medq.describe.calibrate`: build the calibration data, fit the
finding detector (`calibrate.fit`) and write its calibration JSON."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from medq.assess.detector import CALIBRATION_PATH, VIEW_CALIBRATION_PATH
from medq.assess.evidence import DETECTOR_EXTRAS
from medq.data.items import ZOOM_PROFILES
from medq.describe.calibrate import HIDDEN, fit
from medq.describe.calibrate import __doc__ as calibrate_doc
from medq.describe.calibration_data import build, build_ladders, data_path, read_data
from medq.describe.extension import extend, parse_extension
from medq.describe.ladders import LADDERS, RANK_MARGIN, RANK_WEIGHT
from medq.errors import InputError


def main(argv: list[str] | None = None) -> None:
    """Command line: build the calibration data, fit, write the calibration JSON."""
    from medq.io.atomic import atomic_write_text

    ap = argparse.ArgumentParser(description=calibrate_doc.splitlines()[0])
    ap.add_argument("--n2d", type=int, default=3600)
    ap.add_argument("--n3d", type=int, default=150)
    ap.add_argument("--heads", default=None, help="also use this model's finding heads")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--view", action="store_true",
                    help="features on the model's ≤256-px views (the evidence rows)")
    ap.add_argument("--zoom", choices=tuple(ZOOM_PROFILES), default=None,
                    help="the items' zoomed fields of view (`items.ZOOM_PROFILES`; default: "
                         "central for the full planes, anywhere with --view)")
    ap.add_argument("--output", type=Path, default=None,
                    help="where to write (default: the shipped calibration of the features)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the fit (its validation split and the nets' initialisation)")
    ap.add_argument("--folds", type=int, default=1,
                    help="cross-fit over this many folds (1: one 80/20 split)")
    ap.add_argument("--hidden", type=int, default=HIDDEN, help="width of each MLP's layers")
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="dropout after each hidden layer while fitting")
    ap.add_argument("--data", type=Path, default=None,
                    help="fit on this calibration data file (.npz) instead of building one")
    ap.add_argument("--ladders", type=int, default=LADDERS,
                    help="severity ladders of the training sources the fit also learns to rank "
                         f"(default {LADDERS}; tried: 1000)")
    ap.add_argument("--rank-weight", type=float, default=RANK_WEIGHT,
                    help="weight of the ladder term beside the items' loss")
    ap.add_argument("--rank-margin", type=float, default=RANK_MARGIN,
                    help="fraction of the true rise in badness a rung's must rise by")
    ap.add_argument("--noisy-base", type=float, default=0.0,
                    help="chance that an item starts from a noisy base (items.degraded_item)")
    ap.add_argument("--extras", nargs="+", choices=DETECTOR_EXTRAS, default=[],
                    help="full-plane features beside the evidence features (tried, not shipped)")
    ap.add_argument("--trees", type=float, default=0.0,
                    help="weight of gradient-boosted trees blended with the nets (0: nets only; "
                         "one split only)")
    ap.add_argument("--sources", nargs="+", default=[],
                    help="build the items from these training sources only")
    ap.add_argument("--extend", default=None, metavar="GROUP:TYPES",
                    help="extend the calibration at --output (default: the shipped one) with "
                         "nets for these types fitted on this modality group's items alone "
                         "(e.g. OP:noise; medq.describe.extension), keeping the rest")
    args = ap.parse_args(argv)
    if not 0.0 <= args.trees <= 1.0:
        ap.error("--trees is a weight between 0 and 1")
    if args.trees and args.folds > 1:
        ap.error("--trees fits on one split: not with --folds")
    if args.view and args.extras:
        ap.error("--extras are full-plane features: not with --view")
    if args.ladders < 0 or args.rank_weight < 0 or args.rank_margin < 0:
        ap.error("--ladders, --rank-weight and --rank-margin take values of 0 or more")
    if not 0.0 <= args.noisy_base <= 1.0:
        ap.error("--noisy-base is a chance between 0 and 1")
    zoom = args.zoom or ("anywhere" if args.view else "central")
    extras = tuple(args.extras)
    output = args.output or (VIEW_CALIBRATION_PATH if args.view else CALIBRATION_PATH)
    started = time.time()
    if args.extend and args.heads:
        ap.error("--extend fits on the evidence features alone: not with --heads")
    if args.data and args.sources:
        ap.error("--sources chooses the items to build: not with --data")
    try:
        extension = parse_extension(args.extend) if args.extend else None
        if args.data:
            data = read_data(args.data, bool(args.heads))
        else:
            data = build(args.n2d, args.n3d, args.heads, args.workers, args.view, zoom,
                         extras, args.noisy_base, tuple(args.sources))
        if extension:
            calib = extend(json.loads(output.read_text()), data, *extension, seed=args.seed,
                           hidden=args.hidden)
            atomic_write_text(output, json.dumps(calib))
            print(json.dumps(calib["extensions"][-1]["validation"], indent=1))
            print(f"extended {output} ({time.time() - started:.0f} s)")
            return
    except (InputError, OSError, ValueError, KeyError) as e:
        ap.error(f"{type(e).__name__}: {e}" if isinstance(e, KeyError) else str(e))
    ladders = build_ladders(args.ladders, args.workers, args.view, zoom) if args.ladders else None
    calib = fit(data, args.heads, seed=args.seed, hidden=args.hidden, dropout=args.dropout,
                folds=args.folds, ladders=ladders, rank_weight=args.rank_weight,
                rank_margin=args.rank_margin, trees=args.trees)
    calib["features_on"] = "view" if args.view else "full"
    # the data file's name, so probes find the cached items (`evidence_score.py`)
    calib["data_file"] = (args.data or data_path(args.n2d, args.n3d, args.heads, args.view,
                                                 zoom, extras, args.noisy_base,
                                                 tuple(args.sources))).name
    calib["noisy_base"] = args.noisy_base
    calib["seconds"] = round(time.time() - started, 1)
    atomic_write_text(output, json.dumps(calib))
    print(json.dumps(calib["validation"], indent=1))
    print(f"wrote {output}")
