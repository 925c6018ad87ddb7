"""medq.io on real files: DICOM (file, series, multi-frame, compressed), NIfTI, PNG/TIFF, npy."""

from __future__ import annotations

import gzip
import json
import logging
import os
import secrets
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import SIEMENS_MOSAIC, siemens_mosaic
from conftest import dicom_testfile as tdata
from medq.errors import InvalidParameter
from medq.image import MedImage
from medq.io import load, save, sniff
from medq.io.dicom_tags import region_from_text
from medq.io.dicom_values import encode_pixels


def _ct_stored() -> np.ndarray:
    return pydicom.dcmread(tdata("CT_small.dcm")).pixel_array


# ------------------------------------------------------------------ single DICOM files


def test_ct_small_is_ct_in_hu_with_physics() -> None:
    img = load(tdata("CT_small.dcm"))
    assert img.modality == "CT" and img.shape == (128, 128)
    np.testing.assert_array_equal(img.array, _ct_stored().astype(np.float32) - 1024)
    assert img.array.min() == -896 and img.array.max() == 1167
    assert img.spacing == pytest.approx((0.661468, 0.661468))
    assert img.physics["kvp"] == 120 and img.physics["exposure_mAs"] == 170
    assert img.physics["convolution_kernel"] == "STANDARD"
    assert img.physics["slice_thickness_mm"] == 5.0
    assert all(isinstance(v, (int, float, str)) for v in img.physics.values())
    assert img.meta["format"] == "dicom" and img.meta["photometric"] == "MONOCHROME2"
    assert img.meta["dicom_files"] == [tdata("CT_small.dcm")]
    assert img.region == "unknown"  # CT_small states no body part
    json.dumps([img.meta, img.physics])  # meta stays JSON-friendly


def test_mr_small_physics_and_overrides() -> None:
    img = load(tdata("MR_small.dcm"))
    assert img.modality == "MR" and img.shape == (64, 64)
    assert img.physics["tr_ms"] == 4000.0 and img.physics["te_ms"] == 240.0
    assert img.physics["flip_angle_deg"] == 90.0
    assert "field_strength_T" not in img.physics and "kvp" not in img.physics
    over = load(tdata("MR_small.dcm"), modality="ct", region="brain")
    assert (over.modality, over.region) == ("CT", "brain")


@pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "MR_small_RLE.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm"])
def test_compressed_and_other_syntaxes_equal_mr_small(name: str) -> None:
    ref = load(tdata("MR_small.dcm"))
    img = load(tdata(name))
    np.testing.assert_array_equal(img.array, ref.array)
    assert img.spacing == ref.spacing and img.modality == "MR"


def test_lossy_compression_as_the_header_states_it(tmp_path: Path) -> None:
    j2k = load(tdata("693_J2KI.dcm"))  # a 512² CT in 1.5 kB: JPEG 2000 at 339:1, flagged "01"
    assert j2k.meta["lossy_compression"] == {
        "stated_by": "LossyImageCompression", "ratio": pytest.approx(338.687, abs=1e-3),
        "method": None, "transfer_syntax": "JPEG 2000 Image Compression"}
    baseline = load(tdata("SC_rgb_jpeg_dcmtk.dcm")).meta["lossy_compression"]
    assert baseline["ratio"] == pytest.approx(17.401) and baseline["method"] == "ISO_10918_1"
    for name in ("CT_small.dcm", "MR_small_jp2klossless.dcm", "J2K_pixelrep_mismatch.dcm"):
        assert "lossy_compression" not in load(tdata(name)).meta  # lossless or uncompressed
    # the flag alone decides for a syntax that may be either way; a series counts its slices
    folder = tmp_path / "series"
    folder.mkdir()
    for i in range(3):
        ds = pydicom.dcmread(tdata("CT_small.dcm"))
        ds.InstanceNumber, ds.SOPInstanceUID = i + 1, generate_uid()
        ds.ImagePositionPatient = [0.0, 0.0, 5.0 * i]
        if i:
            ds.LossyImageCompression, ds.LossyImageCompressionRatio = "01", [12.5, 4.0]
        ds.save_as(folder / f"{i}.dcm")
    series = load(folder)
    assert series.shape[0] == 3
    assert series.meta["lossy_compression"]["ratio"] == 12.5
    assert series.meta["lossy_compression"]["slices"] == 2
    assert series.meta["lossy_compression"]["ratios"] == [12.5, 4.0]  # compressed twice
    # a derived file keeps the flag (DICOM: once lossy, always lossy), so it is read again
    back = load(save(j2k, tmp_path / "derived.dcm"))
    assert back.meta["lossy_compression"]["ratio"] == pytest.approx(338.687, abs=1e-3)


def test_jpeg_files_are_lossy_by_format(tmp_path: Path) -> None:
    from skimage import data

    rgb = data.retina()[::4, ::4]
    Image.fromarray(rgb).save(tmp_path / "fundus.jpg", quality=60)
    Image.fromarray(rgb).save(tmp_path / "fundus.png")
    lossy = load(tmp_path / "fundus.jpg").meta["lossy_compression"]
    stored = (tmp_path / "fundus.jpg").stat().st_size
    assert lossy["stated_by"] == "file format" and lossy["method"] == "ISO_10918_1"
    assert lossy["ratio"] == pytest.approx(rgb.size / stored, abs=0.01) and lossy["ratio"] > 5
    assert "lossy_compression" not in load(tmp_path / "fundus.png").meta
    Image.fromarray(rgb).save(tmp_path / "jpeg.tif", compression="jpeg", quality=60)
    Image.fromarray(rgb).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    assert load(tmp_path / "jpeg.tif").meta["lossy_compression"]["ratio"] > 5  # JPEG in a TIFF
    assert "lossy_compression" not in load(tmp_path / "lzw.tif").meta
    # written as DICOM, the pixels stay flagged lossy (DICOM: once lossy, always lossy)
    ds = pydicom.dcmread(save(load(tmp_path / "fundus.jpg"), tmp_path / "fundus.dcm"))
    assert (ds.LossyImageCompression, ds.LossyImageCompressionMethod) == ("01", "ISO_10918_1")
    again = load(tmp_path / "fundus.dcm").meta["lossy_compression"]
    assert again["stated_by"] == "LossyImageCompression"
    assert again["ratio"] == pytest.approx(lossy["ratio"])


def test_tiff_samples_pillow_cannot_open_are_read_by_tifffile(tmp_path: Path) -> None:
    """scikit-image's camera as float64 and as signed 32-bit TIFF (Pillow has no mode for
    either) reads with its values; complex samples are refused with what medq reads."""
    import tifffile
    from skimage import data

    from medq.errors import UnsupportedImage

    camera = data.camera()
    tifffile.imwrite(tmp_path / "f64.tif", camera / 255.0)
    tifffile.imwrite(tmp_path / "i32.tif", camera.astype(np.int32) - 100)
    img = load(tmp_path / "f64.tif")
    assert img.shape == camera.shape and img.meta["bit_depth"] == 32
    np.testing.assert_allclose(img.array, camera / 255.0, atol=1e-7)
    np.testing.assert_array_equal(load(tmp_path / "i32.tif").array, camera.astype(np.int32) - 100)
    tifffile.imwrite(tmp_path / "c.tif", np.zeros((32, 32), np.complex64))
    with pytest.raises(UnsupportedImage, match="reads grey .* and 8-bit colour TIFF"):
        load(tmp_path / "c.tif")


def test_preamble_less_dicom_without_suffix(tmp_path: Path) -> None:
    ds = pydicom.dcmread(tdata("CT_small.dcm"))
    target = tmp_path / "IMG0001"
    ds.preamble, ds.file_meta = None, FileMetaDataset()
    pydicom.dcmwrite(target, ds, implicit_vr=True, little_endian=True)
    assert target.read_bytes()[128:132] != b"DICM"
    assert sniff(target) == "dicom"
    np.testing.assert_array_equal(load(target).array, load(tdata("CT_small.dcm")).array)


def test_gzipped_dicom_is_read_and_written_gzipped(tmp_path: Path) -> None:
    ref = load(tdata("MR_small.dcm"))
    zipped = load(tdata("zipMR.gz"))  # pydicom's gzipped copy of MR_small
    assert sniff(tdata("zipMR.gz")) == "dicom"
    np.testing.assert_array_equal(zipped.array, ref.array)
    assert zipped.modality == "MR" and zipped.spacing == ref.spacing
    out = save(zipped.evolve(array=zipped.array + 1.0), tmp_path / "restored.gz")
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    back = load(out)
    np.testing.assert_allclose(back.array, ref.array + 1.0, atol=1e-3)
    with gzip.open(out) as fh:
        ds = pydicom.dcmread(fh)
    src = pydicom.dcmread(tdata("MR_small.dcm"))
    assert "DERIVED" in ds.ImageType and ds.SOPInstanceUID != src.SOPInstanceUID
    assert ds.PatientName == src.PatientName  # the input's header is the template
    # a gzipped file that is not DICOM inside is still read as NIfTI, whatever its name
    nifti = tmp_path / "t1.nii.gz"
    save(ref, nifti)
    renamed = tmp_path / "t1.gz"
    shutil.copy(nifti, renamed)
    assert sniff(renamed) == "nifti"
    np.testing.assert_array_equal(load(renamed).array, load(nifti).array)
    for name, inside in (("t1.jpg", "nifti"), ("mr.png", "dicom")):  # no picture is gzipped
        misnamed = tmp_path / name
        shutil.copy(nifti if inside == "nifti" else tdata("zipMR.gz"), misnamed)
        assert sniff(misnamed) == inside
        np.testing.assert_array_equal(load(misnamed).array, ref.array)


