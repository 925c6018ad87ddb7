"""medq benchmarks (`make bench`): speed targets live here, never in unit tests.

Writes one JSON per suite under benchmarks/results/ and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def rate(fn: Callable[[], object], min_seconds: float = 3.0, min_runs: int = 5) -> dict[str, float]:
    """Calls per second of `fn` after one warm-up call (median of per-call times)."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    return {"per_second": 1.0 / med, "median_s": med, "runs": len(times)}


def ct_slice(size: int):
    """pydicom's CT_small resampled to `size`² (spacing scaled so the field of view is kept)."""
    from skimage.transform import resize

    from medq.data.samples import load_sample

    ct = load_sample("ct_small")
    arr = resize(ct.array, (size, size), order=1, preserve_range=True, anti_aliasing=False)
    scale = ct.shape[0] / size
    return ct.evolve(array=arr, spacing=tuple(s * scale for s in ct.spacing))


def bench_engine() -> dict[str, object]:
    """Degradation engine speed: simulations per second per kind on CT/MR slices."""
    from medq.degrade import simulate
    from medq.image import MedImage

    rows: dict[str, object] = {}
    for size in (256, 512):
        img = ct_slice(size)
        for kind in ("ct_low_dose", "ct_sparse_view"):
            r = rate(lambda img=img, kind=kind: simulate(img, kind, severity="moderate", seed=0))
            rows[f"{kind}@{size}"] = r
    mr = MedImage(ct_slice(256).array + 1024.0, (1.0, 1.0), "MR", "unknown")
    for kind in ("mr_undersample", "mr_noise", "mr_motion"):
        rows[f"{kind}@256"] = rate(
            lambda kind=kind: simulate(mr, kind, severity="moderate", seed=0))
    return rows


def write_afni(stem: Path, series: np.ndarray) -> Path:
    """A gzipped AFNI dataset (`<stem>+orig.HEAD` and `.BRIK.gz`, 1 mm, int16) of a 4D
    `(i, j, k, t)` series, with the header attributes nibabel reads; its header's path."""
    import gzip

    x, y, z, t = series.shape

    def attr(kind: str, name: str, values: list[float] | str) -> str:
        if isinstance(values, str):
            return f"type = string-attribute\nname = {name}\ncount = {len(values) + 1}\n'{values}~"
        return f"type = {kind}-attribute\nname = {name}\ncount = {len(values)}\n" + \
            " ".join(str(v) for v in values)

    head = Path(f"{stem}+orig.HEAD")
    head.write_text("\n\n".join([
        attr("string", "TYPESTRING", "3DIM_HEAD_ANAT"),
        attr("integer", "SCENE_DATA", [0, 2, 0, -999, -999, -999, -999, -999]),
        attr("integer", "ORIENT_SPECIFIC", [0, 3, 4]),
        attr("float", "ORIGIN", [0.0, 0.0, 0.0]),
        attr("float", "DELTA", [1.0, 1.0, 1.0]),
        attr("float", "IJK_TO_DICOM_REAL", [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]),
        attr("integer", "DATASET_RANK", [3, t, 0, 0, 0, 0, 0, 0]),
        attr("integer", "DATASET_DIMENSIONS", [x, y, z, 0, 0]),
        attr("integer", "BRICK_TYPES", [1] * t),
        attr("float", "BRICK_FLOAT_FACS", [0.0] * t),
        attr("string", "BYTEORDER_STRING", "LSB_FIRST")]) + "\n")
    with gzip.open(f"{stem}+orig.BRIK.gz", "wb") as fh:
        fh.write(series.astype("<i2").tobytes(order="F"))
    return head


def bench_volumes(count: int = 120) -> dict[str, object]:
    """Reading every volume of a gzipped 4D NIfTI one after the other (`--each-volume`), in
    volumes per second: medq (the file unpacked once per process) against nibabel opening the
    file for each volume (what medq did: it unpacks the file up to that volume every time); and
    medq on the same series as a compressed 4D NRRD (read once per process through ITK) and as
    a FreeSurfer .mgz and an AFNI .HEAD/.BRIK.gz pair (each unpacked once, as the NIfTI)."""
    import tempfile

    import nibabel as nib
    import SimpleITK as sitk
    from skimage.transform import resize

    from medq.data.samples import load_sample
    from medq.io import gz, itk, load

    rng = np.random.default_rng(0)
    t1 = resize(load_sample("mni_t1").array, (64, 80, 64), anti_aliasing=True)
    series = t1.T[..., None] * (1 + 0.01 * rng.standard_normal((1, 1, 1, count)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"sub-01_task-rest_bold_{count}.nii.gz"
        nib.save(nib.Nifti1Image(series.astype(np.int16), np.eye(4)), path)

        def medq_pass() -> None:
            gz.unpacked.cache_clear()  # the unpacking is part of the pass
            for k in range(count):
                load(f"{path}@volume={k}")

        def nibabel_pass() -> None:
            for k in range(count):
                np.asarray(nib.load(path).dataobj[..., k])

        nrrd = Path(tmp) / f"series_{count}.nrrd"  # a compressed 4D NRRD, read through ITK
        sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(series[..., k].T.astype(
            np.int16)) for k in range(count)]), str(nrrd), True)

        def nrrd_pass() -> None:
            itk._read_series.cache_clear()  # the read is part of the pass
            for k in range(count):
                load(f"{nrrd}@volume={k}")

        mgz = Path(tmp) / f"series_{count}.mgz"  # the same series as a FreeSurfer .mgz
        nib.save(nib.MGHImage(series.astype(np.float32), np.eye(4)), mgz)

        def mgz_pass() -> None:
            gz.unpacked.cache_clear()
            for k in range(count):
                load(f"{mgz}@volume={k}")

        afni = write_afni(Path(tmp) / f"series_{count}", series)

        def afni_pass() -> None:
            gz.unpacked.cache_clear()
            for k in range(count):
                load(f"{afni}@volume={k}")

        rows = {}
        for name, fn in (("medq", medq_pass), ("nibabel per volume", nibabel_pass),
                         ("medq .nrrd (gzip)", nrrd_pass), ("medq .mgz", mgz_pass),
                         ("medq AFNI .BRIK.gz", afni_pass)):
            r = rate(fn, min_seconds=0.0, min_runs=2)
            rows[f"{count} vols, {name}"] = {**r, "per_second": count / r["median_s"],
                                                     "median_s": r["median_s"] / count}
    return rows


SUITES: dict[str, Callable[[], dict[str, object]]] = {"engine": bench_engine,
                                                      "volumes": bench_volumes}


def main(argv: list[str] | None = None) -> int:
    """Run the selected suites, print a table, write JSON results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suites", nargs="*", default=list(SUITES), help=f"any of {list(SUITES)}")
    args = parser.parse_args(argv)
    import torch

    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "platform": platform.platform()}
    for name in args.suites:
        rows = SUITES[name]()
        print(f"\n== {name} ({machine['cpus']} cpus, torch threads {machine['torch_threads']})")
        for key, r in rows.items():
            print(f"  {key:28s} {r['per_second']:8.2f} /s   median {r['median_s'] * 1e3:8.1f} ms")
        path = RESULTS / f"{name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
        tmp.replace(path)
        print(f"  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
