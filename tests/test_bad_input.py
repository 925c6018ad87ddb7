"""Bad input: every failure is the right InputError subclass, names the path, fits on one line."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from conftest import dicom_testfile as tdata
from medq.errors import (
    EmptySeries,
    InputError,
    InvalidImage,
    MissingInput,
    MixedSeries,
    UnreadableImage,
    UnsupportedImage,
)
from medq.io import load


def _random(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return path
    return make


def _write(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(content)
        return tmp / name
    return make


def _pydicom_file(name: str) -> Callable[[Path], Path]:
    return lambda tmp: Path(tdata(name))


def _nifti(data: np.ndarray, name: str = "x.nii.gz") -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        nib.save(nib.Nifti1Image(data, np.eye(4)), tmp / name)
        return tmp / name
    return make


def _npy(arr: np.ndarray) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        np.save(tmp / "a.npy", arr, allow_pickle=True)
        return tmp / "a.npy"
    return make


def _truncated_png(tmp: Path) -> Path:
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)).save(tmp / "t.png")
    raw = (tmp / "t.png").read_bytes()
    (tmp / "t.png").write_bytes(raw[: len(raw) // 2])
    return tmp / "t.png"


def _truncated_nifti(tmp: Path) -> Path:
    path = _nifti(np.ones((20, 20, 20), np.float32))(tmp)
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:1000]))
    return path


def _empty_dir(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _dir_without_images(tmp: Path) -> Path:
    folder = tmp / "docs"
    folder.mkdir()
    (folder / "README").write_text("series exported by hand\n")
    (folder / "DICOMDIR").write_bytes(b"\0" * 200)
    shutil.copy(tdata("rtplan.dcm"), folder / "plan.dcm")
    return folder


def _mixed_dir(tmp: Path) -> Path:
    folder = tmp / "mixed"
    folder.mkdir()
    for series, n, desc in ((generate_uid(), 2, "AX CT"), (generate_uid(), 3, "COR CT")):
        for i in range(n):
            ds = pydicom.dcmread(tdata("CT_small.dcm"))
            ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
            ds.SeriesDescription = desc
            ds.ImagePositionPatient = [0, 0, float(i)]
            ds.save_as(folder / f"{desc[:3]}{i}.dcm")
    return folder


def _series_with_truncated_slice(tmp: Path) -> Path:
    folder = tmp / "broken"
    folder.mkdir()
    for i in range(2):
        ds = pydicom.dcmread(tdata("MR_small.dcm"))
        ds.SOPInstanceUID, ds.ImagePositionPatient = generate_uid(), [0, 0, float(i)]
        ds.save_as(folder / f"s{i}.dcm")
    shutil.copy(tdata("MR_truncated.dcm"), folder / "s2.dcm")
    return folder


CASES = [
    ("truncated DICOM", _pydicom_file("MR_truncated.dcm"), UnreadableImage, "pixel data"),
    ("ECG waveform", _pydicom_file("waveform_ecg.dcm"), UnsupportedImage, "Waveform"),
    ("RT plan", _pydicom_file("rtplan.dcm"),
     UnsupportedImage, "RT Plan Storage object has no image pixels"),
    ("DICOMDIR", _pydicom_file("dicomdirtests/DICOMDIR"), UnsupportedImage,
     "a DICOMDIR (the index of a DICOM medium), not an image: give medq the folder it indexes"),
    ("colour cine loop", _pydicom_file("SC_rgb_rle_2frame.dcm"), UnsupportedImage,
     "multi-frame colour DICOM (2 frames, such as a video or cine loop)"),
    ("empty .dcm", _write("empty.dcm", b""), UnreadableImage, "empty"),
    ("empty, no suffix", _write("empty", b""), UnreadableImage, "empty"),
    ("random .dcm", _random("noise.dcm"), UnreadableImage, "DICOM"),
    ("random, no suffix", _random("noise"), UnreadableImage, "DICOM"),
    ("random .png", _random("noise.png"), UnreadableImage, "PNG"),
    ("random .xyz", _random("noise.xyz"), UnsupportedImage, "unsupported file type"),
    ("text .nii.gz", _write("notes.nii.gz", b"just some text\n" * 20), UnreadableImage, "NIfTI"),
    ("text .txt", _write("notes.txt", b"just some text\n"), UnsupportedImage, "'.txt'"),
    ("truncated PNG", _truncated_png, UnreadableImage, "PNG"),
    ("truncated NIfTI", _truncated_nifti, UnreadableImage, "NIfTI"),
    ("all-NaN NIfTI", _nifti(np.full((4, 4, 4), np.nan, np.float32)), InvalidImage, "NaN"),
    ("4D NIfTI", _nifti(np.zeros((4, 4, 4, 3), np.float32)), UnsupportedImage, "4D"),
    ("object .npy", _npy(np.array([{"a": 1}, None], dtype=object)), UnreadableImage, ".npy"),
    ("4D .npy", _npy(np.zeros((2, 3, 4, 5))), UnsupportedImage, "shape (2, 3, 4, 5)"),
    ("text .npy", _write("notes.npy", b"just some text\n"), UnreadableImage, "no NumPy header"),
    ("CT cut in its header", lambda tmp: _write("cut.dcm", Path(tdata("CT_small.dcm")).read_bytes()[
        :300])(tmp), UnreadableImage, "CT Image Storage object has no pixel data (the file may"),
    ("missing path", lambda tmp: tmp / "nowhere" / "ct.dcm", MissingInput, "no such file"),
    ("empty folder", _empty_dir, EmptySeries, "no image medq reads"),
    ("folder without images", _dir_without_images, EmptySeries, "no image medq reads"),
    ("two series", _mixed_dir, MixedSeries, "2 DICOM series"),
    ("series with truncated slice", _series_with_truncated_slice, UnreadableImage, "s2.dcm"),
    # MR_small's preamble is a TIFF header: cut before DICM it was "TIFF of shape (0,)"
    ("DICOM cut in its preamble", _write("cut.dcm", Path(tdata("MR_small.dcm")).read_bytes()[:100]),
     UnreadableImage, "DICOM file cut short (100 bytes"),
]


@pytest.mark.parametrize(("make", "expected", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_raises_typed_one_line_error(tmp_path: Path, make, expected, words) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        load(path)
    err = info.value
    assert type(err) is expected, f"{type(err).__name__}: {err}"
    message = str(err)
    assert "\n" not in message
    assert str(path) in message.split(": ")[0] or message.startswith(str(path))
    assert words in message
    assert err.to_dict()["type"] == expected.__name__


def test_mixed_series_names_both_series(tmp_path: Path) -> None:
    folder = _mixed_dir(tmp_path)
    uids = {pydicom.dcmread(f).SeriesInstanceUID for f in folder.iterdir()}
    with pytest.raises(MixedSeries) as info:
        load(folder)
    message = str(info.value)
    assert all(uid in message for uid in uids)
    assert "'AX CT' (2 files)" in message and "'COR CT' (3 files)" in message


def test_4d_nifti_message_says_what_to_do(tmp_path: Path) -> None:
    path = _nifti(np.zeros((4, 4, 4, 3), np.float32))(tmp_path)
    with pytest.raises(UnsupportedImage, match="3 volumes.*as <file>@volume=<k>, k = 0 … 2"):
        load(path)
    assert load(f"{path}@volume=2").shape == (4, 4, 4)  # what the message says works


def test_a_reader_fault_is_an_unreadable_file_unless_medq_debug_is_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that trips on a file (here: a fault planted in the NIfTI reader) reports it as
    that file's one-line UnreadableImage; MEDQ_DEBUG=1 lets the fault itself through with its
    traceback, so that a fault of medq's own code is not taken for a bad file."""
    path = _nifti(np.ones((4, 4, 4), np.float32))(tmp_path)

    def fault(*args, **kwargs):
        raise AttributeError("planted fault")

    monkeypatch.setattr("medq.io.nifti.image_from_nifti", fault)
    monkeypatch.delenv("MEDQ_DEBUG", raising=False)
    with pytest.raises(UnreadableImage, match="not a readable NIfTI file.*AttributeError"):
        load(path)
    monkeypatch.setenv("MEDQ_DEBUG", "1")
    with pytest.raises(AttributeError, match="planted fault"):
        load(path)
    monkeypatch.setenv("MEDQ_DEBUG", "0")  # says no, as it reads
    with pytest.raises(UnreadableImage):
        load(path)