def test_gzipped_files_past_the_ceiling_or_corrupt_are_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from medq.errors import InputError
    from medq.io import gz

    monkeypatch.setattr(gz, "MAX_GUNZIPPED", 4096)  # zipMR.gz holds 9,830 bytes
    with pytest.raises(InputError, match="decompresses to more than") as big:
        load(tdata("zipMR.gz"))
    assert "zipMR.gz" in str(big.value)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(Path(tdata("zipMR.gz")).read_bytes()[:60])  # truncated stream
    with pytest.raises(InputError) as bad:
        load(broken)
    assert "broken.gz" in str(bad.value)


def test_region_keywords() -> None:
    assert region_from_text(None, "CT THORAX W/ CONTRAST") == "chest"
    assert region_from_text("HEAD", "BRAIN") == "head"  # BodyPartExamined wins
    assert region_from_text("", "MR BRAIN T1") == "brain"
    assert region_from_text("LSPINE") == "spine"
    assert region_from_text("L-SPINE") == "spine"
    assert region_from_text("ABDOMENPELVIS") == "abdomen"
    assert region_from_text("FUNDUS PHOTO") == "retina"
    assert region_from_text("LEFT WRIST") == "extremity"
    assert region_from_text("e+1", "WARM-UP") == "unknown"


def test_region_from_body_part_tag(tmp_path: Path) -> None:
    ds = pydicom.dcmread(tdata("CT_small.dcm"))
    ds.BodyPartExamined = "CHEST"
    ds.save_as(tmp_path / "chest.dcm")
    assert load(tmp_path / "chest.dcm").region == "chest"


# ------------------------------------------------------------------ derived DICOM writing


def test_derived_dicom_states_a_region_its_header_lacked(tmp_path: Path) -> None:
    src = load(tdata("CT_small.dcm"))  # no BodyPartExamined: region unknown
    assert src.region == "unknown"
    told = save(src.evolve(region="spine"), tmp_path / "spine.dcm")
    assert pydicom.dcmread(told).BodyPartExamined == "SPINE" and load(told).region == "spine"
    ds = pydicom.dcmread(tdata("CT_small.dcm"))
    ds.BodyPartExamined = "CHEST"
    ds.save_as(tmp_path / "chest.dcm")
    kept = save(load(tmp_path / "chest.dcm").evolve(region="spine"), tmp_path / "kept.dcm")
    assert pydicom.dcmread(kept).BodyPartExamined == "CHEST"  # the header's own word stays
    plain = save(src, tmp_path / "plain.dcm")
    assert "BodyPartExamined" not in pydicom.dcmread(plain)


def test_dicom_round_trip_is_derived(tmp_path: Path) -> None:
    src = load(tdata("CT_small.dcm"))
    out = save(src, tmp_path / "out.dcm", description="unit test derivation")
    back = load(out)
    np.testing.assert_array_equal(back.array, src.array)  # integral HU: written exactly
    assert back.spacing == pytest.approx(src.spacing) and back.modality == "CT"
    assert back.physics["kvp"] == 120 and back.physics["exposure_mAs"] == 170
    old, new = pydicom.dcmread(tdata("CT_small.dcm")), pydicom.dcmread(out)
    assert new.SOPInstanceUID != old.SOPInstanceUID
    assert new.SeriesInstanceUID != old.SeriesInstanceUID
    assert new.StudyInstanceUID == old.StudyInstanceUID
    assert "DERIVED" in list(new.ImageType)
    assert new.DerivationDescription == "unit test derivation"
    assert new.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert not any(e.tag.is_private for e in new)
    assert new.SourceImageSequence[0].ReferencedSOPInstanceUID == old.SOPInstanceUID
    assert [p.name for p in tmp_path.iterdir()] == ["out.dcm"]  # no temp file left
    # medq's symbols in plain text: a Latin-1 header stored "→" as "?"
    arrow = pydicom.dcmread(save(src, tmp_path / "arrow.dcm", description="score 1.2 → 2.5"))
    assert arrow.DerivationDescription == "score 1.2 -> 2.5"
    assert new.SliceLocation == old.SliceLocation  # the slice did not move: as stated
    # a volume written over one slice's header: every location computed alike (slice 0 kept
    # the header's own, which is no location of this volume's convention)
    volume = src.evolve(array=np.stack([src.array] * 4), spacing=(2.0, *src.spacing))
    folder = save(volume, tmp_path / "vol", reference=tdata("CT_small.dcm"))
    steps = np.diff([float(pydicom.dcmread(f).SliceLocation)
                     for f in sorted(Path(folder).glob("IM*.dcm"))])
    np.testing.assert_allclose(steps, 2.0, atol=1e-3)


def test_a_derived_file_keeps_its_history_padding_and_simulated_mark(tmp_path: Path) -> None:
    """A simulated image says so in its series description for good; a file derived from a
    derived one keeps the source's derivation after its own; the source's pixel padding is
    restated in the new stored values while the padding pixels are still there."""
    from medq.degrade import simulate

    ds = pydicom.dcmread(tdata("CT_small.dcm"))
    pixels = ds.pixel_array.copy()
    pixels[:40] = -2000  # stored padding (RescaleIntercept -1024: -3024 HU), 5120 pixels
    ds.PixelData = pixels.astype(ds.pixel_array.dtype).tobytes()
    ds.PixelPaddingValue = -2000
    ds["PixelPaddingValue"].VR = "SS"
    ds.save_as(tmp_path / "padded.dcm")
    src = load(tmp_path / "padded.dcm")
    degraded, _ = simulate(src, "ct_low_dose", severity="moderate", seed=0)
    first = pydicom.dcmread(save(degraded, tmp_path / "sim.dcm", reference=tmp_path / "padded.dcm",
                                 description="medq simulate ct_low_dose"))
    assert first.SeriesDescription.endswith(" simulated")
    again = load(tmp_path / "sim.dcm")
    second = pydicom.dcmread(save(again, tmp_path / "restored.dcm", description="medq restore"))
    assert second.SeriesDescription == first.SeriesDescription
    assert second.DerivationDescription == "medq restore; from: medq simulate ct_low_dose"
    padded = pydicom.dcmread(save(src, tmp_path / "copy.dcm"))
    stored_padding = (-3024 - float(padded.RescaleIntercept)) / float(padded.RescaleSlope)
    assert padded.PixelPaddingValue == stored_padding
    assert (padded.pixel_array[:40] == padded.PixelPaddingValue).all()
    assert "PixelPaddingValue" not in second  # its padding pixels are noisy now: none stated
    assert "PixelPaddingValue" not in first  # (a few noisy pixels on the value by chance)
    resimulated = pydicom.dcmread(save(load(tmp_path / "copy.dcm"), tmp_path / "again.dcm",
                                       description="medq simulate blur"))
    assert resimulated.SeriesDescription.endswith(" derived")
    marked = simulate(load(tmp_path / "copy.dcm"), "ct_low_dose", severity="mild", seed=1)[0]
    assert pydicom.dcmread(save(marked, tmp_path / "m.dcm")).SeriesDescription.endswith(
        " simulated")  # a derived series simulated: marked too


def test_pet_is_stored_with_a_zero_intercept(tmp_path: Path) -> None:
    """The PET IOD requires RescaleIntercept 0: activity is stored by a slope alone."""
    activity = np.random.default_rng(0).gamma(2.0, 1500.0, (32, 32)).astype(np.float32) + 0.3
    out = pydicom.dcmread(save(MedImage(activity, (2.0, 2.0), "PT", "brain"), tmp_path / "p.dcm"))
    assert float(out.RescaleIntercept) == 0.0
    back = out.pixel_array * float(out.RescaleSlope)
    assert np.abs(back - activity).max() <= float(out.RescaleSlope) / 2 + 1e-6
    stored, slope, icpt = encode_pixels(np.array([[-2.5, 0.0], [1.0, 5.0]]), zero_intercept=True)
    assert stored.dtype == np.int16 and icpt == 0.0 and abs(stored[1, 1] * slope - 5.0) < slope


def test_a_derived_file_does_not_carry_its_sources_preamble_on(tmp_path: Path) -> None:
    """The 128 bytes before `DICM` may hold anything (a TIFF header, a program); a derived file
    starts from zeros, whatever its source held there."""
    ds = pydicom.dcmread(tdata("CT_small.dcm"))
    ds.preamble = b"MZ" + bytes(range(126))
    ds.save_as(tmp_path / "polyglot.dcm")
    assert (tmp_path / "polyglot.dcm").read_bytes()[:2] == b"MZ"
    out = save(load(tmp_path / "polyglot.dcm"), tmp_path / "derived.dcm")
    assert out.read_bytes()[:132] == bytes(128) + b"DICM"


@pytest.mark.parametrize("transform", [lambda a: a * 3 - 2000, lambda a: a / 3000 + 0.123,
                                       lambda a: a * 40 + 0.25])
def test_dicom_rescale_fits_new_range(tmp_path: Path, transform) -> None:
    src = load(tdata("CT_small.dcm"))
    new = src.with_array(transform(src.array), step={"name": "transform"})
    back = load(save(new, tmp_path / "x.dcm"))
    ds = pydicom.dcmread(tmp_path / "x.dcm")
    slope = float(ds.RescaleSlope)
    assert np.abs(back.array - new.array).max() <= max(slope / 2, 0.5) + 1e-3
    assert np.abs(back.array - new.array).max() <= 1.0 or slope > 2
    assert ds.BitsStored == 16 and ds.PixelRepresentation in (0, 1)
    assert "transform" in ds.DerivationDescription


def test_encode_pixels_choices() -> None:
    hu = np.array([[-1024.0, 0.0], [40.0, 3071.0]])
    stored, slope, icpt = encode_pixels(hu)
    assert stored.dtype == np.int16 and (slope, icpt) == (1.0, 0.0)
    np.testing.assert_array_equal(stored, hu)  # integral HU stored as they are
    fractions = np.array([[0.0, 0.5], [0.25, 1.0]])
    stored, slope, icpt = encode_pixels(fractions)
    assert stored.dtype == np.uint16 and slope < 1e-4 and icpt == 0.0
    assert stored.max() == 65535 and np.abs(stored * slope + icpt - fractions).max() <= slope / 2


