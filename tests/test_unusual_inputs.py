"""Valid but unusual images: odd geometry, odd sizes and odd value ranges are graded, restored and
written back, or refused in one line naming the file — never an internal error."""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid

import medq
from conftest import dicom_testfile, run_medq
from medq.errors import InvalidImage
from medq.image import MedImage
from medq.io import from_array


def _ct_volume(ct_slice: MedImage, n: int = 3) -> np.ndarray:
    """CT_small's slice, a little shifted per slice, as a NIfTI-ordered `(x, y, z)` volume."""
    return np.stack([np.roll(ct_slice.array, 2 * k, axis=1) for k in range(n)]).T


def _nifti_with_sform(data: np.ndarray, sform: np.ndarray, path: Path) -> Path:
    """A NIfTI file whose only affine is `sform` (no qform), written as it is."""
    header = nib.Nifti1Image(data, np.eye(4)).header
    header.set_qform(None, code=0)
    header.set_sform(sform, code=1)
    nib.Nifti1Image(data, None, header=header).to_filename(path)
    return path


def _nifti_with_pixdim(data: np.ndarray, pixdim: tuple[float, float, float], path: Path) -> Path:
    """An uncompressed NIfTI file (no qform, no sform) whose pixdim holds `pixdim` as stored,
    however odd (nibabel would mend a zero or negative one when writing)."""
    header = nib.Nifti1Image(data, np.eye(4)).header
    header.set_qform(None, code=0)
    header.set_sform(None, code=0)
    nib.Nifti1Image(data, None, header=header).to_filename(path)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<3f", raw, 80, *pixdim)  # pixdim[1..3], after pixdim[0] at byte 76
    path.write_bytes(bytes(raw))
    return path


def test_a_16_pixel_image_is_restored_to_finite_values(tmp_path: Path, ct_slice: MedImage
                                                       ) -> None:
    """A 16×16 crop, the smallest image medq assesses, is restored by the network (whose
    degradation prior pools a single position) and re-assessed, with nothing said on stderr."""
    crop = tmp_path / "crop16.npy"
    np.save(crop, ct_slice.array[56:72, 56:72])
    out = tmp_path / "restored.npy"
    res = run_medq("restore", crop, "-o", out, "--force")
    assert res.returncode == 0, res.stderr
    assert "Warning" not in res.stderr and "error" not in res.stderr
    restored = medq.load(out)
    assert restored.shape == (16, 16) and np.isfinite(restored.array).all()
    assert "the re-assessed score" in res.stdout


def test_a_nifti_without_usable_geometry_is_read_assessed_and_restored(tmp_path: Path,
                                                                       ct_slice: MedImage
                                                                       ) -> None:
    """A NaN pixdim, a NaN sform and a singular sform (two voxel axes on one line) state no
    place in the patient: the voxels are still read (1 mm assumed where no spacing is stated),
    graded with a finite score and restored into a NIfTI file that loads back."""
    data = _ct_volume(ct_slice)
    singular = np.diag([0.66, 0.66, 0.0, 1.0])
    nan_sform = np.diag([np.nan, 0.66, 5.0, 1.0])
    files = [_nifti_with_pixdim(data, (math.nan, 0.66, 5.0), tmp_path / "nan pixdim.nii"),
             _nifti_with_sform(data, nan_sform, tmp_path / "nan_sform.nii.gz"),
             _nifti_with_sform(data, singular, tmp_path / "singular.nii.gz")]
    for path in files[:2]:
        image = medq.load(path)
        assert image.shape == (3, 128, 128) and "affine" not in image.meta
    res = run_medq("assess", *files, dicom_testfile("CT_small.dcm"), "--json", "--no-measures")
    assert res.returncode == 0, res.stderr
    scores = [row["score"] for row in json.loads(res.stdout)]
    assert len(scores) == 4 and all(math.isfinite(s) for s in scores)
    out = tmp_path / "restored.nii.gz"
    res = run_medq("restore", files[2], "-o", out, "--method", "tv", "--force")
    assert res.returncode == 0, res.stderr
    restored = medq.load(out)
    assert restored.shape == (3, 128, 128)
    assert np.linalg.matrix_rank(np.asarray(restored.meta["affine"])[:3, :3]) == 3


