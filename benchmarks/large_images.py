"""`medq assess` and `medq describe` on full-size 2D images: wall time and peak memory per run.

A radiograph detector reads 3000×2500 pixels and a fundus camera writes 4000×3000 colour
photographs; the description's finding detector reads the whole plane at full resolution, so
these are medq's costliest single inputs. Each command runs in a new process (start-up included,
as a user meets it) on a 16-bit PNG radiograph (the bundled skull radiograph scaled up, with
quantum-like noise) and an 8-bit colour JPEG photograph (the bundled retina scaled up).

Writes benchmarks/results/large_images.json. Usage:
    python benchmarks/large_images.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def make_images(folder: Path) -> dict[str, Path]:
    """The two test files: a 3000×2500 16-bit radiograph PNG and a 4000×3000 colour JPEG."""
    from skimage.transform import resize

    from medq.data.samples import load_sample
    from medq.io import save

    rng = np.random.default_rng(0)
    xr = load_sample("xr_head")
    big = resize(np.asarray(xr.array, dtype=np.float64), (3000, 2500), order=1,
                 preserve_range=True)
    big = (big - big.min()) / (np.ptp(big) or 1.0) * 60000.0
    big = np.clip(big + rng.normal(0.0, 0.004 * 60000.0, big.shape), 0, 65535).astype(np.uint16)
    xr_path = save(xr.evolve(array=big, spacing=(0.14, 0.14)), folder / "radiograph_3000x2500.png")
    retina = load_sample("retina")
    photo = resize(np.asarray(retina.array, dtype=np.float64), (3000, 4000), order=1,
                   preserve_range=True)
    op_path = save(retina.evolve(array=np.clip(photo, 0, 255).astype(np.uint8),
                                 spacing=(0.01, 0.01)), folder / "fundus_4000x3000.jpg")
    return {"radiograph_3000x2500": Path(xr_path), "fundus_4000x3000": Path(op_path)}


def timed_run(args: list[str]) -> dict[str, float]:
    """Wall seconds and peak resident memory (MB) of one `medq` run in a new process."""
    beside = Path(sys.executable).with_name("medq")  # this environment's medq first
    medq = str(beside) if beside.exists() else shutil.which("medq") or "medq"
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen([medq, *args], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        if child.returncode != 0:
            err.seek(0)
            raise SystemExit(f"medq {' '.join(args)} failed: {err.read().decode()[-500:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in make_images(Path(tmp)).items():
            for command in ("assess", "describe"):
                runs = [timed_run([command, str(path), "--json"]) for _ in range(args.repeats)]
                best = min(runs, key=lambda r: r["seconds"])
                rows[f"{command} {name}"] = best
                print(f"medq {command:8s} {name:22s} {best['seconds']:6.2f} s   "
                      f"peak {best['peak_rss_mb']:6.0f} MB")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "large_images.json"
    out.write_text(json.dumps({"machine": platform.platform(), "runs": rows}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