def test_new_dicom_from_nifti_with_reference(tmp_path: Path, mni_t1: MedImage) -> None:
    slab = mni_t1.with_array(mni_t1.array[40] * 1000.0, spacing=(2.0, 2.0))
    out = save(slab, tmp_path / "ref.dcm", reference=tdata("MR_small.dcm"))
    ds = pydicom.dcmread(out)
    assert ds.Modality == "MR" and ds.Manufacturer == "TOSHIBA_MEC"
    back = load(out)
    assert back.shape == slab.shape and np.abs(back.array - slab.array).max() < 0.5


# ------------------------------------------------------------------ series folders


def _write_ct_series(folder: Path, n: int, iop: list[float], dz: float) -> list[int]:
    """n CT_small copies along the normal of `iop`, shuffled names, slice k carries +100·k."""
    base = pydicom.dcmread(tdata("CT_small.dcm"))
    normal = np.cross(iop[:3], iop[3:])
    origin = np.array([float(v) for v in base.ImagePositionPatient])
    series = generate_uid()
    rng = np.random.default_rng(1)
    ks = list(rng.permutation(n))
    folder.mkdir()
    for j, k in enumerate(ks):
        ds = pydicom.dcmread(tdata("CT_small.dcm"))
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
        ds.ImageOrientationPatient = iop
        ds.ImagePositionPatient = [round(float(v), 4) for v in origin + k * dz * normal]
        ds.InstanceNumber = j + 1  # deliberately NOT the spatial order
        ds.PixelData = (base.pixel_array + 100 * int(k)).astype(np.int16).tobytes()
        ds.save_as(folder / secrets.token_hex(6))
    (folder / "README").write_text("not a DICOM file\n")
    (folder / "notes.txt").write_text("neither\n")
    return ks


@pytest.mark.parametrize("iop", [[1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0.8, -0.6]])
def test_series_sorted_by_position(tmp_path: Path, iop: list[float]) -> None:
    _write_ct_series(tmp_path / "ser", 6, iop, 2.5)
    img = load(tmp_path / "ser")
    hu = _ct_stored().astype(np.float32) - 1024
    assert img.shape == (6, 128, 128) and img.meta["format"] == "dicom-series"
    for k in range(6):
        np.testing.assert_array_equal(img.array[k], hu + 100 * k)
    assert img.spacing == pytest.approx((2.5, 0.661468, 0.661468), abs=1e-3)
    assert not img.meta["irregular_spacing"]
    assert len(img.meta["dicom_files"]) == 6 and img.source == str(tmp_path / "ser")
    json.dumps([img.meta, img.physics])  # meta stays JSON-friendly


def test_series_save_reload_keeps_geometry(tmp_path: Path) -> None:
    _write_ct_series(tmp_path / "ser", 4, [1, 0, 0, 0, 1, 0], 3.0)
    img = load(tmp_path / "ser")
    out = save(img.with_array(img.array + 7), tmp_path / "derived")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["IM00001.dcm", "IM00002.dcm", "IM00003.dcm", "IM00004.dcm"]
    back = load(out)
    np.testing.assert_allclose(back.array, img.array + 7, atol=1.0)
    np.testing.assert_allclose(back.meta["positions"], img.meta["positions"], atol=1e-3)
    assert back.spacing == pytest.approx(img.spacing, abs=1e-3)
    uids = {pydicom.dcmread(p).SeriesInstanceUID for p in out.iterdir()}
    assert len(uids) == 1 and uids != {img.meta["series_instance_uid"]}
    save(back, out)  # overwriting a previous medq series folder is allowed
    assert len(list(out.iterdir())) == 4


def test_a_series_is_never_written_over_a_folder_of_series_medq_did_not_write(
        tmp_path: Path) -> None:
    """A scanner export named IM00001.dcm, … looked like medq's own output by name, and a
    series written into it deleted what it held; so did a folder of two medq series."""
    _write_ct_series(tmp_path / "ser", 3, [1, 0, 0, 0, 1, 0], 3.0)
    scanner = tmp_path / "export"
    scanner.mkdir()
    slices = [f for f in sorted((tmp_path / "ser").iterdir()) if f.name not in ("README",
                                                                                "notes.txt")]
    for k, f in enumerate(slices):  # its DICOM files only (random names: the README sorted
        (scanner / f"IM{k + 1:05d}.dcm").write_bytes(f.read_bytes())  # first 1 run in 19)
    before = {f.name: f.read_bytes() for f in scanner.iterdir()}
    image = load(tmp_path / "ser")
    with pytest.raises(InvalidParameter, match="DICOM files medq did not write"):
        save(image, scanner)
    assert {f.name: f.read_bytes() for f in scanner.iterdir()} == before
    first, second = save(image, tmp_path / "a"), save(image, tmp_path / "b")
    (first / "IM00004.dcm").write_bytes((second / "IM00001.dcm").read_bytes())
    with pytest.raises(InvalidParameter, match="2 series"):
        save(image, first)


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd"])
def test_series_converted_keeps_patient_geometry(tmp_path: Path, suffix: str) -> None:
    """A DICOM series written as NIfTI, MetaImage or NRRD keeps where each voxel lies in the
    patient: world points agree with SimpleITK's own reading of the series (oblique slices)."""
    import nibabel as nib
    import SimpleITK as sitk

    _write_ct_series(tmp_path / "ser", 5, [1, 0, 0, 0, 0.8, -0.6], 2.5)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "ser")))
    truth = reader.Execute()  # LPS
    out = save(load(tmp_path / "ser"), tmp_path / f"vol{suffix}")
    corners = [(0, 0, 0), (127, 0, 0), (0, 127, 0), (5, 17, 4), (127, 127, 4)]  # (i, j, k)
    expected = np.array([truth.TransformIndexToPhysicalPoint(c) for c in corners])
    if suffix == ".nii.gz":
        nii = nib.load(str(out))
        ras = nib.affines.apply_affine(nii.affine, np.array(corners))
        got = ras * [-1, -1, 1]
        assert int(nii.header["sform_code"]) == 1 and int(nii.header["qform_code"]) == 1
    else:
        written = sitk.ReadImage(str(out))
        got = np.array([written.TransformIndexToPhysicalPoint(c) for c in corners])
    np.testing.assert_allclose(got, expected, atol=1e-3)
    if suffix == ".nii.gz":  # slices no longer matching their stated positions: no frame claimed
        cut = load(tmp_path / "ser")
        nii = nib.load(str(save(cut.evolve(array=cut.array[:3]), tmp_path / "cut.nii.gz")))
        assert int(nii.header["sform_code"]) != 1
        np.testing.assert_allclose(np.diag(nii.affine)[:3], cut.spacing[::-1])
    back = load(out)  # and the geometry read back is written again unchanged
    again = save(back, tmp_path / f"again{suffix}")
    if suffix == ".nii.gz":
        np.testing.assert_allclose(nib.load(str(again)).affine, nib.load(str(out)).affine)
    else:
        assert sitk.ReadImage(str(again)).GetDirection() == pytest.approx(
            sitk.ReadImage(str(out)).GetDirection())


def test_oblique_nifti_geometry_survives_dicom_and_metaimage(tmp_path: Path) -> None:
    """A NIfTI with an oblique affine written as a DICOM series and back to NIfTI, and as
    MetaImage and back to NIfTI: every voxel value stays at its world position."""
    import nibabel as nib
    import SimpleITK as sitk

    data = np.random.default_rng(0).permutation(40 * 30 * 6).reshape(40, 30, 6)
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ np.diag([0.9, 1.1, 3.0])
    affine[:3, 3] = [-20.0, 35.0, 10.0]
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(tmp_path / "src.nii.gz"))
    image = load(tmp_path / "src.nii.gz").evolve(modality="MR")
    series = load(save(image, tmp_path / "dcm"))
    again = nib.load(str(save(series, tmp_path / "back.nii.gz")))
    values = np.asarray(again.dataobj)
    for ijk in [(0, 0, 0), (39, 0, 0), (0, 29, 0), (5, 7, 5), (39, 29, 5)]:
        (where,) = np.argwhere(np.abs(values - data[ijk]) < 0.5)  # one voxel holds each value
        np.testing.assert_allclose(nib.affines.apply_affine(again.affine, where),
                                   nib.affines.apply_affine(affine, ijk), atol=1e-3)
    mha = save(image, tmp_path / "vol.mha")
    point = sitk.ReadImage(str(mha)).TransformIndexToPhysicalPoint((39, 29, 5))
    np.testing.assert_allclose(point, nib.affines.apply_affine(affine, (39, 29, 5)) * [-1, -1, 1],
                               atol=1e-3)
    np.testing.assert_allclose(nib.load(str(save(load(mha), tmp_path / "m.nii.gz"))).affine,
                               affine, atol=1e-4)


def test_dicom_slice_as_nifti_is_placed_at_its_position(tmp_path: Path) -> None:
    """A single DICOM slice written as NIfTI: its first pixel at ImagePositionPatient (RAS+)."""
    import nibabel as nib

    img = load(tdata("CT_small.dcm"))
    nii = nib.load(str(save(img, tmp_path / "slice.nii")))
    ipp = np.array(img.meta["positions"][0])
    np.testing.assert_allclose(nii.affine[:3, 3], ipp * [-1, -1, 1], atol=1e-4)
    assert nib.aff2axcodes(nii.affine) == ("L", "P", "S")
    np.testing.assert_allclose(np.abs(np.diag(nii.affine))[:2], img.spacing[::-1], atol=1e-6)


def test_volume_series_from_mni_with_shuffled_names(tmp_path: Path, mni_t1: MedImage) -> None:
    vol = mni_t1.with_array(mni_t1.array[30:42])
    out = save(vol, tmp_path / "mni")
    for f in list(out.iterdir()):
        f.rename(out / f"{secrets.token_hex(5)}.dcm")
    back = load(out)
    assert back.shape == vol.shape and back.modality == "MR" and back.region == "brain"
    np.testing.assert_allclose(back.array, vol.array, atol=1e-4)
    assert back.spacing == pytest.approx((2.0, 2.0, 2.0))