def test_a_file_name_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    from conftest import run_medq

    bad = tmp_path / "bad\nname.dcm"
    bad.write_bytes(b"")
    with pytest.raises(UnreadableImage) as caught:
        load(bad)
    assert caught.value.message.endswith("bad\\nname.dcm: file is empty")
    res = run_medq("info", bad)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1


def test_bad_override_names_the_path() -> None:
    from medq.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="CT_small.dcm.*unknown modality"):
        load(tdata("CT_small.dcm"), modality="XYZ")


def test_assessment_refuses_images_with_nothing_to_grade() -> None:
    from medq.assess.loading import check_assessable
    from medq.image import MedImage

    flat = np.full((32, 32), 7.0, np.float32)
    flat[0, 0] = np.inf  # the finite pixels decide
    for array, words in ((flat, "blank: every pixel is 7"),
                         (np.full((32, 32), np.nan, np.float32), "no finite pixel"),
                         (np.ones((8, 40), np.float32), "8×40 pixels")):
        with pytest.raises(InvalidImage, match=words):
            check_assessable(MedImage(array, (1.0, 1.0), "MR", source="x.nii.gz"))
    varied = np.arange(1024, dtype=np.float32).reshape(32, 32)
    varied[0, 0] = np.nan
    check_assessable(MedImage(varied, (1.0, 1.0), "MR"))  # partly NaN, not blank: no error


