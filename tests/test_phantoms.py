"""Phantoms from real data: MNI-derived PET brain and digitally reconstructed radiographs."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from medq.data import phantoms
from medq.image import MedImage


@pytest.fixture(scope="module")
def pet() -> MedImage:
    """pet_brain built with every socket connection forbidden (the templates are bundled)."""
    phantoms.mni_maps.cache_clear()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        return phantoms.pet_brain(resolution=2)


def test_pet_brain_geometry_and_meta(pet: MedImage) -> None:
    from nilearn.datasets import load_mni152_gm_template

    nx, ny, nz = load_mni152_gm_template(resolution=2).shape
    assert pet.modality == "PT" and pet.region == "brain" and pet.is_volume
    assert pet.shape == (nz, ny, nx) and pet.spacing == (2.0, 2.0, 2.0)
    assert "real" in pet.meta["derived_from"] and pet.meta["units"] == "kBq/ml"
    assert pet.array.min() >= 0 and pet.array.max() <= phantoms.GM_UPTAKE + 1e-3


def test_grey_matter_uptake_dominates(pet: MedImage) -> None:
    maps, _ = phantoms.mni_maps(2)
    gm, wm = maps["gm"] > 0.8, maps["wm"] > 0.9  # tissue-pure voxels (little partial volume)
    assert pet.array[gm].mean() > 3 * pet.array[wm].mean()
    assert pet.array[maps["csf"] > 0.9].mean() < pet.array[wm].mean()
    assert pet.array[maps["brain"] == 0].max() == 0  # no activity outside the head


def test_activity_from_tissue() -> None:
    gm = np.array([1.0, 0.0, 0.0, 0.5])
    wm = np.array([0.0, 1.0, 0.0, 0.5])
    csf = np.array([0.0, 0.0, 1.0, 0.0])
    act = phantoms.pet_activity_from_tissue(gm, wm, csf)
    assert act[0] == pytest.approx(4 * act[1]) and act[2] < act[1]
    assert act[3] == pytest.approx((act[0] + act[1]) / 2)
    rng_gm = np.ones((20, 20, 20))
    varied = phantoms.pet_activity_from_tissue(rng_gm, 0 * rng_gm, rng=np.random.default_rng(0))
    assert varied.std() > 0 and np.abs(varied / phantoms.GM_UPTAKE - 1).max() <= 0.1 + 1e-6


def _ct_phantom() -> MedImage:
    """Water cylinder (axis along z) with a bone rod, in air: (z, y, x) at 1 mm."""
    z, n = 8, 64
    yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2
    hu = np.where(yy ** 2 + xx ** 2 < 25 ** 2, 0.0, -1000.0)
    hu[(yy - 0) ** 2 + (xx - 12) ** 2 < 4 ** 2] = 1000.0
    return MedImage(np.repeat(hu[None], z, axis=0), (1.0, 1.0, 1.0), "CT", "abdomen")


def test_drr_brighter_for_longer_denser_paths() -> None:
    drr = phantoms.radiograph_from_volume(_ct_phantom(), axis="ap")
    assert drr.modality == "DX" and drr.region == "abdomen" and drr.shape == (8, 64)
    assert drr.meta["xr_domain"] == "line_integral"
    row = drr.array[4]
    centre, edge, rod, air = row[31], row[31 - 22], row[44], row[2]
    assert air == pytest.approx(0.0, abs=1e-6)
    assert centre > edge > air  # longer water path
    assert rod > centre  # bone on the path
    assert centre == pytest.approx(0.0192 * 50, rel=0.05)  # μ_water × chord in mm
    lat = phantoms.radiograph_from_volume(_ct_phantom(), axis="lat")
    assert lat.shape == (8, 64)


def test_drr_of_mr_volume_is_water_equivalent(mni_t1: MedImage) -> None:
    drr = phantoms.radiograph_from_volume(mni_t1, axis="lat")
    assert drr.shape == (mni_t1.shape[0], mni_t1.shape[1]) and drr.region == "head"
    assert drr.array.max() <= 0.0192 * mni_t1.shape[2] * 2.0 + 1e-3
    assert drr.array.max() > 1.0


def test_radiograph_head() -> None:
    drr = phantoms.radiograph_head(axis="ap", resolution=2)
    assert drr.modality == "DX" and drr.region == "head" and drr.array.min() >= 0
    assert "real" in drr.meta["derived_from"]
    a = drr.array
    assert a[0].max() == 0 or a[0].max() < 0.1 * a.max()  # air above the head
    mid = a[a.shape[0] // 2]
    inside = np.flatnonzero(mid > 0.1)
    # the skull seen tangentially at the head's edge is brighter than just outside it
    assert mid[inside].max() > 2.0 and mid[inside[0]] < mid[inside].max()
    ct = phantoms.head_pseudo_ct(resolution=2)
    assert ct.modality == "CT" and ct.array.max() == phantoms.SKULL_HU


def test_ellipsoids_painted_in_their_boxes_match_every_voxel_tested() -> None:
    """Each ellipsoid is tested inside its bounding box only: the painting must equal testing
    every voxel of the grid (rotated, off the grid, tiny, one-voxel axes)."""
    rng = np.random.default_rng(5)
    for i in range(60):
        nd = int(rng.integers(2, 4))
        shape = tuple(int(n) for n in rng.integers(1, 40, nd))
        shapes = [(rng.uniform(-1.5, 1.5, nd), rng.uniform(0.001, 1.2, nd), rng.uniform(-3, 3),
                   float(k + 1)) for k in range(4)]
        grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape],
                            indexing="ij")
        brute = np.full(shape, -1.0, dtype=np.float32)
        for centre, radii, angle, value in shapes:
            d = [g - c for g, c in zip(grids, centre, strict=True)]
            ca, sa = np.cos(angle), np.sin(angle)
            d[-2], d[-1] = ca * d[-2] + sa * d[-1], -sa * d[-2] + ca * d[-1]
            brute[sum((di / r) ** 2 for di, r in zip(d, radii, strict=True)) <= 1.0] = value
        np.testing.assert_array_equal(phantoms.paint_ellipsoids(shape, shapes, -1.0), brute,
                                      err_msg=f"case {i}, shape {shape}")