def test_series_with_a_missing_slice_states_its_gap(tmp_path: Path, mni_t1: MedImage) -> None:
    """A series written from the MNI T1 (2 mm slices) is evenly spaced; with two neighbouring
    slices' files deleted it holds one 6 mm step: two slices missing, stated in `slice_gaps`
    (and in `summary`, what `medq info` prints), the spacing still the usual 2 mm."""
    out = save(mni_t1.with_array(mni_t1.array[30:42]), tmp_path / "mni")
    assert "slice_gaps" not in load(out).meta and "slice_gaps" not in load(out).summary()
    files = sorted(out.iterdir(), key=lambda f: pydicom.dcmread(f).ImagePositionPatient[2])
    for f in files[5:7]:
        f.unlink()
    back = load(out)
    assert back.shape[0] == 10 and back.spacing[0] == pytest.approx(2.0)
    assert back.meta["slice_gaps"] == {"spacing_mm": 2.0, "smallest_step_mm": 2.0,
                                       "largest_step_mm": 6.0, "gaps": 1, "missing_slices": 2,
                                       "largest_step_after_slice": 4}
    assert back.summary()["slice_gaps"]["missing_slices"] == 2


# ------------------------------------------------------------------ enhanced multi-frame


def _enhanced_mr(path: Path, stored: np.ndarray, order: list[int]) -> None:
    """Enhanced MR Image Storage file whose frames hold `stored[order]`, each with its position."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "MR", generate_uid(), generate_uid()
    ds.SeriesDescription = "T1 MPRAGE BRAIN"
    ds.Rows, ds.Columns, ds.NumberOfFrames = stored.shape[1], stored.shape[2], len(order)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    measures, orient, pvt, timing = Dataset(), Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [1.5, 1.25], 2.0
    orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = 2, -100, "US"
    timing.RepetitionTime, timing.FlipAngle = 2300.0, 9.0
    shared = Dataset()
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [measures], [orient]
    shared.PixelValueTransformationSequence = [pvt]
    shared.MRTimingAndRelatedParametersSequence = [timing]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k in order:
        pos, item = Dataset(), Dataset()
        pos.ImagePositionPatient = [-90.0, -120.0, -60.0 + 2.0 * k]
        item.PlanePositionSequence = [pos]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = stored[order].astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_enhanced_multiframe(tmp_path: Path, mni_t1: MedImage) -> None:
    stored = np.round(mni_t1.array[20:30] * 4000).astype(np.uint16)
    order = [int(i) for i in np.random.default_rng(3).permutation(10)]
    _enhanced_mr(tmp_path / "enh.dcm", stored, order)
    img = load(tmp_path / "enh.dcm")
    assert img.shape == (10, *stored.shape[1:]) and img.modality == "MR"
    np.testing.assert_array_equal(img.array, stored.astype(np.float32) * 2 - 100)
    assert img.spacing == pytest.approx((2.0, 1.5, 1.25))
    assert img.region == "brain"
    assert img.physics["tr_ms"] == 2300.0 and img.physics["flip_angle_deg"] == 9.0
    json.dumps([img.meta, img.physics])  # meta stays JSON-friendly
    out = save(img, tmp_path / "legacy")  # written back as a legacy single-frame MR series
    back = load(out)
    np.testing.assert_allclose(back.array, img.array, atol=0.5)
    assert pydicom.dcmread(next(out.iterdir())).SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"


# ------------------------------------------------------------------ NIfTI


def test_nifti_axes_affine_and_round_trip(tmp_path: Path, mni_t1: MedImage) -> None:
    data = np.transpose(mni_t1.array, (2, 1, 0))  # back to nibabel's (i, j, k)
    affine = np.array([[-2.0, 0.1, 0, 90], [0, 1.9, 0.3, -120], [0, -0.2, 2.5, -70], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "t1.nii.gz")
    img = load(tmp_path / "t1.nii.gz")
    assert img.shape == mni_t1.shape and img.meta["format"] == "nifti"
    assert img.array[5, 7, 9] == pytest.approx(data[9, 7, 5])
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    assert img.spacing == pytest.approx(tuple(zooms[::-1]), rel=1e-5)
    np.testing.assert_allclose(img.meta["affine"], affine, atol=1e-5)
    json.dumps([img.meta, img.physics])  # meta stays JSON-friendly
    out = save(img.with_array(img.array * 2), tmp_path / "copy.nii")
    back = load(out)
    np.testing.assert_allclose(back.meta["affine"], affine, atol=1e-5)
    np.testing.assert_allclose(back.array, img.array * 2, rtol=1e-6)


def test_nifti_header_frames_units_and_integer_type_are_written_back(tmp_path: Path) -> None:
    """Each was lost on save: the qform (overwritten by the sform), an sform whose voxel sizes
    differ from pixdim (rescaled to them: another place in the patient), the units (dropped),
    the integer type (float32). Zooms in microns are read as mm."""
    rng = np.random.default_rng(0)
    voxels = (rng.random((20, 24, 6)) * 200).astype(np.int16)
    turn = np.deg2rad(10)
    sform = np.eye(4)
    sform[:3, :3] = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0],
                              [0, 0, 1]]) @ np.diag([1.1, 1.2, 3.0])
    sform[:3, 3] = [5, -3, 7]
    made = nib.Nifti1Image(voxels, None)
    made.set_qform(np.diag([-0.9, 0.9, 2.5, 1.0]), code=1)
    made.set_sform(sform, code=2)
    made.header.set_xyzt_units("mm", "sec")
    made.header["pixdim"][4] = 2.0  # the sequence's TR
    made.header["descrip"] = b"test T1 sub-01"
    nib.save(made, tmp_path / "scan.nii.gz")
    image = load(tmp_path / "scan.nii.gz")
    back = nib.load(save(image.with_array(image.array + 1), tmp_path / "out.nii.gz"))
    assert float(back.header["pixdim"][4]) == 2.0
    assert back.header["descrip"].item() == b"test T1 sub-01"
    told = nib.load(save(image, tmp_path / "told.nii.gz", description="medq restore"))
    assert told.header["descrip"].item() == b"medq restore; from: test T1 sub-01"
    long = "medq restore auto: Restored with the network, conditioned on the description " * 2
    kept = nib.load(save(image, tmp_path / "long.nii.gz", description=long))
    assert kept.header["descrip"].item().endswith(b"...; from: test T1 sub-01")  # medq's cut
    for frame in ("qform", "sform"):
        np.testing.assert_allclose(getattr(back.header, f"get_{frame}")(),
                                   getattr(made.header, f"get_{frame}")(), atol=1e-5)
    assert (int(back.header["qform_code"]), int(back.header["sform_code"])) == (1, 2)
    assert back.header.get_xyzt_units() == ("mm", "sec")
    assert back.get_data_dtype() == np.int16  # whole numbers: the integers it stored
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), voxels + 1)
    for values in (image.array + 0.4, image.array * 400):  # fractions, or beyond int16
        kept = nib.load(save(image.with_array(values), tmp_path / "floats.nii.gz"))
        assert kept.get_data_dtype() == np.float32  # nothing rounded or cut off
        np.testing.assert_allclose(kept.get_fdata().T, values, rtol=1e-6)
    # a resampled image's frames follow its new spacing
    coarse = (image.spacing[0], *(2 * s for s in image.spacing[1:]))
    half = image.evolve(array=image.array[:, ::2, ::2], spacing=coarse)
    np.testing.assert_allclose(nib.load(save(half, tmp_path / "half.nii.gz")).affine[:3, :2],
                               sform[:3, :2] * 2, atol=1e-5)
    micron = nib.Nifti1Image(voxels, np.diag([500.0, 500.0, 2000.0, 1.0]))
    micron.header.set_xyzt_units("micron")
    nib.save(micron, tmp_path / "micron.nii.gz")
    assert load(tmp_path / "micron.nii.gz").spacing == pytest.approx((2.0, 0.5, 0.5))
    kept = nib.load(save(load(tmp_path / "micron.nii.gz"), tmp_path / "micron_out.nii.gz"))
    assert kept.header.get_xyzt_units()[0] == "micron"
    np.testing.assert_allclose(kept.affine, micron.affine)


def test_a_written_nifti_keeps_its_inputs_slice_timing_intent_and_unstated_sform(
        tmp_path: Path) -> None:
    """A restored NIfTI lost the input's dim_info (phase-encode axis), slice timing, display
    range, intent and names, and a qform-only input came back with an sform (code 2)."""
    voxels = (np.random.default_rng(0).random((30, 40, 12)) * 500).astype(np.int16)
    made = nib.Nifti1Image(voxels, None)
    made.set_qform(np.diag([-0.9, 0.9, 3.0, 1.0]), code=1)
    made.set_sform(None, code=0)
    made.header.set_dim_info(freq=0, phase=1, slice=2)
    fields = {"slice_code": 1, "slice_duration": 0.05, "slice_end": 11, "cal_max": 900.0,
              "intent_name": b"test", "aux_file": b"aux", "db_name": b"db"}
    for name, value in fields.items():
        made.header[name] = value
    nib.save(made, tmp_path / "in.nii.gz")
    image = load(tmp_path / "in.nii.gz")
    back = nib.load(save(image.with_array(image.array + 1), tmp_path / "out.nii.gz")).header
    assert back.get_dim_info() == (0, 1, 2)
    for name, value in fields.items():
        assert back[name].item() == pytest.approx(value) if isinstance(value, float) \
            else back[name].item() == value, name
    assert (int(back["qform_code"]), int(back["sform_code"])) == (1, 0)
    np.testing.assert_allclose(back.get_qform(), made.header.get_qform(), atol=1e-6)
    plane = nib.load(save(image.evolve(array=image.array[3], spacing=image.spacing[1:]),
                          tmp_path / "plane.nii.gz"))
    assert plane.header["slice_end"] == 0 and plane.header.get_dim_info() == (None, None, None)


def test_an_integer_nifti_with_a_value_map_is_not_rounded_to_whole_numbers(tmp_path: Path
                                                                          ) -> None:
    """A 0–2 map stored as int16 with scl_slope 3e-5 (as nibabel writes floats into an integer
    type) was taken for whole numbers: a restoration was rounded onto 0, 1 and 2 and written
    back as those three values. Its values are fractions of the map, and a result is written
    as float32."""
    from medq.io.polarity import within_storable

    values = (np.random.default_rng(0).random((40, 50, 6)) * 2).astype(np.float32)
    made = nib.Nifti1Image(values, np.eye(4))
    made.set_data_dtype(np.int16)
    nib.save(made, tmp_path / "map.nii.gz")
    assert nib.load(tmp_path / "map.nii.gz").dataobj.slope < 1e-4  # nibabel's own value map
    image = load(tmp_path / "map.nii.gz")
    assert "stored_dtype" not in image.meta
    np.testing.assert_allclose(image.array.T, values, atol=1e-4)
    kept = within_storable(image.array * 0.9, image)  # a restoration's values, as written
    assert len(np.unique(kept)) > 10_000
    back = nib.load(save(image.with_array(kept), tmp_path / "out.nii.gz"))
    assert back.get_data_dtype() == np.float32
    np.testing.assert_allclose(back.get_fdata(), values * 0.9, atol=1e-4)
    # handed back unchanged (restore's quality gate), it was rewritten as float32, 27 % larger:
    # values still on the map are written in it, the same stored integers
    same = nib.load(save(image, tmp_path / "same.nii.gz"))
    original = nib.load(tmp_path / "map.nii.gz")
    assert same.get_data_dtype() == np.int16 and same.dataobj.slope == original.dataobj.slope
    np.testing.assert_array_equal(np.asarray(same.dataobj.get_unscaled()),
                                  np.asarray(original.dataobj.get_unscaled()))
    plain = nib.Nifti1Image(np.round(values * 100).astype(np.int16), np.eye(4))
    nib.save(plain, tmp_path / "plain.nii.gz")  # whole numbers, no map: kept as int16
    assert load(tmp_path / "plain.nii.gz").meta["stored_dtype"] == "int16"
    hu = nib.Nifti1Image(np.round(values * 1000).astype(np.int16), np.eye(4))
    hu.header.set_slope_inter(1.0, -1024.0)  # a CT as a converter writes it: a whole-number map
    nib.save(hu, tmp_path / "ct.nii.gz")
    ct = load(tmp_path / "ct.nii.gz")
    assert ct.meta["stored_dtype"] == "int16" and ct.meta["rescale"] == [1.0, -1024.0]
    smooth = within_storable(ct.array + 0.3, ct)  # a restoration: whole HU again
    back = nib.load(save(ct.with_array(smooth), tmp_path / "ct_out.nii.gz"))
    assert back.get_data_dtype() == np.int16
    np.testing.assert_array_equal(back.get_fdata(), np.round(values * 1000) - 1024)


@pytest.mark.parametrize("flat", [0, 1])
def test_a_single_coronal_or_sagittal_nifti_slice_is_a_2d_image_in_its_place(
        tmp_path: Path, flat: int) -> None:
    """A volume of one coronal `(i, 1, k)` or sagittal `(1, j, k)` slice was refused as "a stack
    of lines"; an axial one was read. It is a 2D image, and written back in the voxel layout it
    was read in (it came back `(i, k, 1)`, which broke voxel-by-voxel comparison and masks),
    frames alike: every voxel value at the same index and the same place in the patient."""
    rng = np.random.default_rng(0)
    shape = [6, 7, 5]
    shape[flat] = 1
    voxels = rng.random(shape).astype(np.float32)
    affine = np.array([[-2.0, 0.1, 0, 90], [0, 1.5, 0.2, -120], [0, -0.1, 3.0, -70], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(voxels, affine), tmp_path / "one.nii.gz")
    image = load(tmp_path / "one.nii.gz")
    kept = [a for a in range(3) if a != flat]
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    assert image.shape == (shape[kept[1]], shape[kept[0]]) and not image.is_volume
    assert image.spacing == pytest.approx((zooms[kept[1]], zooms[kept[0]]), rel=1e-5)
    back = nib.load(save(image, tmp_path / "back.nii.gz"))
    assert back.shape == tuple(shape)
    np.testing.assert_allclose(back.get_fdata(), voxels, rtol=1e-6)
    np.testing.assert_allclose(back.affine, affine, atol=1e-4)
    assert (back.get_qform(coded=True)[1], back.get_sform(coded=True)[1]) == (0, 2)  # as made
    stored = nib.Nifti1Image((voxels * 1000).astype(np.int16), affine)  # a fractional value map
    stored.header.set_slope_inter(0.5, 0.25)  # was lost: 0.25, 0.75, … came back as 0, 1, …
    nib.save(stored, tmp_path / "mapped.nii")
    back = nib.load(save(load(tmp_path / "mapped.nii"), tmp_path / "mapped_back.nii"))
    assert back.get_data_dtype() == np.int16
    assert (back.dataobj.slope, back.dataobj.inter) == (0.5, 0.25)
    np.testing.assert_array_equal(back.get_fdata(), nib.load(tmp_path / "mapped.nii").get_fdata())


def test_nifti_of_one_slice_is_a_2d_image_and_written_back_alike(tmp_path: Path) -> None:
    data = np.arange(6 * 5, dtype=np.float32).reshape(6, 5, 1)
    affine = np.diag([0.5, 0.7, 3.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "slice.nii.gz")
    img = load(tmp_path / "slice.nii.gz")
    assert img.shape == (5, 6) and not img.is_volume
    assert img.spacing == pytest.approx((0.7, 0.5))
    assert img.array[2, 3] == data[3, 2, 0]
    back = nib.load(save(img, tmp_path / "back.nii.gz"))
    assert back.shape == (6, 5, 1)
    np.testing.assert_allclose(back.affine, affine)
    np.testing.assert_array_equal(back.get_fdata(), data)


def _with_pixdim(path: Path, sizes: tuple[float, float, float]) -> Path:
    """`path` rewritten with its header's voxel sizes (pixdim[1:4]) set to `sizes` and no
    frames stated (qform and sform codes 0), as some converters write them."""
    raw = bytearray(path.read_bytes())
    raw[80:92] = np.asarray(sizes, "<f4").tobytes()  # pixdim[1:4] of a NIfTI-1 header
    raw[252:256] = np.zeros(2, "<i2").tobytes()  # qform_code, sform_code
    path.write_bytes(bytes(raw))
    return path


def test_a_nifti_stating_zero_voxel_sizes_says_its_spacing_is_assumed(
        tmp_path: Path, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    for name, sizes in (("none.nii", (0, 0, 0)), ("no_z.nii", (0.5, 0.5, 0)),
                        ("stated.nii", (0.5, 0.5, 2.0))):
        nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / name)
        _with_pixdim(tmp_path / name, sizes)
    for name in ("none.nii", "no_z.nii"):
        image = load(tmp_path / name)
        assert image.spacing_assumed, name  # nibabel reads a 0 as 1 mm without a word
    assert load(tmp_path / "no_z.nii").spacing == (1.0, 0.5, 0.5)
    stated = load(tmp_path / "stated.nii")
    assert stated.spacing == (2.0, 0.5, 0.5) and not stated.spacing_assumed
    flat = tmp_path / "flat.nii"  # one slice: its unused third size may well be 0
    nib.save(nib.Nifti1Image(data[:, :, :1], np.eye(4)), flat)
    image = load(_with_pixdim(flat, (0.5, 0.5, 0)))
    assert image.spacing == (0.5, 0.5) and not image.spacing_assumed
    assert "pixdim" not in capfd.readouterr().err  # nibabel's own message stays off stderr
    logger = nib.imageglobals.logger
    assert logger.propagate and any(isinstance(h, logging.StreamHandler) for h in logger.handlers)
    with caplog.at_level(logging.WARNING, logger="nibabel"):  # as a library user has it
        load(tmp_path / "none.nii")
        assert not any("pixdim" in r.getMessage() for r in caplog.records)
        nib.load(tmp_path / "none.nii")  # read outside medq, nibabel still says what it fixed
        assert any("pixdim" in r.getMessage() for r in caplog.records)
    with caplog.at_level(logging.ERROR, logger="nibabel"):  # an app that quiets nibabel
        assert load(tmp_path / "no_z.nii").spacing_assumed  # its note is not needed


def test_nifti_singleton_4th_axis_and_partial_nan(tmp_path: Path) -> None:
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6, 1)
    data[0, 0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "one.nii.gz")
    img = load(tmp_path / "one.nii.gz")
    assert img.shape == (6, 5, 4)
    assert img.meta["nonfinite_fraction"] == pytest.approx(1 / data.size)
    assert img.array[0, 0, 0] == 0.0  # no signal: the image does not go below 0
    assert np.isfinite(img.array).all()


def test_nifti_that_is_not_a_grey_image_is_refused_with_its_reason(tmp_path: Path,
                                                                    mni_t1: MedImage) -> None:
    """Complex voxels (nibabel would drop the imaginary part with a ComplexWarning and medq
    graded the real part), RGB voxels and a 5D file get an UnsupportedImage naming what they
    hold, without a library warning."""
    import warnings

    from medq.errors import UnsupportedImage

    t1 = np.asarray(mni_t1.array[::4, ::4, ::4], np.float32)
    rgb = np.zeros(t1.shape, [("R", "u1"), ("G", "u1"), ("B", "u1")])
    cases = {"complex.nii.gz": ((t1 + 1j * t1).astype(np.complex64), "complex-valued voxels"),
             "rgb.nii.gz": (rgb, r"colour voxels \(R, G, B\)"),
             "fived.nii.gz": (np.stack([t1, t1], -1)[:, :, :, None, :], "a 5D image")}
    for name, (data, reason) in cases.items():
        nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(UnsupportedImage, match=reason):
                load(tmp_path / name)


# ------------------------------------------------------------------ raster and npy


def test_png_8bit_round_trip(tmp_path: Path, retina: MedImage) -> None:
    grey = np.round(retina.array[::4, ::4, 1] * 255).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    img = load(tmp_path / "g.png")
    assert img.meta["bit_depth"] == 8 and img.modality == "OT"
    np.testing.assert_array_equal(img.array, grey)
    back = load(save(img, tmp_path / "g2.png"))
    np.testing.assert_array_equal(back.array, grey)
    assert Image.open(tmp_path / "g2.png").mode == "L"


def test_png_16bit_round_trip(tmp_path: Path) -> None:
    raw = _ct_stored().astype(np.uint16) * 20
    Image.fromarray(raw).save(tmp_path / "ct16.png")
    img = load(tmp_path / "ct16.png")
    assert img.meta["bit_depth"] == 16 and img.meta["value_range"] == [0, 65535]
    np.testing.assert_array_equal(img.array, raw)
    save(img, tmp_path / "again.png")
    assert Image.open(tmp_path / "again.png").mode.startswith("I")
    np.testing.assert_array_equal(load(tmp_path / "again.png").array, raw)


def test_rgb_png_round_trip(tmp_path: Path, retina: MedImage) -> None:
    small = retina.with_array(retina.array[::4, ::4])
    back = load(save(small, tmp_path / "fundus.png"), region="retina")
    assert back.is_rgb and back.modality == "OP" and back.region == "retina"
    assert back.array.min() >= 0 and back.array.max() <= 1
    np.testing.assert_allclose(back.array, small.array, atol=0.5 / 255 + 1e-6)


def test_a_pictures_transparency_is_kept_through_png_and_tiff(tmp_path: Path,
                                                               retina: MedImage) -> None:
    from medq.degrade import simulate

    rgb = np.round(retina.array[::8, ::8] * 255).astype(np.uint8)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:10, :] = 0  # a transparent band, as an exported fundus picture's mask
    alpha[10:20, :] = 128
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "in.png")
    image = load(tmp_path / "in.png")
    assert image.is_rgb and image.shape == rgb.shape  # alpha is not a pixel value
    np.testing.assert_array_equal(image.meta["alpha"], alpha)
    save(image, tmp_path / "same.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "same.png")),
                                  np.asarray(Image.open(tmp_path / "in.png")))
    blurred, _ = simulate(image, "blur", severity="moderate", seed=0)
    save(blurred, tmp_path / "blurred.tif")
    out = Image.open(tmp_path / "blurred.tif")
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out.getchannel("A")), alpha)
    save(image, tmp_path / "flat.jpg")  # JPEG has no alpha channel
    assert Image.open(tmp_path / "flat.jpg").mode == "RGB"
    smaller = image.with_array(image.array[::2, ::2])  # no alpha matches a resampled picture
    save(smaller, tmp_path / "smaller.png")
    assert Image.open(tmp_path / "smaller.png").mode == "RGB"

    grey = Image.fromarray(rgb[..., 1]).convert("LA")
    grey.putalpha(Image.fromarray(alpha))
    grey.save(tmp_path / "grey.png")
    grey_image = load(tmp_path / "grey.png")
    assert not grey_image.is_rgb and grey_image.shape == alpha.shape
    save(grey_image, tmp_path / "grey_again.png")
    again = Image.open(tmp_path / "grey_again.png")
    assert again.mode == "LA" and np.array_equal(np.asarray(again), np.asarray(grey))
    Image.fromarray(rgb).save(tmp_path / "opaque.png")
    assert "alpha" not in load(tmp_path / "opaque.png").meta


def test_ct_to_png_keeps_hu_through_text_chunk(tmp_path: Path) -> None:
    ct = load(tdata("CT_small.dcm"))
    back = load(save(ct, tmp_path / "ct.png"))
    assert back.meta["bit_depth"] == 16
    np.testing.assert_allclose(back.array, ct.array, atol=(1167 + 896) / 65535)


def test_ct_to_jpeg_keeps_hu_through_its_sidecar(tmp_path: Path, retina: MedImage) -> None:
    ct = load(tdata("CT_small.dcm"))
    back = load(save(ct, tmp_path / "ct.jpg"))
    assert back.modality == "CT" and back.meta["lossy_compression"]
    step = (1167 + 896) / 255  # 8 bits over the slice's range
    assert abs(float(back.array.mean() - ct.array.mean())) < step
    assert float(np.percentile(np.abs(back.array - ct.array), 90)) < 3 * step  # lossy, in HU
    again = load(save(retina.evolve(array=retina.array[..., 1], modality="OP"),
                      tmp_path / "ct.jpg"))  # another image on the same name: no stale map
    assert again.array.min() >= 0  # a stale map: < 0 HU
    assert np.abs(again.array - retina.array[..., 1]).mean() < 0.01  # its 0–1 values, not 0 or 1


def test_tiff_volume_and_npy_round_trip(tmp_path: Path, mni_t1: MedImage) -> None:
    vol = mni_t1.with_array(mni_t1.array[40:44])
    tif = load(save(vol, tmp_path / "v.tif"))
    np.testing.assert_array_equal(tif.array, vol.array)
    npy = load(save(vol, tmp_path / "v.npy"))
    np.testing.assert_array_equal(npy.array, vol.array)
    assert npy.meta["format"] == "npy" and npy.shape == vol.shape


def test_an_integer_tiff_stays_one_through_a_restoration(tmp_path: Path) -> None:
    """A 16-bit TIFF whose pixels came back fractional (and a little below 0, as a restoration's
    undershoot) is written as 16-bit again, rounded and clipped, not as float32; an 8-bit one
    as 8-bit."""
    import tifffile

    rng = np.random.default_rng(0)
    for depth in (16, 8):
        grey = rng.integers(0, 2**depth, (40, 48)).astype(f"uint{depth}")
        tifffile.imwrite(tmp_path / f"g{depth}.tif", grey)
        image = load(tmp_path / f"g{depth}.tif")
        changed = image.with_array(image.array * 0.5 - 3.25)
        back = tifffile.imread(save(changed, tmp_path / f"r{depth}.tif"))
        assert back.dtype == np.dtype(f"uint{depth}")
        np.testing.assert_array_equal(back, np.clip(np.round(grey * 0.5 - 3.25), 0, None))


def test_save_rejects_volume_as_png_without_leftovers(tmp_path: Path, mni_t1: MedImage) -> None:

    with pytest.raises(InvalidParameter, match="v.png"):
        save(mni_t1, tmp_path / "v.png")
    with pytest.raises(InvalidParameter, match="unknown output format"):
        save(mni_t1, tmp_path / "v.xyz")
    assert os.listdir(tmp_path) == []
    shutil.rmtree(tmp_path)


def test_a_volume_to_one_dicom_file_is_refused_by_the_check_before_any_work(
        tmp_path: Path, mni_t1: MedImage) -> None:
    # the check the commands run first (`medq simulate` refused it after 17 s of work)
    from medq.io import check_writable

    for name in ("v.dcm", "v.dcm.gz"):
        with pytest.raises(InvalidParameter, match="DICOM series folder"):
            check_writable(mni_t1, tmp_path / name)
    assert check_writable(mni_t1, tmp_path / "series") == "dicom-series"
    one = MedImage(mni_t1.array[40], mni_t1.spacing[1:], "MR", "brain")
    assert check_writable(one, tmp_path / "s.dcm") == "dicom"


def test_a_64_bit_integer_nifti_is_written_back_in_its_type(tmp_path: Path) -> None:
    # nibabel refuses int64 data without a stated type: `medq restore` of such a file ended in
    # an internal error
    data = np.arange(32 * 32 * 4, dtype=np.int64).reshape(32, 32, 4) * 1000
    nib.save(nib.Nifti1Image(data, np.eye(4), dtype=np.int64), tmp_path / "in.nii.gz")
    save(load(tmp_path / "in.nii.gz"), tmp_path / "out.nii.gz")
    back = nib.load(tmp_path / "out.nii.gz")
    assert back.get_data_dtype() == np.int64
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)


def test_a_colour_npy_is_written_back_on_the_scale_it_was_read_in(tmp_path: Path) -> None:
    # `medq restore rgb.npy` wrote 0–1 values for a 0–255 array (medq.restore returns 0–255)
    rgb = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    np.save(tmp_path / "in.npy", rgb)
    save(load(tmp_path / "in.npy"), tmp_path / "out.npy")
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), rgb, atol=1e-3)


def test_sidecar_keeps_modality_region_spacing_for_headerless_formats(tmp_path: Path) -> None:
    """NIfTI/PNG carry no modality; medq's JSON sidecar brings it back on load."""
    from medq.io import read_sidecar, write_sidecar

    pet = MedImage(np.random.default_rng(0).random((4, 6, 5)) * 10, (2.0, 2.0, 3.0), "PT", "brain",
                   physics={"injected_dose_MBq": 370.0})
    out = save(pet, tmp_path / "pet.nii.gz")
    assert (tmp_path / "pet.json").is_file()
    back = load(out)
    assert (back.modality, back.region) == ("PT", "brain")
    assert back.physics["injected_dose_MBq"] == 370.0
    assert load(out, modality="MR").modality == "MR"  # explicit arguments still win
    write_sidecar(out, {"degradation": {"name": "pet_low_count"}})
    assert read_sidecar(out)["Modality"] == "PT"  # merged, not replaced
    xr = MedImage(np.arange(64, dtype=np.float32).reshape(8, 8), (0.2, 0.2), "DX", "chest")
    back = load(save(xr, tmp_path / "xr.png"))
    assert (back.modality, back.region, back.spacing) == ("DX", "chest", (0.2, 0.2))


