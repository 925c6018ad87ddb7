"""Zip and tar archives of images as inputs (`medq.io.archive`), as a user hands them over."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import dicom_testfile, run_medq
from medq.data.samples import load_sample
from medq.io import save


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A study folder (a 4-slice MR series of the MNI T1, pydicom's CT slice, the skull
    radiograph) and the same study as a zip and as a gzipped tar archive."""
    root = tmp_path_factory.mktemp("study")
    folder = root / "study"
    mr = load_sample("mni_t1")
    middle = mr.shape[0] // 2
    series = mr.evolve(array=np.ascontiguousarray(mr.array[middle - 2:middle + 2]),
                       modality="MR")
    save(series, folder / "t1")
    shutil.copy(dicom_testfile("CT_small.dcm"), folder / "ct.dcm")
    save(load_sample("xr_head"), folder / "skull.dcm")
    with zipfile.ZipFile(root / "study.zip", "w") as z:
        for f in sorted(folder.rglob("*")):
            z.write(f, f.relative_to(root))
    with tarfile.open(root / "study.tar.gz", "w:gz") as t:
        t.add(folder, "study")
    return {"root": root, "folder": folder, "zip": root / "study.zip",
            "tar": root / "study.tar.gz"}


def _rows(res) -> dict[str, dict]:
    return {row["path"]: row for row in json.loads(res.stdout)}


def test_an_archive_is_assessed_as_the_folder_it_holds(study: dict[str, Path],
                                                       tmp_path: Path) -> None:
    """Each image in a zip or tar archive is an input named `<archive>/<path inside>` and gets
    the score its unpacked file gets; the extraction folders are gone after the command."""
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    res = run_medq("assess", "study", "study.zip", "study.tar.gz", "--json", "--no-measures",
                   cwd=study["root"], env={"TMPDIR": str(env_tmp)})
    assert res.returncode == 0, res.stderr
    rows = _rows(res)
    inside = ["study/ct.dcm", "study/skull.dcm", "study/t1"]
    assert set(rows) == {f"{where}/{name.removeprefix('study/')}" if where == "study"
                         else f"{where}/{name}"
                         for where in ("study", "study.zip", "study.tar.gz") for name in inside}
    for name in inside:
        plain = rows[name]
        for where in ("study.zip", "study.tar.gz"):
            packed = rows[f"{where}/{name}"]
            assert packed["score"] == plain["score"]
            assert packed["modality"] == plain["modality"]
    assert rows["study.zip/study/t1"]["shape"] == [4, 233, 197]  # the series is one volume
    assert list(env_tmp.iterdir()) == []


