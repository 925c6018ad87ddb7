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
    assert len(test) == 1 and len(train) == 5 and note and "too few" in note


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
def test_tagged_archives_hold_out_whole_patients(tmp_path: Path, seed: int) -> None:
    owner = _patients_archive(tmp_path / "a")
    train, test, summary = load_tagged(tmp_path / "a", size=32, seed=seed)
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
