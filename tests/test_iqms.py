"""Classical IQMs and body masks: hand-computed values on synthetic arrays, real-image checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from medq.assess import artifacts, iqms, measures
from medq.assess.inu import inu_range
from medq.assess.masks import (
    air_mask,
    anatomy_mask,
    background_mask,
    body_and_anatomy,
    foreground_mask,
)
from medq.errors import InvalidImage, InvalidParameter


def _two_level(shape: tuple[int, int] = (20, 20)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left half alternates 9/11 (μ 10, σ 1), right half 19/21 (μ 20, σ 1)."""
    y, x = np.indices(shape)
    checker = np.where((y + x) % 2 == 0, -1.0, 1.0)
    left = x < shape[1] // 2
    img = np.where(left, 10.0, 20.0) + checker
    return img, left, ~left


def _mr_phantom(rng: np.random.Generator, n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Textured ellipse (≈100) in the middle 40 % of x, on Rayleigh air (σ = 3)."""
    y, x = np.indices((n, n))
    obj = ((y - n / 2) / (0.35 * n)) ** 2 + ((x - n / 2) / (0.2 * n)) ** 2 < 1
    texture = ndi.gaussian_filter(rng.normal(0, 20, (n, n)), 2)
    air = np.hypot(rng.normal(0, 3, (n, n)), rng.normal(0, 3, (n, n)))
    return np.where(obj, 100 + texture, 0) + air, obj


# ------------------------------------------------------------------------ hand-computed values
def test_cnr_cjv_fber_snr_by_hand():
    img, a, b = _two_level()
    assert iqms.cnr(img, a, b) == pytest.approx(10 / np.sqrt(2))
    assert iqms.cnr(img, a, b, noise_sigma=np.sqrt(98.0)) == pytest.approx(1.0)
    assert iqms.cjv(img, b, a) == pytest.approx(2 / 10)
    # mean energy: (81 + 121)/2 = 101 vs (361 + 441)/2 = 401
    assert iqms.fber(img, a, b) == pytest.approx(101 / 401)
    assert iqms.snr(img, a, sigma=2.0) == pytest.approx(5.0)
    n = int(a.sum())
    assert iqms.snr_tissue(img, a) == pytest.approx(10 / np.sqrt(n / (n - 1)))
    # median WM = 20 (19/21 in equal numbers → 20), P99.95 of the image ≈ 21
    assert iqms.wm2max(img, b) == pytest.approx(20 / np.percentile(img, 99.95))
    big, _, right = _two_level((100, 100))
    big[0, 0] = 1000.0  # one hot pixel in 10,000: beyond P99.95, so it is not the maximum read
    assert iqms.wm2max(big, right) == pytest.approx(20 / 21)


def test_snr_dietrich_by_hand():
    img, fg, bg = _two_level()
    img = np.where(fg, 100.0, img - 20.0)  # fg constant 100; bg alternates −1/+1: σ_bg = 1
    assert iqms.snr_dietrich(img, fg, bg) == pytest.approx(100 * np.sqrt((4 - np.pi) / 2))


def test_efc_constant_is_maximum_and_delta_is_zero():
    const = np.full((16, 16), 7.0)
    # Σ (x/B) ln(x/B) of a constant image equals E_max = −√n·ln√n, so EFC = 1.
    assert iqms.efc(const) == pytest.approx(1.0)
    delta = np.zeros((16, 16))
    delta[8, 8] = 5.0
    assert iqms.efc(delta) == pytest.approx(0.0, abs=1e-12)
    spread = ndi.gaussian_filter(delta, 2)
    assert 0 < iqms.efc(spread) < 1
    # negative values are shifted to ≥ 0 (offset = −min) or by the given offset
    assert iqms.efc(const - 100.0, offset=100.0) == pytest.approx(1.0)
    assert np.isnan(iqms.efc(np.ones(1).reshape(1, 1)))


def test_clipping_and_dynamic_range_by_hand():
    img = np.linspace(0, 1, 100).reshape(10, 10)
    img.flat[-10:] = 1.0
    # 1 pixel at 0 and 10 pixels at 1 (within 0.1 % of the range)
    assert iqms.clipping_fraction(img, value_range=(0, 1)) == pytest.approx(0.11)
    assert iqms.clipping_fraction(np.full((4, 4), 3.0)) == 1.0
    ramp = np.arange(1001, dtype=float).reshape(1, 1001)
    assert iqms.dynamic_range(ramp) == pytest.approx(990.0)
    assert iqms.dynamic_range(ramp, value_range=(0, 2000)) == pytest.approx(0.495)


def test_noise_estimators_recover_known_sigma_on_flat_images():
    rng = np.random.default_rng(0)
    for sigma in (2.0, 5.0, 20.0):
        img = 100.0 + rng.normal(0, sigma, (128, 128))
        assert iqms.noise_sigma_wavelet(img) == pytest.approx(sigma, rel=0.1)
        assert iqms.noise_sigma_flat(img) == pytest.approx(sigma, rel=0.1)
    vol = 50.0 + rng.normal(0, 4.0, (6, 64, 64))
    vol[:, :, :32] += 300.0  # a step edge must not bias either estimator
    mask = np.ones(vol.shape, bool)
    assert iqms.noise_sigma_wavelet(vol, mask) == pytest.approx(4.0, rel=0.1)
    assert iqms.noise_sigma_flat(vol, mask) == pytest.approx(4.0, rel=0.1)
    assert np.isnan(iqms.noise_sigma_wavelet(vol, np.zeros(vol.shape, bool)))


def test_haar_diagonal_ignores_ramps():
    y, x = np.indices((8, 8), dtype=float)
    np.testing.assert_allclose(iqms.haar_diagonal(3 * x + 2 * y + 1), 0.0, atol=1e-12)


def test_haar_details_split_directions_and_keep_white_noise_sigma():
    y, x = np.indices((8, 8), dtype=float)
    lh, hl, hh = iqms.haar_details(5 * x)  # varies across columns only
    np.testing.assert_allclose(lh, 0.0, atol=1e-12)
    np.testing.assert_allclose(hl, -5.0)  # (p − q + r − s) / 2 with q = p + 5, s = r + 5
    lh, hl, hh = iqms.haar_details(5 * y)  # varies across rows only
    np.testing.assert_allclose(hl, 0.0, atol=1e-12)
    np.testing.assert_allclose(lh, -5.0)
    np.testing.assert_array_equal(iqms.haar_details(x * y)[2], iqms.haar_diagonal(x * y))
    noise = np.random.default_rng(1).normal(0, 3.0, (2, 200, 200))
    assert all(d.shape == (2, 199, 199) for d in iqms.haar_details(noise))
    for detail in iqms.haar_details(noise[0]):  # unit-norm filters: σ kept
        assert detail.std() == pytest.approx(3.0, rel=0.03)


def test_inner_blocks_are_the_two_by_two_blocks_inside_the_mask():
    mask = np.ones((5, 5), bool)
    mask[2, 2] = False
    inner = iqms.inner_blocks(mask)
    assert inner.shape == (4, 4)
    # the four blocks that hold (2, 2) are out, all others in
    assert not inner[1:3, 1:3].any() and inner.sum() == 12
    assert not iqms.inner_blocks(np.zeros((3, 6, 6), bool)).any()


# ------------------------------------------------------------------------------ sensitivity
def test_sharpness_falls_with_blur_on_real_ct(ct_slice):
    img = ct_slice.array
    fg = foreground_mask(img, "CT")
    blurred = [img] + [ndi.gaussian_filter(img, s) for s in (0.5, 1.0, 2.0, 3.0)]
    sharp = [iqms.sharpness(b, fg) for b in blurred]
    lap = [iqms.laplacian_variance(b, fg) for b in blurred]
    blur = [iqms.blur(b) for b in blurred]
    assert all(np.diff(sharp) < 0) and all(np.diff(lap) < 0) and all(np.diff(blur) > 0)
    assert iqms.sharpness(3 * img + 5, fg) == pytest.approx(sharp[0])


def _add_streaks(img: np.ndarray, amplitude: float, n_lines: int = 12) -> np.ndarray:
    """Thin straight lines through the centre at evenly spread angles, alternating sign."""
    from skimage.draw import line

    out = img.copy()
    cy, cx = (s // 2 for s in img.shape)
    r = min(img.shape) // 2 - 1
    for k in range(n_lines):
        t = np.pi * k / n_lines + 0.1
        rr, cc = line(int(cy - r * np.sin(t)), int(cx - r * np.cos(t)),
                      int(cy + r * np.sin(t)), int(cx + r * np.cos(t)))
        out[rr, cc] += amplitude * (-1) ** k
    return out


def test_streak_index_rises_with_streak_lines(ct_slice):
    img = ct_slice.array.astype(np.float64)
    values = [artifacts.streak_index(_add_streaks(img, amp)) for amp in (0, 120, 240)]
    assert values[0] >= 1
    assert values[1] > 1.15 * values[0] and values[2] > values[1]


def test_measured_streak_index_is_taken_on_a_256_view(ct_slice):
    from medq.assess.artifacts import STREAK_VIEW
    from medq.assess.filters import shrink
    from medq.assess.measures import compute_measures

    big = ndi.zoom(ct_slice.array.astype(np.float64), 4, order=1)  # 512², like most CT
    values = []
    for amp in (0, 120, 240):
        streaked = _add_streaks(big, amp)
        measured = compute_measures(streaked, "CT")["streak_index"]
        assert measured == pytest.approx(artifacts.streak_index(shrink(streaked, STREAK_VIEW)))
        values.append(measured)
    assert values[1] > 1.15 * values[0] and values[2] > values[1]


def test_wide_gaussian_is_scipys(ct_slice):
    from medq.assess.filters import MATRIX_SIDE, wide_gaussian

    a = ct_slice.array.astype(np.float64)[:, :-3]
    tall = np.tile(a, (MATRIX_SIDE // a.shape[0] + 1, 1))  # the FFT path of larger planes
    assert max(tall.shape) > MATRIX_SIDE >= max(a.shape)
    thin = tall[:, :9]  # the FFT path with a kernel wider than the plane (padding reflected again)
    for x, sigma in ((a, 20.48), (a, 2.0), (a[:40, :9], 20.48), (tall, 20.48), (thin, 48.0)):
        assert np.allclose(wide_gaussian(x, sigma), ndi.gaussian_filter(x, sigma),
                           rtol=0, atol=1e-9 * np.abs(x).max())


def test_power_spectrum_and_autocorrelation_are_numpys(ct_slice):
    from medq.assess.filters import power_spectrum
    from medq.assess.plane_signal import autocorrelation_peaks

    x = ct_slice.array.astype(np.float64)[:, :-3] - ct_slice.array.mean()
    power = np.abs(np.fft.fft2(x)) ** 2
    assert np.allclose(power_spectrum(x), power, rtol=1e-9, atol=1e-9 * power.max())
    ac = np.real(np.fft.ifft2(np.abs(np.fft.fft2(x - x.mean())) ** 2))
    rows, cols = ac[:, 0] / ac[0, 0], ac[0, :] / ac[0, 0]
    best = max(rows[x.shape[0] // 8:x.shape[0] // 2 + 1].max(),
               cols[x.shape[1] // 8:x.shape[1] // 2 + 1].max())
    half = max(rows[x.shape[0] // 2], cols[x.shape[1] // 2])
    assert np.allclose(autocorrelation_peaks(x), (best, half), rtol=1e-6)


def test_fast_median_filter_is_scipys_exactly(ct_slice, mr_abdomen_slice):
    from medq.assess.filters import median_filter

    for image in (ct_slice, mr_abdomen_slice):
        a = image.array.astype(np.float64)[:, :-3]  # a non-square crop: edges on every side
        for x in (a, a.astype(np.float32), np.round(a / 200)):  # float32 as the streak index; ties
            for size in (3, 5, 7, 9):  # 3–7 by selection network, 9 by partition
                assert np.array_equal(median_filter(x, size), ndi.median_filter(x, size=size))
    holed = ct_slice.array.astype(np.float64)
    holed[40:44, 50] = np.inf  # a non-finite plane takes the partition path, as SciPy orders it
    assert np.array_equal(median_filter(holed, 5), ndi.median_filter(holed, size=5))
    with pytest.raises(ValueError, match="odd"):
        median_filter(ct_slice.array, 4)


def test_selection_networks_give_the_ranks_they_promise():
    from medq.assess.sorting import run_network, selection_network

    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 7, 13, 29):
        wanted = tuple(sorted({0, n // 2, n - 1}))
        values = rng.integers(0, 4, (n, 500)).astype(np.float64)  # 500 draws, many ties
        out = run_network(selection_network(n, wanted), list(values))
        ranked = np.sort(values, axis=0)
        assert all(np.array_equal(out[r], ranked[r]) for r in wanted)
    full = selection_network(25, tuple(range(25)))  # a whole sort, pruned to the median: fewer
    assert len(selection_network(25, (12,))) < len(full)


def test_binary_morphology_is_scipys_exactly(ct_slice, mr_abdomen_slice, mni_t1):
    from medq.assess import morphology as mo
    from medq.assess.masks import _threshold_mask

    square, cross = ndi.generate_binary_structure(2, 2), ndi.generate_binary_structure(2, 1)
    volume = _threshold_mask(mni_t1.array[::12], "MR", None)  # (z, y, x): in-plane only
    masks = [_threshold_mask(ct_slice.array, "CT", None)[:, :-3],  # edges on every side
             _threshold_mask(mr_abdomen_slice.array, "MR", None), volume,
             np.random.default_rng(0).random((23, 9)) < 0.6, np.ones((5, 4), bool)]
    for m in masks:
        s, c = (square, cross) if m.ndim == 2 else (square[None], cross[None])
        for r in (1, 2, 3):
            assert np.array_equal(mo.erode_square(m, r), ndi.binary_erosion(m, s, iterations=r))
            assert np.array_equal(mo.dilate_square(m, r), ndi.binary_dilation(m, s, iterations=r))
            assert np.array_equal(mo.erode_cross(m, r), ndi.binary_erosion(m, c, iterations=r))
            assert np.array_equal(mo.dilate_cross(m, r), ndi.binary_dilation(m, c, iterations=r))
        assert np.array_equal(mo.erode_square(m, 1, border=True),
                              ndi.binary_erosion(m, s, border_value=1))
        assert np.array_equal(mo.fill_holes(m), ndi.binary_fill_holes(m))
        assert np.array_equal(mo.fill_holes(~m), ndi.binary_fill_holes(~m))
    assert mo.fill_holes(masks[1]).sum() > masks[1].sum()  # the bowel gas inside the abdomen
    with pytest.raises(ValueError, match="one iteration"):
        mo.erode_square(masks[0], 2, border=True)


def test_streak_index_rises_with_fewer_views():
    from skimage.data import shepp_logan_phantom
    from skimage.transform import iradon, radon, resize

    phantom = resize(shepp_logan_phantom(), (128, 128)) * 1000
    values = []
    for views in (180, 15):
        theta = np.linspace(0, 180, views, endpoint=False)
        values.append(artifacts.streak_index(iradon(radon(phantom, theta), theta) - 1000))
    assert values[1] > 2 * values[0]


def test_streak_index_is_scale_free_on_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, (96, 96))
    assert artifacts.streak_index(noise) == pytest.approx(artifacts.streak_index(50 * noise + 7))
    assert artifacts.streak_index(noise) < 12


def test_ghosting_ratio_and_qi1_rise_with_phase_encode_ghost():
    rng = np.random.default_rng(0)
    img, obj = _mr_phantom(rng)
    ghost = img + 0.1 * np.roll(np.where(obj, img, 0), 30, axis=0)  # faint copy along y
    clean_y = artifacts.ghosting_ratio(img, obj, pe_axis=-2)
    ghost_y = artifacts.ghosting_ratio(ghost, obj, pe_axis=-2)
    assert abs(clean_y) < 0.01 and ghost_y > 0.02
    assert artifacts.ghosting_ratio(ghost, obj) == pytest.approx(ghost_y)  # max over axes
    assert artifacts.ghosting_ratio(ghost, obj, pe_axis=-1) < ghost_y
    bg = background_mask(obj)
    assert artifacts.qi_1(ghost, bg) > artifacts.qi_1(img, bg) + 0.05
    assert iqms.fber(ghost, obj, bg) < iqms.fber(img, obj, bg)
    full = np.ones_like(obj)
    assert np.isnan(artifacts.ghosting_ratio(img, full, pe_axis=-2))  # no clean background


def test_spike_contrast_finds_one_kspace_sample_over_a_speckled_spectrum():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 32) ** 2 + (xx - 30) ** 2) / 300.0)
    noisy = blob + rng.normal(0, 0.01, blob.shape)
    # white noise: the largest excess of ~3,500 exponential bins over their 7×7 median
    assert 1.5 < artifacts.spike_contrast(noisy) < 4.0
    # one integer frequency (10, 7) cycles: all its power in two bins, ~1e4 × the noise floor
    spiked = noisy + 0.05 * np.cos(2 * np.pi * (10 * yy + 7 * xx) / 64)
    assert artifacts.spike_contrast(spiked) > 8.0
    # on an axis or within 0.06 cycles/pixel of the centre it is not read as a spike
    for ky, kx in ((0, 9), (2, 2)):
        near = noisy + 0.05 * np.cos(2 * np.pi * (ky * yy + kx * xx) / 64)
        assert artifacts.spike_contrast(near) < 4.0
    volume = np.stack([noisy, spiked, spiked])
    assert artifacts.spike_contrast(volume) > artifacts.spike_contrast(noisy) + 2.0
    with pytest.raises(InvalidImage):
        artifacts.spike_contrast(np.zeros(5))


def test_spike_contrast_rises_with_the_engines_spike_on_a_real_mr(mr_abdomen_slice):
    from medq.degrade import simulate

    clean = artifacts.spike_contrast(mr_abdomen_slice.array)
    spiked = simulate(mr_abdomen_slice, "mr_spike", level=0.15, seed=0)[0].array
    noisy = simulate(mr_abdomen_slice, "mr_noise", level=0.06, seed=0)[0].array
    assert clean < 3.5 and artifacts.spike_contrast(noisy) < 3.5
    assert artifacts.spike_contrast(spiked) > clean + 1.5
    assert measures.compute_measures(spiked, "MR")["spike_contrast"] == pytest.approx(
        artifacts.spike_contrast(spiked))


def test_inu_range_recovers_a_known_smooth_field():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128] / 128.0
    body = (yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.16
    stripes = 100.0 + 20.0 * (np.sin(40 * yy) > 0)  # anatomy: two tissues in bands
    tissue = np.where(body, stripes, 0.0) + rng.normal(0, 1, body.shape)
    flat = inu_range(tissue, body)
    field = 1.0 + 0.4 * (xx - 0.5)  # a linear 40 % ramp across the image
    ramped = inu_range(tissue * field, body)
    truth = np.percentile(field[body], 95) - np.percentile(field[body], 5)
    truth /= np.median(field[body])
    assert flat < 0.05 and ramped == pytest.approx(truth, abs=0.06)
    assert np.isnan(inu_range(tissue, np.zeros_like(body)))  # no body: undefined


def test_inu_range_follows_the_engines_bias_field_on_the_mni_volume(mni_t1):
    from medq.degrade import simulate

    fg = foreground_mask(mni_t1.array, "MR")
    ranges = [measures.compute_measures(mni_t1.array, "MR")["inu_range"]]
    for level in (0.3, 0.6):
        biased = simulate(mni_t1, "mr_bias_field", level=level, seed=0)[0].array
        ranges.append(inu_range(biased, fg))
    assert ranges[0] < 0.1 and ranges[0] < ranges[1] < ranges[2]


def test_ghosting_ratio_on_real_mr_slice(mni_t1):
    s = mni_t1.array[45].astype(np.float64)
    fg = foreground_mask(s, "MR")
    ghost = s + 0.05 * np.roll(s, s.shape[0] // 2, axis=0)  # N/2 ghost along y
    assert artifacts.ghosting_ratio(ghost, fg, -2) > artifacts.ghosting_ratio(s, fg, -2) + 0.02


def test_ghosting_ratio_leaves_the_arms_beside_a_real_abdomen_alone(mr_abdomen_slice):
    """The arms beside pydicom's abdominal MR lie in the ghost band of the body: read as ghosts
    they gave a clean scan a ratio of 0.08; kept out as tissue, the clean scan reads near 0 and
    an engine ghost still raises it."""
    from medq.degrade import get_spec, simulate

    image = mr_abdomen_slice
    a = image.array.astype(np.float64)
    body, every = foreground_mask(a, "MR"), anatomy_mask(a, "MR")
    assert every.sum() > body.sum()  # the arms are separate pieces of anatomy
    assert artifacts.ghosting_ratio(a, body) > 0.06
    clean = artifacts.ghosting_ratio(a, body, tissue=every)
    assert abs(clean) < 0.03
    level = get_spec("mr_ghosting").level_at(2.8)
    ghosted = simulate(image, "mr_ghosting", level=level, seed=0)[0].array.astype(np.float64)
    body_g = foreground_mask(ghosted, "MR")
    every_g = anatomy_mask(ghosted, "MR")
    assert artifacts.ghosting_ratio(ghosted, body_g, tissue=every_g) > clean + 0.03


# ------------------------------------------------------------------------- real images, masks
def test_foreground_masks_on_real_images(ct_slice, mr_slice, mni_t1, retina):
    ct = foreground_mask(ct_slice.array, "CT")
    assert 0.6 < ct.mean() < 0.95 and ct[64, 64]
    assert not ct[0, 0] and not ct[0, -1]  # lung corners are air
    assert 0.3 < foreground_mask(mr_slice.array, "MR").mean() <= 1.0
    brain = foreground_mask(mni_t1.array, "MR")
    assert brain.shape == mni_t1.shape and 0.1 < brain.mean() < 0.5
    assert not brain[0].any() and brain[mni_t1.shape[0] // 2].mean() > 0.3
    eye = foreground_mask(retina.array, "OP")
    assert eye.shape == retina.shape[:2] and 0.5 < eye.mean() < 0.95
    assert not eye[0, 0] and eye[eye.shape[0] // 2, eye.shape[1] // 2]


def test_foreground_mask_edge_cases():
    assert foreground_mask(np.full((8, 8), 5.0)).all()
    with pytest.raises(InvalidImage):
        foreground_mask(np.full((8, 8), np.nan))
    img = np.zeros((32, 32))
    img[8:24, 8:24] = 100.0
    img[14:18, 14:18] = 0.0  # hole is filled
    img[1, 1] = 100.0  # speck is removed
    mask = foreground_mask(img)
    assert mask[16, 16] and not mask[1, 1] and mask.sum() == 256


def test_noise_sigma_grows_with_added_noise(ct_slice):
    rng = np.random.default_rng(0)
    img = ct_slice.array.astype(np.float64)
    fg = foreground_mask(img, "CT")
    s0, f0 = iqms.noise_sigma_wavelet(img, fg), iqms.noise_sigma_flat(img, fg)
    previous = (s0, f0)
    for sigma in (10.0, 20.0, 40.0):
        noisy = img + rng.normal(0, sigma, img.shape)
        s, f = iqms.noise_sigma_wavelet(noisy, fg), iqms.noise_sigma_flat(noisy, fg)
        assert s == pytest.approx(np.hypot(s0, sigma), rel=0.15)
        assert f == pytest.approx(np.hypot(f0, sigma), rel=0.15)
        assert s > previous[0] and f > previous[1]
        previous = (s, f)


# ----------------------------------------------------------------------------- compute_measures
COMMON = {"foreground_fraction", "noise_sigma", "noise_sigma_flat", "snr", "efc", "fber",
          "sharpness", "laplacian_variance", "blur", "dynamic_range", "clipping_fraction"}


def test_compute_measures_sets_per_modality(ct_slice, mr_slice, retina):
    ct = measures.compute_measures(ct_slice.array, "CT")
    assert set(ct) == COMMON | {"streak_index"}
    mr = measures.compute_measures(mr_slice.array, "MR")
    assert set(mr) == COMMON | {"snr_dietrich", "ghosting_ratio", "qi_1", "spike_contrast",
                                "inu_range"}
    op = measures.compute_measures(retina.array, "OP")
    assert set(op) == COMMON and 0 < op["dynamic_range"] <= 1
    # MEASURE_NAMES (one `medq qc export` column each) lists exactly what they give
    assert set(measures.MEASURE_NAMES) == set(ct) | set(mr) | set(op)
    assert len(measures.MEASURE_NAMES) == len(set(measures.MEASURE_NAMES))
    for result in (ct, op):
        assert all(isinstance(v, float) and np.isfinite(v) for v in result.values())
    np.testing.assert_equal(measures.compute_measures(mr_slice.array, "mri"), mr)  # an alias
    with pytest.raises(InvalidParameter, match="unknown modality 'BANANA'"):
        measures.compute_measures(mr_slice.array, "banana")  # not the generic measures


def test_ct_snr_is_signal_above_air_so_water_and_fat_bodies_read_positive_and_fall_with_noise():
    """A CT body of water (0 HU) or fat (−100 HU) has an SNR above 0 that falls as its noise
    grows (in HU the water body read 0 and the fat one negative)."""
    y, x = np.indices((160, 160))
    rng = np.random.default_rng(0)
    for hu in (-100.0, 0.0, 40.0):
        body = np.where((y - 80) ** 2 + (x - 80) ** 2 < 60 ** 2, hu, -1000.0)
        quiet, noisy = (measures.compute_measures(body + rng.normal(0, s, body.shape), "CT")["snr"]
                        for s in (5.0, 20.0))
        assert quiet > noisy > 0


def test_compute_measures_with_tissue_masks_on_volume(mni_t1):
    vol = mni_t1.array
    brain = foreground_mask(vol, "MR")
    wm = brain & (vol > 0.7)
    gm = brain & (vol > 0.35) & (vol < 0.6)
    out = measures.compute_measures(vol, "MR", mask=brain, tissue_masks={"wm": wm, "gm": gm})
    assert {"cnr", "cjv", "wm2max", "snr_wm", "snr_gm"} <= set(out)
    assert out["cnr"] > 1 and 0 < out["cjv"] < 1 and 0.6 < out["wm2max"] <= 1
    a = vol.astype(np.float64)
    assert out["snr_wm"] == pytest.approx(iqms.snr_tissue(a, wm))
    assert out["snr_gm"] == pytest.approx(iqms.snr_tissue(a, gm))
    air = a[air_mask(brain, brain)]  # the cnr's noise: σ of the air outside the head
    assert out["cnr"] == pytest.approx(iqms.cnr(a, wm, gm, float(air.std())))
    assert out["cjv"] == pytest.approx(iqms.cjv(a, wm, gm))


def test_compute_measures_on_a_ct_volume_reads_the_streak_index_on_its_salient_slices(ct_slice):
    """A CT volume gets the median of its salient slices' streak indices: a stack of one real
    slice gives that slice's value, a one-slice volume too; a plane with no body gives nan."""
    plane = ct_slice.array.astype(np.float64)
    own = measures.compute_measures(plane, "CT")["streak_index"]
    assert np.isfinite(own)
    for volume in (np.stack([plane] * 5), plane[None]):
        assert measures.compute_measures(volume, "CT")["streak_index"] == pytest.approx(own)
    empty = np.full((3, 64, 64), -1000.0)
    assert np.isnan(measures.compute_measures(empty, "CT")["streak_index"])


def test_measures_of_a_plane_one_pixel_wide_are_nan_not_an_error():
    """No gradient is defined on a side of one pixel: sharpness is nan, the set is complete."""
    rng = np.random.default_rng(0)
    for shape in ((1, 32), (32, 1), (1, 1), (2, 1, 32)):
        a = rng.random(shape) + 1
        assert np.isnan(iqms.sharpness(a))
        for modality in ("MR", "CT", "DX"):
            assert np.isnan(measures.compute_measures(a, modality)["sharpness"])


def test_complex_values_and_a_bad_value_range_are_refused_by_name(mr_slice):
    """Complex pixels were cast to their real part with only NumPy's warning; a value range of
    one number raised IndexError."""
    from medq.errors import InvalidParameter

    a = np.asarray(mr_slice.array, dtype=np.float64)
    with pytest.raises(InvalidImage, match="complex"):
        iqms.efc(a + 1j * a)
    with pytest.raises(InvalidImage, match="complex"):
        measures.compute_measures(a * (1 + 1j), "MR")
    for bad in ((1,), (1.0, 0.0), (0.0, np.inf), "ab"):
        with pytest.raises(InvalidParameter, match="value_range"):
            measures.compute_measures(a, "MR", value_range=bad)


def test_compute_measures_tolerates_nan_and_rejects_all_nan(ct_slice):
    img = ct_slice.array.copy()
    img[:5, :5] = np.nan
    out = measures.compute_measures(img, "CT")
    filled = measures.compute_measures(np.where(np.isnan(img), np.nanmedian(img), img), "CT")
    # NaN pixels read as the median (EFC and FBER also leave them out of the background)
    same = [k for k in out if k not in ("efc", "fber")]
    assert {k: out[k] for k in same} == pytest.approx({k: filled[k] for k in same}, rel=1e-9)
    assert np.isfinite(out["efc"]) and np.isfinite(out["fber"])
    with pytest.raises(InvalidImage):
        measures.compute_measures(np.full((8, 8), np.nan), "CT")


def test_ct_padding_and_air_below_minus_1024_keep_the_energy_measures_defined(ct_slice):
    """A CT stored with padding outside the reconstruction circle (−2000) and air noise below
    −1024 HU: EFC is defined (before: nan) and the padding counts as air, as in the evidence."""
    yy, xx = np.mgrid[:128, :128]
    outside = np.hypot(yy - 63.5, xx - 63.5) > 66
    air = ct_slice.array.astype(np.float64)
    air[outside] = -1024.0
    air[:3, 60:68] = -1060.0  # air noise below −1024 HU, inside the circle
    padded = air.copy()
    padded[outside] = -2000.0
    as_air, with_padding = (measures.compute_measures(a, "CT") for a in (air, padded))
    assert 0 < with_padding["efc"] < 1
    assert with_padding["efc"] == pytest.approx(as_air["efc"], rel=1e-12)
    assert with_padding["fber"] == pytest.approx(as_air["fber"], rel=1e-12)
    from medq.assess.evidence import evidence_pass
    from medq.image import MedImage

    (streak,) = evidence_pass(MedImage(padded, ct_slice.spacing, "CT", "unknown")).streaks
    assert with_padding["streak_index"] == streak  # what the evidence pass hands `medq assess`
    assert iqms.efc(air, offset=iqms.CT_OFFSET_HU) == pytest.approx(
        iqms.efc(np.maximum(air, -1024.0), offset=iqms.CT_OFFSET_HU), rel=1e-12)


def test_assess_takes_a_ct_planes_streak_index_once_for_evidence_and_measures(ct_slice):
    """The loader takes each CT plane's streak index once (`evidence_pass`)
    for its evidence row and its classical measures; both equal what they are alone, and both
    read the padding outside the reconstruction circle as air."""
    from medq.assess.evidence import evidence_pass, evidence_rows, plane_streak
    from medq.assess.loading import load_measured
    from medq.assess.measures import compute_measures

    a = ct_slice.array.astype(np.float64)
    yy, xx = np.mgrid[:a.shape[0], :a.shape[1]] - (np.array(a.shape) / 2)[:, None, None]
    padded = np.where(np.hypot(yy, xx) > 0.45 * a.shape[0], -3024.0, a)
    image = ct_slice.evolve(array=padded)
    loaded = load_measured(image, None, measures=True)
    assert np.array_equal(loaded.rows, evidence_rows(image, [0]))
    assert evidence_pass(image, [0]).streaks == [pytest.approx(plane_streak(padded), rel=1e-12)]
    alone = compute_measures(padded, "CT")["streak_index"]
    assert loaded.measures["streak_index"] == pytest.approx(alone, rel=1e-9)
    as_air = compute_measures(np.where(padded < -1500, -1024.0, padded), "CT")["streak_index"]
    assert alone == pytest.approx(as_air, rel=1e-9)


def test_background_measures_read_the_air_not_the_arms(mr_abdomen_slice):
    """FBER, Dietrich's SNR and QI1 read the air: the arms beside pydicom's abdominal MR are
    anatomy, not background (counted as air they gave this clean scan an SNR of 2.7 and an FBER
    of 20), so the measures match those of the same scan with the arms replaced by air."""
    a = mr_abdomen_slice.array.astype(np.float64)
    body, every = foreground_mask(a, "MR"), anatomy_mask(a, "MR")
    arms = ndi.binary_dilation(every & ~body, iterations=3)
    air = a[background_mask(every, 3)]
    painted = a.copy()
    painted[arms] = np.random.default_rng(0).choice(air, int(arms.sum()))
    got, without = measures.compute_measures(a, "MR"), measures.compute_measures(painted, "MR")
    for name in ("fber", "snr_dietrich", "qi_1"):
        assert got[name] == pytest.approx(without[name], rel=0.15), name
    assert got["snr_dietrich"] > 10.0 and got["fber"] > 100.0
    assert 0.01 < got["qi_1"] < 0.2  # some artefactual air (0.046), not none


def test_body_and_anatomy_is_both_masks_at_once(mr_abdomen_slice, mni_t1):
    """One labelling gives the body and every piece of anatomy, as the two masks do (2D, 3D)."""
    for array in (mr_abdomen_slice.array, mni_t1.array):
        body, every = body_and_anatomy(array, "MR")
        assert (body == foreground_mask(array, "MR")).all()
        assert (every == anatomy_mask(array, "MR")).all()
        assert every.sum() > body.sum()  # the arms; the MNI head's detached pieces


def test_evidence_features_do_not_depend_on_a_tiny_or_huge_intensity_scale(mr_abdomen_slice):
    """A plane in SI units (an ADC map's 1e-9) or scaled by 1e12 reads as the same plane: the
    features' small-value floors (1e-4 for the detail σ of `detail_anisotropy`, …) hit it at
    its own scale, so a real MR at 1e-9 read as clean anisotropy 0 and a flat spectrum."""
    from medq.assess.evidence import SLICE_NAMES, slice_features

    base = np.asarray(mr_abdomen_slice.array, dtype=np.float64)
    ref = slice_features(base, "MR")
    for scale in (2.0 ** -30, 2.0 ** 40):  # powers of two: the features agree to rounding
        got = slice_features(base * scale, "MR")
        assert all(np.isclose(got[k], ref[k], rtol=1e-6, atol=1e-9) for k in SLICE_NAMES), \
            scale