def test_bad_archives_fail_alone_with_their_reason(study: dict[str, Path],
                                                  tmp_path: Path) -> None:
    """A damaged zip, a zip whose member climbs out of its folder and a tar with a link to
    outside are refused one by one (exit code 2), naming the archive; nothing is written
    outside the extraction folder; the good archive beside them is still assessed."""
    (tmp_path / "damaged.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with zipfile.ZipFile(tmp_path / "climb.zip", "w") as z:
        z.write(dicom_testfile("CT_small.dcm"), "../escaped.dcm")
    with tarfile.open(tmp_path / "link.tar", "w") as t:
        info = tarfile.TarInfo("images/ct.dcm")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    with warnings.catch_warnings(), zipfile.ZipFile(tmp_path / "twice.zip", "w") as z:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        z.write(dicom_testfile("CT_small.dcm"), "a.dcm")  # the good scan, then junk of its
        z.writestr("a.dcm", b"junk")  # name: unpacked, the junk replaced it without a word
    res = run_medq("assess", "damaged.zip", "climb.zip", "link.tar", "twice.zip", study["zip"],
                   "--json", "--no-measures", cwd=tmp_path)
    assert res.returncode == 2
    rows = _rows(res)
    assert "several members named 'a.dcm'" in rows["twice.zip"]["error"]["message"]
    assert rows["damaged.zip"]["error"]["message"] == \
        "damaged.zip: cannot unpack archive (BadZipFile: File is not a zip file)"
    assert "archive refused, nothing in it read: its member '../escaped.dcm' would be written " \
        "outside" in rows["climb.zip"]["error"]["message"]
    assert rows["link.tar"]["error"]["message"].startswith("link.tar: cannot unpack archive")
    assert rows["climb.zip"]["error"]["message"].startswith("climb.zip: ")  # as typed
    assert not (tmp_path.parent / "escaped.dcm").exists()
    assert sum("score" in row for row in rows.values()) == 3
    assert len(res.stderr.strip().splitlines()) == 4  # one line per bad archive


def test_info_describe_and_restore_read_archives_other_commands_say_so(
        study: dict[str, Path], tmp_path: Path) -> None:
    """`medq info` and `describe` list what is inside; `medq restore` writes each result under
    OUT at its path inside the archive, in its format; `medq simulate` says to extract it."""
    for listed in (study["zip"], study["root"]):  # the archive, and the folder it came from
        info = run_medq("info", listed, "--json")
        assert info.returncode == 0, info.stderr
        assert {Path(r["path"]).name: r["modality"] for r in json.loads(info.stdout)} == \
            {"ct.dcm": "CT", "skull.dcm": "DX", "t1": "MR"}

    described = run_medq("describe", study["tar"], "--json")
    assert described.returncode == 0, described.stderr
    texts = {Path(r["path"]).name: r["text"] for r in json.loads(described.stdout)}
    assert set(texts) == {"ct.dcm", "skull.dcm", "t1"}
    assert all(t.endswith(".") and "Overall" in t for t in texts.values())

    out = tmp_path / "restored"
    res = run_medq("restore", study["zip"], "-o", out, "--method", "tv", "--force", "--json")
    assert res.returncode == 0, res.stderr
    written = {r["path"]: r["output"] for r in json.loads(res.stdout)}
    assert written[f"{study['zip']}/study/ct.dcm"] == str(out / "study" / "ct.dcm")
    import pydicom

    ds = pydicom.dcmread(out / "study" / "ct.dcm")
    assert ds.Modality == "CT" and ds.pixel_array.shape == (128, 128)
    assert (out / "study" / "t1").is_dir()

    res = run_medq("simulate", study["zip"], "-k", "blur", "--severity", "mild",
                   "-o", tmp_path / "x.dcm")
    assert res.returncode == 2
    assert res.stderr.strip() == (f"medq: error: {study['zip']}: an archive of images, not an "
                                  "image: medq assess, describe, restore and info read the "
                                  "images inside it; extract it for other commands")


def test_a_walked_folder_does_not_open_the_archives_in_it(study: dict[str, Path]) -> None:
    """Archives inside a folder are not inputs of their own (name them to open them), and
    `medq qc`, which keeps every item's path for the review app, asks for the folder."""
    from medq.errors import UnsupportedImage
    from medq.qc.discover import discover

    found = {os.path.relpath(item.path, study["root"]) for item in discover(study["root"])}
    assert found == {"study/ct.dcm", "study/skull.dcm", "study/t1"}
    with pytest.raises(UnsupportedImage, match="unpack it and QC the folder"):
        discover(study["zip"])


def test_archives_a_walked_folder_leaves_unread_are_named(tmp_path: Path) -> None:
    """A folder's walk does not open the archives in it, and says so: a note beside the images
    it read, and, for a folder holding nothing but archives, an error naming them and what to
    do (`medq qc run` included); a damaged archive named among `medq restore`'s inputs fails
    alone, the other inputs are restored."""
    shutil.copy(dicom_testfile("CT_small.dcm"), tmp_path / "ct.dcm")
    only, mixed = tmp_path / "only", tmp_path / "mixed"
    for folder in (only, mixed):
        folder.mkdir()
        with zipfile.ZipFile(folder / "study.zip", "w") as z:
            z.write(tmp_path / "ct.dcm", "ct.dcm")
    shutil.copy(tmp_path / "ct.dcm", mixed / "ct.dcm")
    res = run_medq("info", "only", "mixed", "--json", cwd=tmp_path)
    assert res.returncode == 2
    rows = _rows(res)
    assert set(rows) == {"only", "mixed/ct.dcm"}
    assert rows["only"]["error"]["message"] == (
        "only: folder holds no image medq reads (DICOM, NIfTI, PNG, …); 1 zip/tar archive "
        "inside not opened (only/study.zip): name it to read it")
    assert "medq: note: mixed: 1 zip/tar archive inside not opened (mixed/study.zip): name it "\
        "to read it" in res.stderr
    res = run_medq("qc", "run", "only", "--db", f"sqlite:///{tmp_path / 'qc.sqlite'}",
                   cwd=tmp_path)
    assert res.returncode == 2 and "unpack it to QC the images" in res.stderr

    (tmp_path / "damaged.zip").write_bytes(b"PK\x03\x04 not really a zip")
    res = run_medq("restore", "ct.dcm", "damaged.zip", "-o", "out/", "--method", "tv",
                   "--force", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[0] == \
        "medq: error: damaged.zip: cannot unpack archive (BadZipFile: File is not a zip file)"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ct.dcm"]


def test_a_zip_members_utf8_name_is_kept_when_the_archive_does_not_flag_it(tmp_path: Path
                                                                          ) -> None:
    """Linux `zip` and macOS write UTF-8 names without zip's UTF-8 flag; they were read as
    code page 437 ("scan ├⌐.dcm"), shown so and restored under that name. Info-ZIP's Unicode
    Path field, where present, gives the name."""
    from medq.io.archive import member_name

    name = "scan é ü.dcm"
    stand_in = "scan xx yy.dcm"  # as long in bytes as the UTF-8 name
    assert len(stand_in.encode()) == len(name.encode())
    archive = tmp_path / "u.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(dicom_testfile("CT_small.dcm"), stand_in)
    archive.write_bytes(archive.read_bytes().replace(stand_in.encode(), name.encode()))
    (info,) = zipfile.ZipFile(archive).infolist()
    assert not info.flag_bits & 0x800 and info.filename != name  # read as code page 437
    assert member_name(info) == name
    res = run_medq("assess", archive, "--json", "--no-measures")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["path"].endswith(f"u.zip/{name}")
    field = bytes([1]) + zipfile.crc32(b"legacy.dcm").to_bytes(4, "little") + name.encode()
    flagged = zipfile.ZipInfo("legacy.dcm")
    flagged.extra = (0x7075).to_bytes(2, "little") + len(field).to_bytes(2, "little") + field
    assert member_name(flagged) == name
