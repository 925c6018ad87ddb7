"""`medq restore`, `medq bench restore` and restoration training, as a user meets them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import dicom_testfile, run_medq, siemens_mosaic
from medq.io import save


def test_tiny_restoration_training_writes_a_loadable_checkpoint(restore_run: dict) -> None:
    from medq.data.sources import sources
    from medq.restore.models import load_restorer

    folder, record = restore_run["folder"], restore_run["record"]
    assert {"model.pt", "card.md", "metrics.json"} <= {p.name for p in folder.iterdir()}
    assert record["train_pairs"] == 14 and record["steps"] == {"restore": 30}
    test_sources = {s.name for s in sources("test")}
    assert set(record["metrics"]) == {"mr_noise", "clean"}
    assert np.isfinite(record["metrics"]["mr_noise"]["net"])
    assert all(h["l1"] > 0 for h in record["history"])
    net, meta = load_restorer(folder / "model.pt")
    assert meta["name"] == "restore-tiny-test" and net.conditioning
    card = (folder / "card.md").read_text()
    assert "restore-tiny-test" in card and "mr_noise" in card
    import torch  # trained where `device: auto` puts it; saved on the CPU either way

    assert record["device"].split(" ")[0] == ("cuda" if torch.cuda.is_available() else "cpu")
    state = torch.load(folder / "model.pt", weights_only=True)["state_dict"]
    assert {t.device.type for t in state.values()} == {"cpu"}
    from medq.data.pairs import PairPlan, build_pairs

    plan = PairPlan(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in record["train_plan"].items()})
    trained_on = set(build_pairs(plan, progress=False)["source"].tolist())  # the run's pairs
    assert trained_on and trained_on <= {s.name for s in sources("train")}, trained_on
    assert not trained_on & test_sources


def test_restoration_card_states_how_the_clean_images_were_altered(restore_run: dict) -> None:
    """The model card names every pair-plan option that changed the training images."""
    from medq.train.restore_loop import card_text

    record = restore_run["record"]
    plain = card_text(restore_run["config"], record)
    assert "`pairs.resampling`" not in plain and "`pairs.ringing`" not in plain
    assert f" -o {restore_run['folder']}`" in plain  # the reproduce line names the run folder
    # a clean pair's input PSNR is infinite: "–", not "nan"; the prior accuracy says what a
    # prior that names nothing scores
    assert "nan" not in plain and "a prior that names no finding scores 0.909" in plain
    plan = {**record["train_plan"], "soft": 0.5, "resampling": 0.5, "ringing": 0.25}
    card = card_text(restore_run["config"], {**record, "train_plan": plan})
    assert "50% of the clean images softened" in card and "except" not in card
    skipping = {**plan, "soft_skip": ["mr_noise"]}
    assert "softened by a Gaussian PSF of 0.5–3 px FWHM, in input and target alike (real scans " \
        "are softer than their pixel grid), except for mr_noise" in card_text(
            restore_run["config"], {**record, "train_plan": skipping})
    assert "50% of the low-resolution inputs" in card and "`pairs.resampling`" in card
    assert "25% of the clean MR images" in card and "`pairs.ringing`" in card


def test_ship_fits_restoration_runs(restore_run: dict, tmp_path: Path) -> None:
    import torch

    from medq.errors import InvalidParameter
    from medq.restore.models import load_restorer
    from medq.train.ship import ship_run

    path = ship_run(restore_run["folder"], dest=tmp_path)
    assert path.name == "restore-tiny-test.pt" and (tmp_path / "restore-tiny-test.md").is_file()
    ckpt = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in ckpt["state_dict"].values()
               if v.is_floating_point())
    net, _ = load_restorer(path)
    x = torch.rand(1, 1, 40, 48)
    with torch.no_grad():
        assert net(x)["image"].shape == x.shape
    # weights over the limit are refused before they replace the shipped ones
    before = path.read_bytes()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("medq.train.ship.MAX_BYTES", len(before) // 2)
        with pytest.raises(InvalidParameter, match="exceed 25 MB"):
            ship_run(restore_run["folder"], dest=tmp_path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "restore-tiny-test.md", "restore-tiny-test.pt"]


def test_restoration_ensemble_reuses_members_averages_and_ships(restore_run: dict,
                                                               tmp_path: Path) -> None:
    import dataclasses
    import shutil

    import torch

    from medq.restore.models import RestoreEnsemble, load_restorer
    from medq.train.loop import train
    from medq.train.ship import ship_run

    cfg = dataclasses.replace(restore_run["config"], output=str(tmp_path / "run"),
                              member_pairs=[{}, {"train": {"soft": 1.0}}])
    shutil.copytree(restore_run["folder"], tmp_path / "run" / "member-0")  # same recipe: reused
    logged: list[str] = []
    record = train(cfg, log=logged.append)
    assert any("member 1/2 reused" in m for m in logged)
    assert not any("member 2/2 reused" in m for m in logged)  # trained with softened pairs
    assert record["members"][1]["pairs"] == {"train": {"soft": 1.0}}
    member_plan = json.loads((tmp_path / "run" / "member-1" / "metrics.json").read_text())
    assert member_plan["train_plan"]["soft"] == 1.0 and member_plan["train_plan"]["tasks"] == [
        "mr_noise", "blur"]
    net, meta = load_restorer(tmp_path / "run" / "model.pt")
    assert isinstance(net, RestoreEnsemble) and len(net.members) == 2 and net.conditioning
    x = torch.rand(1, 1, 32, 40)
    parts = [load_restorer(tmp_path / "run" / f"member-{k}" / "model.pt")[0] for k in (0, 1)]
    with torch.no_grad():
        out = net(x)
        expected = torch.stack([p(x)["image"] for p in parts]).mean(0)
        assert torch.allclose(out["image"], expected, atol=1e-6)
        logits, severity = net.prior(x)
        assert logits.shape == out["prior_logits"].shape and severity.shape[0] == 1
    card = (tmp_path / "run" / "card.md").read_text()
    assert "ensemble of 2" in card and "`pairs.train.soft: 1.0`" in card and "## Member 1" in card
    assert set(record["metrics"]) == {"mr_noise", "clean"} and meta["name"] == cfg.name
    logged.clear()
    train(cfg, log=logged.append)  # both members finished: nothing retrained
    assert sum("reused" in m for m in logged) == 2
    from medq.train.restore_ensemble import finished_member, member_config

    slower = dataclasses.replace(cfg, stages=[dataclasses.replace(s, lr=s.lr / 2)
                                              for s in cfg.stages])  # another recipe: retrained
    assert finished_member(member_config(cfg, 0)) is not None
    assert finished_member(member_config(slower, 0)) is None
    shipped = ship_run(tmp_path / "run", dest=tmp_path / "weights")
    ckpt = torch.load(shipped, weights_only=True)
    assert len(ckpt["members"]) == 2 and all(
        v.dtype == torch.float16 for m in ckpt["members"] for v in m["state_dict"].values()
        if v.is_floating_point())
    assert isinstance(load_restorer(shipped)[0], RestoreEnsemble)


def test_bench_restore_on_a_tiny_plan(restore_run: dict) -> None:
    from medq.restore.benchmark import run_benchmark

    payload = run_benchmark([str(restore_run["folder"] / "model.pt")], per_level=1,
                            bm3d_items=1, tasks=("mr_noise",), clean=2, timing_size=96)
    row = payload["summary"]["tasks"]["mr_noise"]
    assert row["n"] == 3 and row["n_bm3d"] == 1
    assert {"input", "nlm", "tv", "bm3d", "net", "net+truth", "net+described"} <= set(row)
    assert row["nlm"]["psnr"] > row["input"]["psnr"]  # a denoiser helps on Rician noise
    # `+described` is `medq restore`: unchanged where medq describes nothing to repair
    for item in payload["items"]:
        m = item["metrics"]
        if not item["described"]:
            assert m["net+described"]["psnr"] == m["input"]["psnr"]
        else:
            assert set(item["described"]) <= {"noise", "blur", "low_resolution", "aliasing",
                                              "motion", "streak"}
    assert "described_minus_bm3d_db" in row
    paired = row["psnr_on_bm3d_items"]  # every method on BM3D's one item: the margin's basis
    bm3d_item = next(i["metrics"] for i in payload["items"] if "bm3d" in i["metrics"])
    assert paired["input"] == round(bm3d_item["input"]["psnr"], 3)
    assert row["described_minus_bm3d_db"] == round(paired["net+described"] - paired["bm3d"], 3)
    clean = payload["clean_check"]
    assert len(clean["items"]) == 2
    assert clean["opened"] == sum(bool(i["described"]) for i in clean["items"])
    for item in clean["items"]:  # a closed gate leaves the clean image exactly as it was
        assert item["described"] or item["nrmse"] == 0.0
        assert bool(item["lossy"]) == (item["source"] in ("ct_693", "retina_right"))  # lossy
    undegraded = [i for i in clean["items"] if not i["lossy"]]
    assert clean["undegraded"] == len(undegraded) and clean["lossy_stored"] == [
        i for i in clean["items"] if i["lossy"]]
    assert clean["within_0.5_percent"] == sum(i["nrmse"] < 0.005 for i in undegraded)
    assert any("undegraded test images" in n for n in payload["summary"]["notes"])
    assert payload["timing_s_per_slice"]["bm3d"] > 0
    assert payload["gate"]["clean_items"] == 2
    assert any("BM3D on 1" in n for n in payload["summary"]["notes"])
    none = run_benchmark([str(restore_run["folder"] / "model.pt")], per_level=1, bm3d_items=0,
                         tasks=("mr_noise",), clean=1, timing_size=64)  # BM3D left out entirely
    assert "bm3d" not in none["timing_s_per_slice"] and none["summary"]["tasks"]["mr_noise"][
        "n_bm3d"] == 0 and "bm3d" not in none["methods"]


@pytest.mark.slow
def test_cli_restore_dicom_keeps_format_and_header(tmp_path: Path) -> None:
    src = dicom_testfile("CT_small.dcm")
    noisy = tmp_path / "noisy.dcm"
    res = run_medq("simulate", src, "--kind", "ct_low_dose", "--severity", "severe", "-o", noisy)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "restored.dcm"
    res = run_medq("restore", noisy, "-o", out, "--json")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["changed"] and "noise" in row["findings_addressed"]
    assert row["before"] is not None and row["after"] is not None and row["output"] == str(out)
    assert row["model"] == "restore-s"  # the network that restored it
    ds_in, ds_out = pydicom.dcmread(noisy), pydicom.dcmread(out)
    assert ds_out.SeriesDescription.endswith(" simulated")  # and it says so for good
    assert "from: medq simulate ct_low_dose" in ds_out.DerivationDescription
    assert ds_out.SOPInstanceUID != ds_in.SOPInstanceUID
    assert ds_out.PatientID == ds_in.PatientID and ds_out.Modality == "CT"
    import medq

    clean, restored = medq.load(src), medq.load(out)
    assert row["after"] == medq.assess(out).score  # the file as written (whole HU), not floats
    assert restored.array.min() >= min(medq.load(noisy).array.min(), -1024.0)
    assert f"{row['after']:.2f}" in row["note"] and "re-assessed" not in \
        ds_out.DerivationDescription  # the file's own record states no score of itself
    from medq.metrics.fidelity import psnr

    w = (-160.0, 240.0)
    assert psnr(restored.array, clean.array, window=w) > \
        psnr(medq.load(noisy).array, clean.array, window=w) + 3.0


def test_cli_restore_low_resolution_reports_its_consistency_step(tmp_path: Path) -> None:
    """A radiograph on a 3.2× coarser matrix: described as low resolution, restored by the
    network and made consistent with the input (the acquisition and factor are in the JSON,
    the factor never above the described one), sharper than the input; the clean sample is
    left alone and has no step."""
    from medq.data.samples import export_samples

    export_samples(tmp_path, ["xr_head"])
    src = tmp_path / "xr_head.dcm"
    low = tmp_path / "low.dcm"
    res = run_medq("simulate", src, "--kind", "low_resolution", "--level", "3.2", "-o", low)
    assert res.returncode == 0, res.stderr
    res = run_medq("restore", low, src, "-o", tmp_path / "out", "--json")
    assert res.returncode == 0, res.stderr
    row, clean = json.loads(res.stdout)
    assert row["changed"] and "low_resolution" in row["findings_addressed"]
    step = row["consistency"]
    assert step["step"] == "back-projection" and step["acquisition"] in ("interpolated", "kspace")
    assert 1.0 < step["factor"] <= 6.5
    assert not clean["changed"] and clean["consistency"] is None
    import medq
    from medq.metrics.fidelity import psnr

    reference = medq.load(src).array
    assert psnr(medq.load(tmp_path / "out" / "low.dcm").array, reference) > \
        psnr(medq.load(low).array, reference) + 0.5
    res = run_medq("restore", low, "-o", tmp_path / "table.dcm")
    assert res.returncode == 0, res.stderr
    assert f"consistency step: back-projection (acquisition {step['acquisition']}" in res.stdout
    res = run_medq("restore", low, "-o", tmp_path / "raw.dcm", "--json", "--no-consistency")
    assert res.returncode == 0, res.stderr
    (raw,) = json.loads(res.stdout)
    assert raw["changed"] and raw["consistency"] is None
    assert not np.allclose(medq.load(tmp_path / "raw.dcm").array,
                           medq.load(tmp_path / "out" / "low.dcm").array)


@pytest.mark.slow
def test_cli_restore_several_inputs_nifti_and_bad_input(tmp_path: Path) -> None:
    from medq.data.samples import export_samples

    folder = tmp_path / "in"
    export_samples(folder, ["mni_t1", "xr_head"])
    inputs = sorted(p for p in folder.iterdir() if not p.name.endswith(".json"))
    bad = folder / "broken.dcm"
    bad.write_bytes(b"not a dicom")
    out = tmp_path / "out"
    res = run_medq("restore", *inputs, bad, "-o", out, "--method", "tv", "--json")
    assert res.returncode == 2, res.stderr
    rows = json.loads(res.stdout)
    assert [Path(r["path"]).name for r in rows] == [p.name for p in inputs] + ["broken.dcm"]
    assert rows[-1]["error"]["type"] in ("UnreadableImage", "UnsupportedImage")
    assert res.stderr.count("medq: error:") == 1 and "broken.dcm" in res.stderr
    import medq

    for path, row in zip(inputs, rows[:-1], strict=True):
        assert Path(row["output"]) == out / path.name and (out / path.name).is_file()
        original, written = medq.load(path), medq.load(out / path.name)
        assert written.shape == original.shape
        if not row["changed"]:  # the gate left the clean sample alone
            assert np.allclose(written.array, original.array, atol=1e-3 * np.ptp(original.array))
    nii = next(p for p in inputs if p.name.endswith(".nii.gz"))
    import nibabel

    assert nibabel.load(out / nii.name).shape == nibabel.load(nii).shape


def test_a_loop_of_links_or_a_file_it_cannot_write_fails_alone_in_a_restored_folder(
        tmp_path: Path) -> None:
    # a loop of symbolic links raised while the targets were checked, and a stray .gif was
    # refused for its suffix: either ended the whole batch before anything was restored
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(dicom_testfile("CT_small.dcm"), folder / "ct.dcm")
    (folder / "a.dcm").symlink_to("b.dcm")
    (folder / "b.dcm").symlink_to("a.dcm")
    (folder / "anim.gif").write_bytes(b"GIF89a" + bytes(32))
    out = tmp_path / "out"
    res = run_medq("restore", folder, "-o", out, "--method", "tv", "--json")
    assert res.returncode == 2, res.stderr
    rows = {Path(r["path"]).name: r for r in json.loads(res.stdout)}
    assert "error" not in rows["ct.dcm"] and (out / "ct.dcm").is_file()
    assert {name for name, r in rows.items() if "error" in r} == {"a.dcm", "b.dcm", "anim.gif"}
    assert "loop of symbolic links" in rows["a.dcm"]["error"]["message"]  # was "no such file"
    again = run_medq("restore", folder, "-o", out, "--method", "tv", "--json", "--force")
    assert again.returncode == 2 and "internal error" not in again.stderr  # into OUT as it is
    assert "internal error" not in res.stderr


def test_the_files_an_input_folder_holds_are_none_where_it_may_not_be_listed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an unlistable subfolder ended `medq restore DIR` as an internal error (PermissionError)
    from medq.cli.paths import input_files

    (tmp_path / "locked").mkdir()

    def refused(self: Path):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refused)
    assert input_files(tmp_path / "locked") == {(tmp_path / "locked").resolve()}


def test_cli_restore_never_replaces_its_input_and_keeps_the_name_in_a_folder(
        tmp_path: Path) -> None:
    """OUT naming the input (a file, or the folder of several inputs) is refused before anything
    is written, the input's bytes unchanged; one input into an existing folder keeps its name."""
    scan = tmp_path / "mr.dcm"
    shutil.copy(dicom_testfile("MR_small.dcm"), scan)
    other = tmp_path / "ct.dcm"
    shutil.copy(dicom_testfile("CT_small.dcm"), other)
    before = scan.read_bytes()
    for args in (("restore", scan, "-o", scan), ("restore", scan, other, "-o", tmp_path)):
        res = run_medq(*args, "--method", "tv", "--force")
        assert res.returncode == 2, res.stderr
        assert "would replace the input itself" in res.stderr
        assert scan.read_bytes() == before
    folder = tmp_path / "restored"
    folder.mkdir()
    res = run_medq("restore", scan, "-o", folder, "--method", "tv", "--force", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["output"] == str(folder / "mr.dcm")
    assert pydicom.dcmread(folder / "mr.dcm").Modality == "MR"
    res = run_medq("restore", scan, scan, "-o", f"{tmp_path / 'new'}/", "--method", "tv",
                   "--force", "--json")
    assert res.returncode == 0, res.stderr  # a trailing slash: a folder, made, the name kept
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["mr.dcm"]
    assert len(json.loads(res.stdout)) == 1  # the same input named twice is restored once
    res = run_medq("restore", scan, scan, "-o", tmp_path / "twice", "--method", "tv", "--force")
    assert res.returncode == 0, res.stderr  # two inputs given: OUT is a folder all the same
    assert [p.name for p in (tmp_path / "twice").iterdir()] == ["mr.dcm"]  # was twice/IM00001
    assert f"medq: note: {scan} given more than once: restored once" in res.stderr


def test_cli_restore_into_a_folder_inside_its_input_folder_never_replaces_an_input(
        tmp_path: Path) -> None:
    """OUT inside the input folder: a second run does not read the first run's results as
    inputs (they nested one folder deeper each run, and an input could be replaced), and no
    result may replace another input of the run."""
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(dicom_testfile("CT_small.dcm"), study / "ct.dcm")
    shutil.copy(dicom_testfile("MR_small.dcm"), study / "mr.dcm")
    for run in range(2):
        res = run_medq("restore", "study", "-o", "study/restored", "--method", "tv", "--force",
                       "--json", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert sorted(r["path"] for r in json.loads(res.stdout)) == ["study/ct.dcm",
                                                                     "study/mr.dcm"]
        assert ("images already in it are not read as inputs" in res.stderr) == (run == 1)
    assert sorted(p.relative_to(study).as_posix() for p in study.rglob("*")) == [
        "ct.dcm", "mr.dcm", "restored", "restored/ct.dcm", "restored/mr.dcm"]
    (study / "r").mkdir()
    shutil.copy(dicom_testfile("MR_small.dcm"), study / "r" / "ct.dcm")  # named like study/ct
    before = (study / "r" / "ct.dcm").read_bytes()
    res = run_medq("restore", "study", "study/r/ct.dcm", "-o", "study/r", "--method", "tv",
                   "--force", cwd=tmp_path)  # named, so an input, though inside OUT
    assert res.returncode == 2
    assert "the result of study/ct.dcm would replace the input study/r/ct.dcm" in res.stderr
    assert (study / "r" / "ct.dcm").read_bytes() == before


def test_cli_restore_writes_a_volume_from_one_dicom_file_as_a_series(tmp_path: Path,
                                                                     mni_t1) -> None:
    import medq

    for k, name in enumerate(("dwi_b0.dcm", "dwi_b1000.dcm")):
        siemens_mosaic(mni_t1, tmp_path / name, 30 + 2 * k)  # Siemens mosaics: one volume each
    out = tmp_path / "out"
    res = run_medq("restore", tmp_path / "dwi_b0.dcm", tmp_path / "dwi_b1000.dcm", "-o", out,
                   "--method", "tv", "--force", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [Path(r["output"]) for r in rows] == [out / "dwi_b0", out / "dwi_b1000"]
    for row in rows:
        written = medq.load(row["output"])
        assert written.shape == (8, 96, 96) and written.meta["format"] == "dicom-series"


def test_cli_restore_writes_a_nifti_result_as_a_new_dicom_series(tmp_path: Path,
                                                                  mni_t1) -> None:
    import medq

    nii = save(mni_t1, tmp_path / "t1.nii.gz")  # no DICOM header to copy: a new one is made
    res = run_medq("restore", nii, "-o", tmp_path / "series", "--method", "tv", "--force",
                   "--json")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    written = medq.load(row["output"])
    assert row["output"] == str(tmp_path / "series") and written.meta["format"] == "dicom-series"
    assert written.shape == mni_t1.array.shape and written.modality == "MR"
    assert written.spacing == pytest.approx(mni_t1.spacing)


def test_cli_restore_keeps_a_metaimage_header_and_its_data_file(tmp_path: Path) -> None:
    import SimpleITK as sitk

    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((0.66, 0.66))
    img.SetOrigin((-42.0, 17.5))
    sitk.WriteImage(img, str(tmp_path / "ct.mhd"))  # header + ct.raw, as many CT collections
    noisy = tmp_path / "noisy.mhd"
    assert run_medq("simulate", tmp_path / "ct.mhd", "--kind", "ct_low_dose", "--severity",
                    "severe", "--seed", "3", "-o", noisy).returncode == 0
    res = run_medq("restore", noisy, "-o", tmp_path / "out" / "restored.mhd", "--json")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["changed"] and row["after"] > row["before"]
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"restored.mhd", "restored.zraw"} <= written and not any(
        n.startswith(".") for n in written)
    back = sitk.ReadImage(str(tmp_path / "out" / "restored.mhd"))
    assert back.GetSize() == (128, 128) and back.GetOrigin() == pytest.approx((-42.0, 17.5))
    restored = sitk.GetArrayFromImage(back)
    degraded = sitk.GetArrayFromImage(sitk.ReadImage(str(noisy)))
    assert np.abs(restored - hu).mean() < 0.8 * np.abs(degraded - hu).mean()  # closer to clean


def test_clean_check_sets_lossy_stored_sources_apart() -> None:
    from medq.data.sources import sources, stored_lossy
    from medq.restore.benchmark import clean_note

    lossy = {s.name: stored_lossy(s.name) for s in sources("test")}
    assert lossy["ct_693"]["ratio"] == pytest.approx(338.687, abs=1e-3)  # as its header states
    assert [n for n, v in lossy.items() if v] == ["ct_693", "retina_right"]
    assert lossy["ct_693"]["stated_by"] == "LossyImageCompression"
    assert lossy["retina_right"]["stated_by"] == "file format"  # the retina photograph is a JPEG
    clean = {"undegraded": 2, "opened_undegraded": 0, "max_nrmse": 0.0,
             "within_0.5_percent": 2,
             "lossy_stored": [{"source": "ct_693", "lossy": lossy["ct_693"],
                               "described": ["low_resolution"], "nrmse": 0.0098}]}
    note = clean_note(clean)
    assert note.startswith("medq restore on 2 undegraded test images: the gate opened on 0;")
    assert "ct_693, stored lossy at 339:1 by its file: described low_resolution, changed by " \
           "0.98 %" in note


def test_restore_checks_its_output_before_any_work(tmp_path: Path) -> None:
    ct, mr = dicom_testfile("CT_small.dcm"), dicom_testfile("MR_small.dcm")
    res = run_medq("restore", ct, "-o", tmp_path / "x.xyz", "--method", "tv")
    assert res.returncode == 2 and "unknown output format '.xyz'" in res.stderr, res.stderr
    res = run_medq("restore", ct, mr, "-o", tmp_path / "both.dcm", "--method", "tv", "--json")
    assert res.returncode == 2 and not (tmp_path / "both.dcm").exists()
    rows = json.loads(res.stdout)  # --json still prints a list: each input's error
    assert [r["path"] for r in rows] == [str(ct), str(mr)]
    assert all("several inputs OUT must be a folder" in r["error"]["message"] for r in rows)
    (tmp_path / "file").write_text("x")
    res = run_medq("restore", ct, "-o", tmp_path / "file" / "x.dcm", "--method", "tv")
    assert res.returncode == 2 and f"{tmp_path / 'file'} is a file, not a folder" in res.stderr


def test_a_dicom_file_named_otherwise_is_restored_as_dicom(tmp_path: Path) -> None:
    """DICOM in, DICOM out, whatever the input's name says (several inputs keep their names)."""
    import shutil

    shutil.copy(dicom_testfile("CT_small.dcm"), tmp_path / "ct_as.png")  # a DICOM named .png
    shutil.copy(dicom_testfile("MR_small.dcm"), tmp_path / "IM0001")  # a DICOM without suffix
    res = run_medq("restore", tmp_path / "ct_as.png", tmp_path / "IM0001", "-o", tmp_path / "out",
                   "--method", "tv", "--json")
    assert res.returncode == 0, res.stderr
    written = [Path(r["output"]).name for r in json.loads(res.stdout)]
    assert written == ["ct_as.png.dcm", "IM0001.dcm"]
    for name, modality in zip(written, ("CT", "MR"), strict=True):
        ds = pydicom.dcmread(tmp_path / "out" / name)  # the header kept: a derived DICOM
        assert ds.Modality == modality and "DERIVED" in ds.ImageType


def test_a_restored_png_keeps_its_values_within_the_files_range(tmp_path: Path) -> None:
    """A denoised 8-bit PNG dipped below 0, and the writer then stretched it onto 0–255 with a
    value map only medq reads (a mean 10 levels off for any viewer); a 12-bit PNG came back
    16× brighter. The result is clipped to what the file holds and stored as it is."""
    from PIL import Image
    from skimage.data import camera

    rng = np.random.default_rng(0)
    clean = camera()[128:384, 128:384].astype(np.float64)
    files = {"n8.png": np.clip(clean + rng.normal(0, 60, clean.shape), 0, 255).astype(np.uint8),
             "c12.png": np.clip(clean * 16 + rng.normal(0, 900, clean.shape), 0, 4095
                                ).astype(np.uint16)}
    for name, pixels in files.items():
        Image.fromarray(pixels).save(tmp_path / name)
        res = run_medq("restore", tmp_path / name, "-o", tmp_path / f"r_{name}", "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)[0]["changed"]
        with Image.open(tmp_path / f"r_{name}") as out:
            assert "medq_rescale" not in out.info and out.mode == Image.open(tmp_path / name).mode
            restored = np.asarray(out).astype(np.float64)
        scale = 16 if name == "c12.png" else 1
        assert restored.max() <= 255 * scale + 40 * scale  # the file's range, not stretched
        # nearer the clean picture than the noisy file (a value map would have moved it)
        assert np.abs(restored - clean * scale).mean() < np.abs(pixels - clean * scale).mean()


def test_slices_of_one_series_restored_file_by_file_stay_one_derived_series(tmp_path: Path
                                                                            ) -> None:
    """Radiograph-like slices of one series stating no position are inputs of their own; each
    restored file became a series of its own, every one numbered 1, so the order was lost."""
    folder = tmp_path / "series"
    folder.mkdir()
    for k in range(3):
        ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
        ds.SeriesInstanceUID, ds.InstanceNumber = "1.2.826.0.1.3680043.8.498.55", k + 3
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.56{k}"
        del ds.ImagePositionPatient
        ds.save_as(folder / f"IM{k}.dcm")
    uids = []
    for out in (tmp_path / "a", tmp_path / "b"):
        res = run_medq("restore", folder, "-o", out, "--method", "tv", "--force")
        assert res.returncode == 0, res.stderr
        written = [pydicom.dcmread(f) for f in sorted(out.iterdir())]
        assert [int(ds.InstanceNumber) for ds in written] == [3, 4, 5]
        assert len({ds.SeriesInstanceUID for ds in written}) == 1
        uids.append(written[0].SeriesInstanceUID)
    assert len(set(uids)) == 2 and "1.2.826.0.1.3680043.8.498.55" not in uids


def test_a_restored_integer_nifti_keeps_its_type_and_range(tmp_path: Path) -> None:
    """A uint8 volume was restored to float32 values from −7 to 246; it comes back uint8,
    clipped and rounded to what its type holds, its frame unchanged."""
    import nibabel as nib

    rng = np.random.default_rng(0)
    clean = np.clip(rng.normal(120, 30, (48, 40, 6)), 0, 255)
    noisy = np.clip(clean + rng.normal(0, 40, clean.shape), 0, 255).astype(np.uint8)
    affine = np.diag([0.9, 0.9, 3.0, 1.0])
    nib.save(nib.Nifti1Image(noisy, affine), tmp_path / "u8.nii.gz")
    res = run_medq("restore", tmp_path / "u8.nii.gz", "-o", tmp_path / "out.nii.gz",
                   "--method", "tv", "--force")
    assert res.returncode == 0, res.stderr
    out = nib.load(tmp_path / "out.nii.gz")
    assert out.get_data_dtype() == np.uint8
    np.testing.assert_allclose(out.affine, affine)
    assert not np.array_equal(np.asanyarray(out.dataobj), noisy)  # restored, in its own type


def test_an_unchanged_jpeg_is_written_as_its_own_bytes(tmp_path: Path) -> None:
    """The gate left the bundled fundus photograph unchanged, yet it was encoded again (lossy:
    up to 6 levels off); it is now its input's bytes."""
    res = run_medq("samples", "--export", tmp_path / "s")
    assert res.returncode == 0, res.stderr
    res = run_medq("restore", tmp_path / "s" / "retina.jpg", "-o", tmp_path / "r.jpg", "--json")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert not row["changed"] and row["model"] is None
    assert (tmp_path / "r.jpg").read_bytes() == (tmp_path / "s" / "retina.jpg").read_bytes()
