"""medq.metrics: correlation statistics, full-reference fidelity, segmentation overlap."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from medq.errors import InvalidParameter
from medq.metrics import correlation as corr
from medq.metrics.correlation import plcc, rmse, srcc
from medq.metrics.fidelity import nrmse, psnr, ssim
from medq.metrics.overlap import dice, dice_per_label, hd95

# ----------------------------------------------------------------------------------- correlation
PRED = [1.0, 2.0, 3.0, 4.0, 5.0]
TARGET = [2.0, 1.0, 4.0, 3.0, 5.0]


def test_rank_and_linear_correlations_by_hand():
    # d = ranks differences (−1, 1, −1, 1, 0): ρ = 1 − 6·4/(5·24) = 0.8; 2 of 10 pairs
    # discordant: τ = (8 − 2)/10 = 0.6; values are their own ranks so r = ρ.
    assert corr.srcc(PRED, TARGET) == pytest.approx(0.8)
    assert corr.krcc(PRED, TARGET) == pytest.approx(0.6)
    assert corr.plcc(PRED, TARGET) == pytest.approx(0.8)
    assert corr.ldctiqac_score(PRED, TARGET) == pytest.approx(2.2)
    assert corr.rmse(PRED, TARGET) == pytest.approx(np.sqrt(4 / 5))


def test_nan_pairs_are_dropped():
    pred = [*PRED, np.nan, 7.0, np.inf]
    target = [*TARGET, 1.0, np.nan, 2.0]
    assert corr.srcc(pred, target) == pytest.approx(0.8)
    assert corr.correlation_report(pred, target)["n"] == 5


@pytest.mark.parametrize("pred,target", [
    ([1.0, 2.0], [2.0, 3.0]),                     # n < 3
    ([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]),  # constant prediction
    ([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]),  # constant target
    ([np.nan] * 5, [1.0, 2.0, 3.0, 4.0, 5.0]),     # nothing finite
    ([], []),
])
def test_degenerate_inputs_give_nan_not_errors(pred, target):
    report = corr.correlation_report(pred, target)
    for key in ("srcc", "krcc", "plcc", "plcc_logistic", "rmse_logistic", "ldctiqac"):
        assert np.isnan(report[key]), key
    assert corr.fit_logistic(pred, target) is None


def test_length_mismatch_raises():
    with pytest.raises(InvalidParameter):
        corr.srcc([1, 2, 3], [1, 2])


def test_logistic_fit_recovers_a_logistic_relation():
    x = np.linspace(-3, 3, 60)
    y = corr.logistic4(x, 5.0, 1.0, 0.5, 0.7)
    beta = corr.fit_logistic(x, y)
    assert beta is not None
    np.testing.assert_allclose(corr.logistic4(x, *beta), y, atol=1e-5)
    assert corr.plcc_logistic(x, y) == pytest.approx(1.0, abs=1e-9)
    assert corr.plcc(x, y) < 0.99
    assert corr.rmse(x, y, logistic=True) < 1e-4 < corr.rmse(x, y)


def test_decreasing_relation_maps_to_positive_plcc():
    x = np.linspace(0, 1, 40)
    y = 3.0 - 2.0 * x**3
    assert corr.plcc(x, y) < 0
    assert corr.plcc_logistic(x, y) > 0.99
    assert corr.srcc(x, y) == pytest.approx(-1.0)
    assert corr.ldctiqac_score(x, y) > 2.9


def test_logistic_never_worse_than_linear_on_noise():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.normal(size=12), rng.normal(size=12)
        assert corr.plcc_logistic(x, y) >= abs(corr.plcc(x, y)) - 1e-6
        assert corr.rmse(x, y, logistic=True) <= corr.rmse(x, y) + 1e-9


def test_logistic_fit_does_not_depend_on_the_units_of_the_scores():
    """The same scores in tiny or huge units give the same logistic PLCC and RMSE (in the
    target's units), and values near the smallest float give a number, not an exception."""
    rng = np.random.default_rng(0)
    p = np.sort(rng.normal(size=30))
    t = 1 / (1 + np.exp(-2 * p)) + rng.normal(0, 0.05, 30)
    reference = corr.plcc_logistic(p, t), corr.rmse(p, t, logistic=True)
    assert reference[0] > corr.plcc(p, t) + 0.01  # the curve is fitted, not the line
    for scale in (1e-300, 1e-12, 1e10, 1e160, 1e300):
        assert (corr.plcc_logistic(p * scale, t), corr.rmse(p * scale, t, logistic=True)) == \
            pytest.approx(reference, rel=1e-6)
        assert corr.plcc_logistic(p, t * scale) == pytest.approx(reference[0], rel=1e-6)
    tiny = corr.plcc_logistic([1e-300, 2e-300, 3e-300, 5e-300], [1, 2, 3, 4])
    assert 0.9 < tiny <= 1.0


def test_linear_fallback_reproduces_the_line():
    x = np.linspace(2, 9, 15)
    beta = corr._linear_as_logistic(1.5, -2.0, x)
    np.testing.assert_allclose(corr.logistic4(x, *beta), 1.5 * x - 2.0, rtol=1e-6, atol=1e-6)


def test_report_keys():
    report = corr.correlation_report(np.arange(10.0), np.arange(10.0) ** 2)
    assert set(report) == {"n", "srcc", "krcc", "plcc", "plcc_logistic", "rmse", "rmse_logistic",
                           "ldctiqac"}
    assert report["srcc"] == pytest.approx(1.0) and report["krcc"] == pytest.approx(1.0)


# -------------------------------------------------------------------------------------- fidelity
def test_psnr_by_hand():
    ref = np.zeros((8, 8))
    assert psnr(ref + 0.1, ref, data_range=1.0) == pytest.approx(20.0)  # 10·log10(1/0.01)
    assert psnr(ref, ref, data_range=1.0) == np.inf
    assert np.isnan(psnr(ref + 1, ref))  # ref range 0 and no data_range


def test_psnr_window_clips_and_sets_range():
    ref = np.zeros((10, 10))
    x = ref.copy()
    x[0, 0] = 1000.0  # clipped to 240 in the (−160, 240) window; R = 400
    expected = 10 * np.log10(400.0**2 / (240.0**2 / 100))
    assert psnr(x, ref, window=(-160, 240)) == pytest.approx(expected)
    with pytest.raises(InvalidParameter):
        psnr(x, ref, window=(10, 10))


def test_psnr_matches_skimage_and_ignores_nan():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 1, (32, 32))
    x = ref + rng.normal(0, 0.05, ref.shape)
    expected = peak_signal_noise_ratio(ref, x, data_range=1.0)
    assert psnr(x, ref, data_range=1.0) == pytest.approx(expected)
    x_nan = x.copy()
    x_nan[0, 0] = np.nan
    kept = np.ones(ref.shape, bool)
    kept[0, 0] = False  # the NaN pixel is left out, not read as 0
    mse = np.mean((x[kept] - ref[kept]) ** 2)
    assert psnr(x_nan, ref, data_range=1.0) == pytest.approx(10 * np.log10(1.0 / mse))
    with pytest.raises(InvalidParameter):
        psnr(x, ref[:8])


