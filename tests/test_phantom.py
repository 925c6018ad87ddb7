"""Uniform QA phantoms: recognised, measured in ROIs, and refused with their numbers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import run_medq
from medq.assess.phantom import PhantomReading, UniformPhantom, phantom_reading, plane_reading
from medq.data.samples import load_sample, load_tissue_maps
from medq.image import MedImage

SIDE, RADIUS = 384, 150.0


def _cylinder(noise: float, cupping: float = 0.0, level: float = 0.0, seed: int = 0,
              wall: float = 0.0, squash: float = 1.0) -> np.ndarray:
    """A CT water cylinder (radius 150 px in 384²; an ellipse `squash` times as tall as wide)
    in air, with `cupping` HU more at its edge than at its centre (rising as r²), a PMMA wall
    (120 HU) `wall` px thick and white noise of σ `noise` HU inside."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    r2 = ((yy / squash) ** 2 + xx ** 2) / RADIUS ** 2
    water = level + cupping * r2 + rng.normal(0.0, noise, (SIDE, SIDE))
    filled = ((yy / squash) ** 2 + xx ** 2) < (RADIUS - wall) ** 2
    return np.where(filled, water, np.where(r2 < 1, 120.0, -1000.0)).astype(np.float32)


def test_a_water_cylinder_is_read_in_its_rois_as_by_hand() -> None:
    """Centre mean and σ, and the peripheral ROIs at 0.75 r: cupping of 16 HU at the edge reads
    16·0.75² = 9 HU at the peripheral ROIs' centres (ROIs r/10 wide: within 0.5 HU)."""
    flat = plane_reading(_cylinder(5.0), "CT")
    assert flat is not None
    assert abs(flat.centre_mean) < 1.0 and flat.noise_sd == pytest.approx(5.0, rel=0.1)
    assert flat.uniformity < 1.5 and flat.within_water_limits
    assert flat.roi_radius_px == pytest.approx(15.0, rel=0.02)
    cupped = plane_reading(_cylinder(5.0, cupping=16.0), "CT")
    assert cupped is not None and cupped.uniformity == pytest.approx(9.0, abs=1.5)
    assert not cupped.within_water_limits  # beyond ACR's ± 5 HU
    shifted = plane_reading(_cylinder(3.0, level=12.0), "CT")
    assert shifted is not None and not shifted.within_water_limits  # 12 HU: beyond ± 7
    assert "outside ACR's limits for water" in shifted.sentence()


def test_walls_and_ellipses_keep_the_rois_in_the_water() -> None:
    """A 15-px PMMA wall (a tenth of the radius) does not hide the phantom, and on an ellipse
    half as tall as wide every peripheral ROI still reads water, not the wall or the air."""
    for wall, squash in ((15.0, 1.0), (6.0, 0.5)):
        reading = plane_reading(_cylinder(5.0, wall=wall, squash=squash), "CT")
        assert reading is not None, (wall, squash)
        assert None not in reading.peripheral_means
        assert max(abs(m) for m in reading.peripheral_means) < 1.5, reading
        assert reading.within_water_limits


def test_a_phantom_too_small_for_peripheral_rois_is_not_judged_on_them() -> None:
    """A 24-px disc leaves no room beside the centre ROI: the peripheral means are null, the
    uniformity is not measured (nor called outside ACR's limits), and the JSON is strict (no
    NaN; a noiseless MR disc's infinite SNR is null too)."""
    yy, xx = np.mgrid[:48, :48] - 23.5
    disc = yy ** 2 + xx ** 2 < 12 ** 2
    noise = np.random.default_rng(0).normal(0, 3, disc.shape)
    reading = plane_reading(np.where(disc, noise, -1000.0), "CT")
    assert reading is not None and reading.peripheral_means == (None,) * 4
    assert reading.within_water_limits is None
    assert "uniformity not measured, centre within ACR's limits" in reading.sentence()
    json.dumps(reading.to_dict(), allow_nan=False)
    quiet = plane_reading(np.where(yy ** 2 + xx ** 2 < 14 ** 2, 500.0, 0.0), "MR")
    assert quiet is not None and quiet.to_dict()["snr"] is None
    json.dumps(quiet.to_dict(), allow_nan=False)