def test_sidecar_keeps_the_words_the_mr_contrast_is_read_from(tmp_path: Path) -> None:
    """A NIfTI written by medq (`medq simulate`, `medq restore`) states its input's series
    description and protocol in the sidecar, so a degraded copy is read with the clean one's
    prompts (the MNI T1 lost its T1 contrast to `mr_other`)."""
    from medq.assess.prompts import prompts_from_image

    t1 = MedImage(np.random.default_rng(0).random((6, 8, 8)), (1.0, 1.0, 1.0), "MR", "brain",
                  meta={"series_description": "T1w MNI152", "protocol_name": "t1_mprage"})
    back = load(save(t1, tmp_path / "t1.nii.gz"))
    assert back.meta["series_description"] == "T1w MNI152"
    assert back.meta["protocol_name"] == "t1_mprage"
    assert prompts_from_image(back).type == "mr_t1"


def test_an_output_whose_record_cannot_be_written_is_left_as_it_was(tmp_path: Path) -> None:
    """The image and its sidecar are one output: when the sidecar cannot be written (a folder
    in its place), the error names it and the earlier image stays (it was replaced first)."""
    from medq.errors import InvalidParameter

    x = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    earlier = save(MedImage(x, (1.0, 1.0), "MR", "brain"), tmp_path / "r.nii")
    content = earlier.read_bytes()
    (tmp_path / "r.json").unlink()
    (tmp_path / "r.json").mkdir()
    with pytest.raises(InvalidParameter, match=r"r.nii: cannot write its record .*r.json"):
        save(MedImage(x * 2, (1.0, 1.0), "MR", "brain"), tmp_path / "r.nii")
    assert earlier.read_bytes() == content