def test_ssim_2d_3d_rgb_and_small():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 1, (48, 48))
    x = ref + rng.normal(0, 0.1, ref.shape)
    expected = structural_similarity(x, ref, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert ssim(x, ref, data_range=1.0) == pytest.approx(expected)
    assert ssim(ref, ref) == pytest.approx(1.0)
    vol = rng.uniform(0, 1, (16, 24, 24))
    assert 0 < ssim(vol + rng.normal(0, 0.1, vol.shape), vol, data_range=1.0) < 1
    thin = vol[:3]
    assert ssim(thin, thin) == pytest.approx(1.0)
    noisy = thin + rng.normal(0, 0.1, thin.shape) * np.array([0.5, 1.0, 2.0])[:, None, None]
    per_slice = [structural_similarity(noisy[i], thin[i], data_range=1.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False) for i in range(3)]
    assert ssim(noisy, thin, data_range=1.0) == pytest.approx(np.mean(per_slice))
    rgb = rng.uniform(0, 1, (32, 32, 3))
    assert ssim(rgb, rgb, channel_axis=-1) == pytest.approx(1.0)
    small = rng.uniform(0, 1, (6, 6))
    assert ssim(small, small) == pytest.approx(1.0)
    assert ssim(small * 0.5, small, data_range=1.0) < 1


def test_a_volumes_ssim_does_not_jump_as_slices_are_added():
    """A stack of one plane pair has that pair's SSIM whatever its slice count under 11 (a
    uniform 3D window once made 7–10 slices read 0.04 higher than 6)."""
    rng = np.random.default_rng(1)
    ref = ndi.gaussian_filter(rng.uniform(0, 1, (40, 40)), 2)
    x = ref + rng.normal(0, 0.05, ref.shape)
    plane = ssim(x, ref, data_range=1.0)
    for n in (2, 6, 7, 8, 10):
        assert ssim(np.stack([x] * n), np.stack([ref] * n), data_range=1.0) == \
            pytest.approx(plane, rel=1e-9)


def test_steep_logistic_relations_are_fitted_not_replaced_by_the_line():
    """A steep sigmoid, whose fit leaves scipy unable to estimate the covariance, is still
    fitted (PLCC after the fit was the raw 0.956, RMSE 0.51). These five points lie on a
    logistic exactly; the single start at β4 = std(p) stopped in a local optimum (RMSE 0.045
    here, 0.20 on the CI machine), the steeper starts reach it."""
    p, t = np.array([1, 2, 3, 4, 5.0]), np.array([1, 1.1, 3, 4.9, 5])
    assert corr.plcc(p, t) < 0.96
    assert corr.plcc_logistic(p, t) > 0.99999
    assert corr.rmse(p, t, logistic=True) < 1e-6


def test_steeper_starts_do_not_fit_a_step_between_neighbours(monkeypatch):
    """On small noisy sets the steeper starts found steps between two neighbouring scores that
    raised the fitted PLCC (0.72 → 0.78 at n = 27, 0.24 → 0.50 at n = 6); they now keep what
    the single start at std(p) fits there."""
    rng = np.random.default_rng(0)
    sets = [(p, p + rng.normal(0, 0.5, n)) for n in (6, 10, 27) for _ in range(15)
            for p in [rng.uniform(0, 1, n)]]
    several = [corr.plcc_logistic(p, t) for p, t in sets]
    monkeypatch.setattr(corr, "INIT_WIDTHS", (1.0,))
    single = [corr.plcc_logistic(p, t) for p, t in sets]
    assert np.allclose(several, single, atol=0.02)  # one set of 6 gains 0.013, no step


def test_nrmse():
    rng = np.random.default_rng(0)
    ref = rng.uniform(1, 2, (16, 16))
    x = ref + rng.normal(0, 0.1, ref.shape)
    assert nrmse(x, ref) == pytest.approx(normalized_root_mse(ref, x))
    rmse = np.sqrt(np.mean((x - ref) ** 2))
    assert nrmse(x, ref, "range") == pytest.approx(rmse / np.ptp(ref))
    assert nrmse(x, ref, "mean") == pytest.approx(rmse / ref.mean())
    with pytest.raises(InvalidParameter):
        nrmse(x, ref, "max")


# --------------------------------------------------------------------------------------- overlap
def test_dice_binary_by_hand():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True  # 16 pixels
    b[4:8, 2:6] = True  # 16 pixels, 8 shared
    assert dice(a, b) == pytest.approx(2 * 8 / 32)
    assert dice(a, a) == 1.0


def test_dice_multilabel_mean_over_present_labels():
    p = np.array([0, 1, 1, 2, 2, 0, 3])
    t = np.array([0, 1, 0, 2, 2, 2, 0])
    per = dice_per_label(p, t)
    assert per == {1: pytest.approx(2 / 3), 2: pytest.approx(0.8), 3: 0.0}
    assert dice(p, t) == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)
    assert dice(p, t, labels=[2]) == pytest.approx(0.8)


