"""`medq assess` throughput (start-up excluded): 512² DICOM slices and 3D volumes, 2 CPU threads;
and, apart, the wall time of `medq assess` on one slice in a new process (start-up included).

Writes benchmarks/results/assess_speed.json. Usage:
    python benchmarks/assess_speed.py [--slices 96] [--volumes 6] [--model mediqa-s]
                                      [--threads 2] [--device cpu]
The goal for 512² slices is ≥ 50 slices/s on 2 cores; it is measured with and without the
classical measures, at the default precision (`auto`: bfloat16 where the CPU has it) and in
float32 (the measures are numpy/scipy work per pixel, the model is batched); `medq describe`'s
throughput (load, assess, describe) with the detector's features taken by the loader workers
and, for comparison, computed after each batch on one core; and
the single-thread costs of the model's per-slice measure input (evidence rows) and of the
classical measures are reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def make_slices(folder: Path, n: int) -> list[Path]:
    """n uncompressed 512² CT DICOM files (pydicom's 693_J2KI, decoded and re-written by medq)."""
    from medq.data.sources import sources
    from medq.io import save

    src = next(s for s in sources("test") if s.name == "ct_693")
    image = src.draw(np.random.default_rng(0), "2d")
    first = save(image, folder / "slice_000.dcm")
    paths = [Path(first)]
    for i in range(1, n):
        dest = folder / f"slice_{i:03d}.dcm"
        dest.write_bytes(paths[0].read_bytes())
        paths.append(dest)
    return paths


def make_volumes(folder: Path, n: int) -> list[Path]:
    """n NIfTI volumes: the MNI152 T1 (1 mm) and the PET brain phantom, alternating."""
    from medq.data.samples import load_sample
    from medq.io import save

    images = [load_sample("mni_t1"), load_sample("pet_brain")]
    return [Path(save(images[i % 2], folder / f"vol_{i}.nii.gz")) for i in range(n)]


def throughput(assessor, paths: list[Path]) -> dict[str, float]:
    """Inputs per second of `assess_many` after a warm-up call (the timed call includes forking
    its two loader workers)."""
    from medq.assess.loading import POOL_MIN_ITEMS

    assessor.assess_many((paths * POOL_MIN_ITEMS)[:POOL_MIN_ITEMS])
    t0 = time.perf_counter()
    results = assessor.assess_many(paths)
    seconds = time.perf_counter() - t0
    failed = sum(isinstance(r, Exception) for r in results)
    return {"inputs": len(paths), "seconds": round(seconds, 3),
            "per_second": round(len(paths) / seconds, 2), "failed": failed}


def evidence_cost(path: Path, repeats: int = 10) -> dict[str, float]:
    """Single-thread seconds per 512² slice of the measure input (and of the same rows on a
    128-px view, what a faster model would read once retrained on them), of its streak index,
    of the classical measures (`compute_measures`, what `--no-measures` skips), of the body mask
    (`body_and_anatomy`, taken by both, on the slice and on its view), of the check whether the
    view averages noise away (`fine_noise` of the slice) and of the full-plane features taken
    where it does (`feature_vector`), and of the prompt classifier's modality guess (run only
    for files that do not state a modality)."""
    import torch

    from medq.assess.artifacts import streak_index
    from medq.assess.evidence import EVIDENCE_SIZE, evidence_rows, feature_vector, read_plane
    from medq.assess.filters import shrink
    from medq.assess.masks import body_and_anatomy
    from medq.assess.measures import compute_measures
    from medq.assess.plane_signal import fine_noise
    from medq.assess.prompt_classifier import load_classifier
    from medq.io import load

    torch.set_num_threads(1)  # every cost below is one thread's
    image = load(path)
    plane = read_plane(image.array, image.modality)
    view = read_plane(shrink(image.array.astype(float), EVIDENCE_SIZE), image.modality)
    untagged = image.evolve(modality="OT")
    guess = load_classifier()
    out = {}
    for name, fn in (("evidence_rows", lambda: evidence_rows(image)),
                     ("evidence_rows_128px", lambda: evidence_rows(image, longest=128)),
                     ("streak_index_of_view", lambda: streak_index(view)),
                     ("body_mask", lambda: body_and_anatomy(plane, image.modality)),
                     ("body_mask_of_view", lambda: body_and_anatomy(view, image.modality)),
                     ("noise_check", lambda: fine_noise(plane, image.modality)),
                     ("full_plane_features", lambda: feature_vector(image)),
                     ("classical_measures", lambda: compute_measures(image.array,
                                                                     image.modality)),
                     ("prompt_classifier", lambda: guess(untagged, ("modality", "type")))):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        out[name] = round((time.perf_counter() - t0) / repeats, 4)
    return out


def volume_cost(path: Path, repeats: int = 3) -> dict[str, float]:
    """Single-thread seconds of a volume's salient slices (which slices have body, then the
    middles of seven parts) for the MNI T1 NIfTI (189 × 233 × 197)."""
    from medq.assess.slices import input_indices
    from medq.io import load

    image = load(path)
    input_indices(image)
    t0 = time.perf_counter()
    for _ in range(repeats):
        input_indices(image)
    return {"salient_slices_mni_t1": round((time.perf_counter() - t0) / repeats, 4)}


def first_run(path: Path, repeats: int = 3) -> dict[str, float]:
    """Median wall seconds of `medq assess PATH --no-measures --json` as a new process (what a
    user waits for one file: start-up, model loading and the assessment) and of `medq --version`
    (the interpreter and the CLI alone)."""
    import shutil
    import subprocess
    import sys

    medq = shutil.which("medq", path=str(Path(sys.executable).parent)) or "medq"
    out = {}
    for name, args in (("one_file_run", ["assess", str(path), "--no-measures", "--json"]),
                       ("cli_start", ["--version"])):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([medq, *args], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        out[name] = round(float(np.median(times)), 3)
    return out


def describe_throughput(assessor, paths: list[Path]) -> dict[str, float]:
    """Inputs per second of `medq describe`'s work (load, `assess_many`, `report_from` each)
    after a warm-up call; `assessor` made with `describe=True` hands the detector's features
    over from its loader workers, as `medq describe` does."""
    from medq.describe import report_from
    from medq.io import load

    def run(batch: list[Path]) -> list:
        images = [load(p) for p in batch]
        return [report_from(a, i) for a, i in zip(assessor.assess_many(images), images,
                                                  strict=True)]

    run(paths[:2])
    t0 = time.perf_counter()
    reports = run(paths)
    seconds = time.perf_counter() - t0
    return {"inputs": len(reports), "seconds": round(seconds, 3),
            "per_second": round(len(reports) / seconds, 2), "failed": 0}


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo; else what Python's platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=96)
    parser.add_argument("--volumes", type=int, default=6)
    parser.add_argument("--model", default="mediqa-s")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda, auto")
    args = parser.parse_args()
    from medq.assess.precision import resolve_precision
    from medq.assess.predictor import Assessor

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        slices = make_slices(folder, args.slices)
        volumes = make_volumes(folder, args.volumes)
        for measures, precision in ((False, "auto"), (True, "auto"), (False, "float32")):
            assessor = Assessor(args.model, measures=measures, threads=args.threads,
                                precision=precision, device=args.device)
            tag = "with_measures" if measures else "model_only"
            if precision != "auto":
                tag += f"_{precision}"
            rows[f"slices_512_{tag}"] = throughput(assessor, slices)
            rows[f"volumes_{tag}"] = throughput(assessor, volumes)
        for describe in (False, True):  # `medq describe`, with and without the hand-over
            assessor = Assessor(args.model, threads=args.threads, device=args.device,
                                describe=describe)
            tag = "described" if describe else "described_without_handover"
            rows[f"slices_512_{tag}"] = describe_throughput(assessor, slices)
            rows[f"volumes_{tag}"] = describe_throughput(assessor, volumes)
        cost = evidence_cost(slices[0])
        cost.update(volume_cost(volumes[0]))
        started = first_run(slices[0])
    for name, r in rows.items():
        unit = "slices/s" if name.startswith("slices") else "volumes/s"
        print(f"{name:32s} {r['per_second']:8.2f} {unit}  ({r['inputs']} in {r['seconds']} s)")
    for name, seconds in cost.items():
        unit = "volume" if name.startswith("salient") else "512² slice"
        print(f"{name:32s} {seconds:8.4f} s per {unit} (one thread)")
    for name, seconds in started.items():
        print(f"{name:32s} {seconds:8.3f} s wall, a new process")
    auto = resolve_precision("auto", assessor.device.type)
    print(f"CPU {cpu_name()}: --precision auto runs the model in {auto}"
          + ("" if auto == "bfloat16" else " (no native bfloat16 here)"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "assess_speed.json"
    out.write_text(json.dumps({"machine": platform.platform(), "cpu": cpu_name(),
                               "model": args.model,
                               "threads": args.threads, "device": str(assessor.device),
                               "precision": auto,
                               "results": rows,
                               "seconds_per_slice": cost, "start_up": started}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
