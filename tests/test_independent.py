"""The independent simulators of `benchmarks/independent.py` do what their docstrings claim, on
the held-out real images the benchmark degrades (its numbers mean nothing otherwise)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import independent as ind  # noqa: E402


@pytest.fixture(scope="module")
def images() -> dict:
    """The benchmark's held-out images (pydicom's CT and MR files, the skull radiograph)."""
    from medq.train.evaluate import held_out_images

    return held_out_images()


def _diff_sd(a, b, where: np.ndarray | None = None) -> float:
    """Standard deviation of the change between two images (within a mask, if given)."""
    change = np.asarray(a.array, float) - np.asarray(b.array, float)
    return float(np.std(change if where is None else change[where]))


def test_ct_sinogram_noise_adds_unbiased_noise_that_grows_as_photons_fall(images) -> None:
    ct = images["ct_small"]
    outs = [ind.ct_sinogram_noise(ct, photons, seed=0) for photons in (2e5, 1.5e4)]
    for out in outs:
        assert out.shape == ct.shape and out.array.dtype == np.float32
        assert out.spacing == ct.spacing and out.modality == "CT"
    mild, severe = (_diff_sd(o, ct) for o in outs)
    # quantum noise: σ ∝ 1/√photons, a 13× dose cut gives about 3.6× the noise
    assert 5.0 < mild < 60.0 and 2.5 < severe / mild < 5.0, (mild, severe)
    body = ct.array > -200
    shift = float(np.mean(outs[1].array[body] - ct.array[body]))
    assert abs(shift) < 0.1 * severe  # noise, not a change of the HU scale
    assert np.array_equal(ind.ct_sinogram_noise(ct, 1.5e4, seed=0).array, outs[1].array)


def test_monai_undersampling_loses_detail_as_acceleration_grows(images) -> None:
    mr = images["mr_abdomen"]
    outs = [ind.monai_undersample(mr, r, seed=0) for r in (2.0, 6.0)]
    errors = [_diff_sd(o, mr) for o in outs]
    assert all(o.shape == mr.shape and np.all(o.array >= 0) for o in outs)  # magnitude images
    assert 0.0 < errors[0] < errors[1], errors
    # the zero-filled image keeps the low frequencies: far closer to the original than to zero
    assert errors[1] < 0.5 * float(np.std(mr.array))


def test_monai_rician_noise_is_relative_to_the_image_sd_and_lifts_the_background(images) -> None:
    mr = images["mr_abdomen"]
    out = ind.monai_rician(mr, 0.1, seed=0)
    background = mr.array < np.percentile(mr.array, 10)
    sd = float(np.std(mr.array))
    assert out.array[background].mean() > mr.array[background].mean() + 0.05 * sd  # Rician floor
    tissue = mr.array > np.percentile(mr.array, 75)  # bright tissue: nearly Gaussian, σ = 0.1·SD
    assert 0.07 * sd < _diff_sd(out, mr, tissue) < 0.13 * sd


def test_tio_motion_keeps_the_kspace_centre_and_grows_with_amplitude(images) -> None:
    mr = images["mr_abdomen"]
    errors = [_diff_sd(ind.tio_motion(mr, a, seed=0), mr) for a in (1.0, 5.0, 8.0)]
    assert errors[0] < errors[1] < errors[2], errors
    mild = ind.tio_motion(mr, 1.0, seed=0).array
    assert abs(float(mild.mean() / mr.array.mean()) - 1.0) < 0.01  # no global shift or rescale
    assert [ind.motion_onset(a) for a in (1.0, 8.0, 20.0)] == pytest.approx([0.85, 0.52, 0.52])


def test_tio_ghosting_spike_and_bias_field_make_what_they_name(images) -> None:
    """Ghosts grow with their intensity and keep the mean (the k-space centre is kept); a spike
    adds one plane wave of about `intensity` × the image mean; a bias field multiplies the image
    by a smooth positive field whose span grows with the strength."""
    mr = images["mr_small"]
    ghosts = [ind.tio_ghosting(mr, i, seed=0) for i in (0.15, 0.5)]
    assert 0.0 < _diff_sd(ghosts[0], mr) < _diff_sd(ghosts[1], mr)
    assert all(abs(float(g.array.mean() / mr.array.mean()) - 1.0) < 1e-3 for g in ghosts)

    spiked = ind.tio_spike(mr, 0.1, seed=0)
    change = np.fft.fft2(np.asarray(spiked.array, float) - np.asarray(mr.array, float))
    power = np.abs(change) ** 2
    assert np.sort(power.ravel())[-2:].sum() > 0.95 * power.sum()  # one cosine: ±k
    amplitude = 2.0 * np.abs(change).max() / change.size
    assert amplitude == pytest.approx(0.1 * float(mr.array.mean()), rel=0.1)

    spans = []
    for strength in (0.1, 0.5):
        ratio = np.log(ind.tio_bias_field(mr, strength, seed=0).array / mr.array)
        rows, cols = np.mgrid[:64, :64] / 63.0 - 0.5
        design = np.stack([rows ** i * cols ** j for i in range(4) for j in range(4 - i)], -1)
        fit = np.linalg.lstsq(design.reshape(-1, design.shape[-1]), ratio.ravel(), rcond=None)
        assert fit[1][0] < 1e-6 * ratio.size  # exactly a cubic in the plane (log of the field)
        spans.append(float(np.ptp(ratio)))
    assert 0.0 < spans[0] < spans[1]


def test_tio_blur_sigma_is_in_millimetres(images) -> None:
    xr = images["xr_head"]
    for spacing in (0.5, 1.0):
        impulse = np.zeros((65, 65), dtype=np.float32)
        impulse[32, 32] = 1.0
        plane = xr.evolve(array=impulse, spacing=(spacing, spacing))
        out = ind.tio_blur(plane, 1.0, seed=0).array.astype(float)
        profile = out[32] / out[32].sum()
        x = (np.arange(65) - 32) * spacing
        assert float(np.sqrt(np.sum(profile * x * x))) == pytest.approx(1.0, rel=0.1)


def test_xr_poisson_noise_grows_as_photons_fall_and_keeps_the_range(images) -> None:
    xr = images["xr_head"]
    mild, severe = (ind.xr_poisson(xr, n, seed=0) for n in (3e4, 1e3))
    assert 0.0 < _diff_sd(mild, xr) < _diff_sd(severe, xr)
    assert abs(float(mild.array.mean() - xr.array.mean())) < 0.01 * float(np.ptp(xr.array))


def test_every_held_out_image_gets_a_clean_first_ladder_of_five(images) -> None:
    ladders = {(n, k): ladder for n, k, ladder in ind.independent_ladders(
        {n: images[n] for n in ("mr_small", "xr_head")}, cache=False)}
    assert set(ladders) == {("mr_small", k) for k in ind.LADDERS["MR"]} | {
        ("xr_head", k) for k in ind.LADDERS["XR"]}
    for (name, _), ladder in ladders.items():
        assert len(ladder) == 5 and ladder[0] is images[name]
        assert all(rung.shape == images[name].shape for rung in ladder)
        clean = ladder[0].array.astype(np.float64)
        change = [float(np.mean(np.abs(rung.array - clean))) for rung in ladder]
        assert change[0] == 0 and all(np.diff(change) > 0), (name, change)  # each rung worse


def test_ladders_are_cached_and_read_back_unchanged(images, tmp_path, monkeypatch) -> None:
    """A second pass reads the rungs from the cache folder (no simulator runs) and gives the
    same pixels; another seed is another ladder."""
    monkeypatch.setenv("MEDQ_CACHE_DIR", str(tmp_path))
    xr = {"xr_head": images["xr_head"]}
    first = {k: [r.array for r in ladder] for _, k, ladder in ind.independent_ladders(xr)}
    assert len(list((tmp_path / "independent").glob("xr_head-*.npz"))) == len(ind.LADDERS["XR"])

    def refuse(*_: object) -> None:
        raise AssertionError("simulated again instead of read from the cache")

    monkeypatch.setattr(ind, "LADDERS", {m: {k: (refuse, v[1]) for k, v in kinds.items()}
                                         for m, kinds in ind.LADDERS.items()})
    again = {k: ladder for _, k, ladder in ind.independent_ladders(xr)}
    for kind, arrays in first.items():
        assert all(np.array_equal(a, r.array) for a, r in zip(arrays, again[kind], strict=True))
        assert again[kind][1].spacing == images["xr_head"].spacing
    with pytest.raises(AssertionError, match="simulated again"):
        next(ind.independent_ladders(xr, seed=1))


def test_own_images_give_one_plane_each_and_skip_what_no_simulator_serves(tmp_path, capsys
                                                                         ) -> None:
    """A user's files: a DICOM slice as it is, a NIfTI volume as its middle salient slice (2D
    spacing), and one line on stderr for a colour photograph, a PET volume and a missing file,
    which are left out."""
    from medq.data.samples import load_sample
    from medq.io import save

    files = [save(load_sample(n), tmp_path / f"{n}{ext}") for n, ext in (
        ("ct_small", ".dcm"), ("mni_t1", ".nii.gz"), ("retina", ".png"), ("pet_brain", ".nii.gz"))]
    found = ind.own_images([str(f) for f in files] + [str(tmp_path / "missing.dcm")])
    assert list(found) == ["ct_small.dcm", "mni_t1.nii.gz"]
    assert found["ct_small.dcm"].shape == load_sample("ct_small").shape
    plane = found["mni_t1.nii.gz"]
    assert plane.array.ndim == 2 and len(plane.spacing) == 2 and plane.modality == "MR"
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("medq: error: ") for e in errors)
    assert "retina.png" in errors[0] and "pet_brain.nii.gz" in errors[1]
    assert "missing.dcm" in errors[2]
    with pytest.raises(SystemExit) as stop:
        ind.ladder_images([str(tmp_path / "missing.dcm")])
    assert stop.value.code == 2