def test_nibabels_notes_on_a_mended_header_stay_off_the_terminal(tmp_path: Path,
                                                                 ct_slice: MedImage) -> None:
    """A negative pixdim is mended by nibabel (absolute values), which logs a note: `medq info`
    reads the file and prints nothing on stderr."""
    path = _nifti_with_pixdim(_ct_volume(ct_slice), (-0.66, -0.66, -5.0), tmp_path / "neg.nii")
    zero = _nifti_with_pixdim(_ct_volume(ct_slice), (0.66, 0.66, 0.0), tmp_path / "zero.nii")
    res = run_medq("info", path, zero, "--json", new_process=True)  # nibabel logs to the
    assert res.returncode == 0 and res.stderr == "", res.stderr  # process's stderr
    neg, unstated = json.loads(res.stdout)
    assert neg["spacing"] == pytest.approx([5.0, 0.66, 0.66], abs=1e-4)
    assert "spacing_assumed" not in neg and unstated["spacing_assumed"]  # a zero size is 1 mm


def test_values_beyond_float32_are_refused_by_name_not_called_nan(tmp_path: Path,
                                                                  ct_slice: MedImage) -> None:
    """A float64 image whose finite values exceed float32's range (medq computes in float32) is
    refused with that reason, as an array and as a `.npy` file beside a good one; the values it
    does hold are not turned into infinities and repaired."""
    huge = ct_slice.array.astype(np.float64) * 1e300
    with pytest.raises(InvalidImage, match="exceed the range medq computes in"):
        medq.assess(huge, measures=False)
    spots = ct_slice.array.astype(np.float64)
    spots[0, :3] = 1e40  # three pixels out of range: not silently replaced
    with pytest.raises(InvalidImage, match="pixel values up to 1e\\+40"):
        from_array(spots)
    volume = tmp_path / "huge.nii.gz"  # a float64 NIfTI file alike
    nib.save(nib.Nifti1Image(_ct_volume(ct_slice).astype(np.float64) * 1e300, np.eye(4),
                             dtype=np.float64), volume)
    with pytest.raises(InvalidImage, match="exceed the range medq computes in"):
        medq.load(volume)
    path = tmp_path / "huge.npy"
    np.save(path, huge)
    res = run_medq("assess", path, dicom_testfile("CT_small.dcm"), "--json", "--no-measures")
    rows = json.loads(res.stdout)
    assert res.returncode == 2 and rows[1]["score"] > 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"medq: error: {path}: pixel values up to")
    assert "exceed the range medq computes in" in lines[0]


def _series(folder: Path, orientation: list[float], n: int = 3) -> Path:
    """CT_small as an `n`-slice series 5 mm apart stating ImageOrientationPatient
    `orientation`."""
    folder.mkdir()
    series = generate_uid()
    for i in range(n):
        ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
        ds.InstanceNumber, ds.ImagePositionPatient = i + 1, [0.0, 0.0, 5.0 * i]
        ds.ImageOrientationPatient = orientation
        ds.save_as(folder / f"IM{i}.dcm")
    return folder


