"""The CLI as a user meets it: real files, real exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from conftest import dicom_testfile, run_medq


def test_version() -> None:
    import medq

    res = run_medq("--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"medq {medq.__version__}"
    as_module = subprocess.run([sys.executable, "-m", "medq", "--version"], capture_output=True,
                               text=True, timeout=120)  # "No module named medq.__main__"
    assert as_module.stdout.strip() == f"medq {medq.__version__}", as_module.stderr


def test_readers_warnings_stay_off_the_terminal() -> None:
    """pydicom's notes on a file's quirks — MR_small_padded.dcm has 128 bytes of padding after
    its pixel data — do not reach the terminal of `medq info` or `medq assess` (forked workers)."""
    padded = dicom_testfile("MR_small_padded.dcm")
    for args in (("info", padded), ("assess", padded, padded, "--no-measures")):
        res = run_medq(*args, new_process=True)  # the terminal a process writes to
        assert res.returncode == 0 and res.stderr == "", res.stderr
    import warnings

    import medq

    with warnings.catch_warnings(record=True) as caught:  # the library itself still says it
        warnings.simplefilter("always")
        medq.load(padded)
    assert any("padding" in str(w.message) for w in caught)


def test_options_out_of_range_are_usage_errors() -> None:
    """`--modality` takes the modalities medq grades (any case), `--batch-size` a positive
    count: anything else exits with 2 before any input is read."""
    ct = dicom_testfile("CT_small.dcm")
    for args, option in ((("--modality", "US"), "--modality"), (("--batch-size", "0"),
                                                                  "--batch-size")):
        res = run_medq("assess", ct, *args)
        assert res.returncode == 2 and option in res.stderr and res.stdout == ""
    res = run_medq("info", ct, "--modality", "ct", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)[0]["modality"] == "CT"
    res = run_medq("restore", ct, "-o", "never-written.dcm", "--method", "sharpen")
    said = " ".join(res.stderr.replace("│", " ").split())  # the usage box, unwrapped
    assert res.returncode == 2 and "'sharpen' is not a method; use auto, net, bm3d, nlm, tv" in said
    assert not Path("never-written.dcm").exists()


def test_a_series_missing_a_slice_is_reported_by_assess_and_describe(tmp_path: Path,
                                                                     mni_t1) -> None:
    """The MNI T1 as a DICOM series with one slice file deleted: `medq assess` states the gap
    (JSON `slice_gaps`, the table's "series: 1 slice missing?") and `medq describe`'s text says
    coverage is incomplete."""
    from medq.io import save

    series = save(mni_t1.with_array(mni_t1.array[20:40]), tmp_path / "t1")
    files = sorted(series.iterdir(), key=lambda f: pydicom.dcmread(f).ImagePositionPatient[2])
    files[10].unlink()
    res = run_medq("assess", series, "--json", "--no-measures")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["slice_gaps"]["missing_slices"] == 1 and row["slice_gaps"]["spacing_mm"] == 2.0
    table = run_medq("assess", series, "--no-measures", env={"COLUMNS": "240"})  # one line a row
    assert "series: 1 slice missing?" in table.stdout
    res = run_medq("describe", series, "--json")
    assert res.returncode == 0, res.stderr
    (report,) = json.loads(res.stdout)
    assert ("Coverage is incomplete: the slices are 2 mm apart but one step is 4 mm, so about "
            "one slice appears to be missing.") in report["text"]
    assert report["text"].endswith(f"Overall, the quality of this image is {report['verdict']}.")
    # a format of one slice spacing would move the slices after the gap: refused before the work
    res = run_medq("restore", series, "-o", tmp_path / "t1.nii.gz", "--method", "tv")
    assert res.returncode == 2 and not (tmp_path / "t1.nii.gz").exists()
    assert "its slices are unevenly spaced (1 slice missing?): a .nii.gz file keeps one slice " \
        "spacing" in res.stderr, res.stderr
    res = run_medq("restore", series, "-o", tmp_path / "restored", "--method", "tv")
    assert res.returncode == 0, res.stderr  # a DICOM series keeps every slice's position
    z = sorted(float(pydicom.dcmread(f).ImagePositionPatient[2])
               for f in (tmp_path / "restored").iterdir())
    assert sorted(np.round(np.diff(z), 3).tolist()) == [2.0] * 17 + [4.0]


def test_info_names_the_modality_a_file_states_when_read_as_another() -> None:
    """A colour ultrasound is read as a photograph (OP) and a segmentation as OT: `medq info`
    says what the file states beside it; a CT stating CT has no such note."""
    names = ("examples_palette.dcm", "liver_1frame.dcm", "CT_small.dcm")
    res = run_medq("info", *(dicom_testfile(n) for n in names), "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [(r["modality"], r.get("stated_modality")) for r in rows] == \
        [("OP", "US"), ("OT", "SEG"), ("CT", None)]


def test_info_ct_small_json_reports_kvp_and_exposure() -> None:
    res = run_medq("info", dicom_testfile("CT_small.dcm"), "--json")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["modality"] == "CT"
    assert row["physics"]["kvp"] == 120
    assert row["physics"]["exposure_mAs"] == 170
    assert row["shape"] == [128, 128]
    assert row["spacing"] == pytest.approx([0.661468, 0.661468])
    assert "spacing_assumed" not in row


def test_info_says_when_the_pixel_size_is_assumed(tmp_path: Path) -> None:
    """A DICOM stating a pixel size of 0 is read at 1 mm, and `medq info` says it is assumed
    (it printed 1×1 as if stated)."""
    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    ds.PixelSpacing = [0, 0]
    ds.save_as(tmp_path / "zero.dcm")
    res = run_medq("info", tmp_path / "zero.dcm", "--json")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["spacing"] == [1.0, 1.0] and row["spacing_assumed"] is True
    table = run_medq("info", tmp_path / "zero.dcm")
    assert "1×1 (assumed)" in table.stdout
    # as is every implausible size: inf was refused as the user's own bad argument, 1e-300
    # shown as 0 and 1e308 overflowed the measures
    for value in ("1e-300", "1e308", "-2"):
        ds.PixelSpacing = [value, value]
        ds.save_as(tmp_path / "odd.dcm")
        (row,) = json.loads(run_medq("info", tmp_path / "odd.dcm", "--json").stdout)
        assert row["spacing"] == [1.0, 1.0] and row["spacing_assumed"] is True, value
    # a slice thickness likewise: -3 was refused as the user's own bad argument
    frames = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    frames.PixelData, frames.NumberOfFrames = np.stack([frames.pixel_array] * 3).tobytes(), 3
    del frames.ImagePositionPatient
    for value in ("-3", "1e308"):
        frames.SliceThickness = frames.SpacingBetweenSlices = value
        frames.save_as(tmp_path / "frames.dcm")
        res = run_medq("info", tmp_path / "frames.dcm", "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)[0]["spacing"][0] == 1.0, value


def test_simulate_ct_low_dose_writes_derived_noisy_dicom(tmp_path: Path) -> None:
    src = dicom_testfile("CT_small.dcm")
    out = tmp_path / "out.dcm"
    res = run_medq("simulate", src, "--kind", "ct_low_dose", "--level", "1e5", "--seed", "1",
                   "-o", out)
    assert res.returncode == 0, res.stderr
    ds_in, ds_out = pydicom.dcmread(src), pydicom.dcmread(out)
    assert ds_out.SOPInstanceUID != ds_in.SOPInstanceUID
    assert ds_out.SeriesInstanceUID != ds_in.SeriesInstanceUID
    assert "DERIVED" in ds_out.ImageType
    hu_in = ds_in.pixel_array * float(ds_in.RescaleSlope) + float(ds_in.RescaleIntercept)
    hu_out = ds_out.pixel_array * float(ds_out.RescaleSlope) + float(ds_out.RescaleIntercept)
    diff = hu_out - hu_in
    assert np.std(diff) > 5.0  # visible noise, in HU
    assert abs(np.median(diff)) < 20.0  # but the anatomy and calibration stay
    sidecar = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert sidecar["degradation"]["name"] == "ct_low_dose"
    assert sidecar["degradation"]["level"] == 1e5
    assert sidecar["degradation"]["seed"] == 1


def test_simulate_is_reproducible_for_a_seed(tmp_path: Path) -> None:
    src = dicom_testfile("MR_small.dcm")
    arrays = []
    for name in ("a.dcm", "b.dcm"):
        res = run_medq("simulate", src, "-k", "mr_noise", "--severity", "moderate", "--seed", "7",
                   "-o", tmp_path / name)
        assert res.returncode == 0, res.stderr
        arrays.append(pydicom.dcmread(tmp_path / name).pixel_array)
    np.testing.assert_array_equal(arrays[0], arrays[1])


def test_simulate_a_pet_nifti_into_a_new_dicom_series(tmp_path: Path) -> None:
    from medq.data.samples import export_samples
    from medq.io import load

    (src,) = [p for p in export_samples(tmp_path, ["pet_brain"]) if p.name.endswith(".nii.gz")]
    res = run_medq("simulate", src, "-k", "pet_low_count", "--severity", "mild",
                   "-o", tmp_path / "series")  # no suffix: a DICOM series, its header new
    assert res.returncode == 0, res.stderr
    written, original = load(tmp_path / "series"), load(src)
    assert written.meta["format"] == "dicom-series" and written.modality == "PT"
    assert written.shape == original.shape and written.spacing == pytest.approx(original.spacing)
    assert not np.allclose(written.array, original.array)  # the counts are lower


BAD_DICOM = ["MR_truncated.dcm", "waveform_ecg.dcm", "rtplan.dcm"]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every kind of bad input a user may hand medq."""
    import nibabel as nib

    d = tmp_path_factory.mktemp("bad")
    paths = [Path(dicom_testfile(n)) for n in BAD_DICOM]
    (d / "empty.dcm").write_bytes(b"")
    (d / "random.dcm").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "text.nii.gz").write_text("this is not a NIfTI volume\n")
    (d / "empty_dir").mkdir()
    nan = np.full((8, 8, 8), np.nan, np.float32)
    nib.save(nib.Nifti1Image(nan, np.eye(4)), d / "nan.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 3), np.float32), np.eye(4)), d / "4d.nii.gz")
    paths += [d / n for n in ("empty.dcm", "random.dcm", "text.nii.gz", "empty_dir", "nan.nii.gz",
                              "4d.nii.gz")]
    paths.append(d / "missing.dcm")
    return paths


def test_each_bad_input_exits_2_with_one_line(bad_inputs: list[Path]) -> None:
    for path in bad_inputs:  # a 4D file is described by `medq info`, refused by `medq assess`
        res = run_medq("assess" if path.name == "4d.nii.gz" else "info", path)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 2, (path, res.stderr)
        assert 1 <= len(lines) <= 3, (path, res.stderr)
        assert "Traceback" not in res.stderr
        assert lines[0].startswith("medq: error: ") and path.name in lines[0], lines[0]


def test_good_inputs_still_processed_beside_bad_ones(bad_inputs: list[Path]) -> None:
    good = dicom_testfile("CT_small.dcm")
    res = run_medq("info", bad_inputs[0], good, bad_inputs[3], "--json")
    assert res.returncode == 2
    rows = json.loads(res.stdout)
    assert [r.get("modality") for r in rows] == [None, "CT", None]
    assert rows[0]["error"]["type"] == "UnreadableImage"
    assert rows[0]["path"] == str(bad_inputs[0])


def test_an_input_the_user_may_not_read_does_not_stop_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's own readable check refused the whole call for one unreadable input
    (a usage error, nothing assessed); each input is now read, and fails, on its own."""
    import os
    import shutil

    good, locked = tmp_path / "ok.dcm", tmp_path / "locked.dcm"
    shutil.copyfile(dicom_testfile("CT_small.dcm"), good)
    shutil.copyfile(good, locked)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: Path(path) != locked
                        and real_access(path, mode, *a, **k))
    res = run_medq("info", good, locked, "--json")
    assert res.returncode == 0, res.stderr  # this process may read it after all (root)
    assert [r.get("modality") for r in json.loads(res.stdout)] == ["CT", "CT"]


def test_simulate_wrong_modality_and_unknown_kind_exit_2(tmp_path: Path) -> None:
    ct = dicom_testfile("CT_small.dcm")
    res = run_medq("simulate", ct, "-k", "mr_undersample", "--level", "4", "-o", tmp_path / "x.dcm")
    assert res.returncode == 2 and "mr_undersample" in res.stderr and "Traceback" not in res.stderr
    res = run_medq("simulate", dicom_testfile("CT_small.dcm"), "-k", "nope", "--level", "4",
               "-o", tmp_path / "x.dcm")
    assert res.returncode == 2 and "ct_low_dose" in res.stderr  # lists the choices
    assert not (tmp_path / "x.dcm").exists()


def test_samples_list_and_export(tmp_path: Path) -> None:
    res = run_medq("samples", "--json")
    assert res.returncode == 0, res.stderr
    names = {row["name"] for row in json.loads(res.stdout)}
    assert {"ct_small", "mr_small", "mni_t1", "retina", "pet_brain", "xr_head"} <= names
    res = run_medq("samples", "--export", tmp_path / "s")
    assert res.returncode == 0, res.stderr
    exported = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert "ct_small.dcm" in exported and "mni_t1.nii.gz" in exported
    images = sorted(p for p in (tmp_path / "s").iterdir() if p.suffix != ".json")
    res = run_medq("info", *images, "--json")
    assert res.returncode == 0, res.stderr
    mods = {Path(r["path"]).name.split(".")[0]: r["modality"] for r in json.loads(res.stdout)}
    assert mods["ct_small"] == "CT" and mods["retina"] == "OP" and mods["xr_head"] == "DX"


def test_exported_headerless_samples_keep_modality_and_globs_skip_sidecars(tmp_path: Path) -> None:
    assert run_medq("samples", "--export", tmp_path).returncode == 0
    res = run_medq("info", *sorted(tmp_path.iterdir()), "--json")  # as `medq info dir/*` would
    assert res.returncode == 0, res.stderr
    rows = {Path(r["path"]).name: r for r in json.loads(res.stdout)}
    assert not any(name.endswith(".json") for name in rows)
    assert (rows["mni_t1.nii.gz"]["modality"], rows["mni_t1.nii.gz"]["region"]) == ("MR", "brain")
    assert (rows["retina.jpg"]["modality"], rows["retina.jpg"]["region"]) == ("OP", "retina")


def test_a_pacs_disc_exports_viewer_files_are_not_inputs(tmp_path: Path) -> None:
    import shutil

    disc = tmp_path / "disc"
    (disc / "viewer").mkdir(parents=True)
    shutil.copy(dicom_testfile("CT_small.dcm"), disc / "IM0001")  # no suffix: a DICOM
    shutil.copy(dicom_testfile("crayons.icc"), disc / "viewer" / "display.icc")
    for name in ("autorun.inf", "viewer/viewer.exe", "viewer/index.htm", "viewer/Thumbs.db"):
        (disc / name).write_bytes(b"MZ\x90\x00\x03\x00\x00\x00\x04")  # binary, not an image
    import sqlite3  # a copy of a QC results database, with its journal files, left beside

    sqlite3.connect(disc / "qc.sqlite").execute("CREATE TABLE t (x)").connection.close()
    for journal in ("-wal", "-shm"):
        (disc / f"qc.sqlite{journal}").write_bytes(bytes(64))
    res = run_medq("assess", disc, "--json", "--no-measures")
    assert res.returncode == 0, res.stderr
    assert [Path(r["path"]).name for r in json.loads(res.stdout)] == ["IM0001"]
    res = run_medq("assess", disc / "viewer")
    assert res.returncode == 2 and "holds no image medq reads" in res.stderr, res.stderr


def test_simulate_and_export_never_replace_what_is_there(tmp_path: Path) -> None:
    import hashlib
    import shutil

    src = tmp_path / "ct.dcm"
    shutil.copy(dicom_testfile("CT_small.dcm"), src)
    before = hashlib.md5(src.read_bytes()).hexdigest()
    res = run_medq("simulate", src, "-k", "blur", "--severity", "mild", "-o", src)
    assert res.returncode == 2 and "would replace the input itself" in res.stderr, res.stderr
    assert hashlib.md5(src.read_bytes()).hexdigest() == before
    for target in (src, src / "sub"):  # a file where the export folder would go
        res = run_medq("samples", "--export", target)
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip() == f"medq: error: {target}: cannot write: {src} is a file, " \
            "not a folder"
    assert hashlib.md5(src.read_bytes()).hexdigest() == before


def test_modality_option_lets_a_bare_file_be_simulated(tmp_path: Path) -> None:
    src = tmp_path / "slice.npy"
    np.save(src, pydicom.dcmread(dicom_testfile("MR_small.dcm")).pixel_array.astype(np.float32))
    out = tmp_path / "o.npy"
    res = run_medq("simulate", src, "-k", "mr_noise", "--severity", "mild", "-o", out)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    # the error passes on what medq's prompt classifier reads the values as
    assert "reads it as MR: add --modality MR if so" in res.stderr, res.stderr
    res = run_medq("simulate", src, "-k", "ct_low_dose", "--severity", "mild", "-o", out)
    assert res.returncode == 2 and "reads it as MR, which ct_low_dose does not" in res.stderr
    res = run_medq("simulate", src, "-k", "mr_noise", "--severity", "mild", "--modality", "MR",
                   "-o", tmp_path / "o.npy")
    assert res.returncode == 0, res.stderr
    assert run_medq("info", tmp_path / "o.npy", "--json").stdout.count('"MR"') == 1


def test_assess_table_marks_the_prompts_the_file_did_not_state(tmp_path: Path,
                                                               monkeypatch) -> None:
    import shutil

    from skimage import data, io

    monkeypatch.setenv("COLUMNS", "200")  # one table line per input
    io.imsave(tmp_path / "camera.png", data.camera())  # a grey PNG: no modality, no region
    io.imsave(tmp_path / "astronaut.jpg", data.astronaut())  # colour: read as a fundus photo
    shutil.copy(dicom_testfile("CT_small.dcm"), tmp_path / "ct.dcm")
    np.save(tmp_path / "hu.npy", pydicom.dcmread(tmp_path / "ct.dcm").pixel_array - 1024)
    res = run_medq("assess", "camera.png", "ct.dcm", "hu.npy", "astronaut.jpg", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[6].strip()
            for line in res.stdout.splitlines() if line.count("│") == 7}
    assert rows["ct.dcm"] == "2d CT unknown ct_soft_tissue", res.stdout  # the header says CT
    assert rows["camera.png"].split()[1].endswith("?"), res.stdout  # the modality is a guess
    assert rows["hu.npy"].split()[1] == "CT?", res.stdout  # read from its Hounsfield units
    assert rows["astronaut.jpg"] == "2d OP? retina? fundus?", res.stdout  # no file said so
    assert ("? the file does not state it: predicted by medq's prompt classifier (an MR, PET or "
            "radiograph it predicts is graded as if stated; a CT, whose values hold no "
            "Hounsfield units, by the prompt only), or read from the pixels (CT from Hounsfield "
            "units, a colour picture as a fundus photograph") \
        in " ".join(res.stdout.split())
    found = json.loads(run_medq("assess", "hu.npy", "--json", cwd=tmp_path).stdout)[0]
    assert found["prompts"]["source"]["modality"] == "values"  # not the classifier's guess
    res = run_medq("assess", "camera.png", "--modality", "OP", cwd=tmp_path)
    assert res.returncode == 0 and "?" not in res.stdout, res.stdout


def test_tables_say_when_no_file_states_an_inputs_modality(tmp_path: Path,
                                                          monkeypatch) -> None:
    """An input whose modality neither its file nor the prompt classifier (here never sure)
    tell is graded for generic findings only: the assess and describe tables say so and how to
    name the modality; a file that states it, or a modality given with --modality, gets no such
    line."""
    import shutil

    import nibabel as nib

    from medq.assess import prompt_classifier

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(prompt_classifier, "CONFIDENCE", 1.01)  # never sure
    mr = pydicom.dcmread(dicom_testfile("MR_small.dcm")).pixel_array.astype(np.float32)
    nib.save(nib.Nifti1Image(mr.T[:, :, None], np.eye(4)), tmp_path / "bare.nii.gz")
    shutil.copy(dicom_testfile("CT_small.dcm"), tmp_path / "ct.dcm")
    note = ("other / OT: neither the file nor medq's prompt classifier can tell the modality, "
            "so only noise, blur, low resolution and low contrast are looked for; --modality CT, "
            "MR, PT, DX or OP grades it as that modality")
    for command in ("assess", "describe"):
        res = run_medq(command, "ct.dcm", "bare.nii.gz", cwd=tmp_path)
        assert res.returncode == 0 and note in " ".join(res.stdout.split()), res.stdout
        res = run_medq(command, "ct.dcm", cwd=tmp_path)
        assert res.returncode == 0 and "other / OT" not in res.stdout, res.stdout
        res = run_medq(command, "bare.nii.gz", "--modality", "MR", cwd=tmp_path)
        assert res.returncode == 0 and "other / OT" not in res.stdout, res.stdout


def test_tables_name_every_input_however_deep_its_folder(tmp_path: Path) -> None:
    import shutil

    from medq.cli.cells import path_table

    deep = tmp_path.joinpath(*[f"export_folder_{i:02d}" for i in range(8)])  # > 160 columns
    deep.mkdir(parents=True)
    for name in ("first_scan.dcm", "second_scan.dcm"):
        shutil.copy(dicom_testfile("CT_small.dcm"), deep / name)
    for command in ("assess", "describe", "info"):
        res = run_medq(command, deep / "first_scan.dcm", deep / "second_scan.dcm",
                       env={"COLUMNS": "200"})  # one table line per input
        assert res.returncode == 0, res.stderr
        assert f"in {deep}" in res.stdout, res.stdout  # the shared folder, once, in the title
        cells = [line.split("│")[1].strip() for line in res.stdout.splitlines()
                 if line.startswith("│") and "_scan.dcm" in line]
        assert cells == ["first_scan.dcm", "second_scan.dcm"], res.stdout
    res = run_medq("assess", deep / "first_scan.dcm")  # one input: its whole path, wrapped
    body = res.stdout.split("╇")[-1]
    folded = "".join(line.split("│")[1].strip() for line in body.splitlines()
                     if line.startswith("│"))
    assert folded == str(deep / "first_scan.dcm"), res.stdout
    _, names = path_table(paths=["/a/b/study#1.2.3", "/a/b/x.dcm", "/a/c.nii"])
    assert names == ["b/study#1.2.3", "b/x.dcm", "c.nii"]
    _, names = path_table(paths=["x.dcm", "/abs/y.dcm"])  # nothing shared: as given
    assert names == ["x.dcm", "/abs/y.dcm"]


def test_a_folder_of_several_series_gives_one_input_per_series(tmp_path: Path) -> None:
    from pydicom.uid import generate_uid

    study = tmp_path / "study"  # as a PACS export by study: every series in one folder
    study.mkdir()
    for name, n in (("ax", 3), ("cor", 2), ("scout", 1)):
        uid = generate_uid()
        for i in range(n):
            ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
            ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, generate_uid()
            ds.ImagePositionPatient = [0.0, 0.0, 2.5 * i]
            ds.save_as(study / f"{name}{i}.dcm")
    res = run_medq("assess", study, "--json", "--no-measures")
    assert res.returncode == 0, res.stderr
    found = {r["path"]: r["shape"] for r in json.loads(res.stdout)}
    assert found.pop(str(study / "scout0.dcm")) == [128, 128]  # a single file: a 2D input
    assert all(p.startswith(f"{study}#") for p in found)  # each series: <folder>#<uid>
    assert sorted(shape[0] for shape in found.values()) == [2, 3], found
    out = tmp_path / "restored"
    res = run_medq("restore", study, "-o", out, "--method", "tv", "--force", "--json")
    assert res.returncode == 0, res.stderr
    written = {Path(r["output"]) for r in json.loads(res.stdout)}
    series = sorted(len(list(p.iterdir())) for p in written if p.is_dir())
    assert series == [2, 3] and (out / "scout0.dcm") in written


def test_an_mr_phase_image_is_refused_beside_its_magnitude_image(tmp_path: Path) -> None:
    for name, kind in (("phase.dcm", "P"), ("magnitude.dcm", "M")):
        ds = pydicom.dcmread(dicom_testfile("MR_small.dcm"))
        ds.ImageType = ["ORIGINAL", "PRIMARY", kind, "ND"]  # as Siemens writes them
        ds.save_as(tmp_path / name)
    res = run_medq("assess", tmp_path / "phase.dcm", tmp_path / "magnitude.dcm", "--json")
    assert res.returncode == 2
    phase, magnitude = json.loads(res.stdout)
    assert phase["error"]["type"] == "UnsupportedImage"
    assert "not a magnitude image (ImageType ORIGINAL\\PRIMARY\\P\\ND)" in phase["error"]["message"]
    assert 1.0 <= magnitude["score"] <= 5.0
    assert res.stderr.strip().count("\n") == 0 and "phase.dcm" in res.stderr


def test_a_segmentation_is_refused_alone_and_skipped_in_a_folder(tmp_path: Path) -> None:
    seg = dicom_testfile("liver_1frame.dcm")  # a DICOM SEG: a binary liver mask
    res = run_medq("assess", seg, "--json", "--no-measures")
    assert res.returncode == 2
    (row,) = json.loads(res.stdout)
    assert row["error"]["type"] == "UnsupportedImage"
    assert "a segmentation (Modality SEG), not an acquired image" in row["error"]["message"]
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("liver_1frame.dcm", "CT_small.dcm"):
        (folder / name).write_bytes(Path(dicom_testfile(name)).read_bytes())
    res = run_medq("assess", folder, "--json", "--no-measures")
    assert res.returncode == 0, res.stderr
    assert [Path(r["path"]).name for r in json.loads(res.stdout)] == ["CT_small.dcm"]


def test_an_exports_text_files_are_skipped_but_a_damaged_file_is_reported(tmp_path: Path
                                                                           ) -> None:
    folder = tmp_path / "export"
    (folder / "IMAGES").mkdir(parents=True)
    (folder / "IMAGES" / "IM0001").write_bytes(Path(dicom_testfile("CT_small.dcm")).read_bytes())
    (folder / "README").write_text("Exported by PACS\r\nPatient: anonymised – 2 series\r\n")
    (folder / "LOCKFILE").write_text("x")
    (folder / "IMAGES" / "IM0002").write_bytes(
        Path(dicom_testfile("CT_small.dcm")).read_bytes()[132:1000])  # truncated, no preamble
    res = run_medq("assess", folder, "--json", "--no-measures")
    assert res.returncode == 2
    rows = {Path(r["path"]).name: r for r in json.loads(res.stdout)}
    assert set(rows) == {"IM0001", "IM0002"}
    assert 1.0 <= rows["IM0001"]["score"] <= 5.0 and rows["IM0002"]["error"]
    res = run_medq("assess", folder / "README", "--no-measures")
    assert res.returncode == 2 and "README: a plain-text file, not an image" in res.stderr


def test_a_modality_medq_does_not_grade_is_refused_unless_the_user_names_one() -> None:
    us, nm = dicom_testfile("examples_jpeg2k.dcm"), dicom_testfile("JPEG2000.dcm")
    res = run_medq("assess", us, nm, "--json", "--no-measures")
    assert res.returncode == 2
    for row, code in zip(json.loads(res.stdout), ("US", "NM"), strict=True):
        assert row["error"]["type"] == "UnsupportedImage"
        assert f"the file states Modality {code}, which medq does not grade" in \
            row["error"]["message"]
    res = run_medq("assess", us, "--modality", "OP", "--json", "--no-measures")
    assert res.returncode == 0, res.stderr  # read as a photograph, as the user says
    assert json.loads(res.stdout)[0]["modality"] == "OP"


def test_a_study_of_series_subfolders_is_walked_and_restored_in_its_layout(tmp_path: Path
                                                                            ) -> None:
    from pydicom.uid import generate_uid

    study = tmp_path / "study"  # study/<series>/…: one folder per series, as most exports
    for name, n in (("axial", 3), ("scout", 1)):
        (study / name).mkdir(parents=True)
        uid = generate_uid()
        for i in range(n):
            ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
            ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, generate_uid()
            ds.ImagePositionPatient = [0.0, 0.0, 2.5 * i]
            ds.save_as(study / name / f"im{i}.dcm")
    res = run_medq("assess", "study", "--json", "--no-measures", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert {r["path"]: r["shape"][0] for r in json.loads(res.stdout)} == {
        "study/axial": 3, "study/scout/im0.dcm": 128}  # the series a volume, the scout 2D
    res = run_medq("restore", "study", "-o", "out", "--method", "tv", "--force", "--json",
                   cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(r["output"] for r in json.loads(res.stdout)) == ["out/axial",
                                                                   "out/scout/im0.dcm"]
    assert len(list((tmp_path / "out" / "axial").iterdir())) == 3
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "im0.dcm").write_bytes((study / "scout" / "im0.dcm").read_bytes())
    res = run_medq("restore", "study/scout/im0.dcm", "again/im0.dcm", "-o", "out2",
                   cwd=tmp_path)
    assert res.returncode == 2 and "would both be written to out2/im0.dcm" in res.stderr
    res = run_medq("restore", "study/scout/im0.dcm", "again/im0.dcm", "-o", "out3/",
                   cwd=tmp_path)  # refused before any work: no empty folder left behind
    assert res.returncode == 2 and not (tmp_path / "out3").exists()


@pytest.mark.parametrize("args, said", [
    (("bench", "iqa", "--models", ","), "names no model"),
    (("bench", "restore", "--per-level", "-3"), "greater than or equal to 1"),
    (("bench", "describe", "--n", "0"), "greater than or equal to 1"),
    (("degradations", "--modality", "XX"), "the engine's modalities are CR, CT"),
])
def test_options_that_name_nothing_are_usage_errors_before_any_work(args: tuple, said: str,
                                                                     tmp_path: Path) -> None:
    """An empty model list, a negative item count or a modality without degradations: exit 2
    with the reason, no traceback and no results written (before: an IndexError, an
    UnboundLocalError, a benchmark of 13 items, an empty table with exit 0)."""
    res = run_medq(*args, cwd=tmp_path, env={"COLUMNS": "200"})
    assert res.returncode == 2, res.stdout + res.stderr
    assert said in " ".join(res.stderr.split()) and "Traceback" not in res.stderr
    assert not (tmp_path / "benchmarks").exists()


def test_degradations_read_modality_aliases_as_the_other_commands_do() -> None:
    """`--modality PET` or `XR` found no degradation, while assess, info and simulate read them
    as PT and DX."""
    for alias, code in (("PET", "PT"), ("xr", "DX")):
        named, coded = (run_medq("degradations", "--modality", m, "--json") for m in (alias, code))
        assert named.returncode == 0, named.stderr
        assert json.loads(named.stdout) == json.loads(coded.stdout) != []
    # a defined range starting at 0 says the 0 is left out, as `simulate` refuses level 0
    rows = {r["name"]: r for r in json.loads(run_medq("degradations", "--json").stdout)}
    assert rows["pet_low_count"]["defined_text"] == "1 – 1e+12"
    assert rows["blur"]["defined_text"] == "> 0 – 200"


@pytest.mark.parametrize("args", [("assess", ""), ("train", " "), ("info", "--json", "")])
def test_an_empty_argument_is_refused_before_any_work(args: tuple, tmp_path: Path) -> None:
    """`medq assess "$SCAN"` with the variable unset: exit 2 naming the empty argument (before:
    Path("") read as the current folder, and all of it assessed)."""
    (tmp_path / "scan.dcm").write_bytes(Path(dicom_testfile("CT_small.dcm")).read_bytes())
    res = run_medq(*args, cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == "", res.stdout + res.stderr
    assert res.stderr.strip() == (f"medq: error: argument {len(args)} (after {args[-2]}) is "
                                  "empty: it names no file, folder or value (an unset shell "
                                  "variable?)")


def test_a_file_that_is_no_checkpoint_is_named_as_such(tmp_path: Path) -> None:
    """`--model` with a text file or a CSV: one line saying it is no PyTorch checkpoint (before:
    "KeyError: 101", a message cut mid-word, or "no weights called 'out.csv'")."""
    image = dicom_testfile("CT_small.dcm")
    for name, text in (("bad.pt", "hello\n"), ("out.csv", "path,score\n")):
        (tmp_path / name).write_text(text)
        res = run_medq("assess", image, "--model", tmp_path / name)
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip() == (f"medq: error: {tmp_path / name}: not a PyTorch checkpoint "
                                      "file (medq train writes them as .pt)")
    import torch

    torch.save(torch.zeros(3), tmp_path / "tensor.pt")  # a checkpoint, but of no medq model
    for command, kind in (("assess", "quality"), ("restore", "restoration")):
        res = run_medq(command, image, "--model", tmp_path / "tensor.pt",
                       *(("-o", tmp_path / "out.dcm") if command == "restore" else ()))
        assert res.returncode == 2, res.stderr  # one line, no torch warning before it
        assert res.stderr == (f"medq: error: {tmp_path / 'tensor.pt'}: not a medq {kind} "
                              "checkpoint (it holds a Tensor without medq's entries)\n")


@pytest.mark.parametrize("command", [("qc", "run"), ("qc", "report"), ("serve",),
                                     ("bench", "iqa"), ("restore",)])
def test_help_is_whole_in_an_80_column_terminal(command: tuple[str, ...]) -> None:
    """Long words (a database URL, the default model list, `file@volume=k`) were cut to "…" in
    an 80-column terminal; help text now wraps whole."""
    res = run_medq(*command, "--help", env={"COLUMNS": "80"})
    assert res.returncode == 0, res.stderr
    assert "…" not in res.stdout, res.stdout


def test_usage_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    """An unknown command or option, a missing argument, an option value out of range and a
    flag given a value are each one `medq: error:` line naming where help is (they were boxed
    Rich panels over several lines); help and --version still exit 0, and the help shows no
    flag as taking a value (`--json <bool>`)."""
    ct = dicom_testfile("CT_small.dcm")
    cases = {("bogus",): "medq: error: No such command 'bogus'. (see medq --help)",
             ("assess",): "medq: error: Missing argument 'paths'. (see medq assess --help)",
             ("assess", ct, "--modality", "US"):
                 "medq: error: Invalid value for '--modality': 'US' is not a modality medq "
                 "grades; use one of CT, MR, PT, CR, DX, OP (see medq assess --help)",
             ("assess", ct, "--no-such-option"):
                 "medq: error: No such option: --no-such-option (see medq assess --help)",
             ("qc", "run"): "medq: error: Missing argument 'archive'. (see medq qc run --help)"}
    for args, line in cases.items():
        res = run_medq(*args, cwd=tmp_path)
        assert res.returncode == 2 and res.stdout == "", (args, res.stdout)
        assert res.stderr == line + "\n", (args, res.stderr)
    res = run_medq("assess", ct, "--batch-size", "0")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--batch-size" in res.stderr
    for args in (("--help",), ("--version",), ("qc", "--help")):
        assert run_medq(*args).returncode == 0
    for command in ("assess", "restore", "qc run"):  # a flag is not shown taking a value
        shown = run_medq(*command.split(), "--help", env={"COLUMNS": "120"}).stdout
        assert "--json" in shown and "<bool>" not in shown, shown
    res = run_medq("assess", ct, "--modality", "xr", "--no-measures", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)[0]["modality"] == "DX"  # XR: DX


def test_every_command_is_listed_on_one_unbroken_line() -> None:
    """A command's first help paragraph is its line in `medq --help` and `medq qc --help`; a line
    break inside it was printed as is (`info`, `train` and `qc export` broke mid-sentence), as
    was one in a later paragraph of its own help (`info`, `train`: ragged at 80 columns)."""
    import inspect

    import typer

    from medq.cli import app

    def listed(group: Any, path: str) -> list[tuple[str, str]]:
        """(command path, first help paragraph) of every command under a click group."""
        out = []
        for name, sub in getattr(group, "commands", {}).items():
            first = inspect.cleandoc(sub.short_help or sub.help or "").split("\n\n")[0]
            later = inspect.cleandoc(sub.help or "").split("\n\n")[1:]
            out += [(f"{path} {name}".strip(), text) for text in (first, *later)]
            out += listed(sub, f"{path} {name}")
        return out

    rows = listed(typer.main.get_command(app), "")
    assert {"info", "train", "qc export", "bench iqa"} <= {name for name, _ in rows}
    assert [name for name, first in rows if "\n" in first or not first] == []


START_UP_HEAVY = ("scipy.signal", "scipy.stats", "medq.train.loop", "medq.metrics.correlation",
                  "medq.metrics.fidelity")
"""Modules `medq assess` and `medq describe` of one file have no use for, and whose import cost a
second of every run before (`benchmarks/assess_speed.py` reports the one-file wall time); the
`medq.metrics` package itself loads its metric modules on first use, and the measures read its
`values`."""


@pytest.mark.parametrize("command", ["assess", "describe"])
def test_one_file_runs_leave_training_and_statistics_modules_unloaded(command: str) -> None:
    """The whole command runs in a new interpreter that then lists which of `START_UP_HEAVY`
    it loaded: none (before: `set_threads` pulled in the training loop, the metrics and
    scipy.stats; the wide Gaussian scipy.signal)."""
    code = ("import sys; from medq.cli import app\n"
            f"sys.argv = ['medq', {command!r}, {str(dicom_testfile('CT_small.dcm'))!r}, '--json']\n"
            "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            f"print('LOADED', sorted(m for m in {START_UP_HEAVY!r} if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout[:res.stdout.rindex("LOADED")])[0]["modality"] == "CT"
    assert res.stdout.rstrip().endswith("LOADED []"), res.stdout[-300:]


def test_error_lines_follow_the_inputs_order(tmp_path: Path) -> None:
    """An input refused by the assessment (blank) before one refused by the reader (not DICOM):
    the error lines come in the order of the inputs, for every command that reads images
    (`medq describe` read the files of a batch first and printed the reader's refusals first)."""
    from PIL import Image

    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "blank.png")
    (tmp_path / "junk.dcm").write_text("not an image")
    inputs = (tmp_path / "blank.png", dicom_testfile("CT_small.dcm"), tmp_path / "junk.dcm")
    for command in (("assess",), ("describe",), ("restore", "-o", tmp_path / "out")):
        res = run_medq(*command, *inputs)
        assert res.returncode == 2, (command, res.stderr)
        named = [line.split(":")[2].strip() for line in res.stderr.splitlines()
                 if line.startswith("medq: error:")]
        assert [Path(n).name for n in named] == ["blank.png", "junk.dcm"], (command, res.stderr)


def test_benchmarks_check_every_model_and_the_results_folder_before_running(
        tmp_path: Path) -> None:
    """A benchmark takes minutes: a model named wrongly anywhere in `--models` (a missing file,
    a network of the other kind) and a results folder that cannot be written are refused
    before it starts, each naming what is wrong (exit 2), and nothing is written."""
    (tmp_path / "afile").write_text("")
    missing = tmp_path / "nope.pt"
    cases = [
        (("iqa", "--models", f"cnniqa,{missing}"), f"{missing}: checkpoint file not found"),
        (("iqa", "--models", "cnniqa,restore-s"), "restore-s: a shipped restoration network, "
         "not a quality model"),
        (("restore", "--models", "restore-s,mediqa-s"), "mediqa-s: a shipped quality model, "
         "not a restoration network"),
        (("iqa", "--models", "cnniqa", "--results", tmp_path / "afile"), "is a file, not a folder"),
        (("describe", "--results", tmp_path / "afile"), "is a file, not a folder"),
        (("restore", "--results", tmp_path / "afile"), "is a file, not a folder")]
    for args, said in cases:
        if "--results" not in args:
            args = (*args, "--results", tmp_path / "results")
        res = run_medq("bench", *args)
        assert res.returncode == 2 and said in res.stderr, (args, res.stderr)
        assert res.stderr.strip().count("\n") == 0, res.stderr
    assert not any((tmp_path / "results").glob("*.json"))


def test_an_output_folder_that_is_a_file_is_bad_input(tmp_path: Path) -> None:
    """`medq demo -o FILE` and `medq qc make-archive FILE/sub` were internal errors (exit 1,
    FileExistsError / NotADirectoryError), and `medq simulate -o FILE/x.dcm` blamed a permission;
    each now names the file standing where a folder has to be (exit 2), on one line."""
    afile = tmp_path / "afile"
    afile.write_text("")
    ct = dicom_testfile("CT_small.dcm")
    for args in (("demo", "-o", afile), ("qc", "make-archive", afile / "sub"),
                 ("simulate", ct, "--kind", "ct_low_dose", "--severity", "mild",
                  "-o", afile / "x.dcm")):
        res = run_medq(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert f"{afile} is a file, not a folder" in res.stderr, (args, res.stderr)
        assert res.stderr.strip().count("\n") == 0, res.stderr


def test_file_names_that_look_like_markup_are_shown_as_they_are(tmp_path: Path) -> None:
    """`x[/y]z.dcm` was read as a closing markup tag: an internal error that lost the whole
    batch's table; `[red]a.dcm` was listed as `a.dcm`, and a newline split its row."""
    (tmp_path / "x[").mkdir()
    names = ["x[/y]z.dcm", "[red]colored.dcm", "new\nline.dcm"]
    for name in names:
        (tmp_path / name).write_bytes(Path(dicom_testfile("CT_small.dcm")).read_bytes())
    res = run_medq("info", *names, cwd=tmp_path, env={"COLUMNS": "250"})  # names unwrapped
    assert res.returncode == 0, res.stderr
    for shown in ("x[/y]z.dcm", "[red]colored.dcm", "new\\nline.dcm"):
        assert shown in res.stdout
    assert "\nline.dcm" not in res.stdout
    # text from a header too: a kernel named B[/x]30 crashed the table the same way
    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    ds.ConvolutionKernel = "B[/x]30"
    ds.save_as(tmp_path / "kernel.dcm")
    res = run_medq("info", tmp_path / "kernel.dcm", cwd=tmp_path, env={"COLUMNS": "250"})
    assert res.returncode == 0 and "convolution_kernel=B[/x]30" in res.stdout, res.stderr