def test_files_of_one_stem_keep_their_own_sidecars(tmp_path: Path) -> None:
    """Saving scan.png beside scan.nii.gz never changes what scan.nii.gz loads as: the second
    file's sidecar is scan.png.json; a stem sidecar of another tool (no `File`) still applies."""
    import json

    x = np.random.default_rng(0).random((16, 16)).astype(np.float32) * 100
    nifti = save(MedImage(x, (0.5, 0.5), "PT", "brain"), tmp_path / "scan.nii.gz")
    png = save(MedImage(x, (2.0, 2.0), "MR", "knee"), tmp_path / "scan.png")
    assert (tmp_path / "scan.json").is_file() and (tmp_path / "scan.png.json").is_file()
    for path, expected in ((nifti, ("PT", "brain", (0.5, 0.5))), (png, ("MR", "knee", (2.0, 2.0)))):
        back = load(path)
        assert (back.modality, back.region, back.spacing) == expected
    save(MedImage(x, (0.5, 0.5), "CT", "brain"), tmp_path / "scan.nii.gz")  # rewritten in place
    assert load(nifti).modality == "CT" and load(png).modality == "MR"
    from medq.cli.common import expand_inputs  # a glob's inputs: the images, not their sidecars

    assert {p.name for p in expand_inputs(sorted(tmp_path.iterdir()))} == {"scan.nii.gz",
                                                                           "scan.png"}
    legacy = tmp_path / "other.nii.gz"
    save(MedImage(x, (1.0, 1.0), "PT"), legacy)
    (tmp_path / "other.json").write_text(json.dumps({"Modality": "MR", "degradation": {}}))
    assert load(legacy).modality == "MR"  # a sidecar that names no file applies
    save(MedImage(x, (1.0, 1.0), "DX"), tmp_path / "other.png")  # takes none of its keys
    assert set(json.loads((tmp_path / "other.png.json").read_text())) == {
        "Modality", "BodyPart", "Spacing", "Physics", "File"}
    (tmp_path / "scan.nii.gz").rename(tmp_path / "sub-01.nii.gz")  # renamed with its sidecar
    (tmp_path / "scan.json").rename(tmp_path / "sub-01.json")
    assert load(tmp_path / "sub-01.nii.gz").modality == "CT"
    before = (tmp_path / "sub-01.json").read_bytes()  # another file of the renamed stem
    save(MedImage(x, (1.0, 1.0), "MR", "brain"), tmp_path / "sub-01.nii")
    assert (tmp_path / "sub-01.json").read_bytes() == before
    assert load(tmp_path / "sub-01.nii.gz").modality == "CT"
    assert load(tmp_path / "sub-01.nii").modality == "MR"