def test_a_series_without_a_slice_normal_is_ordered_by_number_and_written(tmp_path: Path
                                                                          ) -> None:
    """A series whose ImageOrientationPatient is all zeros or has parallel row and column
    directions has no slice normal: its slices, at distinct positions, are not said to share
    one but ordered by InstanceNumber; written as MetaImage or NIfTI it gets a valid frame."""
    zeros = _series(tmp_path / "zeros", [0.0] * 6)
    image = medq.load(zeros)
    assert image.shape == (3, 128, 128) and image.spacing[0] == pytest.approx(5.0)
    parallel = _series(tmp_path / "parallel", [1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    for name in ("restored.mha", "restored.nii.gz"):
        res = run_medq("restore", parallel, "-o", tmp_path / name, "--method", "tv", "--force")
        assert res.returncode == 0, res.stderr
        back = medq.load(tmp_path / name)
        assert back.shape == (3, 128, 128) and np.isfinite(back.array).all()
    affine = np.asarray(medq.load(tmp_path / "restored.nii.gz").meta["affine"])
    assert np.linalg.matrix_rank(affine[:3, :3]) == 3


def test_mr_simulation_of_odd_images_is_done_or_refused_in_one_line(tmp_path: Path,
                                                                    mr_slice: MedImage) -> None:
    """Motion is simulated on an MR image one phase-encode line high; Rician noise, set as a
    fraction of the bright tissue, is refused by name for an image of negative values only (a
    training build's blank crop keeps getting no noise, as before)."""
    line = mr_slice.with_array(mr_slice.array[30:31])
    moved, record = medq.simulate(line, "mr_motion", severity="severe")
    assert moved.shape == (1, 64) and np.isfinite(moved.array).all()
    assert record.severity == "severe"
    negative = tmp_path / "negative.npy"
    np.save(negative, -1.0 - mr_slice.array)
    out = tmp_path / "noisy.npy"
    res = run_medq("simulate", negative, "-k", "mr_noise", "--severity", "mild", "--modality",
                   "MR", "-o", out)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and not out.exists()
    assert lines[0].startswith(f"medq: error: {negative}: mr_noise scales its noise")
    blank = mr_slice.with_array(np.zeros_like(mr_slice.array))
    assert np.array_equal(medq.simulate(blank, "mr_noise", severity="mild")[0].array, blank.array)


def test_a_true_false_colour_array_is_a_photograph_at_full_scale(retina: MedImage) -> None:
    """A boolean colour array (a thresholded photograph) reads True as full intensity, as a
    float array in 0–1 would, not as 1 of 255."""
    bright = retina.array[::4, ::4] > 0.3
    image = from_array(bright)
    assert image.is_rgb and image.array.max() == 1.0
    np.testing.assert_array_equal(image.array, bright.astype(np.float32))


@pytest.mark.parametrize("scale", [1.0, 1e-30], ids=["fractions 0-1", "1e-30 steps"])
def test_an_image_of_fractions_keeps_its_values_in_every_format(tmp_path: Path,
                                                               mr_slice: MedImage,
                                                               scale: float) -> None:
    """MR_small scaled to 0–1 (a normalised image) or to 1e-30 steps is written as PNG, JPEG,
    TIFF and DICOM with its values mapped onto the stored levels, not rounded to whole numbers
    (which leaves 0 and 1, or nothing)."""
    values = (mr_slice.array / mr_slice.array.max()).astype(np.float64) * scale
    span = float(np.ptp(values))
    for suffix, tolerance in ((".png", 0.01), (".jpg", 0.05), (".tif", 0.01), (".dcm", 0.01)):
        path = medq.save(values, tmp_path / f"fractions{suffix}", modality="MR")
        back = medq.load(path).array
        assert np.abs(back - values).max() <= tolerance * span, suffix


def _itk_with_header(volume: np.ndarray, path: Path, field: bytes, line: bytes) -> Path:
    """`volume` `(z, y, x)` as a MetaImage or NRRD file SimpleITK wrote (0.66 × 0.66 × 5 mm;
    .mhd: compressed, with its data file) whose header line starting `field` reads `line`."""
    img = sitk.GetImageFromArray(volume)
    img.SetSpacing((0.66, 0.66, 5.0))
    sitk.WriteImage(img, str(path), path.suffix == ".mhd")
    raw = path.read_bytes()
    start = raw.index(field)
    path.write_bytes(raw[:start] + line + raw[raw.index(b"\n", start):])
    return path


def test_itk_files_of_zero_nan_or_singular_geometry_are_read_like_nifti(tmp_path: Path,
                                                                        ct_slice: MedImage
                                                                        ) -> None:
    """A zero or NaN spacing and a singular direction, which ITK refuses to make an image of,
    are read as NIfTI files alike are: the voxels, no place in the patient, 1 mm where no usable
    spacing is stated; `medq restore` writes such a MetaImage back as one that loads."""
    volume = _ct_volume(ct_slice).T.astype(np.int16)
    files = {  # name: header field, its odd line, the spacing medq reads
        "zero.mha": (b"ElementSpacing", b"ElementSpacing = 0 0.66 5", (1.0, 1.0, 1.0)),
        "nan.nrrd": (b"space directions", b"space directions: (nan,0,0) (0,0.66,0) (0,0,5)",
                     (1.0, 1.0, 1.0)),
        "singular.nrrd": (b"space directions",
                          b"space directions: (0.66,0,0) (0.66,0,0) (0,0,5)", (5.0, 0.66, 0.66)),
        "singular.mhd": (b"TransformMatrix", b"TransformMatrix = 1 0 0 1 0 0 0 0 1",
                         (5.0, 0.66, 0.66)),
    }
    for name, (field, line, spacing) in files.items():
        image = medq.load(_itk_with_header(volume, tmp_path / name, field, line))
        np.testing.assert_array_equal(image.array, volume)
        assert image.spacing == pytest.approx(spacing), name
        assert image.meta.get("spacing_assumed", False) == (spacing[0] == 1.0), name
        assert "origin" not in image.meta and "direction" not in image.meta, name
    out = tmp_path / "restored.mha"
    res = run_medq("restore", tmp_path / "zero.mha", "-o", out, "--method", "tv", "--force")
    assert res.returncode == 0 and "Warning" not in res.stderr, res.stderr
    assert medq.load(out).shape == volume.shape


def _nrrd(path: Path, pixels: np.ndarray, fields: str) -> Path:
    """`pixels` (int16, `(…, y, x)`) as an attached raw NRRD whose header adds `fields`."""
    sizes = " ".join(str(n) for n in reversed(pixels.shape))
    path.write_bytes(f"NRRD0004\ntype: short\ndimension: {pixels.ndim}\nsizes: {sizes}\n"
                     f"endian: little\nencoding: raw\n{fields}\n".encode()
                     + pixels.astype("<i2").tobytes())
    return path


def test_itk_files_that_state_no_usable_spacing_are_flagged_as_assumed(tmp_path: Path,
                                                                       ct_slice: MedImage
                                                                       ) -> None:
    """ITK reads a NaN `spacings` entry, or a header without any spacing, at 1 mm without a
    word: medq flags such a spacing as assumed, as it does for NIfTI, and keeps a stated one
    (a single slice's NaN slice spacing is no loss)."""
    volume = _ct_volume(ct_slice)[:4].astype(np.int16)
    files = {  # name: its pixels, its spacing fields, the spacing medq reads, assumed?
        "nan.nrrd": (volume, "spacings: NaN NaN NaN\n", (1.0, 1.0, 1.0), True),
        "one_nan.nrrd": (volume, "spacings: 0.5 0.5 NaN\n", (1.0, 1.0, 1.0), True),
        "none.nrrd": (volume, "", (1.0, 1.0, 1.0), True),
        "slice.nrrd": (volume[:1], "spacings: 0.5 0.5 NaN\n", (0.5, 0.5), False),
        "stated.nrrd": (volume, "spacings: 0.5 0.5 2\n", (2.0, 0.5, 0.5), False),
    }
    for name, (pixels, fields, spacing, assumed) in files.items():
        image = medq.load(_nrrd(tmp_path / name, pixels, fields))
        np.testing.assert_array_equal(image.array, pixels.squeeze())
        assert image.spacing == pytest.approx(spacing), name
        assert image.meta.get("spacing_assumed", False) is assumed, name
    mha = tmp_path / "stated.mha"
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(mha))
    raw = mha.read_bytes()
    start = raw.index(b"ElementSpacing")
    (tmp_path / "unstated.mha").write_bytes(raw[:start] + raw[raw.index(b"\n", start) + 1:])
    assert not medq.load(mha).meta.get("spacing_assumed", False)
    assert medq.load(tmp_path / "unstated.mha").meta["spacing_assumed"] is True


def test_a_restored_dicom_keeps_a_zero_pixel_spacing_it_stated(tmp_path: Path) -> None:
    """A DICOM whose PixelSpacing is 0\\0 (no usable spacing: 1 mm assumed) is restored into a
    DICOM that states what its source stated, not the 1\\1 medq assumed."""
    ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
    ds.PixelSpacing = [0, 0]
    ds.save_as(tmp_path / "zero.dcm")
    out = tmp_path / "restored.dcm"
    res = run_medq("restore", tmp_path / "zero.dcm", "-o", out, "--method", "tv", "--force")
    assert res.returncode == 0, res.stderr
    assert [float(v) for v in pydicom.dcmread(out).PixelSpacing] == [0.0, 0.0]


def test_a_huge_rescale_slope_is_graded_quietly_or_refused_by_name(tmp_path: Path) -> None:
    """RescaleSlope 1e30 (values up to about 3e33, within float32) is assessed and described
    with nothing on stderr (the streak index squares no value beyond float32); 1e36 (beyond
    float32) is refused with the reason, not read as infinities called 'not a number'."""
    paths = []
    for slope in ("1e30", "1e36"):
        ds = pydicom.dcmread(dicom_testfile("CT_small.dcm"))
        ds.RescaleSlope = slope
        paths.append(tmp_path / f"slope{slope}.dcm")
        ds.save_as(paths[-1])
    for command in ("assess", "describe"):
        res = run_medq(command, paths[0], "--json", new_process=True)  # NumPy warns on stderr
        assert res.returncode == 0 and res.stderr == "", res.stderr
        assert math.isfinite(json.loads(res.stdout)[0]["score"])
    text = json.loads(res.stdout)[0]["text"]  # the description's noise level in HU
    assert "σ ≈" in text and not re.search(r"\d{7}", text), text
    res = run_medq("assess", paths[1], "--json", "--no-measures")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"medq: error: {paths[1]}: pixel values up to 2.19e+39 exceed")