def test_empty_mask_conventions():
    empty = np.zeros((6, 6), bool)
    full = empty.copy()
    full[2, 2] = True
    assert dice(empty, empty) == 1.0 and hd95(empty, empty) == 0.0
    assert dice(full, empty) == 0.0 and hd95(full, empty) == np.inf
    assert hd95(empty, full) == np.inf


def test_hd95_single_voxels_with_spacing():
    a = np.zeros((10, 12), bool)
    b = np.zeros((10, 12), bool)
    a[5, 5], b[5, 8] = True, True
    assert hd95(a, b) == pytest.approx(3.0)
    assert hd95(a, b, spacing=(1.0, 2.0)) == pytest.approx(6.0)
    assert hd95(a, b, spacing=(2.0, 1.0)) == pytest.approx(3.0)
    with pytest.raises(InvalidParameter):
        hd95(a, b, spacing=(1.0,))


def _brute_hd95(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...]) -> float:
    from scipy import ndimage as ndi

    def surface(m):
        return np.argwhere(m & ~ndi.binary_erosion(m, border_value=0)) * np.asarray(spacing)

    sa, sb = surface(a), surface(b)
    d = np.sqrt(((sa[:, None, :] - sb[None, :, :]) ** 2).sum(-1))
    return max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))


def test_hd95_matches_brute_force_in_3d():
    zz, yy, xx = np.mgrid[:16, :20, :20]
    a = (zz - 8) ** 2 + (yy - 10) ** 2 + (xx - 10) ** 2 < 30
    b = (zz - 7) ** 2 / 2 + (yy - 11) ** 2 + (xx - 9) ** 2 < 40
    spacing = (2.5, 0.8, 0.8)
    assert hd95(a, b, spacing) == pytest.approx(_brute_hd95(a, b, spacing))
    assert hd95(a, a, spacing) == 0.0


