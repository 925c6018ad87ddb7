"""Research volume formats through nibabel: MGH/MGZ, Analyze, MINC, PAR/REC, AFNI and ECAT.

Real files are nibabel's own test data (a Philips EPI phantom as PAR/REC, an AFNI EPI series,
MINC 1 and 2 volumes, an FDG frame as ECAT 7); MGH and Analyze round trips use the MNI T1,
and dynamic ECAT files are the PET sample's frames in that file's headers (`ecat_pet`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import TINY_PET, ecat_pet, run_medq
from medq.cli.restore import output_paths
from medq.errors import InvalidParameter, UnreadableImage, UnsupportedImage
from medq.image import MedImage
from medq.io import load, save, sniff
from medq.qc.discover import folder_items

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
PARREC = "phantom_EPI_asc_CLEAR_2_1"


@pytest.fixture()
def parrec(tmp_path: Path) -> Path:
    """nibabel's Philips EPI phantom (64² × 9 slices × 3 dynamics) as a PAR/REC pair."""
    for suffix in (".PAR", ".REC"):
        shutil.copy(NIBABEL_DATA / f"{PARREC}{suffix}", tmp_path)
    return tmp_path / f"{PARREC}.PAR"


def test_mgz_round_trip_keeps_pixels_geometry_and_modality(tmp_path: Path,
                                                           mni_t1: MedImage) -> None:
    written = save(mni_t1, tmp_path / "t1.mgz")
    assert sniff(written) == "mgh" and nib.load(written).shape == mni_t1.array.shape[::-1]
    back = load(written)
    np.testing.assert_array_equal(back.array, mni_t1.array.astype(np.float32))
    assert back.spacing == pytest.approx(mni_t1.spacing)
    assert back.modality == "MR"  # from the sidecar medq wrote (the template states no TR)
    assert back.meta["format"] == "mgh"
    np.testing.assert_allclose(np.asarray(back.meta["affine"]), nib.load(written).affine)


def test_an_mgh_stating_a_repetition_time_is_mr_with_its_physics(tmp_path: Path,
                                                                mni_t1: MedImage) -> None:
    img = nib.MGHImage(np.ascontiguousarray(mni_t1.array.T, dtype=np.float32), np.eye(4))
    img.header["tr"], img.header["te"] = 2300.0, 2.98
    img.header["flip_angle"] = np.radians(9.0)
    nib.save(img, tmp_path / "orig.mgz")
    image = load(tmp_path / "orig.mgz")
    assert image.modality == "MR"
    assert image.physics == pytest.approx({"tr_ms": 2300.0, "te_ms": 2.98,
                                           "flip_angle_deg": 9.0}, rel=1e-4)
    save(image, tmp_path / "restored.mgh")  # medq writes them back into the header
    (tmp_path / "restored.json").unlink()  # so the sidecar is not what says so
    again = load(tmp_path / "restored.mgh")
    assert again.modality == "MR" and again.physics == pytest.approx(image.physics, rel=1e-4)


def test_analyze_pair_is_written_whole_and_is_one_input(tmp_path: Path,
                                                        mni_t1: MedImage) -> None:
    written = save(mni_t1, tmp_path / "t1.img")
    assert written == tmp_path / "t1.hdr" and (tmp_path / "t1.img").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp." in p.name]
    for path in (tmp_path / "t1.hdr", tmp_path / "t1.img"):
        back = load(path)
        np.testing.assert_array_equal(back.array, mni_t1.array.astype(np.float32))
        assert back.spacing == pytest.approx(mni_t1.spacing) and back.modality == "MR"
    items = folder_items(tmp_path, [p.name for p in tmp_path.iterdir()])
    assert [Path(i.path).name for i in items] == ["t1.hdr"]


def test_analyze_header_without_its_data_file_is_unreadable(tmp_path: Path) -> None:
    shutil.copy(NIBABEL_DATA / "analyze.hdr", tmp_path)
    with pytest.raises(UnreadableImage, match=r"not a readable Analyze file"):
        load(tmp_path / "analyze.hdr")


