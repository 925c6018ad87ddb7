"""Physics pretraining on what DICOM headers state (`medq train --tagged`): targets read from
real headers, the packed sets and loss masks, and a tiny run end to end through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

import medq
from conftest import dicom_testfile, run_medq
from medq.assess.models import build_model
from medq.data import bench
from medq.data.samples import export_samples
from medq.train.acquisition import TARGETS, load_tagged, targets


def _target(path: str, name: str) -> float | None:
    values, known = targets(medq.load(path))
    k = list(TARGETS).index(name)
    return float(values[k]) if known[k] else None


def test_targets_are_what_real_headers_state(tmp_path: Path) -> None:
    """CT_small states Exposure 170 mAs, 693_J2KI 85 mAs; examples_overlay an MR field of
    1.494 T; MR_small no field but an imaging frequency of 63.924339 MHz (1.5014 T for
    protons). A PNG states nothing."""
    assert _target(dicom_testfile("CT_small.dcm"), "ct_exposure") == pytest.approx(
        math.log2(170 / 100))
    assert _target(dicom_testfile("693_J2KI.dcm"), "ct_exposure") == pytest.approx(
        math.log2(85 / 100))
    assert _target(dicom_testfile("CT_small.dcm"), "mr_field") is None
    assert _target(dicom_testfile("examples_overlay.dcm"), "mr_field") == pytest.approx(
        math.log2(1.4939999580383 / 1.5), abs=1e-6)
    assert _target(dicom_testfile("MR_small.dcm"), "mr_field") == pytest.approx(
        math.log2(63.924339 / 42.577 / 1.5), abs=1e-6)
    (png,) = export_samples(tmp_path, ["retina"])
    assert not targets(medq.load(png))[1].any()


def _archive(folder: Path) -> Path:
    """Eight CT_small copies at 25–200 mAs (noise as the dose asks, strong enough to show on the
    tiny model's 32-px input) and four MR_small copies at
    1.5 or 3 T, each its own series and patient, beside a text file."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    base = pydicom.dcmread(dicom_testfile("CT_small.dcm")).pixel_array.astype(np.float32)
    for i, mas in enumerate([25, 50, 100, 200] * 2):
        ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
        noisy = base + rng.normal(0, 3000 / np.sqrt(mas), base.shape)
        ds.PixelData = noisy.clip(-32768, 32767).round().astype(np.int16).tobytes()
        ds.Exposure, ds.SeriesInstanceUID = str(mas), pydicom.uid.generate_uid()
        ds.PatientID = f"CT{i}"  # each its own patient: the split is per image
        ds.save_as(folder / f"ct_{i}.dcm")
    for i, tesla in enumerate([1.5, 3.0] * 2):
        ds = pydicom.dcmread(dicom_testfile("MR_small.dcm"))
        ds.MagneticFieldStrength, ds.SeriesInstanceUID = str(tesla), pydicom.uid.generate_uid()
        ds.PatientID = f"MR{i}"
        ds.save_as(folder / f"mr_{i}.dcm")
    (folder / "readme.txt").write_text("not an image")
    return folder


def test_what_is_not_taken_from_an_archive(tmp_path: Path) -> None:
    """A copy of a file is one image (it would sit on both sides of the split), a field
    strength in gauss or an exposure of 0 is no value (0 lets the next tag speak), a series'
    exposure is the mean over its slices, whatever their file names, and `exclude`d files (a
    --scores run's held-out images) are left out."""
    archive = _archive(tmp_path / "a")
    (archive / "dups").mkdir()
    (archive / "dups" / "copy.dcm").write_bytes((archive / "ct_0.dcm").read_bytes())
    ds = pydicom.dcmread(dicom_testfile("MR_small.dcm"))
    ds.MagneticFieldStrength, ds.ImagingFrequency = "15000", "127.731"  # gauss; 3 T by frequency
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(archive / "gauss.dcm")
    odd = medq.load(archive / "gauss.dcm")
    assert _target(str(archive / "gauss.dcm"), "mr_field") is None  # no value taken...
    from medq.assess.acquisition import implausible

    assert implausible(odd) == ["field_strength_T=15000"]  # ...and said
    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    ds.Exposure, ds.XRayTubeCurrent, ds.ExposureTime = "0", "200", "1000"
    ds.save_as(tmp_path / "zero.dcm")
    assert _target(str(tmp_path / "zero.dcm"), "ct_exposure") == pytest.approx(1.0)  # 200 mAs
    series = tmp_path / "series"
    series.mkdir()
    uid = pydicom.uid.generate_uid()
    for k in range(4):  # names in the opposite order of the positions
        ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
        ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, pydicom.uid.generate_uid()
        ds.ImagePositionPatient = [0.0, 0.0, 5.0 * k]
        ds.InstanceNumber, ds.Exposure = k + 1, str(50 * (k + 1))
        ds.save_as(series / f"{9 - k}.dcm")
    assert medq.load(series).physics["exposure_mAs"] == pytest.approx(125.0)
    train, test, summary = load_tagged(archive, size=32, exclude=[archive / "ct_1.dcm"])
    assert summary["duplicates"] == 1 and summary["implausible"] == 1
    assert summary["excluded"] == 1 and summary["tagged"] == 11  # 12 + gauss − ct_1
    sources = {Path(s).name for s in np.concatenate([train["source"], test["source"]])}
    assert "ct_1.dcm" not in sources and len({"ct_0.dcm", "copy.dcm"} & sources) == 1


def test_tagged_sets_join_the_training_data_and_each_loss_sees_its_items(tmp_path: Path) -> None:
    """Tagged images are unscored items with their targets; joined to a scored set they keep
    their offsets, the scored items count as stating nothing, a stage draws only items with a
    target for its losses and the score term leaves unscored items out."""
    from medq.train.loop import _batch, slice_pool
    from medq.train.losses import losses, stage_items

    train, test, summary = load_tagged(_archive(tmp_path / "a"), size=32)
    assert summary["items"] == 12 and summary["tagged"] == 12
    assert summary["per_target"] == {"ct_exposure": 8, "mr_field": 4}
    assert len(train["score"]) + len(test["score"]) == 12 and len(test["score"]) == 2
    assert not train["scored"].any() and np.isnan(train["score"]).all()
    scored = {**test, "score": np.array([2.0, 4.0], np.float32)}
    for key in bench.OPTIONAL_KEYS:
        del scored[key]
    joined = bench.concat(scored, train)
    n = len(joined["score"])
    assert n == 12 and joined["scored"].tolist() == [True] * 2 + [False] * 10
    assert not joined["acq_known"][:2].any() and joined["acq_known"][2:].any(1).all()
    assert np.array_equal(joined["x"][joined["offset"][5]], train["x"][train["offset"][3]])
    assert stage_items(joined, {"acquisition": 1.0}).tolist() == [False] * 2 + [True] * 10
    assert stage_items(joined, {"score": 1.0}).tolist() == [True] * 2 + [False] * 10
    assert stage_items(joined, {"physics": 1.0}).sum() == 0  # no engine record here

    model = build_model("mediqa-tiny", n_acquisition=len(TARGETS))
    pool = slice_pool(joined, np.ones(n, bool))
    batch = _batch(joined, pool[[0, 1, 2, 3]], np.random.default_rng(0), None)
    terms = losses(model, batch, {"score": 1.0, "acquisition": 1.0}, True)
    with torch.no_grad():
        out = model.run(batch["x"], batch["prompt"])
    assert terms["score"].item() == pytest.approx(
        float(((out.score[:2] - batch["score"][:2]) ** 2).mean()), rel=1e-4)
    known = batch["acq_known"]
    assert terms["acquisition"].item() == pytest.approx(
        float(((out.acquisition[known] - batch["acquisition"][known]) ** 2).mean()), rel=1e-4)


def test_train_tagged_through_the_cli(tmp_path: Path) -> None:
    """`medq train CONFIG --tagged DIR --scores CSV`: an acquisition stage, then the score;
    the record and card describe the tagged images and the head's held-out estimates, the
    checkpoint has the head and `medq assess` reads it. A config and `--tagged` that do not
    go together are bad input (exit 2) before any image is read."""
    archive = _archive(tmp_path / "scans")
    lines = ["path,score"] + [f"scans/ct_{i}.dcm,{s}" for i, s in enumerate([1, 2, 3, 4, 2, 3])]
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    stages = ("  - {name: acquisition, steps: 120, lr: 0.003, losses: {acquisition: 1.0}, "
              "warmup: 5}\n  - {name: score, steps: 3, lr: 0.0005, losses: {score: 1.0}}\n")
    (tmp_path / "tg.yaml").write_text(
        "name: tg\nmodel: mediqa-tiny\nbatch_size: 4\nbench: {size: 32}\nslice_steps: 0\n"
        f"checkpoint_every_s: 0\nlog_every: 20\noutput: tg\nstages:\n{stages}")
    proc = run_medq("train", "tg.yaml", "--tagged", "scans", "--scores", "scores.csv",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # the --scores held-out image is no tagged training image either
    assert "scans: 11 of 12 images state an acquisition (ct_exposure 7, mr_field 4)" in \
        proc.stderr
    rec = json.loads((tmp_path / "tg" / "metrics.json").read_text())
    tagged = rec["tagged"]
    assert tagged["archive"] == "scans" and tagged["train"] == 9 and tagged["held_out"] == 2
    assert tagged["excluded"] == 1 and len(tagged["held_out_items"]) == 2
    assert set(tagged["metrics"]) <= {"ct_exposure", "mr_field"} and all(
        m["mae_doublings"] >= 0 for m in tagged["metrics"].values())
    losses_logged = [h["acquisition"] for h in rec["history"] if h["stage"] == "acquisition"]
    assert len(losses_logged) == 6 and losses_logged[-1] < 0.8 * losses_logged[0]
    from medq.assess.weights import load_weights
    from medq.train.acquisition import estimates

    train_set = load_tagged(archive, size=32)[0]  # the head ranks the doses it trained on
    ct = train_set["acq_known"][:, 0]
    found = estimates(load_weights(tmp_path / "tg" / "model.pt")[0], train_set)[ct, 0]
    truth = train_set["acquisition"][ct, 0]
    assert found[truth == truth.min()].mean() < found[truth == truth.max()].mean()
    assert rec["model_args"]["n_acquisition"] == len(TARGETS)
    card = (tmp_path / "tg" / "card.md").read_text()
    assert "## Acquisition pretraining (what your scans' headers state)" in card
    assert "11 stating an acquisition: ct_exposure 7 (" in card and "mr_field 4 (" in card
    assert "skipped: 1 held out by --scores" in card
    # the user's data by absolute path: the command runs from any folder
    assert (f"Reproduce: `medq train tg.yaml --tagged {tmp_path.resolve() / 'scans'} --scores "
            f"{tmp_path.resolve() / 'scores.csv'} -o tg`.") in card
    assessed = run_medq("assess", archive / "ct_0.dcm", archive / "mr_1.dcm", "--model",
                        "tg/model.pt", "--json", cwd=tmp_path)
    assert assessed.returncode == 0, assessed.stderr
    ct, mr = json.loads(assessed.stdout)
    assert 1 <= ct["score"] <= 5  # the head's estimates of the targets it learnt, beside the
    (exposure,) = ct["acquisition"].values()  # header's: CTDIvol, never stated, is left out
    assert set(ct["acquisition"]) == {"ct_exposure"} and exposure["stated"] == 25
    assert exposure["unit"] == "mAs" and exposure["estimated"] > 0
    assert mr["acquisition"]["mr_field"]["stated"] == 3.0 and mr["acquisition"]["mr_field"][
        "unit"] == "T"
    plain = run_medq("assess", archive / "ct_0.dcm", "--model", "tg/model.pt", cwd=tmp_path)
    assert f"looks like {exposure['estimated']:g} mAs exposure (the header states 25 mAs)" in \
        plain.stdout
    only_acquisition = (tmp_path / "tg.yaml").read_text().split("  - {name: score")[0]
    (tmp_path / "acq.yaml").write_text(only_acquisition)
    for args, reason in (
            (["tg.yaml", "--scores", "scores.csv"], "stage 'acquisition' weights the "
             "acquisition loss"),
            ([str(Path(__file__).parents[1] / "configs" / "mediqa_s_finetune.yaml"), "--tagged",
              "scans"],
             "no stage of this config weights"),
            (["tg.yaml", "--tagged", "scores.csv", "--scores", "scores.csv"],
             "0 of 0 images state"),
            (["acq.yaml", "--tagged", "scans", "--scores", "scores.csv"],
             "no stage weights the score loss")):
        bad = run_medq("train", *args, cwd=tmp_path)
        assert bad.returncode == 2 and reason in bad.stderr, bad.stderr


def test_a_loss_of_the_other_task_is_refused() -> None:
    """`acquisition` (or `score`) in a restoration stage, `l1` in a quality stage: bad input
    naming the stage, before any data work (before: a restore config weighting acquisition
    was told to give --tagged, then that --tagged trains quality models only)."""
    from medq.errors import InvalidParameter
    from medq.train.config import config_from_dict

    for task, model, loss in (("restore", "restore-unet-tiny", "acquisition"),
                              ("quality", "mediqa-tiny", "l1")):
        stage = {"name": "s", "steps": 2, "lr": 1e-3, "losses": {loss: 1.0}}
        with pytest.raises(InvalidParameter, match=rf"stages\[0\].losses: '{loss}' is no {task}"):
            config_from_dict({"name": "x", "model": model, "task": task, "stages": [stage]})