def test_hd95_label_selects_one_structure():
    p = np.zeros((12, 12), int)
    t = np.zeros((12, 12), int)
    p[2:5, 2:5], t[2:5, 2:5] = 1, 1
    p[8, 8], t[8, 10] = 2, 2
    assert hd95(p, t, label=1) == 0.0
    assert hd95(p, t, label=2) == pytest.approx(2.0)
    assert hd95(p, t) > 0  # non-zero union includes label 2's offset


def test_dice_is_symmetric():
    rng = np.random.default_rng(3)
    for a, b in itertools.pairwise(rng.integers(0, 3, (4, 9, 9))):
        assert dice(a, b) == pytest.approx(dice(b, a))


def test_vectorised_spearman_of_the_intervals_equals_scipys_with_ties():
    from scipy.stats import spearmanr

    from medq.metrics.uncertainty import _spearman

    rng = np.random.default_rng(3)
    t = rng.integers(1, 6, (5, 40)).astype(float)  # many ties, as reference scores have
    p = t + rng.normal(0, 1.5, t.shape)
    p[0, :10] = 2.0
    expected = [spearmanr(p[i], t[i])[0] for i in range(5)]
    assert _spearman(p, t) == pytest.approx(expected, abs=1e-12)


def test_srcc_interval_holds_the_estimate_narrows_with_items_and_repeats():
    from medq.metrics.uncertainty import srcc_interval

    rng = np.random.default_rng(0)
    t = rng.uniform(1, 5, 800)
    p = t + rng.normal(0, 1.0, 800)
    small, large = srcc_interval(p[:50], t[:50]), srcc_interval(p, t)
    assert small[0] < corr.srcc(p[:50], t[:50]) < small[1]
    assert large[0] < corr.srcc(p, t) < large[1]
    # the width falls about as 1/√n: 16× the items, about a quarter of the width
    ratio = (large[1] - large[0]) / (small[1] - small[0])
    assert 0.15 < ratio < 0.4
    assert srcc_interval(p, t) == large  # the same seed, the same interval
    assert srcc_interval(p, t, seed=1) != large
    narrow = srcc_interval(p, t, level=0.5)
    assert large[0] < narrow[0] < narrow[1] < large[1]


