"""Physics degradation engine: projector, per-kind physics checks and registry-wide contracts."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.filters import threshold_otsu

from medq.data import phantoms
from medq.degrade import SEVERITIES, available, get_spec, kspace, projection, simulate
from medq.degrade.pet import pet_counts
from medq.errors import InvalidParameter, UnsupportedImage
from medq.image import MedImage

DETERMINISTIC = {"ct_sparse_view", "blur", "low_resolution", "low_contrast"}
"""Kinds that use no randomness (same output for every seed)."""


@pytest.fixture(scope="module")
def pet_slice() -> MedImage:
    """Middle axial slice of the MNI-derived PET phantom."""
    vol = phantoms.pet_brain(resolution=2)
    return MedImage(vol.array[vol.shape[0] // 2], vol.spacing[1:], "PT", "brain")


@pytest.fixture(scope="module")
def drr() -> MedImage:
    """Skull radiograph DRR at 2 mm."""
    return phantoms.radiograph_head(resolution=2)


@pytest.fixture(scope="module")
def mr_vol_slice(mni_t1: MedImage) -> MedImage:
    """One axial slice of the MNI T1 volume."""
    return MedImage(mni_t1.array[45], mni_t1.spacing[1:], "MR", "brain")


@pytest.fixture(scope="module")
def retina_small(retina: MedImage) -> MedImage:
    """The fundus photograph downsampled 4× for speed."""
    return MedImage(retina.array[::4, ::4], (4.0, 4.0), "OP", "retina")


IMAGES = {"CT": ["ct_slice"], "MR": ["mr_slice", "mr_vol_slice"], "PT": ["pet_slice"],
          "DX": ["drr"], "OP": ["retina_small"]}


def _images(kind: str, request: pytest.FixtureRequest) -> list[MedImage]:
    mods = get_spec(kind).modalities
    return [request.getfixturevalue(n) for m, names in IMAGES.items() if m in mods for n in names]


def _disk(n: int = 128, radius: float = 50, inside: float = 0.0, outside: float = -1000.0
          ) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2
    return np.where(yy ** 2 + xx ** 2 < radius ** 2, inside, outside).astype(np.float32)


# --- projector -------------------------------------------------------------------------------

def test_projector_adjoint_and_fbp_inverts() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((2, 30, 40)).astype(np.float32)
    geom = projection.geometry(x.shape, 16)
    y = rng.random((2, geom.n_views, geom.n_det)).astype(np.float32)
    lhs = float((projection.forward(x, geom) * y).sum())
    rhs = float((x * projection.back(y, geom, (30, 40))).sum())
    assert lhs == pytest.approx(rhs, rel=1e-4)
    disk = _disk(inside=1.0, outside=0.0)
    geom = projection.geometry(disk.shape)
    sino = projection.forward(disk, geom)
    assert sino[:, geom.n_det // 2].mean() == pytest.approx(100, rel=0.02)  # chord = diameter
    rec = projection.fbp(sino, geom, disk.shape)
    core = _disk(radius=40, inside=1.0, outside=0.0) > 0
    assert rec[core].mean() == pytest.approx(1.0, abs=0.01) and rec[core].std() < 0.01


def test_symmetric_and_plain_projectors_agree() -> None:
    x = np.random.default_rng(2).random((24, 24)).astype(np.float32)
    geom = projection.geometry(x.shape, 12)
    plain = projection._matrix(geom.size, geom.n_views, geom.n_det, False)
    brute = np.asarray(plain.T @ x.reshape(-1)).reshape(geom.n_views, geom.n_det)
    assert np.allclose(projection.forward(x, geom), brute, atol=1e-4)


def test_system_matrix_entries_follow_the_footprint_overlap() -> None:
    """Every entry, taken straight from its definition: the share of pixel (i, j)'s footprint
    (a box of width |cos θ| + |sin θ| centred on its projection u) falling in detector bin b."""
    for size, views, symmetric in ((9, 8, True), (10, 6, False), (37, 44, True)):
        n_det = projection.geometry((size, size), views).n_det  # bins span the diagonal
        mat = projection._matrix(size, views, n_det, symmetric).toarray()
        stored = views // 4 + 1 if symmetric else views
        assert mat.shape == (size * size, stored * n_det)
        c = (size - 1) / 2
        for k in range(stored):
            th = k * np.pi / views
            half = (abs(np.cos(th)) + abs(np.sin(th))) / 2
            for i, j in ((0, 0), (size - 1, 2), (size // 2, size // 3), (3, size - 1)):
                u = (j - c) * np.cos(th) + (i - c) * np.sin(th) + (n_det - 1) / 2
                bins = np.arange(n_det)
                share = np.clip(np.minimum(u + half, bins + 0.5) - np.maximum(u - half, bins - 0.5),
                                0, None) / (2 * half)
                got = mat[i * size + j, k * n_det:(k + 1) * n_det]
                np.testing.assert_allclose(got, share, atol=1e-6)
                assert got.sum() == pytest.approx(1.0, abs=1e-5)  # the footprint is all counted


def test_mlem_of_several_sinograms_equals_each_alone() -> None:
    rng = np.random.default_rng(3)
    act = rng.random((2, 40, 52)).astype(np.float32)
    geom = projection.geometry(act.shape)
    weights = rng.uniform(0.5, 1.0, (2, geom.n_views, geom.n_det)).astype(np.float32)
    expected = weights * projection.forward(act, geom) * 20
    counts = rng.poisson(expected).astype(np.float32)
    both = projection.mlem(np.stack([counts, expected]), geom, (40, 52), 5, weights)
    for k, sino in enumerate((counts, expected)):  # bit for bit, as the PET engine relies on
        np.testing.assert_array_equal(both[k], projection.mlem(sino, geom, (40, 52), 5, weights))


# --- CT ----------------------------------------------------------------------------------------

def test_ct_noise_scales_as_inverse_sqrt_dose(ct_slice: MedImage) -> None:
    water = MedImage(_disk(), ct_slice.spacing, "CT")
    core = _disk(radius=30, inside=1.0, outside=0.0) > 0
    spec = get_spec("ct_low_dose")

    def sigma(i0: float) -> float:
        return float(np.mean([spec.fn(water, i0, np.random.default_rng(s))[0].array[core].std()
                              for s in range(2)]))

    ratio = sigma(2e4) / sigma(2e5)
    assert ratio == pytest.approx(np.sqrt(10), rel=0.2)


def test_ct_low_dose_records_geometry(ct_slice: MedImage) -> None:
    out, rec = simulate(ct_slice, "ct_low_dose", severity="severe", seed=3)
    for key in ("I0", "n_views", "n_detectors", "electronic_noise_counts", "window",
                "detector_spacing_mm", "geometry", "recon"):
        assert key in rec.params
    assert rec.params["n_views"] == projection.default_views(128)
    assert rec.params["I0"] == rec.level == 1e3 and rec.params["electronic_noise_counts"] == 5.0
    assert rec.params["detector_spacing_mm"] == pytest.approx(ct_slice.spacing[-1])  # 0.66 mm
    assert rec.severity == "severe" and rec.level == get_spec("ct_low_dose").levels["severe"]
    assert out.meta["degradations"][-1] == rec.to_dict()
    assert out.spacing == ct_slice.spacing and out.modality == "CT"


# --- MR ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask_type", kspace.MASK_TYPES)
@pytest.mark.parametrize("r", [2.0, 4.0, 8.0])
def test_undersampling_mask(mask_type: str, r: float) -> None:
    n = 320
    cf = kspace.centre_fraction_for(r)
    mask, info = kspace.undersampling_mask(n, r, cf, mask_type, np.random.default_rng(0))
    assert mask.sum() == pytest.approx(n / r, rel=0.15)
    centre = int(round(n * cf))
    start = (n - centre + 1) // 2
    assert mask[start:start + centre].all() and info["centre_lines"] == centre


@pytest.mark.parametrize("mask_type", kspace.MASK_TYPES)
def test_undersampling_mask_whose_centre_is_every_line_keeps_them_all(mask_type: str) -> None:
    """A line or two of phase encoding, or a centre fraction of 1: the centre is the mask (the
    equispaced spacing was 0 there, and NumPy's arange divided by it)."""
    for n, cf in ((1, 0.08), (2, 1.0), (5, 1.0)):
        for seed in range(4):
            mask, info = kspace.undersampling_mask(n, 4.0, cf, mask_type,
                                                   np.random.default_rng(seed))
            assert mask.all() and info["sampled_lines"] == n


def test_aliasing_grows_with_acceleration(mr_slice: MedImage) -> None:
    ref = float(np.linalg.norm(mr_slice.array))
    for seed in (0, 1, 2):
        errs, types = [], set()
        for r in (1.3, 2.5, 6.0):
            out, rec = simulate(mr_slice, "mr_undersample", level=r, seed=seed)
            errs.append(float(np.linalg.norm(out.array - mr_slice.array)) / ref)
            assert rec.params["sampled_lines"] == pytest.approx(64 / r, abs=0.15 * 64 / r + 2)
            types.add(rec.params["mask_type"])
        assert errs[0] < errs[1] < errs[2], errs
        assert len(types) == 1


def test_rician_background_mean(mr_slice: MedImage) -> None:
    padded = np.pad(mr_slice.array, 32)
    img = MedImage(padded, mr_slice.spacing, "MR")
    out, rec = simulate(img, "mr_noise", level=0.05, seed=4)
    bg = np.ones(padded.shape, bool)
    bg[32:-32, 32:-32] = False
    assert out.array[bg].mean() == pytest.approx(rec.params["sigma"] * np.sqrt(np.pi / 2), rel=0.03)
    body = padded[padded > threshold_otsu(padded)]  # σ = level × P99 of the Otsu foreground
    assert rec.params["sigma"] == pytest.approx(0.05 * np.percentile(body, 99), rel=1e-4)


# --- PET ---------------------------------------------------------------------------------------

def test_pet_counts_are_poisson_and_total_matches(pet_slice: MedImage) -> None:
    level = 2e5
    sim = pet_counts(pet_slice.array[None], level, np.random.default_rng(5), pixel_mm=2.0)
    counts, expected = sim["counts"], sim["expected"]
    assert counts.sum() == pytest.approx(level, rel=0.01)
    busy = expected > 5
    dispersion = np.mean((counts[busy] - expected[busy]) ** 2) / np.mean(expected[busy])
    assert dispersion == pytest.approx(1.0, abs=0.05)
    assert np.all(counts == np.round(counts)) and counts.min() >= 0
    out, rec = simulate(pet_slice, "pet_low_count", level=level, seed=5)
    assert rec.params["total_counts"] == pytest.approx(level, rel=0.01)
    assert out.array.mean() == pytest.approx(pet_slice.array.mean(), rel=1e-3)


# --- radiograph --------------------------------------------------------------------------------

def test_quantum_noise_strongest_where_attenuation_high(drr: MedImage) -> None:
    out, rec = simulate(drr, "xr_quantum_noise", level=1e3, seed=6)
    err = out.array - drr.array
    dense = drr.array > np.percentile(drr.array, 90)
    thin = (drr.array > 0.2) & (drr.array < np.percentile(drr.array, 60))
    assert err[dense].std() > 2 * err[thin].std()
    assert abs(err[thin].mean()) < 0.05  # p̂ is unbiased when counts are plentiful
    assert rec.params["domain"] == "line_integral"


def test_a_radiograph_of_line_integrals_keeps_its_noise_physics_through_a_dicom_file(
        drr: MedImage, tmp_path) -> None:
    # written unmarked, the file read back was mapped onto an assumed span of p and got
    # 1.6 times the noise variance of the same radiograph held in memory
    from medq.io import load, save

    path = tmp_path / "drr.dcm"
    save(drr.with_array(drr.array.astype(np.float32)), path)
    back = load(path)
    assert np.allclose(back.array, drr.array, atol=1e-3)
    memory_out, in_memory = simulate(drr, "xr_quantum_noise", level=1e3, seed=6)
    file_out, from_file = simulate(back, "xr_quantum_noise", level=1e3, seed=6)
    assert from_file.params["domain"] == in_memory.params["domain"] == "line_integral"
    assert from_file.params["value_scale"] == 1.0
    assert (file_out.array - back.array).var() == pytest.approx(
        (memory_out.array - drr.array).var(), rel=0.05)


def test_raw_counts_in_a_file_marked_as_line_integrals_are_not_darkened_to_one_value(
        drr: MedImage) -> None:
    """A radiograph still marked as line integrals whose values cannot be (a detector's raw 12-bit
    values, 295–3795: e^−3795 lets no photon through) is mapped as one of unknown domain: its
    noisy copy keeps its anatomy (it came back as one value before)."""
    raw = drr.with_array((295.0 + drr.array / drr.array.max() * 3500.0).astype(np.float32))
    assert raw.meta.get("xr_domain") == "line_integral"
    out, rec = simulate(raw, "xr_quantum_noise", level=6e3, seed=0)
    assert rec.params["domain"] == "display"
    assert np.corrcoef(out.array.ravel(), raw.array.ravel())[0, 1] > 0.9
    assert 0 < np.std(out.array - raw.array) < 0.1 * np.ptp(raw.array)


# --- registry-wide contracts -------------------------------------------------------------------

def _error(a: MedImage, b: MedImage) -> float:
    return float(np.sqrt(np.mean((a.array - b.array) ** 2)))


@pytest.mark.parametrize("kind", available())
def test_deterministic_and_monotone(kind: str, request: pytest.FixtureRequest) -> None:
    images = _images(kind, request)
    assert images, f"no test image for {kind}"
    for image in images:
        a, _ = simulate(image, kind, severity="moderate", seed=11)
        b, _ = simulate(image, kind, severity="moderate", seed=11)
        c, _ = simulate(image, kind, severity="moderate", seed=12)
        assert np.array_equal(a.array, b.array)
        assert np.array_equal(a.array, c.array) == (kind in DETERMINISTIC)
        assert a.shape == image.shape and a.spacing == image.spacing and a.array.dtype == np.float32
        fov = min(n * s for n, s in zip(image.shape[-2:], image.spacing[-2:], strict=True))
        if kind == "mr_motion" and fov < 100:
            continue  # MR_small's 20 mm FOV: mm-scale motion saturates (translation is capped)
        errs = [_error(simulate(image, kind, severity=s, seed=11)[0], image)
                for s in SEVERITIES[1:]]
        assert 0 < errs[0] < errs[1] < errs[2], (kind, image.modality, errs)


@pytest.mark.parametrize("kind", available())
def test_spec_levels_grade_consistently(kind: str) -> None:
    spec = get_spec(kind)
    assert spec.finding in ("noise", "blur", "low_resolution", "aliasing", "motion", "ghosting",
                            "spike", "bias_field", "streak", "low_contrast", "illumination")
    for sev in SEVERITIES[1:]:
        assert spec.severity(spec.level_for(sev)) == sev
    assert spec.description and spec.fn.__doc__ and spec.unit
    low, high = spec.domain  # every level the engine draws (severity 0 … 3.2) is defined
    assert all(low <= spec.level_at(v) <= high for v in np.linspace(0.0, 3.2, 33))


@pytest.mark.parametrize("kind", ["mr_undersample", "mr_motion", "mr_bias_field", "blur",
                                  "low_resolution", "mr_noise"])
def test_volumes(kind: str, mni_t1: MedImage) -> None:
    crop = MedImage(mni_t1.array[40:43, 20:84, 16:80], mni_t1.spacing, "MR", "brain")
    out, rec = simulate(crop, kind, severity="moderate", seed=7)
    assert out.shape == crop.shape and out.is_volume
    assert rec.severity == "moderate" and rec.params
    assert all(not np.allclose(out.array[k], crop.array[k]) for k in range(3))  # every slice


def test_tomographic_volumes(ct_slice: MedImage) -> None:
    vol = MedImage(np.stack([ct_slice.array, ct_slice.array[::-1]]), (2.0, *ct_slice.spacing),
                   "CT")
    out, rec = simulate(vol, "ct_low_dose", severity="moderate", seed=8)
    assert out.shape == vol.shape and rec.params["slicewise"] is True
    n0, n1 = out.array[0] - vol.array[0], out.array[1] - vol.array[1]
    for other in (n1, n1[::-1]):  # independent noise per slice, as drawn or aligned
        assert abs(np.corrcoef(n0.ravel(), other.ravel())[0, 1]) < 0.2
    pet = phantoms.pet_brain(resolution=2)
    crop = MedImage(pet.array[44:47], pet.spacing, "PT", "brain")
    out, rec = simulate(crop, "pet_low_count", severity="mild", seed=8)
    assert out.shape == crop.shape
    assert rec.params["total_counts"] == pytest.approx(3 * rec.level, rel=0.01)


def test_simulate_errors(mr_slice: MedImage, ct_slice: MedImage, retina: MedImage) -> None:
    with pytest.raises(UnsupportedImage):
        simulate(mr_slice, "ct_low_dose", severity="mild")
    with pytest.raises(UnsupportedImage):
        simulate(ct_slice, "fundus_illumination", severity="mild")
    with pytest.raises(UnsupportedImage):
        simulate(retina, "low_contrast", severity="mild")
    with pytest.raises(InvalidParameter):
        simulate(ct_slice, "no_such_kind", level=1.0)
    with pytest.raises(InvalidParameter):
        simulate(ct_slice, "blur")
    for level in (0.0, -3.0, float("nan")):  # a PSF of −3 mm was recorded as severity "none"
        with pytest.raises(InvalidParameter, match=r"positive number \(PSF FWHM in mm\)"):
            simulate(ct_slice, "blur", level=level)
    # levels a degradation is not defined for: each was applied and recorded as if it were
    # (a blank image for a contrast reduction ≥ 1, half a view "severe"), or crashed inside
    for kind, level, words in (("low_contrast", 1.5, "> 0 – 0.99"),
                               ("low_resolution", 0.5, "1 – 64"),
                               ("ct_sparse_view", 0.5, "2 – 10000"),
                               ("ct_low_dose", 1e300, "1 – 1e\\+10"),
                               ("blur", 1e300, "> 0 – 200")):
        with pytest.raises(InvalidParameter, match=f"{kind} is defined for levels {words}"):
            simulate(ct_slice, kind, level=level)
    # views whose projector would not fit in memory (9,999 views of a 256² image: 14.6 GiB)
    big = MedImage(np.full((256, 256), -500.0, np.float32), (1.0, 1.0), "CT")
    with pytest.raises(InvalidParameter, match=r"9999 views of a 256² grid would need 14.6 GiB"):
        simulate(big, "ct_sparse_view", level=9999)
    for level in ("abc", [1, 2], True):  # not a number: one typed line, not float()'s error
        with pytest.raises(InvalidParameter, match="level must be a positive number"):
            simulate(ct_slice, "blur", level=level)
    region = simulate(ct_slice.array, "blur", severity="mild", modality="CT", region="head",
                      spacing=ct_slice.spacing)[0].region  # as assess, describe, restore
    assert region == "head"
    with pytest.raises(InvalidParameter, match="seed must be a whole number ≥ 0, got -1"):
        simulate(ct_slice, "blur", severity="mild", seed=-1)


def test_record_roundtrip(ct_slice: MedImage) -> None:
    out, rec = simulate(ct_slice, "ct_sparse_view", level=60, seed=None)
    assert rec.severity == "moderate" and rec.params["n_views"] == 60
    again = type(rec).from_dict(rec.to_dict())
    assert again == rec or again.to_dict() == rec.to_dict()
    twice, _ = simulate(out, "blur", level=2.0)
    assert [d["name"] for d in twice.meta["degradations"]] == ["ct_sparse_view", "blur"]


def test_coarse_matrix_reconstructions(mr_slice: MedImage) -> None:
    """Every reconstruction of a coarser matrix keeps the band it measured and loses the rest:
    the engine's is `linear`; `kspace` keeps exactly the central 1/f of the spectrum."""
    from medq.degrade.generic import coarse_matrix

    a = mr_slice.array.astype(np.float64)
    engine = simulate(mr_slice, "low_resolution", level=3.0, seed=0)[0].array
    assert np.array_equal(coarse_matrix(mr_slice.array, 3.0), engine)
    spectrum = np.abs(np.fft.fft2(a))
    ky, kx = (np.abs(np.fft.fftfreq(n)) * n for n in a.shape)
    outer = (ky[:, None] >= a.shape[0] / 6 + 1) | (kx[None, :] >= a.shape[1] / 6 + 1)
    inner = (ky[:, None] < a.shape[0] / 6 - 1) & (kx[None, :] < a.shape[1] / 6 - 1)
    hard = np.abs(np.fft.fft2(coarse_matrix(a, 3.0, "kspace")))
    assert np.allclose(hard[inner], spectrum[inner], atol=1e-6 * spectrum.max())
    assert hard[outer].max() < 1e-8 * spectrum.max()
    # a taper rolls the band edge off: less Gibbs ringing beside the skull than the hard edge
    tapered = coarse_matrix(a, 3.0, "kspace", taper=0.5)
    ring = lambda x: float(np.abs(np.diff(x, axis=1)).mean())  # noqa: E731
    assert ring(tapered) < ring(coarse_matrix(a, 3.0, "kspace"))
    cubic = coarse_matrix(a, 3.0, "cubic")
    for out in (cubic, tapered, coarse_matrix(a, 3.0, "kspace")):
        error = float(np.abs(out - a).mean())
        assert 0.2 * np.abs(engine - a).mean() < error < 3.0 * np.abs(engine - a).mean()
    assert coarse_matrix(a, 3.0, "kspace", magnitude=True).min() >= 0.0
    with pytest.raises(ValueError, match="reconstruction"):
        coarse_matrix(a, 3.0, "nearest")


def test_motion_trajectory_rebuilds_from_the_record(mr_vol_slice: MedImage) -> None:
    from medq.degrade.mri import motion_trajectory

    out, rec = simulate(mr_vol_slice, "mr_motion", severity="moderate", seed=5)
    p, n = rec.params, mr_vol_slice.shape[-2]
    traj = motion_trajectory(n, p["onset_fraction"], np.asarray(p["amplitudes"]),
                             np.asarray(p["frequencies_cycles_per_scan"]),
                             np.asarray(p["phases_rad"]),
                             min(rec.level, p["translation_cap_mm"]), rec.level)
    assert traj.shape == (3, n)
    assert np.abs(traj[:2]).max() == pytest.approx(p["max_translation_mm"])
    assert np.all(traj[:, n // 2] == 0)  # poses relative to the k-space centre line
    still = np.linspace(0.0, 1.0, n) < p["onset_fraction"]
    moving = np.mean(np.any(traj != traj[:, :1], axis=0))  # off the pose the scan began in
    assert abs(p["fraction_lines_in_motion"] - moving) <= 1.0 / n + 1e-9  # onset line: still
    assert 0.5 <= p["fraction_lines_in_motion"] <= 0.9  # the onset is in [10 %, 50 %]
    assert still.any() and np.ptp(traj[:, still], axis=1).max() == 0  # no motion before onset
    assert np.abs(traj).max() > 0


def test_degradations_refuse_what_they_cannot_apply_with_typed_errors() -> None:
    """A fundus photograph's illumination on a volume was a broadcasting ValueError, and a blur
    at a pixel size stated a million times too small ran out of memory (38 GiB)."""
    from medq.errors import InvalidParameter, UnsupportedImage

    rng = np.random.default_rng(0)
    with pytest.raises(UnsupportedImage, match="2D photographs, not a volume"):
        simulate(rng.random((6, 40, 40)).astype(np.float32), "fundus_illumination",
                 severity="severe", modality="OP")
    with pytest.raises(InvalidParameter, match="many times the image: check the spacing"):
        simulate(rng.random((64, 64)).astype(np.float32) * 100, "blur", severity="mild",
                 spacing=1e-4, modality="MR")  # the finest pixel size medq takes
    with pytest.raises(InvalidParameter, match="outside 0.0001–10000 mm"):
        simulate(rng.random((64, 64)).astype(np.float32) * 100, "blur", severity="mild",
                 spacing=1e-9, modality="MR")
    blurred, _ = simulate(rng.random((64, 64)).astype(np.float32) * 100, "blur",
                          severity="mild", spacing=0.5, modality="MR")
    assert blurred.shape == (64, 64)
    thin, _ = simulate(rng.random((2, 64, 64)).astype(np.float32) * 100, "blur",
                       severity="severe", spacing=1.0, modality="MR")  # σ 3 px over 2 slices
    assert thin.shape == (2, 64, 64)



def test_blur_records_the_width_the_image_got_where_the_kernel_falls_short():
    """On pixels much coarser than the blur the sampled Gaussian does next to nothing; the
    record says so (`fwhm_applied_mm`), measured here as a point's second moment."""
    point = np.zeros((65, 65), np.float32)
    point[32, 32] = 1.0
    x = np.arange(65) - 32.0
    for pixel, fwhm in ((0.7, 1.5), (2.0, 1.5), (4.0, 1.5), (4.0, 3.5)):
        out, rec = simulate(point, "blur", level=fwhm, modality="PT", spacing=(pixel, pixel))
        profile = out.array[:, 32].astype(float)
        measured = 2.3548 * np.sqrt(np.sum(profile * x * x) / profile.sum()) * pixel
        assert rec.params["fwhm_mm"] == fwhm
        assert rec.params["fwhm_applied_mm"] == pytest.approx([measured] * 2, abs=2e-3)
    assert rec.params["fwhm_applied_mm"][0] < 0.7 * fwhm  # 4 mm pixels: well short


def test_a_severity_is_named_in_any_case(ct_slice) -> None:
    """`--severity Mild` was refused though `--modality pet` is taken in any case."""
    upper, rec = simulate(ct_slice, "blur", severity=" Mild ")
    lower, _ = simulate(ct_slice, "blur", severity="mild")
    assert rec.severity == "mild" and np.array_equal(upper.array, lower.array)


def test_a_volume_of_three_slices_is_degraded_without_a_colour_warning(mni_t1: MedImage) -> None:
    import warnings

    small = mni_t1.evolve(array=mni_t1.array[44:47, 50:53, 40:43])  # (3, 3, 3): RGB-like shape
    for kind in ("mr_noise", "mr_bias_field"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # skimage's "looks like that of an RGB image"
            out, _ = simulate(small, kind, severity="moderate", seed=0)
        assert out.shape == (3, 3, 3) and not np.array_equal(out.array, small.array)
    blank = mni_t1.evolve(array=mni_t1.array[88:91, 100:103, 80:83])  # the template's 0 and −0
    assert np.signbit(blank.array).any() and not blank.array.any()
    out, record = simulate(blank, "mr_noise", severity="moderate", seed=0)  # was "scale < 0"
    assert record.params["sigma"] == 0 and not np.signbit(record.params["sigma"])
    assert not out.array.any()


def test_fundus_noise_states_the_sigma_seen_at_the_retinas_brightness() -> None:
    from medq.degrade.photo import display_scale, retina_levels

    flat = np.full((200, 200, 3), 0.35, dtype=np.float32)  # a flat photograph, retina everywhere
    flat[:20, :, 1] = 0.6  # a bright optic disc: the robust maximum
    flat[:, :20] = 0.0  # a black surround, left out of both levels
    image = MedImage(flat, (1.0, 1.0), "OP", "retina")
    assert retina_levels(flat) == pytest.approx((0.35, 0.6))
    out, rec = simulate(image, "fundus_noise", level=0.05, seed=3)
    assert rec.params["sigma"] == pytest.approx(0.05 * 0.6)  # a fraction of the robust max
    flat[:20, 20:, 1] = 0.35  # one brightness: σ is stated there
    out, rec = simulate(image, "fundus_noise", level=0.05, seed=3)
    lit = out.array[:, 20:]
    assert rec.params["reference_brightness"] == pytest.approx(0.35)
    assert lit[..., 1].std() == pytest.approx(0.05 * 0.35, rel=0.12)  # correlation keeps σ
    assert rec.params["channel_gains"][2] > 1.0  # blue: amplified by the white balance
    assert lit[..., 2].std() > 1.05 * lit[..., 1].std()
    assert np.all(out.array[:, :20] <= lit.mean())  # the surround gets read noise only
    # signal-dependent on linear light: in display values the shadows are noisier
    ramp = np.repeat(np.linspace(0.15, 0.9, 200, dtype=np.float32)[None, :, None], 200, 0)
    grey = simulate(MedImage(np.repeat(ramp, 3, axis=2), (1.0, 1.0), "OP"), "fundus_noise",
                    level=0.04, seed=4)[0].array[..., 1]
    assert grey[:, :40].std(axis=0).mean() > 1.3 * grey[:, -40:].std(axis=0).mean()
    eight_bit = simulate(MedImage(flat * 255, (1.0, 1.0), "OP"), "fundus_noise", level=0.05,
                         seed=3)[0]
    assert display_scale(MedImage(flat * 255, (1.0, 1.0), "OP")) == 255.0
    assert np.allclose(eight_bit.array / 255, out.array, atol=1e-4)  # the same noise, in 8 bits
    # a grey photograph keeps its file's scale: 16 bits stated, or a float one a little over 1
    grey = np.full((64, 64), 20000.0, dtype=np.float32)
    sixteen = MedImage(grey, (1.0, 1.0), "OP", meta={"bit_depth": 16})
    assert display_scale(sixteen) == 65535.0
    noisy16 = simulate(sixteen, "fundus_noise", level=0.05, seed=1)[0].array
    assert abs(float(noisy16.mean()) - 20000) < 400 and noisy16.std() > 100
    over = np.full((64, 64), 0.5, dtype=np.float32)
    over[0, 0] = 1.02
    assert display_scale(MedImage(over, (1.0, 1.0), "OP")) == 1.0
    tiny = simulate(image, "fundus_noise", level=1e-10, seed=1)[0]  # counts beyond Poisson's
    assert np.allclose(tiny.array, image.array, atol=1e-4)
