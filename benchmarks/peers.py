"""medq beside its peers on the same severity ladders (`make bench`).

A generic no-reference IQA made for photographs (BRISQUE, the `brisque` package with its
bundled LIVE model) and two of MRIQC's image quality measures as one-number quality scores
(SNR, higher better; EFC, lower better; as `medq assess` reports them) score the
same ladders as `medq assess`: the held-out real images (pydicom's CT and MR files, the skull
radiograph) clean and at four rising severities of medq's engine (`benchmarks/ranking.py`) and
of the independent simulators (`benchmarks/independent.py`: scikit-image, MONAI, TorchIO).
For each ladder Spearman(severity, falling quality) is taken (1: every step ranked worse than
the one before; −1: ranked better), averaged per kind and over kinds. BRISQUE reads the image
as the quality model reads it (`medq.train.peers.display`: CT in the window its file states,
else soft tissue 40/400 HU; other modalities between their 0.5th and 99.5th percentiles) as
grey in [0, 1].
Each ladder is one random draw of the simulators, so, as in `benchmarks/ranking.py` and
`benchmarks/independent.py`, they are drawn with `--seeds` seeds (SEED … SEED+N−1, default 4) and
the tables give the means over them (each seed's own in the JSON, `per_seed`).
Writes benchmarks/results/peers.json. Usage:
    python benchmarks/peers.py [FILE ...] [--modality M] [--seed 0] [--seeds 4] [--model mediqa-s]
FILE: your own clean CT, MR or radiograph files instead of the held-out images.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from independent import independent_ladders, ladder_images, ladder_parser, results_file  # noqa: E402

from medq.train.peers import brisque_scorer, display  # noqa: E402

PEERS = ("brisque", "mriqc_snr", "mriqc_efc")
"""The peer scores, each turned so that higher means better quality."""


def peer_scores(ladder: list[Any], brisque: Callable[[np.ndarray], float]
                ) -> dict[str, list[float]]:
    """Each peer's quality of every rung of a ladder, higher = better (the MRIQC measures as
    `medq assess` reports them, `medq.assess.measures.compute_measures`)."""
    from medq.assess.measures import compute_measures

    out: dict[str, list[float]] = {name: [] for name in PEERS}
    for image in ladder:
        measures = compute_measures(image.array, image.modality)
        out["brisque"].append(-brisque(display(image)))
        out["mriqc_snr"].append(measures["snr"])
        out["mriqc_efc"].append(-measures["efc"])
    return out


def run(images: dict[str, Any], assessor: Any, brisque: Callable[[np.ndarray], float],
        seed: int) -> dict[str, Any]:
    """Spearman summaries per method and simulator (`ranking_summary`'s shape) of one seed's
    ladders, medq's scores from `assessor`."""
    from medq.train.evaluate import ladder_spearman, ranking_ladders, ranking_summary

    methods = ("medq", *PEERS)
    pairs: dict[str, dict[str, dict[str, Any]]] = {}
    for simulator, ladders in (("engine", ranking_ladders(images, seed)),
                               ("independent", independent_ladders(images, seed))):
        for name, kind, ladder in ladders:
            found = assessor.assess_many(ladder)
            failed = [r for r in found if isinstance(r, Exception)]
            if failed:
                sys.exit(f"{name}/{kind}: {failed[0]}")
            scores = {"medq": [float(r.score) for r in found], **peer_scores(ladder, brisque)}
            for method in methods:
                pairs.setdefault(f"{simulator}:{method}", {})[f"{name}/{kind}"] = {
                    "scores": scores[method], "spearman": ladder_spearman(scores[method])}
            row = " ".join(f"{m} {ladder_spearman(scores[m]):+.2f}" for m in methods)
            print(f"seed {seed} {simulator:11s} {name}/{kind:28s} {row}", flush=True)
    return {key: ranking_summary(p) for key, p in pairs.items()}


def run_seeds(images: dict[str, Any], model: str, seeds: range) -> dict[str, Any]:
    """`run` for every seed, each method and simulator combined over the seeds
    (`ranking_over_seeds`: per-kind means, `mean_range`, `per_seed`)."""
    from medq.assess.predictor import Assessor
    from medq.train.evaluate import ranking_over_seeds

    assessor, brisque = Assessor(model, measures=False), brisque_scorer()
    per_seed = {seed: run(images, assessor, brisque, seed) for seed in seeds}
    return {key: ranking_over_seeds({seed: found[key] for seed, found in per_seed.items()})
            for key in per_seed[seeds[0]]}


def table(results: dict[str, Any]) -> None:
    """Per simulator: kinds as rows, methods as columns, then the mean over kinds."""
    methods = ("medq", *PEERS)
    seeds = results["engine:medq"]["seeds"]
    for simulator in ("engine", "independent"):
        kinds = results[f"{simulator}:medq"]["per_kind"]
        print(f"\n{simulator} ladders: Spearman(severity, falling quality), mean over seeds "
              f"{', '.join(map(str, seeds))}")
        print(f"{'kind':26s}" + "".join(f"{m:>11s}" for m in methods))
        for kind in kinds:
            print(f"{kind:26s}" + "".join(
                f"{results[f'{simulator}:{m}']['per_kind'][kind]:11.3f}" for m in methods))
        print(f"{'mean over kinds':26s}" + "".join(
            f"{results[f'{simulator}:{m}']['mean']:11.3f}" for m in methods))
        print(f"{'lowest … highest seed':26s}" + "".join(
            "{:>11s}".format("{:.2f}…{:.2f}".format(*results[f"{simulator}:{m}"]["mean_range"]))
            for m in methods))


def main() -> None:
    """Score every ladder with medq and its peers; print the tables, write the JSON."""
    parser = ladder_parser(__doc__)
    parser.add_argument("--model", default="mediqa-s")
    parser.add_argument("--seeds", type=int, default=4,
                        help="draw the ladders with seeds SEED … SEED+N−1 (default 4)")
    args = parser.parse_args()
    from medq.errors import MedqError

    try:
        results = run_seeds(ladder_images(args.images, args.modality), args.model,
                            range(args.seed, args.seed + max(1, args.seeds)))
    except MedqError as e:  # a peer's package missing, an unknown model: one line, no trace
        sys.exit(f"peers: {e.message}")
    table(results)
    out = {"model": args.model, "seeds": results["engine:medq"]["seeds"], "peers": list(PEERS),
           **results}
    results_file("peers", bool(args.images)).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