def test_srcc_gain_interval_is_paired():
    """A model with less noise than another is better beyond doubt even where each SRCC's own
    interval overlaps the other's; a model against itself gains exactly nothing."""
    from medq.metrics.uncertainty import srcc_gain_interval, srcc_interval

    rng = np.random.default_rng(1)
    t = rng.uniform(1, 5, 300)
    shared = rng.normal(0, 1.0, 300)
    a = t + shared
    b = t + shared + rng.normal(0, 0.5, 300)
    ia, ib = srcc_interval(a, t), srcc_interval(b, t)
    assert ia[0] < ib[1]  # the two intervals overlap …
    low, high = srcc_gain_interval(a, b, t)
    assert 0 < low < corr.srcc(a, t) - corr.srcc(b, t) < high  # … but the paired gain is sure
    assert srcc_gain_interval(a, a, t) == (0.0, 0.0)
    c = t + rng.normal(0, 1.0, 300)  # as good as a, in distribution
    low, high = srcc_gain_interval(a, c, t)
    assert low < 0 < high


def test_mean_interval_matches_the_normal_approximation():
    from medq.metrics.uncertainty import mean_interval

    rng = np.random.default_rng(2)
    v = rng.integers(3, 9, 400).astype(float)  # totals /8, as the description metrics give
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    low, high = mean_interval(v)
    assert low == pytest.approx(v.mean() - half, abs=0.01)
    assert high == pytest.approx(v.mean() + half, abs=0.01)
    assert high - low == pytest.approx(2 * half, rel=0.05)  # a 90 % interval is 16 % narrower
    assert mean_interval([7.0, 7.0, 7.0]) == (7.0, 7.0)


def test_intervals_drop_nan_and_give_nan_where_undefined():
    from medq.metrics.uncertainty import mean_interval, srcc_gain_interval, srcc_interval

    rng = np.random.default_rng(4)
    t = rng.uniform(1, 5, 60)
    p = t + rng.normal(0, 1, 60)
    with_nan = np.append(p, np.nan), np.append(t, 3.0)
    assert srcc_interval(*with_nan) == srcc_interval(p, t)
    assert all(np.isnan(srcc_interval([1.0, 2.0], [1.0, 2.0])))
    assert all(np.isnan(srcc_interval(p, np.full(60, 3.0))))  # a constant reference
    assert all(np.isnan(srcc_gain_interval(p, np.full(60, 2.0), t)))
    assert all(np.isnan(mean_interval([5.0])))
    with pytest.raises(InvalidParameter):
        srcc_interval(p, t[:-1])
    with pytest.raises(InvalidParameter):
        srcc_interval(p, t, level=1.5)


def test_three_or_four_items_get_the_straight_line_not_a_crash():
    """A subset of 3 held-out images (a small `--scores` fine-tune) made curve_fit raise a
    TypeError after training: with no more points than the logistic's 4 parameters the fit is
    the least-squares line."""
    from scipy.stats import spearmanr

    from medq.metrics.correlation import fit_logistic, logistic4
    from medq.train.evaluate import subset_metrics

    for pred, target in (([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]), ([1.0, 2.0, 3.0, 4.0],
                                                               [1.5, 1.0, 3.5, 4.0])):
        beta = fit_logistic(pred, target)
        slope, intercept = np.polyfit(pred, target, 1)
        assert logistic4(np.array(pred), *beta) == pytest.approx(
            slope * np.array(pred) + intercept, abs=1e-6)
        assert subset_metrics(pred, target)["srcc"] == pytest.approx(
            spearmanr(pred, target)[0])


