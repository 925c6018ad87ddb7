"""Probe: how much of `medq assess`'s time on 512² slices is the evidence pass?

Measures `assess_many` throughput on the speed benchmark's 512² CT DICOM slices (2 threads,
start-up excluded, as `benchmarks/assess_speed.py`) as shipped, and again with every slice's
evidence rows replaced by the first slice's (computed once), so the rest of the pipeline —
reading, views, prompts, the model, findings — runs as it does. The second figure is what
`medq assess` could reach if the evidence cost nothing; scores are not meaningful there. Usage:
    python benchmarks/probes/evidence_share.py [--slices 96]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from assess_speed import make_slices, throughput  # noqa: E402


def main() -> None:
    """Print slices per second with the evidence pass and with it replaced by a constant."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=96)
    args = parser.parse_args()
    import medq.assess.loading as loading
    from medq.assess.predictor import Assessor
    from medq.io import load

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_slices(Path(tmp), args.slices)
        real = throughput(Assessor("mediqa-s", measures=False, threads=2), paths)
        first = load(paths[0])
        fixed = loading.evidence_pass(first, loading.input_indices(first))
        loading.evidence_pass = lambda image, indices, **_: fixed  # forked workers inherit it
        free = throughput(Assessor("mediqa-s", measures=False, threads=2), paths)
    print(f"with the evidence pass:          {real['per_second']:.1f} slices/s")
    print(f"evidence replaced by a constant: {free['per_second']:.1f} slices/s")


if __name__ == "__main__":
    main()
