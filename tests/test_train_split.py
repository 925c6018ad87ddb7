"""Held-out splits of the user's images by subject (`medq.train.split`): whole patients held out
for `--tagged` archives and `--scores` files, the plain seeded split where no file names one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import medq
from conftest import dicom_testfile
from medq.data.samples import export_samples
from medq.train.acquisition import load_tagged
from medq.train.split import held_out, subject_key


def _subjects(keys: list[str | None], at: np.ndarray) -> set[str]:
    return {keys[i] for i in at if keys[i] is not None}


def test_without_subjects_the_split_is_the_seeded_permutation() -> None:
    for n, seed in ((5, 0), (12, 3), (37, 9)):
        train, test, note = held_out([None] * n, seed)
        order = np.random.default_rng(seed).permutation(n)
        k = max(1, n // 5)
        assert test.tolist() == order[:k].tolist() and train.tolist() == order[k:].tolist()
        assert note is None


def test_whole_subjects_are_held_out_and_none_is_on_both_sides() -> None:
    keys: list[str | None] = [f"p{i % 7}" for i in range(30)] + [None] * 5
    tests = set()
    for seed in range(20):
        train, test, note = held_out(keys, seed)
        assert note is None and sorted([*train, *test]) == list(range(35))
        assert not _subjects(keys, train) & _subjects(keys, test)
        assert 7 <= len(test) <= 14  # about a fifth, whole subjects
        tests.add(tuple(sorted(test)))
    assert len(tests) > 5  # the seed decides who is held out


def test_a_subject_too_large_to_hold_out_is_always_trained_on() -> None:
    keys: list[str | None] = ["big"] * 10 + [f"s{i}" for i in range(5)]
    for seed in range(10):
        train, test, note = held_out(keys, seed)
        assert note is None and len(test) == 3 and "big" not in _subjects(keys, test)


def test_one_subject_falls_back_to_images_and_says_so() -> None:
    train, test, note = held_out(["p"] * 6, 0)
    assert len(test) == 1 and len(train) == 5 and note and "no whole subject" in note


def test_subject_keys_from_headers_and_bids_paths(tmp_path: Path) -> None:
    """A DICOM file's PatientID gives its key, as a digest that does not hold the ID; a BIDS
    path gives its subject label; a file that states neither gives None."""
    ct = medq.load(dicom_testfile("CT_small.dcm"))
    patient = str(pydicom.dcmread(dicom_testfile("CT_small.dcm")).PatientID)
    key = subject_key(ct)
    assert key and key.startswith("patient:") and patient not in key
    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    ds.PatientID = "someone else"
    ds.save_as(tmp_path / "other.dcm")
    assert subject_key(medq.load(tmp_path / "other.dcm")) not in (key, None)
    (png,) = export_samples(tmp_path, ["retina"])
    retina = medq.load(png)
    assert subject_key(retina) is None
    assert subject_key(retina, "/data/sub-07/ses-1/anat/sub-07_T1w.nii.gz") == "bids:07"
    assert subject_key(retina, "/data/derivatives/sub-AB12_T1w.nii.gz") == "bids:AB12"
    assert subject_key(retina, "/data/subject-3/t1.nii") is None
    assert subject_key(retina, "/home/sub-projects/scan.nii") is None  # a folder says nothing


def test_images_medq_wrote_without_a_patient_are_no_one_patient(tmp_path: Path) -> None:
    """Every DICOM medq wrote from a NIfTI or PNG stated PatientID MEDQ, so a rated set's
    unrelated images (a PET series, the exported radiograph) were held out as one patient; it
    now writes none, and reads the old placeholder as none."""
    xr = medq.load(export_samples(tmp_path, ["xr_head"])[0])
    assert subject_key(xr) is None
    pet = medq.load(export_samples(tmp_path, ["pet_brain"])[0])
    medq.save(pet, tmp_path / "pet_series")
    assert subject_key(medq.load(tmp_path / "pet_series")) is None
    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    ds.PatientID = "MEDQ"  # what medq wrote before
    ds.save_as(tmp_path / "old.dcm")
    assert subject_key(medq.load(tmp_path / "old.dcm")) is None


def test_a_copy_of_a_named_patients_image_goes_with_that_patient() -> None:
    """A held-out patient's DICOM saved as NIfTI (same pixels, no PatientID) was trained on, and
    its score leaked into the held-out SRCC; copies join the patient's key, even through a
    chain (a copy of a copy), and copies of no one share a key of their own."""
    from medq.train.scores import copy_groups

    a, b, c = (np.full((4, 4), v, dtype=np.float32) for v in (1.0, 2.0, 3.0))
    items = [{"x": a, "subject": "patient:p"}, {"x": a, "subject": None},
             {"x": b, "subject": "patient:p"}, {"x": c, "subject": None},
             {"x": c, "subject": None}, {"x": b.copy(), "subject": None},
             {"x": np.zeros((4, 4), np.float32), "subject": None}]
    keys, copies = copy_groups(items)
    assert keys[:3] == ["patient:p"] * 3 and keys[5] == "patient:p"
    assert keys[3] == keys[4] and keys[3].startswith("copy:") and keys[6] is None
    assert copies == 3


def _patients_archive(folder: Path) -> dict[str, str]:
    """Five patients with three CT series each (25–100 mAs) and five with one; returns each
    file's PatientID."""
    folder.mkdir()
    owner = {}
    for p in range(10):
        for s in range(3 if p < 5 else 1):
            ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
            ds.PatientID = f"patient-{p}"
            ds.Exposure = str(25 * 2 ** s)
            ds.SeriesInstanceUID = pydicom.uid.generate_uid()
            ds.PixelData = (ds.pixel_array + 7 * (3 * p + s)).astype(np.int16).tobytes()
            name = f"p{p}_s{s}.dcm"
            ds.save_as(folder / name)
            owner[name] = f"patient-{p}"
    return owner


