"""Salient slice selection (MedIQA): exact indices on constructed masks, edge cases, real volume."""

from __future__ import annotations

import numpy as np
import pytest

from medq.assess.slices import partition_middles, salient_slices, slice_weights
from medq.errors import InvalidImage, InvalidParameter


def _mask(z: int, fg: list[int] | range, shape: tuple[int, int] = (8, 8)) -> np.ndarray:
    m = np.zeros((z, *shape), dtype=bool)
    for i in fg:
        m[i, 2:6, 2:6] = True
    return m


def test_foreground_on_10_to_79_of_100_gives_middles_of_seven_parts():
    # 70 foreground slices, parts of 10: positions 5, 15, …, 65 → slices 15, 25, …, 75.
    mask = _mask(100, range(10, 80))
    assert salient_slices(np.zeros(mask.shape), mask) == [15, 25, 35, 45, 55, 65, 75]


def test_uneven_parts_use_floor_boundaries():
    # m = 10, n = 7: s_k = ⌊10k/7⌋ = 0,1,2,4,5,7,8,10 → middles 0,1,3,4,6,7,9.
    assert partition_middles(10, 7) == [0, 1, 3, 4, 6, 7, 9]
    mask = _mask(20, range(5, 15))
    assert salient_slices(np.zeros(mask.shape), mask) == [5, 6, 8, 9, 11, 12, 14]


def test_single_slice_and_2d_image():
    assert salient_slices(np.ones((1, 8, 8)), _mask(1, [0])) == [0]
    assert salient_slices(np.ones((8, 8)), np.ones((8, 8), bool)) == [0]


def test_three_slices():
    assert salient_slices(np.ones((3, 8, 8)), _mask(3, [0, 1, 2])) == [0, 1, 2]
    assert salient_slices(np.ones((3, 8, 8)), _mask(3, [1])) == [1]


def test_fewer_foreground_slices_than_n_returns_each_once_even_if_scattered():
    mask = _mask(100, [90, 2, 51, 50])
    assert salient_slices(np.zeros(mask.shape), mask) == [2, 50, 51, 90]


def test_no_foreground_falls_back_to_full_range():
    # m = 100: s_k = 0,14,28,42,57,71,85,100 → middles 7,21,35,49,64,78,92.
    assert salient_slices(np.zeros((100, 8, 8)), _mask(100, [])) == [7, 21, 35, 49, 64, 78, 92]
    assert salient_slices(np.zeros((3, 8, 8)), _mask(3, [])) == [0, 1, 2]


def test_sorted_unique_and_in_foreground_for_random_masks():
    rng = np.random.default_rng(1)
    for _ in range(50):
        z = int(rng.integers(1, 40))
        fg = sorted(set(rng.integers(0, z, size=int(rng.integers(0, z + 1))).tolist()))
        n = int(rng.integers(1, 10))
        out = salient_slices(np.zeros((z, 8, 8)), _mask(z, fg), n=n)
        assert out == sorted(set(out))
        assert len(out) == min(n, len(fg) or z)
        if fg:
            assert set(out) <= set(fg)


def test_automatic_mask_drops_empty_slices():
    vol = np.zeros((30, 32, 32), np.float32)
    vol[5:26, 8:24, 8:24] = 100.0
    out = salient_slices(vol, n=7)
    assert out == [6, 9, 12, 15, 18, 21, 24]


def test_slices_with_body_are_those_of_the_whole_body_mask(mni_t1):
    from medq.assess.masks import foreground_mask, foreground_slices

    vol = np.full((6, 40, 40), -1000.0)  # CT air
    vol[1:5, 10:30, 10:30] = 40.0  # a body on slices 1–4 …
    vol[2, 14:26, 14:26] = -1000.0  # … one with a hole (filled, still body)
    vol[3] = -1000.0
    vol[3, 5, 5] = 40.0  # a speck the opening removes: no body
    vol[4, 0:2, :] = 40.0  # a thin band at the edge beside the body
    assert foreground_slices(vol, "CT").tolist() == [False, True, True, False, True, False]
    for v, modality in ((vol, "CT"), (mni_t1.array, "MR")):
        assert np.array_equal(foreground_slices(v, modality),
                              foreground_mask(v, modality).any(axis=(1, 2)))
    with pytest.raises(InvalidImage, match="volume"):
        foreground_slices(vol[0], "CT")


def test_real_mni_volume(mni_t1):
    out = salient_slices(mni_t1.array, n=7, modality="MR")
    assert len(out) == 7 and out == sorted(out)
    assert all(mni_t1.array[i].max() > 0.3 for i in out)
    span = mni_t1.shape[0]
    assert out[0] < span * 0.3 and out[-1] > span * 0.6


def test_weights_and_errors():
    mask = _mask(5, [1, 3])
    mask[3, :, :] = True
    w = slice_weights(mask, [1, 3])
    assert w == pytest.approx([16 / 80, 64 / 80])  # foreground areas 4×4 and 8×8
    assert slice_weights(_mask(5, []), [0, 2]) == [0.5, 0.5]
    assert slice_weights(mask, []) == []
    with pytest.raises(InvalidParameter):
        salient_slices(np.zeros((5, 8, 8)), mask, n=0)
    with pytest.raises(InvalidImage):
        salient_slices(np.zeros((5, 8, 8)), np.zeros((4, 8, 8), bool))
    for n in (2.5, None, True):  # a TypeError from deep inside before
        with pytest.raises(InvalidParameter, match="whole number"):
            salient_slices(np.zeros((5, 8, 8)), mask, n=n)
    assert salient_slices(np.zeros((5, 8, 8)), mask, n=np.int64(2)) == [1, 3]
    with pytest.raises(InvalidParameter, match=r"slice indices \[500\] lie outside"):
        slice_weights(mask, [500])  # an IndexError before