@pytest.mark.parametrize("call, words", [
    (lambda: srcc(np.array([1 + 1j, 2, 3, 4]), [1, 2, 3, 4]), "complex values"),
    (lambda: srcc(["a", "b", "c"], [1, 2, 3]), "expected numbers"),
    (lambda: srcc([[1, 2], [3]], [1, 2, 3]), "not an array of numbers"),
    (lambda: plcc(None, [1, 2, 3]), "got None"),
    (lambda: psnr("a", "b"), "image: expected numbers"),
    (lambda: ssim(np.ones((8, 8)) + 1j, np.ones((8, 8))), "image: complex values"),
    (lambda: ssim(np.eye(16), np.eye(16), channel_axis=5), "channel_axis 5 is not an axis"),
    (lambda: psnr(np.eye(16), np.eye(16), window=(0.2,)), "window must be two numbers"),
    (lambda: psnr(np.eye(16), np.eye(16), window=(0, np.inf)), "window must be finite"),
    (lambda: ssim(np.eye(16), np.eye(16), window=(-np.inf, np.inf)), "window must be finite"),
    (lambda: psnr(np.eye(16), np.eye(16), mask=np.ones((3, 3))), "mask shape \\(3, 3\\)"),
    (lambda: psnr(np.eye(16), np.eye(16), data_range=[1, 2]), "data_range must be one number"),
])
def test_what_is_not_numbers_is_refused_in_one_typed_line(call, words):
    # each gave a bare ValueError/TypeError/IndexError from NumPy or skimage, or (complex) a
    # value computed on the real part alone
    with pytest.raises(InvalidParameter, match=words):
        call()


def test_huge_finite_values_and_tensors_with_grad_are_measured():
    # the squares overflowed: PSNR nan, SSIM an OverflowError, RMSE inf
    import torch

    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 1, (64, 64))
    x = ref + rng.normal(0, 0.05, ref.shape)
    assert psnr(x * 1e300, ref * 1e300) == pytest.approx(psnr(x, ref), rel=1e-12)
    assert ssim(x * 1e300, ref * 1e300) == pytest.approx(ssim(x, ref), rel=1e-9)
    assert nrmse(x * 1e300, ref * 1e300) == pytest.approx(nrmse(x, ref), rel=1e-12)
    assert psnr(x * 1e300, ref * 1e300, data_range=2e300) == pytest.approx(
        psnr(x, ref, data_range=2.0), rel=1e-12)
    assert rmse([1e300, 2e300, 3e300, -1e300], [1, 2, 3.5, 0]) == pytest.approx(
        np.sqrt(3.75) * 1e300, rel=1e-12)
    graded = torch.tensor([1.0, 2, 3, 4], requires_grad=True)
    assert srcc(graded, [1, 3, 2, 4]) == pytest.approx(0.8)


def test_correlations_refuse_a_table_where_one_value_per_item_is_meant() -> None:
    with pytest.raises(InvalidParameter, match=r"shape \(3, 2\); give one value per item"):
        srcc(np.arange(6.0).reshape(3, 2), np.arange(6.0))
    assert srcc(np.arange(6.0)[:, None], np.arange(6.0)[None]) == pytest.approx(1.0)


def test_the_metrics_are_named_and_imported_on_first_use() -> None:
    # the metric modules load when a metric is first used (SciPy's statistics cost 0.39 s);
    # help() and dir() still list every metric
    import subprocess
    import sys

    import medq.metrics as metrics

    code = ("import sys, medq.metrics.values\n"
            "print(sorted(m for m in sys.modules if m.startswith('medq.metrics')))")
    loads = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120)
    assert loads.stdout.strip() == "['medq.metrics', 'medq.metrics.values']", loads.stderr
    assert sorted(metrics._HOMES) == sorted(metrics.__all__)  # two lists kept by hand
    assert {"psnr", "srcc", "dice"} <= set(dir(metrics)) - set(vars(metrics))  # not yet loaded
    for name in metrics.__all__:
        assert callable(getattr(metrics, name)) and getattr(metrics, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = metrics.nope
