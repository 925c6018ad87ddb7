"""Slices of a volume noisier than those around them: found on real volumes whatever made the
noise, not found where the whole volume is noisy or its noise changes slowly along it."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_medq
from medq.assess.noisy_slices import RATIO, found, noisy_slices, outliers_cell, runs_text
from medq.image import MedImage


def _rician(volume: np.ndarray, sigma: float, slices: slice, seed: int = 0) -> np.ndarray:
    """`volume` with Rician noise of `sigma` (magnitude of complex Gaussian noise) on `slices`."""
    rng = np.random.default_rng(seed)
    out = np.array(volume, dtype=np.float32, copy=True)
    part = out[slices]
    out[slices] = np.abs(part + rng.normal(0, sigma, part.shape)
                         + 1j * rng.normal(0, sigma, part.shape))
    return out


def _level(volume: np.ndarray) -> float:
    """The median of the brighter half of the voxels: a noise scale for the tests."""
    return float(np.median(volume[volume > np.percentile(volume, 60)]))


def test_a_clean_or_evenly_noisy_volume_has_no_outlying_slice(mni_t1):
    vol = np.asarray(mni_t1.array)
    clean = noisy_slices(vol, "MR")
    assert clean["slices"] == [] and clean["compared"] > 40 and not found(clean)
    assert outliers_cell(clean) == f"none of {clean['compared']} compared"
    for share in (0.02, 0.06):  # noise in every slice: a noisy volume, no noisy slices
        assert not found(noisy_slices(_rician(vol, share * _level(vol), slice(None)), "MR"))


@pytest.mark.parametrize(("slices", "share"), [(slice(40, 41), 0.06), (slice(30, 35), 0.06),
                                               (slice(50, 58), 0.1)])
def test_rician_noise_on_some_slices_names_exactly_those_slices(mni_t1, slices, share):
    vol = np.asarray(mni_t1.array)
    result = noisy_slices(_rician(vol, share * _level(vol), slices), "MR")
    expected = list(range(slices.start, slices.stop))
    assert result["slices"] == expected
    assert result["runs"] == [[expected[0], expected[-1]]]
    assert result["ratio"] >= RATIO
    assert result["sigma"] == pytest.approx(result["ratio"] * result["reference"], rel=0.01)
    assert f"{expected[0]}" in runs_text(result, result["compared"])
    assert result["spiked"]["slices"] == []  # raised noise is no spike
    assert outliers_cell(result).startswith("noisy slice")


def test_medq_s_own_mr_and_ct_noise_on_three_slices_is_found_and_not_on_all():
    """The engine's k-space noise (MR) and low-dose projection noise (CT), on a whole volume:
    nothing; copied into three of its slices: those three."""
    from medq.data import phantoms
    from medq.data.samples import load_sample
    from medq.degrade import simulate

    for image, kind in ((load_sample("mni_t1"), "mr_noise"),
                        (phantoms.head_pseudo_ct(2), "ct_low_dose")):
        degraded, _ = simulate(image, kind, severity="mild")
        assert not found(noisy_slices(degraded.array, image.modality)), kind
        mixed = np.array(image.array, dtype=np.float32, copy=True)
        z = image.shape[0] // 2
        mixed[z:z + 3] = degraded.array[z:z + 3]
        result = noisy_slices(mixed, image.modality)
        assert result["slices"] == [z, z + 1, z + 2], kind


def test_noise_that_changes_slowly_along_the_volume_is_not_an_outlier(mni_t1):
    """Noise rising steadily along the volume (as CT noise does toward the shoulders) moves
    each slice's reference with it: a rise to sixteen times its start flags nothing, where one
    reference for the whole volume flagged the last 12 slices (too gentle a rise, such as
    twice, is flagged by neither and tells nothing)."""
    vol = np.asarray(mni_t1.array, dtype=np.float32)
    rng = np.random.default_rng(3)
    sigma = 0.03 * _level(vol) * np.geomspace(1.0, 16.0, vol.shape[0])[:, None, None]
    noisy = np.abs(vol + sigma * rng.normal(size=vol.shape)
                   + 1j * sigma * rng.normal(size=vol.shape))
    assert not found(noisy_slices(noisy.astype(np.float32), "MR"))


def test_interleaved_noisy_slices_are_found_and_a_gain_change_is_not_noise(mni_t1):
    """Every other slice from a noisier pass: each of them, odd or even, and no other; a slab
    whose gain rose (noise and signal alike) or whose level is offset: none."""
    vol = np.asarray(mni_t1.array, dtype=np.float32)
    sigma = 0.02 * _level(vol)
    base = _rician(vol, sigma, slice(None), seed=1)
    for start in (0, 1):
        mixed = base.copy()
        mixed[start::2] = _rician(vol, 6 * sigma, slice(None), seed=2)[start::2]
        result = noisy_slices(mixed, "MR")
        assert result["slices"] and all(z % 2 == start for z in result["slices"])
        assert len(result["slices"]) >= 0.8 * result["compared"] / 2
    for change in (lambda a: a * 2.5, lambda a: a + 0.5 * _level(vol), lambda a: a * 0.4):
        slab = base.copy()
        slab[40:45] = change(slab[40:45])
        assert not found(noisy_slices(slab, "MR"))


def test_a_dicom_series_names_the_images_and_files_of_its_noisy_slices(tmp_path, mni_t1):
    """Slice indices follow position; a QA reader opens the images by InstanceNumber, which
    here runs against position (1 is the highest slice)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    import medq

    vol = _rician(np.asarray(mni_t1.array), 0.1 * _level(np.asarray(mni_t1.array)),
                  slice(30, 33))
    stored = np.round(vol * 1000).astype(np.uint16)
    series, folder = generate_uid(), tmp_path / "series"
    folder.mkdir()
    n = len(stored)
    for z, plane in enumerate(stored):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"f{z:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, generate_uid()
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.Modality = series, generate_uid(), "MR"
        ds.InstanceNumber = n - z
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 2.0 * z], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [2.0, 2.0], 2.0
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = plane.tobytes()
        ds.save_as(folder / f"f{z:03d}.dcm", enforce_file_format=True)
    result = medq.assess(folder).noisy_slices
    assert result["slices"] == [30, 31, 32]
    assert result["instances"] == [n - 30, n - 31, n - 32]
    assert [Path(f).name for f in result["files"]] == ["f030.dcm", "f031.dcm", "f032.dcm"]
    assert f"images {n - 32}–{n - 30};" in runs_text(result, result["compared"])


