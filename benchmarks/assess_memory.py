"""`medq assess` memory on a batch of CT volumes: the main process's peak resident memory.

Writes benchmarks/results/assess_memory.json. Usage:
    python benchmarks/assess_memory.py [--volumes 16] [--depth 100] [--batch-size 8]
Each volume is a synthetic 512² CT series of `depth` slices stored as NIfTI (about 100 MB in
memory at depth 100). The loader workers hand back only a volume's salient planes, so the
main process holds a few slices per volume whatever the batch; peak memory should stay near
the model's own footprint rather than grow with `batch-size` × volume size.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def make_volumes(folder: Path, n: int, depth: int) -> list[Path]:
    """n copies of one synthetic CT volume (body block in air, Gaussian noise) as NIfTI."""
    from medq.image import MedImage
    from medq.io import save

    rng = np.random.default_rng(0)
    volume = rng.standard_normal((depth, 512, 512), dtype=np.float32) * 20 - 1000
    volume[:, 100:400, 100:400] += 1000
    first = Path(save(MedImage(volume, (2.0, 0.7, 0.7), "CT"), folder / "v000.nii"))
    paths = [first]
    for i in range(1, n):
        dest = folder / f"v{i:03d}.nii"
        dest.write_bytes(first.read_bytes())
        paths.append(dest)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volumes", type=int, default=16)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    from medq.assess.predictor import Assessor

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_volumes(Path(tmp), args.volumes, args.depth)
        assessor = Assessor("mediqa-s", batch_size=args.batch_size, measures=False)
        t0 = time.perf_counter()
        results = assessor.assess_many(paths)
        seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {"volumes": args.volumes, "depth": args.depth, "batch_size": args.batch_size,
           "volume_mb": round(args.depth * 512 * 512 * 4 / 2**20, 1), "seconds": round(seconds, 2),
           "failed": sum(isinstance(r, Exception) for r in results),
           "peak_rss_mb": round(peak_mb, 1)}
    print(f"{args.volumes} CT volumes of {args.depth}×512² in chunks of {args.batch_size}: "
          f"peak resident memory {row['peak_rss_mb']:.0f} MB, {seconds:.1f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "assess_memory.json"
    out.write_text(json.dumps({"machine": platform.platform(), **row}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
