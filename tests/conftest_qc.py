"""QC results stores filled with real assessments of bundled samples (report and web tests).

`qc_results(folder)` exports a few bundled samples, physics-degraded versions of them and one
truncated DICOM file into `folder`, assesses them once per test process with the shipped
`mediqa-s` model and returns the result rows `medq qc run` would store. `fill_store` writes
them into a fresh database as one recorded run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAMPLES = ("ct_small", "mr_small", "mni_t1", "retina")
"""Bundled samples exported as files (mni_t1 is the 3D volume)."""

DEGRADED = (("ct_small", "ct_low_dose", "severe"), ("ct_small", "blur", "moderate"),
            ("mr_small", "mr_noise", "severe"))
"""(sample, degradation, severity) written as extra DICOM files."""

MODEL = "mediqa-s"

_CACHE: dict[str, list[dict[str, Any]]] = {}


def _write_inputs(folder: Path) -> list[Path]:
    """Export the samples, the degraded versions and one truncated DICOM; return their paths."""
    from medq.data.samples import export_samples, load_sample
    from medq.degrade import simulate
    from medq.io import save

    folder.mkdir(parents=True, exist_ok=True)
    paths = list(export_samples(folder, list(SAMPLES)))
    for name, kind, severity in DEGRADED:
        image, _ = simulate(load_sample(name), kind, severity=severity, seed=0)
        paths.append(save(image, folder / f"{name}_{kind}_{severity}.dcm"))
    broken = folder / "broken.dcm"
    broken.write_bytes((folder / "ct_small.dcm").read_bytes()[:600])
    paths.append(broken)
    return paths


def qc_results(folder: Path) -> list[dict[str, Any]]:
    """Result rows (as `medq qc run` stores them) for the test inputs written into `folder`."""
    key = str(folder)
    if key in _CACHE:
        return _CACHE[key]
    from medq.assess.predictor import Assessor
    from medq.qc.discover import Item, load_item
    from medq.qc.fingerprint import fingerprint
    from medq.qc.rows import error_result, ok_result

    items = [Item(str(p), (str(p),)) for p in _write_inputs(folder)]
    by_path: dict[str, dict[str, Any]] = {}
    loaded = []
    for item in items:
        try:
            loaded.append((item, load_item(item)))
        except Exception as e:  # noqa: BLE001 - the truncated file becomes an error row
            by_path[item.path] = error_result(item, e)
    assessments = Assessor(MODEL).assess_many([image for _, image in loaded])
    for (item, image), assessment in zip(loaded, assessments, strict=True):
        by_path[item.path] = (error_result(item, assessment)
                              if isinstance(assessment, Exception)
                              else ok_result(item, assessment, image))
    rows = [{**by_path[item.path], "model": MODEL, "fingerprint": fingerprint(item.files)}
            for item in items]
    _CACHE[key] = rows
    return rows


def fill_store(url: str | Path, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Record `rows` as one finished run in a new store at `url`; returns path → item id."""
    from medq.qc.store import Store

    with Store(url) as store:
        run_id = store.start_run(str(Path(rows[0]["path"]).parent), MODEL, 1, None)
        ids = {row["path"]: store.record({**row, "run_id": run_id}) for row in rows}
        ok = sum(row["status"] == "ok" for row in rows)
        store.finish_run(run_id, {"total": len(rows), "ok": ok, "errors": len(rows) - ok,
                                  "skipped": 0})
    return ids


def filled_db(tmp_path_factory: Any, name: str = "qc") -> tuple[Path, list[dict[str, Any]],
                                                                 dict[str, int]]:
    """(SQLite path, result rows, path → id) of a new database holding the test results."""
    rows = qc_results(tmp_path_factory.getbasetemp() / "qc-inputs")
    db = tmp_path_factory.mktemp(name) / "qc.sqlite"
    return db, rows, fill_store(db, rows)