def test_parrec_is_mr_with_its_physics_one_dynamic_at_a_time(parrec: Path) -> None:
    with pytest.raises(UnsupportedImage, match=r"4D image of 3 volumes"):
        load(parrec)
    one = load(f"{parrec}@volume=1")
    assert one.modality == "MR" and one.array.shape == (9, 64, 64)
    assert one.spacing == pytest.approx((8.0, 3.75, 3.75))
    assert one.physics == {"tr_ms": 2000.0, "te_ms": 30.0, "flip_angle_deg": 90.0}
    data = np.asarray(nib.load(parrec).dataobj[..., 1], dtype=np.float32)
    np.testing.assert_allclose(one.array, data.T, rtol=1e-6)
    rec = load(f"{parrec.with_suffix('.REC')}@volume=1")  # the data file reads as its header
    np.testing.assert_array_equal(rec.array, one.array)
    items = folder_items(parrec.parent, [p.name for p in parrec.parent.iterdir()])
    assert [Path(i.path).name for i in items] == [parrec.name]


def _minc_zyx(path: Path) -> np.ndarray:
    """A MINC file's voxels in medq's (volume,) z, y, x order, by its own dimension names."""
    img = nib.load(path)
    names = [str(n) for n in img.dataobj.minc_file._dim_names]
    order = [names.index(n) for n in ("time", "zspace", "yspace", "xspace") if n in names]
    return np.transpose(np.asarray(img.get_fdata(), dtype=np.float32), order)


@pytest.mark.parametrize("name", ["minc1_1_scale.mnc", "small.mnc"])
def test_minc_1_and_2_are_read(name: str) -> None:
    # MINC keeps zspace, yspace, xspace (slowest first): medq's slices are its z planes
    image = load(NIBABEL_DATA / name)
    assert image.array.ndim == 3 and image.meta["format"] == "minc"
    np.testing.assert_allclose(image.array, _minc_zyx(NIBABEL_DATA / name), rtol=1e-6)


@pytest.mark.parametrize("name, volumes, shape", [("minc1_4d.mnc", 2, (10, 20, 20)),
                                                  ("minc2-4d-d.mnc", 5, (16, 16, 16))])
def test_4d_minc_volumes_are_its_time_points(name: str, volumes: int, shape: tuple) -> None:
    # nibabel keeps MINC's time axis first: it was read as the last spatial axis (20 "volumes"
    # of 20×10×2 for minc1_4d), and every volume was a slab across time
    from medq.io.volumes import volume_count

    path = NIBABEL_DATA / name
    assert volume_count(path) == volumes
    expected = _minc_zyx(path)
    for k in range(volumes):
        image = load(f"{path}@volume={k}")
        assert image.shape == shape
        np.testing.assert_allclose(image.array, expected[k], rtol=1e-6)
    with pytest.raises(UnsupportedImage, match=f"{volumes} volumes"):
        load(path)


def test_afni_series_volume_is_read(tmp_path: Path) -> None:
    """One volume of a gzipped AFNI series, through its header or its data file; every volume
    in turn unpacks the .BRIK.gz once per process (nibabel unpacks it up to each volume)."""
    from medq.io import gz

    for name in ("example4d+orig.HEAD", "example4d+orig.BRIK.gz"):
        shutil.copy(NIBABEL_DATA / name, tmp_path)
    image = load(f"{tmp_path / 'example4d+orig.HEAD'}@volume=2")
    assert image.array.shape == (25, 41, 33) and image.spacing == pytest.approx((3.0,) * 3)
    gz.unpacked.cache_clear()
    dataobj = nib.load(tmp_path / "example4d+orig.HEAD").dataobj
    for k, name in ((1, "HEAD"), (0, "BRIK.gz"), (2, "HEAD")):
        one = load(f"{tmp_path / ('example4d+orig.' + name)}@volume={k}")
        np.testing.assert_allclose(one.array, np.asarray(dataobj[..., k], np.float32).T)
    assert gz.unpacked.cache_info().misses == 1
    items = folder_items(tmp_path, [p.name for p in tmp_path.iterdir()])
    assert [Path(i.path).name for i in items] == ["example4d+orig.HEAD"]


