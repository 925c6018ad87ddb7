"""`medq qc run` throughput with 1 and 2 Dask workers, and the scaling ratio (goal ≥ 1.7×).

The archive is generated from the bundled real samples × engine degradations (≥ 500 DICOM files,
a few series, 4 corrupt files). Start-up is kept out: each cluster is started, every worker loads
the model and assesses two warm-up items, then a fresh results database is filled from the whole
archive; items/s = items assessed / time from the first submission to the last stored result.
Worker CPU time per item and the fraction of the time the workers were on a CPU are recorded
too: on a machine shared with other work, a low fraction means the cores were not free.
Writes benchmarks/results/qc_speed.json. Usage:
    python benchmarks/qc_speed.py [--files 520] [--workers 1 2] [--repeats 1] [--fast-samples]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def measure(archive: Path, workers: int, model: str, db: Path) -> dict[str, float]:
    """One timed QC run of `archive` on a warmed LocalCluster of `workers` processes."""
    from medq.qc.discover import discover
    from medq.qc.runner import assess_batch, run_qc, start_client, stop_client, warm_worker
    from medq.qc.store import Store

    client, n = start_client(workers, None)
    try:
        client.run(warm_worker, model)
        client.run(assess_batch, discover(archive)[:2], model)  # first-call imports and caches
        store = Store(db)
        cpu0, client_cpu0 = client.run(time.process_time), time.process_time()
        summary = run_qc(archive, store, model=model, client=client)
        cpu1, client_cpu1 = client.run(time.process_time), time.process_time()
        store.close()
    finally:
        stop_client(client, own_cluster=True)
    assessed, seconds = summary["assessed"], summary["assess_seconds"]
    worker_cpu = sum(cpu1[w] - cpu0[w] for w in cpu1)
    return {"workers": n, "items": assessed, "ok": summary["ok"], "errors": summary["errors"],
            "seconds": seconds, "items_per_s": round(assessed / seconds, 3),
            "worker_cpu_s_per_item": round(worker_cpu / assessed, 4),
            "client_cpu_s_per_item": round((client_cpu1 - client_cpu0) / assessed, 4),
            "workers_busy_fraction": round(worker_cpu / (n * seconds), 3)}


def main() -> None:
    """Generate the archive, measure each worker count, write and print the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=520, help="DICOM files in the archive")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1, help="runs per worker count (best kept)")
    parser.add_argument("--model", default="mediqa-s")
    parser.add_argument("--fast-samples", action="store_true",
                        help="only CT, MR and MNI slices (skip the radiograph, PET and fundus)")
    args = parser.parse_args()
    from medq.qc.archive import ALL_SAMPLES, FAST_SAMPLES, make_archive

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        made = make_archive(root / "archive", args.files,
                            samples=FAST_SAMPLES if args.fast_samples else ALL_SAMPLES)
        print(f"archive: {made['files']} DICOM files, {len(made['items'])} items "
              f"({len(made['series'])} series, {len(made['corrupt'])} corrupt) "
              f"in {time.perf_counter() - t0:.1f} s")
        for workers in args.workers:
            runs = []
            for k in range(args.repeats):
                load = os.getloadavg()[0]
                r = measure(root / "archive", workers, args.model, root / f"qc_{workers}_{k}.db")
                r["load_average_before"] = round(load, 2)
                runs.append(r)
                print(f"{workers} worker(s): {r['items_per_s']:.2f} items/s "
                      f"({r['items']} items in {r['seconds']:.1f} s, load {load:.1f}; "
                      f"worker CPU {r['worker_cpu_s_per_item'] * 1000:.0f} ms/item, "
                      f"workers on CPU {100 * r['workers_busy_fraction']:.0f}% of the time)")
            rows[str(workers)] = max(runs, key=lambda r: r["items_per_s"])
    result = {"machine": platform.platform(), "cores": len(os.sched_getaffinity(0)),
              "model": args.model, "files": made["files"], "items": len(made["items"]),
              "results": rows}
    if "1" in rows and "2" in rows:
        result["scaling_2_vs_1"] = round(rows["2"]["items_per_s"] / rows["1"]["items_per_s"], 3)
        print(f"scaling 2 vs 1 worker: {result['scaling_2_vs_1']:.2f}× (goal ≥ 1.7×)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "qc_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
