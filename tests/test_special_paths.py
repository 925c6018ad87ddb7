"""Paths that are not plain files, and outputs that cannot be written: symbolic links, named
pipes, devices, a full stdout; and a map's undefined (NaN/inf) voxels through `medq restore`."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import MEDQ, dicom_testfile, run_medq
from medq.errors import InvalidImage, InvalidParameter, UnreadableImage, UnsupportedImage
from medq.io import load, save
from medq.io.atomic import atomic_write_text

FULL = Path("/dev/full")
HAS_FULL = FULL.exists() and stat.S_ISCHR(FULL.stat().st_mode)


def test_a_write_goes_through_a_symbolic_link_and_into_a_named_pipe(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    (tmp_path / "link.csv").symlink_to("real.csv")
    atomic_write_text(tmp_path / "link.csv", "new\n")
    assert (tmp_path / "link.csv").is_symlink() and real.read_text() == "new\n"
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_text()), daemon=True)
    reader.start()
    atomic_write_text(pipe, "through the pipe\n")
    reader.join(timeout=30)
    assert got == ["through the pipe\n"] and stat.S_ISFIFO(pipe.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "pipe.csv", "real.csv"]


def test_a_special_file_that_cannot_take_the_output_is_a_write_error_and_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipe (or device) whose write fails, as a full device's does, is a one-line write error
    and is left as it was. A named pipe of the test's own stands in for /dev/full: a test that
    wrote to the system's device would replace it, run as root against a regression."""
    import errno
    import shutil

    def full(src: object, out: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    pipe = tmp_path / "full"
    os.mkfifo(pipe)
    reader = threading.Thread(target=pipe.read_bytes, daemon=True)  # lets the write open it
    reader.start()
    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(InvalidParameter, match=r"full: cannot write \(No space left on device\)"):
        atomic_write_text(pipe, "x")
    reader.join(timeout=30)
    assert stat.S_ISFIFO(pipe.stat().st_mode) and [p.name for p in tmp_path.iterdir()] == ["full"]


def test_a_named_pipe_or_device_is_never_read_as_an_image(tmp_path: Path) -> None:
    """Opening a pipe waits for a writer and /dev/zero never ends: both are refused at once, and
    a folder walk passes a pipe by."""
    from medq.qc.discover import folder_items

    os.mkfifo(tmp_path / "pipe.dcm")
    with pytest.raises(UnsupportedImage, match="not a regular file"):
        load(tmp_path / "pipe.dcm")
    with pytest.raises(UnsupportedImage, match="not a regular file"):
        load("/dev/zero")
    (tmp_path / "mr.dcm").write_bytes(Path(dicom_testfile("MR_small.dcm")).read_bytes())
    items = folder_items(tmp_path, ["pipe.dcm", "mr.dcm"])
    assert [Path(i.path).name for i in items] == ["mr.dcm"]


def test_a_zero_filled_file_is_refused_without_walking_it(tmp_path: Path) -> None:
    """pydicom reads zeros as empty elements of group 0, four bytes at a time."""
    zeros = tmp_path / "blank.dcm"
    zeros.write_bytes(bytes(1 << 20))
    with pytest.raises(UnreadableImage, match="starts with zero bytes"):
        load(zeros)


@pytest.mark.skipif(not HAS_FULL, reason="no /dev/full on this system")
def test_a_stdout_that_cannot_be_written_is_one_error_line() -> None:
    with FULL.open("w") as full:
        res = subprocess.run([*MEDQ, "info", dicom_testfile("CT_small.dcm"), "--json"],
                             stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=300,
                             env={k: v for k, v in os.environ.items() if k != "MEDQ_DEBUG"})
    assert res.returncode == 1
    assert res.stderr == "medq: error: cannot write the output (No space left on device)\n"


def test_exporting_samples_into_an_unwritable_folder_is_bad_input(tmp_path: Path,
                                                                  monkeypatch) -> None:
    import shutil

    from medq.data.samples import export_samples

    def refused(src: str, dst: str) -> None:
        raise PermissionError(1, "Operation not permitted", dst)

    monkeypatch.setattr(shutil, "copyfile", refused)
    with pytest.raises(InvalidParameter, match=r"ct_small\.dcm: cannot write \(Operation not"):
        export_samples(tmp_path, ["ct_small"])


def test_restore_keeps_a_map_s_undefined_voxels(tmp_path: Path, mni_t1) -> None:
    """NaN and ±inf voxels come back as they were (they were shown to the method as the
    smallest finite value); formats that cannot hold them say so."""
    from medq.restore.pipeline import restore

    array = np.asarray(mni_t1.array[80:84], dtype=np.float32).copy()
    array[:, :40] = np.nan
    array[1, 100:104] = np.inf
    array[2, 100:104] = -np.inf
    path = tmp_path / "map.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array.T), np.eye(4)), path)
    image = load(path, modality="MR")
    assert image.meta["nonfinite_fraction"] == pytest.approx(np.mean(~np.isfinite(array)))
    result = restore(image, "tv", force=True, reassess=False)
    out = result.image.array
    undefined = ~np.isfinite(array)
    assert np.array_equal(out[undefined], array[undefined], equal_nan=True)
    assert np.isfinite(out[~undefined]).all() and result.changed
    back = nib.load(save(result.image, tmp_path / "restored.nii.gz")).get_fdata().T
    assert np.array_equal(np.isnan(back), np.isnan(array))
    with pytest.raises(InvalidImage, match="NaN or infinite pixels in this format"):
        save(result.image, tmp_path / "restored.dcm")
    res = run_medq("restore", path, "-o", tmp_path / "cli.nii.gz", "--modality", "MR")
    assert res.returncode == 0, res.stderr
    cli = nib.load(tmp_path / "cli.nii.gz").get_fdata().T
    assert np.array_equal(np.isnan(cli), np.isnan(array))
    assert np.array_equal(np.isinf(cli), np.isinf(array))


def test_only_a_failed_output_stream_is_called_an_output_that_cannot_be_written(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`last_resort` (the CLI's hook for what no command handled): a full disk or a closed pipe
    without a file name is the output stream; an OSError about a named file, or of another
    kind, is not put down to the output."""
    import errno

    from medq.cli import common

    monkeypatch.setattr(common.os, "dup2", lambda *a: None)  # keep pytest's own stdout
    cases = [(OSError(errno.ENOSPC, "No space left on device"),
              "cannot write the output (No space left on device)"),
             (BrokenPipeError(errno.EPIPE, "Broken pipe"), "cannot write the output (Broken pipe)"),
             (PermissionError(errno.EACCES, "Permission denied", "/opt/medq/weights.pt"),
              "Permission denied"),
             (OSError(errno.ENOSPC, "No space left on device", "/tmp/cache/x.npz"),
              "/tmp/cache/x.npz")]
    for exc, said in cases:
        common.last_resort(type(exc), exc, None)
        line = capsys.readouterr().err
        assert line.startswith("medq: error: ") and said in line, line
        assert ("cannot write the output" in line) == (exc.filename is None), line