def test_an_mr_sphere_reads_snr_and_integral_uniformity() -> None:
    """A shaded MR disc (±20 % top to bottom) with Rician noise: SNR ≈ 500/10 and PIU
    = 100·(1 − (max − min)/(max + min)) of the five ROI means, computed here from them."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    signal = np.where(yy ** 2 + xx ** 2 < RADIUS ** 2, 500.0, 0.0) * (1 + 0.2 * yy / SIDE)
    mr = np.hypot(signal + rng.normal(0, 10, signal.shape), rng.normal(0, 10, signal.shape))
    reading = plane_reading(mr, "MR")
    assert reading is not None
    means = np.array([reading.centre_mean, *reading.peripheral_means])
    assert reading.uniformity == pytest.approx(
        100 * (1 - (means.max() - means.min()) / (means.max() + means.min())))
    assert 85 < reading.uniformity < 95  # 500·(1 ± 0.2·0.75·150/384)
    assert reading.to_dict()["snr"] == pytest.approx(50, rel=0.15)


def test_no_patient_image_is_read_as_a_phantom() -> None:
    """Every axial plane of the MNI T1, the PET brain and a skull-stripped CT brain made from
    the MNI tissue maps (its grey and white matter 12 HU apart: flat against its 1000 HU
    contrast to air), every bundled grey sample, and the held-out sources degraded severely."""
    from medq.assess.slices import input_indices
    from medq.data.sources import sources
    from medq.degrade import simulate

    for name in ("mni_t1", "pet_brain"):
        volume = load_sample(name)
        planes = [p for p in volume.array if p.max() > p.min()]
        assert len(planes) > 70
        assert not any(plane_reading(p, volume.modality) for p in planes), name
    maps = load_tissue_maps(1)  # a skull-stripped CT brain: tissue within 40 HU of water
    gm, wm, csf = (maps[k].array.astype(np.float64) for k in ("gm", "wm", "csf"))
    tissue = gm + wm + csf
    brain = np.where(tissue > 0.3, (40 * gm + 28 * wm + 8 * csf) / np.maximum(tissue, 1e-6),
                     -1000.0)
    for noise in (4.0, 40.0):
        noisy = brain + np.random.default_rng(0).normal(0, noise, brain.shape) * (tissue > 0.3)
        planes = [p for p in noisy if p.max() > -900]
        assert len(planes) > 100
        assert not any(plane_reading(p, "CT") for p in planes), noise
    for name in ("ct_small", "mr_small", "mni_t1", "pet_brain"):
        image = load_sample(name)
        assert phantom_reading(image, input_indices(image)) is None, name
    kinds = {"CT": ("ct_low_dose", "blur", "low_contrast"), "MR": ("mr_noise", "blur"),
             "PT": ("pet_low_count", "blur")}
    for source in sources("test"):
        image = source.draw(np.random.default_rng(0), "2d")
        for kind in kinds.get(image.modality, ()):
            degraded, _ = simulate(image, kind, severity="severe", seed=0)
            assert phantom_reading(degraded, [0]) is None, (source.name, kind)


def test_medq_refuses_a_phantom_with_its_numbers(tmp_path: Path) -> None:
    """`medq assess --json`: an error object (exit 2) whose `phantom` holds the ROI measures;
    `medq describe` and `medq restore` refuse it too and write nothing; the error pickles with
    its reading (it crosses from the loader processes)."""
    from medq.io import save

    path = save(MedImage(_cylinder(6.0), (0.7, 0.7), "CT"), tmp_path / "water.dcm")
    res = run_medq("assess", path, "--json")
    assert res.returncode == 2
    error = json.loads(res.stdout)[0]["error"]
    assert error["type"] == "UniformPhantom" and "noise σ 6." in error["message"]
    assert error["phantom"]["noise_sd"] == pytest.approx(6.0, rel=0.1)
    assert error["phantom"]["within_acr_water_limits"] is True
    for command in (("describe", path), ("restore", path, "-o", tmp_path / "out.dcm")):
        res = run_medq(*command)
        assert res.returncode == 2 and "uniform QA phantom" in res.stderr
    assert not (tmp_path / "out.dcm").exists()
    db, table = tmp_path / "qc.sqlite", tmp_path / "qc.csv"
    assert run_medq("qc", "run", tmp_path, "--db", db, "-w", "1").returncode == 2  # bad input
    assert run_medq("qc", "export", "--db", db, "-o", table).returncode == 0
    import csv

    with table.open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "error" and row["modality"] == "CT"  # the numbers as columns
    assert float(row["phantom_noise_sd"]) == pytest.approx(6.0, rel=0.1)
    assert row["phantom_within_acr_water_limits"] == "True"
    error = UniformPhantom("a phantom", "water.dcm", PhantomReading("CT", 0.5, 6.0,
                                                                    (1.0,) * 4, 15.0, 1))
    again = pickle.loads(pickle.dumps(error))
    assert again.reading == error.reading and again.to_dict()["phantom"]["uniformity"] == 0.5
