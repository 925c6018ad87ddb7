"""MetaImage and NRRD (medq.io.itk) on real images, files written by SimpleITK itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medq.errors import UnreadableImage, UnsupportedImage
from medq.image import MedImage
from medq.io import load, save, sniff

SPACING_XYZ = (0.5, 0.8, 2.0)
"""Anisotropic, so an axis order mix-up shows."""

DIRECTION = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def _written_by_sitk(array: np.ndarray, path: Path, **meta: str) -> Path:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(SPACING_XYZ[: img.GetDimension()])
    if img.GetDimension() == 3:
        img.SetOrigin((-90.0, 12.5, 40.0))
        img.SetDirection(DIRECTION)
    for key, value in meta.items():
        img.SetMetaData(key, value)
    sitk.WriteImage(img, str(path), True)
    return path


@pytest.mark.parametrize("name", ["t1.mha", "t1.mhd", "t1.nrrd", "t1.nhdr"])
def test_volume_reads_in_medq_axes_and_writes_back(tmp_path: Path, mni_t1: MedImage,
                                                   name: str) -> None:
    source = _written_by_sitk(mni_t1.array, tmp_path / name)
    img = load(source)
    assert img.meta["format"] == ("nrrd" if "nrrd" in name or "nhdr" in name else "metaimage")
    np.testing.assert_array_equal(img.array, mni_t1.array)  # (z, y, x) as SimpleITK's array
    assert img.spacing == pytest.approx(SPACING_XYZ[::-1])
    assert img.modality == "OT" and img.region == "unknown"  # nothing states them
    out = tmp_path / "out" / name
    save(img.with_array(img.array * 2 - 5), out)
    back = sitk.ReadImage(str(out))
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), mni_t1.array * 2 - 5, rtol=1e-6)
    assert back.GetSpacing() == pytest.approx(SPACING_XYZ)
    assert back.GetOrigin() == pytest.approx((-90.0, 12.5, 40.0))
    assert back.GetDirection() == pytest.approx(DIRECTION)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporaries
    if name.endswith((".mhd", ".nhdr")):  # the header and its data file
        assert len([p for p in out.parent.iterdir() if p.suffix != ".json"]) == 2


def test_a_2d_slice_in_hounsfield_units_is_ct(tmp_path: Path, ct_slice: MedImage) -> None:
    img = load(_written_by_sitk(ct_slice.array, tmp_path / "ct.nrrd"))
    assert img.shape == ct_slice.shape and img.spacing == pytest.approx((0.8, 0.5))
    assert img.modality == "CT"  # inferred from the values, not stated
    one = load(_written_by_sitk(ct_slice.array[None], tmp_path / "one.mha"))  # a 1-slice volume
    assert one.shape == ct_slice.shape and one.spacing == pytest.approx((0.8, 0.5))
    back = sitk.ReadImage(str(save(one, tmp_path / "back.mha")))
    assert back.GetSize() == (128, 128, 1) and back.GetSpacing() == pytest.approx(SPACING_XYZ)


def test_the_modality_the_header_states(tmp_path: Path, mr_slice: MedImage) -> None:
    mha = _written_by_sitk(mr_slice.array, tmp_path / "mr.mha")
    text = mha.read_bytes()
    mha.write_bytes(text.replace(b"NDims = 2\n", b"NDims = 2\nModality = MET_MOD_MR\n", 1))
    assert load(mha).modality == "MR"
    nrrd = _written_by_sitk(mr_slice.array, tmp_path / "mr.nrrd", Modality="MR")
    assert load(nrrd).modality == "MR"


def test_content_decides_the_format_and_a_data_file_is_not_an_input(
        tmp_path: Path, mr_slice: MedImage, capfd: pytest.CaptureFixture[str]) -> None:
    _written_by_sitk(mr_slice.array, tmp_path / "a.mha").rename(tmp_path / "scan")
    _written_by_sitk(mr_slice.array, tmp_path / "b.nrrd").rename(tmp_path / "scan2.img")
    assert sniff(tmp_path / "scan") == "metaimage" and sniff(tmp_path / "scan2.img") == "nrrd"
    np.testing.assert_array_equal(load(tmp_path / "scan2.img").array, mr_slice.array)
    _written_by_sitk(mr_slice.array, tmp_path / "c.mhd")
    _written_by_sitk(np.zeros((4, 5, 6), np.uint8), tmp_path / "c.seg.nrrd", Segment0_ID="x")
    from medq.qc.discover import discover

    names = [Path(item.path).name for item in discover(tmp_path)]
    assert names == ["c.mhd", "scan", "scan2.img"], names  # c.zraw: through c.mhd; a label map
    with pytest.raises(UnsupportedImage, match="c.zraw"):
        load(tmp_path / "c.zraw")
    (tmp_path / "c.zraw").unlink()
    capfd.readouterr()
    with pytest.raises(UnreadableImage, match=r"c\.mhd: its data file c\.zraw is missing"):
        load(tmp_path / "c.mhd")
    (tmp_path / "d.nhdr").write_text("NRRD0004\ntype: short\ndimension: 2\nsizes: 4 4\n"
                                     "encoding: raw\ndata file: d.raw\n\n")
    with pytest.raises(UnreadableImage, match=r"d\.nhdr: its data file d\.raw is missing"):
        load(tmp_path / "d.nhdr")
    assert capfd.readouterr().err == ""  # before ITK, which printed its own lines on stderr


def test_photographs_and_what_is_not_an_image(tmp_path: Path, retina: MedImage) -> None:
    pixels = np.round(retina.array * 255).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(pixels, isVector=True), str(tmp_path / "f.mha"))
    photo = load(tmp_path / "f.mha")
    assert photo.is_rgb and photo.modality == "OP"
    np.testing.assert_allclose(photo.array, pixels / 255.0, atol=1e-6)
    volumes = [sitk.GetImageFromArray(np.full((4, 5, 6), t, np.float32)) for t in range(3)]
    sitk.WriteImage(sitk.JoinSeries(volumes), str(tmp_path / "fmri.nrrd"))  # a time series
    with pytest.raises(UnsupportedImage, match="4D image of 3 volumes"):
        load(tmp_path / "fmri.nrrd")
    field = sitk.GetImageFromArray(np.zeros((4, 5, 2), np.float32), isVector=True)
    sitk.WriteImage(field, str(tmp_path / "field.mha"))
    with pytest.raises(UnsupportedImage, match="2 components per pixel"):
        load(tmp_path / "field.mha")
    seg = _written_by_sitk(np.zeros((4, 5, 6), np.uint8), tmp_path / "liver.seg.nrrd",
                           Segment0_ID="liver", Segment0_Name="liver")
    with pytest.raises(UnsupportedImage, match="a segmentation"):
        load(seg)
    (tmp_path / "broken.nrrd").write_bytes(b"NRRD0004\ntype: float\n")
    with pytest.raises(UnreadableImage, match="broken.nrrd"):
        load(tmp_path / "broken.nrrd")


def test_medq_metadata_survives_a_round_trip(tmp_path: Path, mr_slice: MedImage) -> None:
    out = save(mr_slice.evolve(region="knee"), tmp_path / "knee.nrrd", description="restored")
    assert json.loads((tmp_path / "knee.json").read_text())["BodyPart"] == "knee"
    (tmp_path / "knee.json").unlink()  # the header alone still states the modality
    back = load(out)
    assert back.modality == "MR" and back.shape == mr_slice.shape
    assert sitk.ReadImage(str(out)).GetMetaData("medq_description") == "restored"


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_integer_pixels_are_written_back_in_their_type(tmp_path: Path, ct_slice: MedImage,
                                                       suffix: str) -> None:
    """An int16 or uint16 volume came back float32 from every save; it keeps its type when its
    values are whole numbers within it (as a restoration leaves them), else float32; a float
    volume stays float32."""
    volume = np.stack([np.asarray(ct_slice.array, dtype=np.int16)] * 3)
    for pixels in (volume, (volume - volume.min()).astype(np.uint16)):
        sitk.WriteImage(sitk.GetImageFromArray(pixels), str(tmp_path / f"in{suffix}"))
        image = load(tmp_path / f"in{suffix}")
        back = sitk.ReadImage(str(save(image, tmp_path / f"out{suffix}")))
        assert sitk.GetArrayViewFromImage(back).dtype == pixels.dtype
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), pixels)
        fractions = sitk.ReadImage(str(save(image.with_array(image.array + 0.3),
                                            tmp_path / f"frac{suffix}")))
        assert sitk.GetArrayViewFromImage(fractions).dtype == np.float32
    floats = volume.astype(np.float32) / 7
    sitk.WriteImage(sitk.GetImageFromArray(floats), str(tmp_path / f"f{suffix}"))
    back = sitk.ReadImage(str(save(load(tmp_path / f"f{suffix}"), tmp_path / f"fo{suffix}")))
    assert sitk.GetArrayViewFromImage(back).dtype == np.float32


@pytest.mark.parametrize("flat", [0, 1])  # ITK index axis x (sagittal) or y (coronal)
def test_a_single_coronal_or_sagittal_slice_is_a_2d_image_in_its_place(tmp_path: Path,
                                                                       flat: int) -> None:
    """A file of one coronal or sagittal slice was refused as "a stack of lines"; it is a 2D
    image, written back with every voxel value at the same place in the patient."""
    size = [7, 6, 5]  # ITK's (x, y, z)
    size[flat] = 1
    pixels = np.random.default_rng(0).random(size[::-1]).astype(np.float32)
    made = sitk.GetImageFromArray(pixels)
    made.SetSpacing((0.5, 0.7, 3.0))
    made.SetOrigin((10.0, 20.0, 30.0))
    turn = np.deg2rad(20)
    made.SetDirection([np.cos(turn), -np.sin(turn), 0, np.sin(turn), np.cos(turn), 0, 0, 0, 1])
    sitk.WriteImage(made, str(tmp_path / "one.nrrd"))
    image = load(tmp_path / "one.nrrd")
    assert not image.is_volume and image.array.size == pixels.size
    back = sitk.ReadImage(str(save(image, tmp_path / "back.nrrd")))
    for index in np.ndindex(*size):
        place = made.TransformIndexToPhysicalPoint([int(i) for i in index])
        there = back.TransformPhysicalPointToIndex(place)
        assert back[there] == pytest.approx(made[[int(i) for i in index]])


def test_a_truncated_metaimage_says_so_in_one_line(tmp_path: Path) -> None:
    """ITK printed its own complaint on stderr and gave 'Reason: Success' for a MetaImage cut
    short; its own or its data file's missing bytes are now the one-line reason."""
    from conftest import run_medq

    volume = np.random.default_rng(0).random((8, 32, 32)).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "whole.mha"))
    data = (tmp_path / "whole.mha").read_bytes()
    (tmp_path / "cut.mha").write_bytes(data[: len(data) // 2])
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "pair.mhd"))
    raw = next(tmp_path.glob("pair*.raw"))
    raw.write_bytes(raw.read_bytes()[:1000])
    assert load(tmp_path / "whole.mha").shape == (8, 32, 32)
    (tmp_path / "text.mha").write_text(  # values written as text: shorter than binary, whole
        "ObjectType = Image\nNDims = 2\nBinaryData = False\nDimSize = 4 3\n"
        "ElementType = MET_FLOAT\nElementDataFile = LOCAL\n0 1 2 3 4 5 6 7 8 9 10 11\n")
    np.testing.assert_array_equal(load(tmp_path / "text.mha").array,
                                  np.arange(12, dtype=np.float32).reshape(3, 4))
    res = run_medq("info", tmp_path / "cut.mha", tmp_path / "pair.mhd", new_process=True)
    assert res.returncode == 2
    header = len(data) - 32768  # 8 × 32 × 32 float32 values after the header
    assert res.stderr.strip().splitlines() == [
        f"medq: error: {tmp_path / 'cut.mha'}: file is truncated ({len(data) // 2 - header} of "
        "32768 bytes of pixel data)",
        f"medq: error: {tmp_path / 'pair.mhd'}: file is truncated (1000 of 32768 bytes of pixel "
        "data)"]