def _owners(data: dict[str, np.ndarray], owner: dict[str, str]) -> set[str]:
    return {owner[Path(s).name] for s in data["source"]}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tagged_archives_hold_out_whole_patients(tmp_path: Path, seed: int, monkeypatch) -> None:
    owner = _patients_archive(tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    train, test, summary = load_tagged("a", size=32, seed=seed)
    assert all(p.startswith("a/") for p in summary["held_out_items"])  # as the user wrote it
    assert summary["split"] == "subject" and summary["subjects"] == 10
    assert len(train["score"]) + len(test["score"]) == 20 and 4 <= len(test["score"]) <= 8
    assert not _owners(train, owner) & _owners(test, owner)
    # a --scores run's held-out patient: its other series are not trained on either
    excluded = medq.load(tmp_path / "a" / "p0_s0.dcm").meta["patient_key"]
    train, test, summary = load_tagged(tmp_path / "a", size=32, seed=seed,
                                       exclude_subjects=[excluded])
    assert summary["excluded"] == 3 and summary["tagged"] == 17
    assert "patient-0" not in _owners(train, owner) | _owners(test, owner)


def test_scores_files_hold_out_whole_patients(tmp_path: Path) -> None:
    from medq.train.scores import load_scores

    owner = _patients_archive(tmp_path / "a")
    csv = tmp_path / "scores.csv"
    csv.write_text("path,score\n" + "".join(f"a/{name},{1 + i % 5}\n"
                                            for i, name in enumerate(sorted(owner))))
    train, test = load_scores(csv, size=32, seed=4)
    assert len(train["score"]) + len(test["score"]) == 20
    assert not _owners(train, owner) & _owners(test, owner)
    assert set(test["subject"]) <= {medq.load(tmp_path / "a" / n).meta["patient_key"]
                                    for n in owner}


def test_scores_record_how_the_split_was_made_and_which_lines_were_not_used(
        tmp_path: Path) -> None:
    """The `--scores` record (and card) says whole patients were held out, or that the split
    fell back to images; the lines whose image could not be read are named; a decimal comma in
    a quoted score of a comma-separated file is read as the error message advises."""
    from medq.train.card import _scores_data
    from medq.train.scores import describe, load_scores, read_scores

    owner = _patients_archive(tmp_path / "a")
    csv = tmp_path / "scores.csv"
    names = sorted(owner)
    csv.write_text("path,score\n" + "".join(f'a/{name},"{1 + i % 4},5"\n'
                                            for i, name in enumerate(names))
                   + "a/missing.dcm,3\n")
    rows = read_scores(csv)
    assert [r["score"] for r in rows[:3]] == [1.5, 2.5, 3.5]
    train, test = load_scores(csv, size=32, rows=rows)
    said = describe(csv, rows, train, test)
    assert said["split"] == "subject" and said["subjects"] == 10
    assert said["skipped_lines"] == [len(names) + 2]  # the header is line 1

    class Cfg:
        init, model = "", "mediqa-tiny"

    card = _scores_data(Cfg(), {"scores": said})
    assert "held out for the test (whole patients: 10 named" in card
    assert f"Not used (the image could not be read; the training log says why): line " \
        f"{len(names) + 2}." in card
    ds = pydicom.dcmread(tmp_path / "a" / "p5_s0.dcm")
    for k in range(3):  # with patient-0's three series: five images of one patient
        ds.PatientID, ds.SOPInstanceUID = "patient-0", pydicom.uid.generate_uid()
        ds.PixelData = (ds.pixel_array + k + 1).astype(np.int16).tobytes()
        ds.save_as(tmp_path / "a" / f"extra{k}.dcm")
    ones = [n for n in names if owner[n] == "patient-0"] + [f"extra{k}.dcm" for k in range(3)]
    one = tmp_path / "one.csv"  # every image of one patient: by image, said
    one.write_text("path,score\n" + "".join(f"a/{n},{1 + i % 5}\n" for i, n in enumerate(ones)))
    rows = read_scores(one)
    train, test = load_scores(one, size=32, rows=rows)
    said = describe(one, rows, train, test)
    assert said["split"] == "image" and said["subjects"] == 1
    assert "by image: its 1 named patient was too few" in _scores_data(Cfg(), {"scores": said})


def test_tagged_images_the_score_stage_trains_on_are_never_held_out(tmp_path: Path) -> None:
    """With `--scores`, the tagged images (and their patients) that the score stage trains on
    are kept out of the acquisition test, which would otherwise be measured on trained
    images; a dcm2niix sidecar's PatientID names the patient of a NIfTI file."""
    owner = _patients_archive(tmp_path / "a")
    keys = {medq.load(tmp_path / "a" / n).meta["patient_key"] for n in owner}
    scored = sorted(keys)[:6]
    for seed in range(3):
        train, test, summary = load_tagged(tmp_path / "a", size=32, seed=seed,
                                           trained_subjects=scored)
        held = {medq.load(s).meta["patient_key"] for s in test["source"]}
        assert held and not held & set(scored)
    train, test, summary = load_tagged(tmp_path / "a", size=32,
                                       trained=[tmp_path / "a" / "p5_s0.dcm"])
    assert not any(Path(s).name == "p5_s0.dcm" for s in test["source"])
    import json as _json

    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((8, 8, 2), np.int16), np.eye(4)), tmp_path / "ct.nii.gz")
    (tmp_path / "ct.json").write_text(_json.dumps({"Modality": "CT", "PatientID": "PAT03"}))
    key = subject_key(medq.load(tmp_path / "ct.nii.gz"))
    assert key and key.startswith("patient:") and "PAT03" not in key