# ------------------------------------------------------------------ modality from the values


def test_headerless_hounsfield_image_loads_as_ct(tmp_path: Path) -> None:
    from medq.io.units import INFERRED

    ct = load(tdata("CT_small.dcm"))
    np.save(tmp_path / "ct.npy", ct.array)
    nib.save(nib.Nifti1Image(np.stack([ct.array.T] * 3, -1).astype(np.int16), np.eye(4)),
             tmp_path / "ct.nii.gz")
    for name in ("ct.npy", "ct.nii.gz"):
        img = load(tmp_path / name)
        assert img.modality == "CT" and img.meta["modality_from"] == INFERRED, name
    assert load(tmp_path / "ct.npy", modality="MR").modality == "MR"  # the caller decides
    # stored as HU + 1024, or as an MR's magnitudes: no units to read, the modality stays unknown
    np.save(tmp_path / "stored.npy", ct.array + 1024.0)
    mr = load(tdata("MR_small.dcm"))
    np.save(tmp_path / "mr.npy", mr.array)
    np.save(tmp_path / "air.npy", np.full((32, 32), -1000.0))  # no tissue
    for name in ("stored.npy", "mr.npy", "air.npy"):
        img = load(tmp_path / name)
        assert img.modality == "OT" and "modality_from" not in img.meta, name


def test_inferred_ct_is_assessed_as_ct_with_a_modality_prompt_from_values(tmp_path: Path) -> None:
    from medq.assess.prompts import prompts_from_image

    np.save(tmp_path / "ct.npy", load(tdata("CT_small.dcm")).array)
    prompts = prompts_from_image(load(tmp_path / "ct.npy"))
    assert prompts.modality == "CT" and prompts.source["modality"] == "values"


def test_monochrome1_values_are_kept_and_shown_mirrored(radiograph_twins) -> None:
    from medq.io.polarity import as_displayed, mirrored, value_range

    plain, inverted = (load(p) for p in radiograph_twins)
    assert inverted.meta["photometric"] == "MONOCHROME1"
    assert not np.allclose(inverted.array, plain.array)  # the stored values, as the file has them
    shown = as_displayed(inverted)
    assert np.allclose(shown.array, plain.array, atol=1e-3)  # the same picture
    assert shown.meta["photometric"] == "MONOCHROME2"
    assert shown.meta["stored_photometric"] == "MONOCHROME1"
    span = value_range(inverted.array)
    assert np.allclose(mirrored(mirrored(inverted.array, span), span), inverted.array, atol=1e-5)
    assert as_displayed(plain) is plain  # MONOCHROME2 and colour images are shown as stored


def test_a_monochrome1_radiograph_is_written_as_shown_where_no_tag_says_how_to_show_it(
        radiograph_twins, tmp_path: Path) -> None:
    """Saved as PNG or NIfTI (a restoration passed through unchanged), a MONOCHROME1 radiograph
    kept its stored values with nothing to say they are shown mirrored: bone came out dark
    (correlation −1 with its MONOCHROME2 twin's file); as DICOM it keeps them and its tag."""
    plain, inverted = (load(p) for p in radiograph_twins)
    for name in ("x.png", "x.nii.gz"):
        twin, written = load(save(plain, tmp_path / f"plain_{name}")), \
            load(save(inverted, tmp_path / name))
        assert np.corrcoef(twin.array.ravel(), written.array.ravel())[0, 1] > 0.999, name
    again = load(save(inverted, tmp_path / "x.dcm"))
    assert again.meta["photometric"] == "MONOCHROME1"
    np.testing.assert_allclose(again.array, inverted.array, atol=1e-3)


def test_a_monochrome1_radiograph_that_does_not_fill_its_bits_is_shown_as_its_twin(
        tmp_path: Path) -> None:
    """A 12-bit MONOCHROME1 radiograph stored 956–4034 (4095 − v of its MONOCHROME2 twin's
    61–3139) was mirrored within its own values: shown 895 above its twin, read as low
    contrast (2.25 against 4.50). It is mirrored within its bits stored, through its rescale,
    and a restoration is kept within them (one held 4099)."""
    from medq.data.samples import load_sample
    from medq.io.polarity import as_displayed, mirror_span, within_storable

    xr = load_sample("xr_head").array
    twelve = np.round(61 + (xr - xr.min()) / np.ptp(xr) * 3078).astype(np.uint16)
    ds = pydicom.dcmread(tdata("CT_small.dcm"))
    ds.Modality, ds.Rows, ds.Columns = "DX", *twelve.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = twelve.tobytes()
    ds.save_as(tmp_path / "m2.dcm")
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.PixelData = (4095 - twelve).astype(np.uint16).tobytes()
    ds.save_as(tmp_path / "m1.dcm")
    plain, inverted = load(tmp_path / "m2.dcm"), load(tmp_path / "m1.dcm")
    assert mirror_span(inverted) == (0.0, 4095.0) and "bit_range" not in plain.meta
    np.testing.assert_allclose(as_displayed(inverted).array, plain.array)
    restored = np.array([-5.0, 100.0, 4099.0], np.float32)  # a result beyond its 12 bits
    np.testing.assert_array_equal(within_storable(restored, inverted), [0.0, 100.0, 4095.0])
    # written by medq (a restoration's output) and read back, it is shown as it was: the
    # derived file keeps its 12 bits (it was written in 16, read back mirrored within 65535)
    changed = inverted.with_array(inverted.array * 0.5 + 1000.0)
    again = load(save(changed, tmp_path / "derived.dcm"))
    assert pydicom.dcmread(tmp_path / "derived.dcm").BitsStored == 12
    np.testing.assert_allclose(as_displayed(again).array, as_displayed(changed).array, atol=0.51)
    ds.RescaleSlope, ds.RescaleIntercept = 2, -100  # the same picture, through a value map
    ds.save_as(tmp_path / "m1_mapped.dcm")
    mapped = load(tmp_path / "m1_mapped.dcm")
    assert mirror_span(mapped) == (-100.0, 8090.0)
    np.testing.assert_allclose(as_displayed(mapped).array, plain.array * 2 - 100)
    again = load(save(mapped, tmp_path / "mapped_again.dcm"))
    np.testing.assert_allclose(as_displayed(again).array, as_displayed(mapped).array, atol=1.01)