def test_read_only_formats_are_written_as_nifti(tmp_path: Path, parrec: Path,
                                                mni_t1: MedImage) -> None:
    with pytest.raises(InvalidParameter, match=r"reads PAR/REC files but does not write them"):
        save(mni_t1, tmp_path / "out.PAR")
    inputs = [Path(f"{parrec}@volume=0"), NIBABEL_DATA / "small.mnc", tmp_path / "t1.mgz"]
    targets = output_paths(inputs, inputs, tmp_path / "out")
    assert [t.name for t in targets.values()] == [f"{PARREC}_volume0.nii.gz", "small.nii.gz",
                                                  "t1.mgz"]


def test_assess_a_parrec_dynamic_from_the_command_line(parrec: Path) -> None:
    res = run_medq("assess", f"{parrec}@volume=0", "--json", "--no-measures")
    assert res.returncode == 0, res.stderr
    (found,) = json.loads(res.stdout)
    prompts = found["prompts"]
    assert (prompts["dimension"], prompts["modality"], prompts["source"]["modality"]) == (
        "3d", "MR", "tags")
    assert 1.0 <= found["score"] <= 5.0 and len(found["slices"]) == 7


def test_ecat_is_pet_with_its_tracer_and_frame_timing() -> None:
    image = load(TINY_PET)  # nibabel's 10×10×3 frame of an FDG brain scan
    assert image.modality == "PT" and image.meta["format"] == "ecat" and sniff(TINY_PET) == "ecat"
    assert image.array.shape == (3, 10, 10)
    assert image.spacing == pytest.approx((3.125, 2.2024, 2.2024), rel=1e-4)  # cm in the file
    expected = np.asarray(nib.ecat.load(str(TINY_PET)).get_fdata())[..., 0].T
    np.testing.assert_allclose(image.array, expected, rtol=1e-6)
    assert image.physics == pytest.approx({
        "radionuclide": "F-18", "radiopharmaceutical": "FDG", "pet_units": "BQML",
        "manufacturer": "CTI/Siemens ECAT", "half_life_s": 6586.2002,
        "frame_start_ms": 1500016.0, "frame_duration_ms": 300000.0})
    res = run_medq("assess", TINY_PET, "--json")  # a 10-voxel plane is not gradable
    assert res.returncode == 2 and "10×10 pixels in-plane" in json.loads(res.stdout)[0][
        "error"]["message"]


def test_dynamic_ecat_frames_are_volumes_and_a_noisy_frame_scores_lower(tmp_path: Path) -> None:
    from medq.data.samples import load_sample
    from medq.degrade import simulate

    pet_brain = load_sample("pet_brain")
    clean = pet_brain.array.astype(np.float32)
    noisy = simulate(pet_brain, "pet_low_count", severity="severe", seed=0)[0].array
    path = ecat_pet([clean, clean, np.clip(noisy, 0, None)], tmp_path / "dynamic.v",
                    pet_brain.spacing)
    with pytest.raises(UnsupportedImage, match="4D image of 3 volumes"):
        load(path)
    second = load(f"{path}@volume=1")
    assert second.modality == "PT" and second.physics["frame_start_ms"] == 60000.0
    np.testing.assert_allclose(second.array, clean, atol=clean.max() / 30000)  # int16 steps
    res = run_medq("assess", path, "--each-volume", "--json", "--no-measures")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["path"] for r in rows] == [f"{path}@volume={k}" for k in range(3)]
    assert rows[2]["score"] < min(rows[0]["score"], rows[1]["score"]) - 0.5
    targets = output_paths([path], [Path(r["path"]) for r in rows], tmp_path / "out")
    assert [t.name for t in targets.values()] == [f"dynamic_volume{k}.nii.gz" for k in range(3)]
    series = save(second, tmp_path / "frame1")  # as DICOM: the tracer and timing go along
    back = load(series)
    assert back.modality == "PT" and back.meta["format"] == "dicom-series"
    np.testing.assert_allclose(back.array, second.array, atol=second.array.max() / 60000)
    kept = ("radiopharmaceutical", "half_life_s", "pet_units", "manufacturer", "frame_duration_ms")
    assert back.physics == pytest.approx({k: second.physics[k] for k in kept}
                                         | {"slice_thickness_mm": 2.0})