def test_a_run_folder_given_as_the_model_is_read_as_its_checkpoint(tmp_path: Path) -> None:
    """`--model runs/x` (the folder `medq train` wrote) is its runs/x/model.pt, for the quality
    model as for the restoration network (which took it while the assessment refused it), and
    QC results name the checkpoint."""
    from medq.assess.weights import resolve
    from medq.qc.runner import model_key
    from medq.restore.models import resolve as resolve_restorer

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.pt").write_bytes(b"")
    checkpoint = tmp_path / "run" / "model.pt"
    assert resolve(tmp_path / "run") == checkpoint == resolve_restorer(tmp_path / "run")
    key = model_key(str(tmp_path / "run"))  # by path and content: retrained, it is another
    assert key == f"{checkpoint.resolve()}#sha256=af5570f5a181"  # an empty file's fingerprint
    checkpoint.write_bytes(b"retrained")
    assert model_key(str(tmp_path / "run")).startswith(f"{checkpoint.resolve()}#sha256=")
    assert model_key(str(tmp_path / "run")) != key
    from medq.errors import InvalidParameter  # a run still training, and a folder of runs

    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "resume.pt").write_bytes(b"")
    with pytest.raises(InvalidParameter, match="half: a run not finished yet"):
        resolve(tmp_path / "half")
    with pytest.raises(InvalidParameter, match="a folder without model.pt: give a restoration"):
        resolve_restorer(tmp_path)


def test_scored_copies_of_one_image_under_other_names_are_never_split(tmp_path: Path,
                                                                      capsys) -> None:
    """PNG files name no patient; a scores file that lists one picture under several names
    (a copy per rater, say) keeps its copies on one side of the split, and says so."""
    from medq.train.scores import load_scores

    folder = tmp_path / "png"
    folder.mkdir()
    base = medq.load(dicom_testfile("CT_small.dcm")).array
    lines = []
    for k in range(8):  # eight pictures, the first three also saved under two more names
        picture = np.clip((base + 40 * k + 1100) / 12, 0, 255).astype(np.uint8)
        for c in range(3 if k < 3 else 1):
            name = f"pic{k}_copy{c}.png"
            medq.save(medq.io.arrays.from_array(picture, modality="CT"), folder / name)
            lines.append(f"png/{name},{1 + k % 5}\n")
    csv = tmp_path / "scores.csv"
    csv.write_text("path,score,modality\n" + "".join(line.strip() + ",CT\n" for line in lines))
    for seed in range(4):
        train, test = load_scores(csv, size=32, seed=seed)
        assert len(train["score"]) + len(test["score"]) == 14

        def pictures(data):
            return {Path(s).name.split("_")[0] for s in data["source"]}

        assert not pictures(train) & pictures(test), seed
    assert "6 images under another name are pixel for pixel copies" in capsys.readouterr().err