def test_values_below_float32_are_refused_by_name_not_called_blank(tmp_path: Path) -> None:
    """A float64 image of denormal values (1e-310, none zero) would be all zeros in float32: it
    is refused for being too small, not called blank; an image of zeros still is blank."""
    tiny = np.full((64, 64), 1e-310) * np.linspace(1, 2, 64)
    with pytest.raises(InvalidImage, match="pixel values of at most 2e-310 are too small for "
                                           "the range medq computes in"):
        from_array(tiny)
    path = tmp_path / "tiny.npy"
    np.save(path, tiny)
    res = run_medq("assess", path, "--no-measures")
    assert res.returncode == 2 and "rescale the image" in res.stderr
    assert "blank" not in res.stderr, res.stderr
    with pytest.raises(InvalidImage, match="blank"):
        medq.assess(np.zeros((64, 64)), measures=False)


def test_a_volume_of_one_pixel_rows_is_refused_as_a_stack_of_lines(tmp_path: Path) -> None:
    """An array of 20 slices of 1×64 pixels is named for what it is, not as a 1×64 image (a
    NIfTI of that shape states a coronal plane, and is read as one: `test_io`)."""
    path = tmp_path / "lines.npy"
    np.save(path, np.random.default_rng(0).random((20, 1, 64)).astype(np.float32) * 100)
    res = run_medq("assess", path, "--no-measures")
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == (f"medq: error: {path}: a stack of 20 lines of 64 pixels (slices "
                                  "of 1×64), not of images; medq assesses images of at least "
                                  "16×16 pixels in-plane")