def test_a_k_space_spike_on_some_mr_slices_is_named_and_not_on_all():
    """medq's moderate and severe spikes and TorchIO's, copied into two slices of the MNI T1:
    those two are spiked; a spike in every slice, ghosting of the whole volume, a bar burnt into
    two slices or rows cut out of three (a reviewer found those read as spikes): none."""
    import sys

    from medq.data.samples import load_sample
    from medq.degrade import simulate
    from medq.describe.text import outliers_sentence, said_normal

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from independent import tio_spike

    image = load_sample("mni_t1")
    base, _ = simulate(image, "mr_noise", severity="mild")
    clean = np.asarray(base.array, dtype=np.float32)
    spiked = [simulate(base, "mr_spike", severity=s)[0].array[94:96] for s in ("moderate",
                                                                            "severe")]
    spiked.append(np.stack([tio_spike(base.evolve(array=clean[z], spacing=(1.0, 1.0)), 0.25,
                                      z).array for z in (94, 95)]))
    for degraded in spiked:
        mixed = clean.copy()
        mixed[94:96] = degraded
        result = noisy_slices(mixed, "MR")
        assert result["spiked"]["slices"] == [94, 95] and result["slices"] == []
        assert found(result) and "spike on slices 94–95" in outliers_cell(result)
    mixed[94, 50, 60] = np.inf  # a pixel that is no number does not hide the spike
    assert noisy_slices(mixed, "MR")["spiked"]["slices"] == [94, 95]
    for kind in ("mr_spike", "mr_ghosting"):
        whole = simulate(image, kind, severity="severe")[0]
        assert not found(noisy_slices(whole.array, "MR")), kind
    burnt, cut = clean.copy(), clean.copy()  # a bar burnt into two slices, rows zeroed in three
    burnt[120:122, 20:30, 40:160] = clean.max()
    cut[120:123, 100:110, :] = 0
    for edited in (burnt, cut):
        assert noisy_slices(edited, "MR")["spiked"]["slices"] == []
    text = outliers_sentence(result)
    assert text.startswith("Spike noise lays herringbone stripes over slices 94–95")
    assert said_normal(["noise", "spike", "blur"], result) == ["noise", "blur"]


def test_too_few_slices_or_a_2d_image_give_none(mni_t1):
    vol = np.asarray(mni_t1.array)
    assert noisy_slices(vol[40:46], "MR") is None
    assert noisy_slices(vol[40], "MR") is None


