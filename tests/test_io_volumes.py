"""One volume of a 4D file (`<file>@volume=<k>`): NIfTI and NRRD series built from the MNI T1."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import run_medq
from medq.errors import InvalidParameter, MissingInput, UnsupportedImage
from medq.image import MedImage
from medq.io import load, save


def _series(mni_t1: MedImage) -> list[np.ndarray]:
    """Three distinguishable volumes in medq's (z, y, x)."""
    return [mni_t1.array, mni_t1.array * 2, mni_t1.array + 5]


@pytest.fixture()
def dwi(tmp_path: Path, mni_t1: MedImage) -> Path:
    """A 4D NIfTI of three volumes, 2 × 2.5 × 3 mm."""
    data = np.stack([v.T for v in _series(mni_t1)], axis=-1)  # (i, j, k, t)
    path = tmp_path / "dwi.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.5, 3.0, 1.0])), path)
    return path


def test_a_4d_nifti_is_refused_whole_and_read_one_volume_at_a_time(dwi: Path,
                                                                  mni_t1: MedImage) -> None:
    with pytest.raises(UnsupportedImage, match=r"4D image of 3 volumes.*@volume=<k>, k = 0 … 2"):
        load(dwi)
    one = load(f"{dwi}@volume=1")
    np.testing.assert_allclose(one.array, mni_t1.array * 2, rtol=1e-6)
    assert one.spacing == pytest.approx((3.0, 2.5, 2.0))
    assert one.source == f"{dwi}@volume=1" and (one.meta["volume"], one.meta["volumes"]) == (1, 3)
    with pytest.raises(InvalidParameter, match="volume 3 does not exist: the file has 3") as e:
        load(f"{dwi}@volume=3")
    assert e.value.message.startswith(f"{dwi}@volume=3: ")  # the input as named
    for index in ("first", "-1"):  # the file is there: the mark says what it takes
        with pytest.raises(InvalidParameter, match=f"'{index}' is not a volume number: name a "
                           "volume of dwi.nii.gz as @volume=<k>, k = 0, 1, 2"):
            load(f"{dwi}@volume={index}")
    with pytest.raises(MissingInput, match="no such file"):
        load(f"{dwi.parent / 'other.nii.gz'}@volume=first")
    written = nib.load(save(one, dwi.parent / "one.nii.gz"))  # a 3D file with the geometry
    assert written.shape == mni_t1.array.T.shape
    np.testing.assert_allclose(np.diag(written.affine)[:3], [2.0, 2.5, 3.0])


def test_a_gzipped_4d_nifti_is_unpacked_once_for_all_its_volumes(dwi: Path,
                                                                 mni_t1: MedImage) -> None:
    """Reading every volume of a gzipped series in turn unpacks the file once per process (it
    unpacked the file up to each volume again: quadratic in the volumes); a rewritten file is
    read anew, and each volume is the one nibabel reads."""
    from medq.io import gz

    gz.unpacked.cache_clear()
    series = _series(mni_t1)
    for k in (2, 0, 1, 2):
        np.testing.assert_allclose(load(f"{dwi}@volume={k}").array, series[k], rtol=1e-6)
    assert gz.unpacked.cache_info().misses == 1  # unpacked once
    first_copy = gz.unpacked(dwi)
    data = np.stack([v.T for v in series[::-1]], axis=-1)  # the same file name, new content
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.5, 3.0, 1.0])), dwi)
    np.testing.assert_allclose(load(f"{dwi}@volume=0").array, series[2], rtol=1e-6)
    assert gz.unpacked.cache_info().misses == 2
    assert first_copy.closed  # the dropped copy is closed, not left to the garbage collector
    renamed = dwi.rename(dwi.parent / "dwi.data")  # a gzipped NIfTI found by its content
    np.testing.assert_allclose(load(f"{renamed}@volume=1").array, series[1], rtol=1e-6)
    mgh = nib.MGHImage(np.stack([v.T for v in series], axis=-1).astype(np.float32), np.eye(4))
    mgh.header["tr"] = 2000.0  # a FreeSurfer series (.mgz is gzipped) that states its TR
    nib.save(mgh, dwi.parent / "bold.mgz")
    before = gz.unpacked.cache_info().misses
    for k in (0, 2, 1):
        one = load(f"{dwi.parent / 'bold.mgz'}@volume={k}")
        np.testing.assert_allclose(one.array, series[k], rtol=1e-6)
    assert gz.unpacked.cache_info().misses == before + 1
    assert (one.modality, one.physics["tr_ms"], one.meta["format"]) == ("MR", 2000.0, "mgh")


def _volume_matches(path: str, expected: np.ndarray) -> bool:
    """Whether a worker reads the volume at `path` as `expected` (medq's z, y, x)."""
    return bool(np.allclose(load(path).array, expected, rtol=1e-6))


def test_forked_workers_read_the_volumes_a_parent_unpacked_correctly(
        dwi: Path, mni_t1: MedImage) -> None:
    """A parent that read a volume of a gzipped series, then forked workers reading its volumes:
    each worker reads its own unpacked copy, and the parent's copy stays where it was (before,
    they shared the parent's file offset, so loads at once read each other's bytes: wrong
    pixels or a refused file)."""
    from medq.io import gz
    from medq.workers import worker_pool

    series = _series(mni_t1)
    load(f"{dwi}@volume=0")  # the parent's copy is made and cached
    copy = gz.unpacked(dwi)
    copy.seek(0)
    ks = [2, 1, 0, 2]
    with worker_pool(2) as pool:
        read = list(pool.map(_volume_matches, [f"{dwi}@volume={k}" for k in ks],
                             [series[k] for k in ks]))
    assert read == [True] * len(ks)
    assert copy.tell() == 0 and gz.unpacked(dwi) is copy  # untouched by the workers