def test_a_label_map_given_by_mistake_is_refused_unless_a_modality_is_named(tmp_path: Path
                                                                           ) -> None:
    """A segmentation NIfTI (labels 0–3) was graded as PET and restored, which invented a label
    4; a mask the same. A file of at most 16 whole values is refused by name with exit code 2,
    in a batch beside an image that is graded; --modality grades it all the same. Pictures
    (a thresholded or 16-level PNG) are images however few their values."""
    from conftest import run_medq
    from medq.assess.loading import label_values
    from medq.image import MedImage

    labels = np.zeros((20, 60, 70), np.uint8)
    labels[5:15, 10:40, 10:50], labels[8:12, 20:30, 20:30], labels[:, 40:50, 30:60] = 1, 3, 2
    nib.save(nib.Nifti1Image(labels.T, np.eye(4)), tmp_path / "seg.nii.gz")
    nib.save(nib.Nifti1Image((labels > 0).T.astype(np.float32), np.eye(4)), tmp_path / "m.nii")
    ct = pydicom.dcmread(tdata("CT_small.dcm"))
    nib.save(nib.Nifti1Image(ct.pixel_array.T.astype(np.float32) - 1024, np.eye(4)),
             tmp_path / "ct.nii.gz")  # its Hounsfield units: a CT, graded
    res = run_medq("assess", "seg.nii.gz", "m.nii", "ct.nii.gz", cwd=tmp_path)
    assert res.returncode == 2 and "ct.nii.gz" in res.stdout, res.stdout
    assert ("seg.nii.gz: a label map or mask, not an image: its pixels take only 4 whole values "
            "(0, 1, 2, 3)") in res.stderr, res.stderr
    assert "m.nii: a label map or mask, not an image: its pixels take only 2 whole values (0, 1)" \
        in res.stderr
    res = run_medq("restore", "seg.nii.gz", "-o", "out.nii.gz", cwd=tmp_path)
    assert res.returncode == 2 and not (tmp_path / "out.nii.gz").exists()
    assert run_medq("assess", "seg.nii.gz", "--modality", "MR", cwd=tmp_path).returncode == 0
    many = np.random.default_rng(0).integers(0, 400, (40, 40)).astype(np.float32)
    assert label_values(MedImage(many, (1.0, 1.0), "OT")) is None  # an image's many values
    assert label_values(MedImage(many / 37.0 % 3, (1.0, 1.0), "OT")) is None  # fractions
    binary = (many > 200).astype(np.uint8) * 255  # a thresholded picture, 16 grey levels
    Image.fromarray(binary).save(tmp_path / "binary.png")
    Image.fromarray((many // 25 * 17).astype(np.uint8)).save(tmp_path / "levels.png")
    for picture in ("binary.png", "levels.png"):  # pictures hold few values and are images
        assert label_values(load(tmp_path / picture)) is None


def test_one_series_of_a_folder_holding_several_is_named_with_its_uid(tmp_path: Path) -> None:
    folder = _mixed_dir(tmp_path)
    by_uid: dict[str, int] = {}
    for f in folder.iterdir():
        uid = pydicom.dcmread(f).SeriesInstanceUID
        by_uid[uid] = by_uid.get(uid, 0) + 1
    for uid, n in by_uid.items():
        image = load(f"{folder}#{uid}")
        assert image.shape[0] == n and image.source == f"{folder}#{uid}"
    with pytest.raises(EmptySeries, match="no DICOM series of that SeriesInstanceUID"):
        load(f"{folder}#1.2.3")
    with pytest.raises(MixedSeries, match="name one as <folder>#<SeriesInstanceUID>"):
        load(folder)


def test_phase_like_reads_image_type_and_complex_component() -> None:
    from medq.assess.loading import phase_like
    from medq.image import MedImage

    def mr(**meta: object) -> MedImage:
        return MedImage(np.ones((32, 32), np.float32), (1.0, 1.0), "MR", "brain", meta=meta)

    assert phase_like(mr(complex_component="PHASE")) == "Complex Image Component PHASE"
    assert phase_like(mr(complex_component="MAGNITUDE")) is None
    assert phase_like(mr(image_type=["ORIGINAL", "PRIMARY", "PHASE MAP", "P", "FFE"]))
    assert phase_like(mr(image_type=["ORIGINAL", "PRIMARY", "M", "ND", "NORM"])) is None
    assert phase_like(mr(image_type=["P", "PRIMARY"])) is None  # only values 3 on name a kind
    ct = MedImage(np.ones((32, 32), np.float32), (1.0, 1.0), "CT", "head",
                  meta={"image_type": ["ORIGINAL", "PRIMARY", "P"]})
    assert phase_like(ct) is None


def _dual_echo_dir(tmp: Path) -> Path:
    """One MR series of 4 positions × 2 echoes (the second echo at 40 % of the first's signal)."""
    folder = tmp / "dual_echo"
    folder.mkdir()
    uid = generate_uid()
    for i in range(4):
        for echo, (te, gain) in enumerate(((10.0, 1.0), (80.0, 0.4)), start=1):
            ds = pydicom.dcmread(tdata("MR_small.dcm"))
            ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, generate_uid()
            ds.ImagePositionPatient = [0.0, 0.0, 3.0 * i]
            ds.EchoTime, ds.EchoNumbers = te, echo
            ds.PixelData = (ds.pixel_array * gain).astype(ds.pixel_array.dtype).tobytes()
            ds.save_as(folder / f"im{i}_{echo}.dcm")
    return folder


def test_a_multi_echo_series_is_one_volume_per_echo(tmp_path: Path) -> None:
    from medq.qc.discover import discover

    folder = _dual_echo_dir(tmp_path)
    uid = pydicom.dcmread(next(folder.iterdir())).SeriesInstanceUID
    with pytest.raises(UnsupportedImage, match="2 volumes at the same positions "
                                               r"\(EchoNumbers=1, EchoNumbers=2\)"):
        load(folder)
    first, second = (load(f"{folder}#{uid}@EchoNumbers={n}") for n in (1, 2))
    assert first.shape == second.shape == (4, 64, 64)
    assert np.allclose(second.array, np.floor(first.array * 0.4), atol=1.0)
    items = discover(folder)
    assert [i.path for i in items] == [f"{folder}#{uid}@EchoNumbers={n}" for n in (1, 2)]
    assert all(i.series and len(i.files) == 4 for i in items)
    with pytest.raises(EmptySeries, match="no slice with EchoNumbers 3"):
        load(f"{folder}#{uid}@EchoNumbers=3")


def test_an_instance_stored_twice_is_read_once_and_stacked_slices_are_counted(
        tmp_path: Path) -> None:
    """A copied slice (same SOPInstanceUID) failed the whole series as 'sharing a position';
    slices that all share one position are counted as such."""
    for folder, positions in (("dup", (0.0, 1.0, 2.0)), ("same", (0.0, 0.0, 0.0))):
        (tmp_path / folder).mkdir()
        series = generate_uid()
        for i, z in enumerate(positions):
            ds = pydicom.dcmread(tdata("CT_small.dcm"))
            ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
            ds.ImagePositionPatient = [0, 0, z]
            ds.PixelData = (ds.pixel_array + i).astype(np.int16).tobytes()  # three acquisitions
            ds.save_as(tmp_path / folder / f"s{i}.dcm")
    shutil.copy(tmp_path / "dup" / "s1.dcm", tmp_path / "dup" / "s1 copy.dcm")
    volume = load(tmp_path / "dup")
    assert volume.shape == (3, 128, 128) and volume.spacing[0] == pytest.approx(1.0)
    # a copy cut short in a re-send, named to sort before the whole one, spoiled the series
    whole = (tmp_path / "dup" / "s1.dcm").read_bytes()
    (tmp_path / "dup" / "s0 resent.dcm").write_bytes(whole[:len(whole) - 4000])
    again = load(tmp_path / "dup")
    np.testing.assert_array_equal(again.array, volume.array)
    with pytest.raises(UnsupportedImage, match="3 slices at only 1 distinct position "):
        load(tmp_path / "same")


def test_copies_of_one_instance_in_a_folder_are_each_an_image(tmp_path: Path) -> None:
    """Two files of one SOPInstanceUID alone in a folder were one "series" read once, so a
    damaged copy was never reported when its name sorted second, and hid the good copy when it
    sorted first; each is now an input of its own, under its own path."""
    from medq.qc.discover import discover

    for name, damaged in (("first", "a.dcm"), ("second", "z.dcm")):
        folder = tmp_path / name
        folder.mkdir()
        good = Path(tdata("CT_small.dcm")).read_bytes()
        (folder / "m.dcm").write_bytes(good)
        (folder / damaged).write_bytes(good[:20000])
        items = discover(folder)
        assert [Path(i.path).name for i in items] == sorted(["m.dcm", damaged])
        assert not any(i.series for i in items)
        assert load(folder / "m.dcm").shape == (128, 128)
        with pytest.raises(UnreadableImage, match="cannot decode the pixel data"):
            load(folder / damaged)


def test_a_patient_folder_of_series_folders_names_them_when_read_as_one_image(
        tmp_path: Path) -> None:
    # `medq.load` (and a --scores line) reads a folder as one series; the walks of assess, info
    # and qc enter subfolders, a single read does not, so its error says where the images are
    patient = tmp_path / "patient"
    for name in ("s2", "s1", ".hidden"):
        (patient / name).mkdir(parents=True)
        shutil.copy(tdata("CT_small.dcm"), patient / name / "slice.dcm")
    (patient / "empty").mkdir()
    with pytest.raises(EmptySeries) as err:
        load(patient)
    assert str(err.value).endswith("no image medq reads (DICOM, NIfTI, PNG, …) at its top "
                                   "level; its subfolders s1, s2 hold files: name one image or "
                                   "series folder (medq assess, info and qc walk a folder's "
                                   "subfolders themselves)")
    assert load(patient / "s1").shape == (128, 128)
    with pytest.raises(EmptySeries) as err:
        load(patient / "empty")
    assert "subfolder" not in str(err.value)


def test_a_slice_sent_again_under_a_new_uid_is_read_once(tmp_path: Path) -> None:
    # a PACS that sends a slice again gives it a new SOPInstanceUID: the series was refused as
    # "6 slices at only 5 distinct positions"; a different slice at one position still is
    from medq.qc.discover import discover, load_item

    for k in range(5):
        ds = pydicom.dcmread(tdata("CT_small.dcm"))
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        ds.SOPInstanceUID = generate_uid()
        ds.ImagePositionPatient = [0, 0, 5.0 * k]
        ds.PixelData = (ds.pixel_array + 10 * k).astype(np.int16).tobytes()
        ds.save_as(tmp_path / f"s{k}.dcm")
    again = pydicom.dcmread(tmp_path / "s2.dcm")
    again.SOPInstanceUID = generate_uid()
    again.save_as(tmp_path / "s2_again.dcm")
    volume = load(tmp_path)
    assert volume.shape == (5, 128, 128)
    np.testing.assert_array_equal(volume.array[2], load(tmp_path / "s2.dcm").array)
    items = discover(tmp_path)
    assert len(items) == 1 and load_item(items[0]).shape == (5, 128, 128)
    again.PixelData = (again.pixel_array + 1).astype(np.int16).tobytes()
    again.save_as(tmp_path / "s2_again.dcm")
    with pytest.raises(UnsupportedImage, match="6 slices at only 5 distinct positions"):
        load(tmp_path)


def test_a_refusal_of_the_system_reads_as_words_not_an_exception(tmp_path: Path) -> None:
    # a folder that may not be listed read "PermissionError: [Errno 13] Permission denied: …"
    from medq.errors import unreadable

    (tmp_path / "f.dcm").write_bytes(b"x")
    folder = unreadable(PermissionError(13, "Permission denied", str(tmp_path)), tmp_path)
    assert folder.reason == "cannot list the folder (permission denied)"
    file = unreadable(PermissionError(13, "Permission denied"), tmp_path / "f.dcm")
    assert file.reason == "cannot read the file (permission denied)"
    cut = unreadable(OSError("Expected 400 bytes, got 100"), tmp_path / "f.dcm", "not a NIfTI")
    assert cut.reason == "not a NIfTI (OSError: Expected 400 bytes, got 100)"


@pytest.mark.parametrize("gzipped", [True, False])
def test_a_nifti_stating_more_voxels_than_its_file_holds_is_refused_before_reading(
        tmp_path: Path, gzipped: bool) -> None:
    # a 173-byte .nii.gz stating 1000³ float voxels took 4 GB of memory before it failed
    from medq.errors import UnreadableImage
    from medq.io import load

    header = nib.Nifti1Header()
    header.set_data_shape((1000, 1000, 1000))
    header.set_data_dtype(np.float32)
    raw = header.binaryblock + bytes(4) + bytes(100_000)
    path = tmp_path / ("big.nii.gz" if gzipped else "big.nii")
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    with pytest.raises(UnreadableImage, match="states 4,000,000,000 bytes of voxels"):
        load(path)


def test_a_npy_of_text_names_no_python_call(tmp_path: Path) -> None:
    # `medq info words.npy` advised "use medq.assess.predictor.Assessor().assess_many(inputs)"
    from medq.errors import UnsupportedImage
    from medq.io import from_array, load

    np.save(tmp_path / "words.npy", np.array(["a", "b", "c"]))
    with pytest.raises(UnsupportedImage) as caught:
        load(tmp_path / "words.npy")
    assert "dtype <U1 is not a real image" in str(caught.value)
    assert "assess_many" not in str(caught.value)
    with pytest.raises(UnsupportedImage, match="assess_many"):  # the Python API's list of paths
        from_array(np.array(["a.dcm", "b.dcm"]))


def test_a_nifti_phase_image_is_refused_by_its_sidecar_or_its_bids_name(tmp_path: Path) -> None:
    """dcm2niix writes a phase image as NIfTI with the DICOM's ImageType (…\\P\\…) in its JSON
    sidecar, and BIDS names it part-phase or phasediff: each is refused as not a magnitude image
    (it was graded as an MR), the magnitude beside it is assessed."""
    import json

    from conftest import run_medq

    rng = np.random.default_rng(0)
    phase = rng.uniform(-np.pi, np.pi, (40, 40, 12)).astype(np.float32)
    magnitude = np.abs(rng.normal(100, 10, (40, 40, 12))).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    files = {"scan_ph.nii.gz": phase, "sub-01_part-phase_T1w.nii.gz": phase,
             "sub-01_phasediff.nii.gz": phase, "sub-01_part-mag_T1w.nii.gz": magnitude}
    for name, data in files.items():
        nib.save(nib.Nifti1Image(data, affine), tmp_path / name)
    (tmp_path / "scan_ph.json").write_text(json.dumps(
        {"Modality": "MR", "ImageType": ["ORIGINAL", "PRIMARY", "P", "ND"]}))
    for name, said in (("scan_ph.nii.gz", "ImageType ORIGINAL\\PRIMARY\\P\\ND"),
                       ("sub-01_part-phase_T1w.nii.gz", "BIDS part-phase"),
                       ("sub-01_phasediff.nii.gz", "BIDS suffix phasediff")):
        res = run_medq("assess", tmp_path / name)
        assert res.returncode == 2, (name, res.stderr)
        assert f"not a magnitude image ({said})" in res.stderr, res.stderr
    assert run_medq("assess", tmp_path / "sub-01_part-mag_T1w.nii.gz").returncode == 0