def test_a_siemens_mosaic_is_read_as_the_volume_of_its_tiles(tmp_path: Path,
                                                             mni_t1: MedImage) -> None:
    from medq.errors import UnsupportedImage
    from medq.qc.discover import discover

    with pytest.raises(UnsupportedImage, match=r"mosaic of 48 slices: its 256×256 pixels are "
                                               r"not a 7×7 grid"):
        load(SIEMENS_MOSAIC)
    nz = mni_t1.array.shape[0]
    slices = siemens_mosaic(mni_t1, tmp_path / "dwi_b0.dcm", nz // 2 - 8)
    image = load(tmp_path / "dwi_b0.dcm")
    assert image.modality == "MR" and image.array.shape == (8, 96, 96)
    np.testing.assert_array_equal(image.array, slices)
    assert image.spacing == pytest.approx((3.0, 1.796875, 1.796875))
    ds = pydicom.dcmread(tmp_path / "dwi_b0.dcm")  # the mosaic states a tile-sized image's corner
    row, column = np.asarray(ds.ImageOrientationPatient[:3]), np.asarray(
        ds.ImageOrientationPatient[3:])
    first = np.asarray(ds.ImagePositionPatient) + 96 * 1.796875 * (row + column)  # 288 − 96 = 2·96
    positions = np.asarray(image.meta["positions"])
    np.testing.assert_allclose(positions[0], first, atol=1e-4)
    np.testing.assert_allclose(np.diff(positions, axis=0) @ np.cross(row, column), 3.0, atol=1e-3)
    siemens_mosaic(mni_t1, tmp_path / "dwi_b1000.dcm", nz // 2 - 6)  # the series' next volume
    items = discover(tmp_path)  # one series UID, but each mosaic is a volume of its own
    assert [Path(i.path).name for i in items] == ["dwi_b0.dcm", "dwi_b1000.dcm"]
    assert not any(i.series for i in items)


def test_a_derived_dicom_keeps_its_source_s_12_bits(tmp_path: Path) -> None:
    """pydicom's examples_overlay.dcm, an MR stored in 12 of 16 bits, came back from
    `medq simulate` stored in 16: the derived file keeps its source's BitsStored, HighBit and
    unsigned pixels, its values as simulated within half a step. Values beyond 12 bits fall
    back to 16, exactly."""
    from medq.degrade import simulate

    src = load(tdata("examples_overlay.dcm"))
    noisy, _ = simulate(src, "mr_noise", severity="moderate", seed=0)
    written = save(noisy, tmp_path / "noisy.dcm")
    ds = pydicom.dcmread(written)
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12,
                                                                                     11, 0)
    assert np.abs(load(written).array - noisy.array).max() <= 0.5 + 1e-3
    bright = src.with_array(src.array * 8)  # up to 8984: more than 12 bits hold
    ds = pydicom.dcmread(save(bright, tmp_path / "bright.dcm"))
    assert ds.BitsStored == 16
    np.testing.assert_array_equal(load(tmp_path / "bright.dcm").array, bright.array)


def test_a_radiograph_made_noisy_keeps_its_detector_s_12_bits(tmp_path: Path) -> None:
    """Severe quantum noise pushed a 12-bit radiograph past its bits: `medq simulate` wrote the
    MONOCHROME2 file signed in 16 bits with values below 0 and the MONOCHROME1 one with a rescale
    slope over 1, which moved what it shows. The values are now clipped to what the file holds,
    as a detector saturates, and the derived file keeps its source's storage."""
    from conftest import run_medq
    from medq.data.samples import load_sample

    xr = save(load_sample("xr_head"), tmp_path / "xr.dcm")
    ds = pydicom.dcmread(xr)
    for photometric in ("MONOCHROME2", "MONOCHROME1"):
        a = load(xr).array
        stored = np.round((a - a.min()) / np.ptp(a) * 4095).astype(np.uint16)
        if photometric == "MONOCHROME1":
            stored = 4095 - stored
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
        ds.RescaleSlope, ds.RescaleIntercept, ds.PhotometricInterpretation = 1, 0, photometric
        ds.PixelData = stored.tobytes()
        source, noisy = tmp_path / f"{photometric}.dcm", tmp_path / f"{photometric}_noisy.dcm"
        ds.save_as(source)
        res = run_medq("simulate", source, "--kind", "xr_quantum_noise", "--severity", "severe",
                       "--seed", "1", "-o", noisy)
        assert res.returncode == 0, res.stderr
        out = pydicom.dcmread(noisy)
        assert (out.BitsStored, out.PixelRepresentation, float(out.RescaleSlope),
                float(out.RescaleIntercept)) == (12, 0, 1.0, 0.0), photometric
        raw = np.frombuffer(out.PixelData, "<u2")  # as stored: pydicom masks to BitsStored
        assert raw.max() <= 4095 and raw.max() > stored.max() * 0.9  # clipped, not squeezed
        if photometric == "MONOCHROME1":
            assert load(noisy).meta["bit_range"] == [0.0, 4095.0]  # shown as its source is
    floats = tmp_path / "noisy.nii.gz"  # a format of any value keeps the engine's values
    assert run_medq("simulate", source, "--kind", "xr_quantum_noise", "--severity", "severe",
                    "--seed", "1", "-o", floats).returncode == 0
    assert load(floats).array.min() < 0


def test_a_dicom_holds_what_its_bits_hold_and_what_it_was_read_with() -> None:
    """What a one-plane DICOM can hold (`storable_range`): its bits stored through its rescale,
    widened to the values it was read with (a JPEG 2000 codestream may hold more bits than its
    header states: clipping them lost data); nothing for float pixel data or a volume."""
    from medq.io.polarity import storable_range

    meta = {"bits_stored": 12, "bits_allocated": 16, "pixel_representation": 0,
            "stored_rescale": [1.0, -1024.0]}
    plane = MedImage(np.array([[-1000.0, 40.0]], np.float32), (1.0, 1.0), "CT", meta=meta)
    assert storable_range(plane) == (-1024.0, 3071.0)
    assert storable_range(plane.with_array(np.array([[-1000.0, 4973.0]], np.float32))) == (
        -1024.0, 4973.0)
    floats = MedImage(np.array([[-100.5, 7e4]], np.float32), (1.0, 1.0), "OT",
                      meta={**meta, "bits_allocated": 32, "stored_rescale": [1.0, 0.0]})
    assert storable_range(floats) is None
    volume = MedImage(np.zeros((2, 2, 2), np.float32), (1.0, 1.0, 1.0), "CT", meta=meta)
    assert storable_range(volume) is None


def test_a_restored_12_bit_ct_keeps_its_storage(tmp_path: Path) -> None:
    """CT_small stored as a scanner often does, in 12 unsigned bits with intercept −1024 HU, is
    restored by `medq restore` into the same storage (it was written as 16-bit signed
    integers), the restoration in it."""
    from conftest import run_medq

    ds = pydicom.dcmread(tdata("CT_small.dcm"))
    stored = ds.pixel_array.astype(np.uint16)  # 128–2191: −896 to 1167 HU
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = stored.tobytes()
    ds.save_as(tmp_path / "ct12.dcm")
    res = run_medq("restore", tmp_path / "ct12.dcm", "-o", tmp_path / "out.dcm", "--method",
                   "tv", "--force")
    assert res.returncode == 0, res.stderr
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert (out.BitsStored, out.HighBit, out.PixelRepresentation) == (12, 11, 0)
    assert (float(out.RescaleSlope), float(out.RescaleIntercept)) == (1.0, -1024.0)
    raw = np.frombuffer(out.PixelData, "<u2")  # as stored: pydicom masks to BitsStored
    assert raw.max() <= 4095 and not np.array_equal(raw, stored.ravel())  # restored, in 12 bits
    np.testing.assert_array_equal(load(tmp_path / "out.dcm").array.ravel(),
                                  raw.astype(np.float32) - 1024)


def test_an_rle_dicom_stays_rle_lossless_and_a_lossy_one_is_not_coded_again(
        tmp_path: Path) -> None:
    """pydicom's MR_small_RLE.dcm was written back uncompressed; its derived file is RLE
    Lossless too (smaller than the uncompressed one) and decodes to the values written. A JPEG
    2000 lossy CT is written uncompressed, flagged lossy, in its own 14 bits."""
    from pydicom.uid import RLELossless

    from medq.degrade import simulate

    src = load(tdata("MR_small_RLE.dcm"))
    noisy, _ = simulate(src, "mr_noise", severity="mild", seed=1)
    ds = pydicom.dcmread(save(noisy, tmp_path / "noisy.dcm"))
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    slope, icpt = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    assert np.abs(ds.pixel_array * slope + icpt - noisy.array).max() <= max(slope / 2,
                                                                            0.5) + 1e-3
    copy = save(src.with_array(src.array), tmp_path / "copy.dcm")
    plain = save(load(tdata("MR_small.dcm")), tmp_path / "plain.dcm")  # the same picture
    assert pydicom.dcmread(copy).file_meta.TransferSyntaxUID == RLELossless
    np.testing.assert_array_equal(load(copy).array, load(plain).array)
    assert copy.stat().st_size < 0.9 * plain.stat().st_size
    lossy = pydicom.dcmread(save(load(tdata("693_J2KI.dcm")), tmp_path / "j2k.dcm"))
    assert lossy.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert lossy.LossyImageCompression == "01" and lossy.BitsStored == 14