def test_a_4d_nrrd_volume_keeps_the_3d_geometry(tmp_path: Path, mni_t1: MedImage) -> None:
    volumes = [sitk.GetImageFromArray(v) for v in _series(mni_t1)]
    for v in volumes:
        v.SetSpacing((2.0, 2.5, 3.0))
        v.SetOrigin((-90.0, -126.0, -72.0))
    sitk.WriteImage(sitk.JoinSeries(volumes), str(tmp_path / "fmri.nrrd"))
    from medq.io.volumes import volume_count

    assert volume_count(tmp_path / "fmri.nrrd") == 3  # from the header alone
    last = load(tmp_path / "fmri.nrrd@volume=2")
    np.testing.assert_allclose(last.array, mni_t1.array + 5, rtol=1e-6)
    assert last.spacing == pytest.approx((3.0, 2.5, 2.0))
    assert last.meta["origin"] == pytest.approx([-90.0, -126.0, -72.0])
    assert len(last.meta["direction"]) == 9
    back = sitk.ReadImage(str(save(last, tmp_path / "last.nrrd")))
    assert back.GetDimension() == 3 and back.GetOrigin() == pytest.approx((-90, -126, -72))
    from medq.io import itk

    itk._read_series.cache_clear()  # every volume in turn: the file is read once
    for k in (0, 1, 2):
        np.testing.assert_allclose(load(tmp_path / f"fmri.nrrd@volume={k}").array,
                                   _series(mni_t1)[k], rtol=1e-6)
    assert itk._read_series.cache_info().misses == 1
    sitk.WriteImage(sitk.JoinSeries(volumes[::-1]), str(tmp_path / "fmri.nrrd"))  # rewritten
    np.testing.assert_allclose(load(tmp_path / "fmri.nrrd@volume=0").array, mni_t1.array + 5,
                               rtol=1e-6)
    assert itk._read_series.cache_info().misses == 2


def test_naming_a_volume_of_what_has_none(tmp_path: Path, mni_t1: MedImage) -> None:
    save(mni_t1, tmp_path / "t1.nii.gz")
    with pytest.raises(InvalidParameter, match="not a 4D image"):
        load(tmp_path / "t1.nii.gz@volume=0")
    save(mni_t1.evolve(array=mni_t1.array[40], spacing=(2.0, 2.0)), tmp_path / "slice.png")
    with pytest.raises(InvalidParameter, match="only 4D NIfTI, MetaImage, NRRD"):
        load(tmp_path / "slice.png@volume=0")


def test_cli_assesses_and_restores_volumes_of_a_4d_file(dwi: Path) -> None:
    res = run_medq("assess", dwi, f"{dwi}@volume=0", "--json", "--no-measures")
    assert res.returncode == 2  # the whole file is refused, the volume assessed
    whole, first = json.loads(res.stdout)
    assert "@volume=<k>" in whole["error"]["message"]
    assert first["path"] == f"{dwi}@volume=0" and 1 <= first["score"] <= 5
    out = dwi.parent / "out"
    res = run_medq("restore", f"{dwi}@volume=0", f"{dwi}@volume=2", "-o", out, "--method", "tv",
                   "--json")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["dwi_volume0.nii.gz",
                                                             "dwi_volume2.nii.gz"]
    assert nib.load(out / "dwi_volume2.nii.gz").shape == nib.load(dwi).shape[:3]


def test_each_volume_of_a_series_is_an_input_and_the_noisy_one_scores_lowest(
        tmp_path: Path, mni_t1: MedImage) -> None:
    from medq.io.volumes import each_volume, volume_count

    rng = np.random.default_rng(0)
    noisy = mni_t1.array + rng.normal(0.0, 0.15 * float(np.percentile(mni_t1.array, 99)),
                                      mni_t1.array.shape).astype(np.float32)
    series = tmp_path / "bold.nii.gz"
    volumes = [mni_t1.array, noisy, mni_t1.array]
    nib.save(nib.Nifti1Image(np.stack([v.T for v in volumes], axis=-1), np.eye(4)), series)
    nrrd = tmp_path / "t1.nrrd"
    save(mni_t1, nrrd)
    assert [volume_count(p) for p in (series, nrrd, tmp_path / "none.nii")] == [3, 0, 0]
    assert each_volume([nrrd, series]) == [nrrd] + [Path(f"{series}@volume={k}") for k in range(3)]
    (info,) = json.loads(run_medq("info", series, "--json").stdout)  # described, not refused
    assert info["shape"] == [3, *mni_t1.array.shape] and info["volumes"] == 3
    res = run_medq("assess", series, "--each-volume", "--json", "--no-measures")
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)
    assert [r["path"] for r in found] == [f"{series}@volume={k}" for k in range(3)]
    scores = [r["score"] for r in found]
    assert scores[1] < min(scores[0], scores[2]) - 0.5 and scores[0] == scores[2], scores
    assert [("volume_outlier" in r) for r in found] == [False, True, False]
    assert found[1]["volume_outlier"] == {"series_median": scores[0], "volumes": 3,
                                          "below_median": round(scores[0] - scores[1], 3)}
    table = run_medq("assess", series, "--each-volume", "--no-measures")
    assert f"{series}@volume=1: {scores[0] - scores[1]:.2f} below the median" in table.stdout