def test_assess_and_describe_state_the_noisy_slices_beside_the_score(tmp_path, mni_t1):
    """`medq assess --json` records them, its table and `medq describe`'s text say them; with
    --no-measures they are not read."""
    import nibabel as nib

    vol = _rician(np.asarray(mni_t1.array), 0.1 * _level(np.asarray(mni_t1.array)),
                  slice(30, 34))
    path = tmp_path / "t1_noisy_slices.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(vol, (2, 1, 0)), np.diag([2.0, 2.0, 2.0, 1.0])), path)
    out = json.loads(run_medq("assess", path, "--json").stdout)[0]
    assert out["noisy_slices"]["slices"] == [30, 31, 32, 33]
    table = run_medq("assess", path, env={"COLUMNS": "300"}).stdout
    assert "noisy slices 30–33 (4 of" in table
    text = json.loads(run_medq("describe", path, "--json").stdout)[0]
    assert "Noise is raised on slices 30–33" in text["text"]
    assert text["noisy_slices"]["runs"] == [[30, 33]]
    bare = json.loads(run_medq("assess", path, "--json", "--no-measures").stdout)[0]
    assert bare["noisy_slices"] is None


def test_qc_export_writes_the_noisy_slices_as_text_and_keeps_them_in_json():
    from medq.qc.export import item_row

    found = {"slices": [5, 6, 9], "runs": [[5, 6], [9, 9]], "ratio": 3.24, "sigma": 2.0,
             "reference": 0.6, "compared": 80}
    item = {"path": "a.nii.gz", "noisy_slices": found}
    assert item_row(item, flat=True)["noisy_slices"] == \
        "noisy slices 5–6, 9 (3 of 80 compared), up to 3.2×"
    assert item_row(item, flat=False)["noisy_slices"] == found
    assert item_row(item, flat=True)["noisy_slice_count"] == 3
    both = {**found, "spiked": {"slices": [9, 30], "runs": [[9, 9], [30, 30]], "peak": 900.0}}
    assert item_row({"path": "e", "noisy_slices": both}, flat=True)["noisy_slice_count"] == 4
    many = {**found, "slices": list(range(0, 20, 2)), "runs": [[z, z] for z in range(0, 20, 2)]}
    assert "0, 2, 4, 6, 8, 10, 12, 14, 16, 18 (10 of 80" in \
        item_row({"path": "c", "noisy_slices": many}, flat=True)["noisy_slices"]
    none = {"slices": [], "runs": [], "compared": 80}
    assert item_row({"path": "d", "noisy_slices": none}, flat=True)["noisy_slices"] == \
        "none of 80 compared"
    assert item_row({"path": "d", "noisy_slices": none}, flat=True)["noisy_slice_count"] == 0
    assert item_row({"path": "b.nii.gz"}, flat=True)["noisy_slices"] is None  # not compared
    assert item_row({"path": "b.nii.gz"}, flat=True)["noisy_slice_count"] is None


def test_an_image_made_in_memory_is_read_the_same(mni_t1):
    """A MedImage given to Python's medq.assess records the same slices as the file would."""
    import medq

    vol = _rician(np.asarray(mni_t1.array), 0.1 * _level(np.asarray(mni_t1.array)),
                  slice(60, 62))
    result = medq.assess(MedImage(vol, (2.0, 2.0, 2.0), "MR", "brain"))
    assert result.noisy_slices["slices"] == [60, 61] and "instances" not in result.noisy_slices


def test_a_volume_centred_on_zero_or_in_tiny_units_gives_finite_numbers(mni_t1):
    """A z-scored volume (its body's median near 0, whose level says nothing) with one noisy
    slice, the same volume in units of 1e-5 (ADC-like) and scaled near float32's largest value
    (its sums overflowed: no slice found, warnings printed): the slice is found, the ratio is
    finite and σ / reference gives it back."""
    vol = _rician(np.asarray(mni_t1.array), 0.02 * _level(np.asarray(mni_t1.array)),
                  slice(None), seed=4)
    vol[45] = _rician(np.asarray(mni_t1.array), 0.15 * _level(np.asarray(mni_t1.array)),
                      slice(45, 46), seed=5)[45]
    body = vol[vol > 0.1 * vol.max()]
    for array in ((vol - np.median(body)) / body.std(), vol * 1e-5, vol * (2e38 / vol.max())):
        with np.errstate(all="raise"):
            result = noisy_slices(array.astype(np.float32), "MR")
        assert result["slices"] == [45]
        assert np.isfinite(result["ratio"]) and result["reference"] > 0
        assert result["sigma"] / result["reference"] == pytest.approx(result["ratio"], rel=0.01)
