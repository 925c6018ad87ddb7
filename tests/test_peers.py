"""The peer scores of `benchmarks/peers.py` are what their packages compute (the side-by-side
table means nothing otherwise)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import peers  # noqa: E402


@pytest.fixture(scope="module")
def brisque():
    """BRISQUE through medq's adapter (`medq.train.peers`)."""
    from medq.train.peers import brisque_scorer

    return brisque_scorer()


def test_brisque_ranks_a_photograph_as_it_was_made_to(brisque) -> None:
    """On its own ground (a natural photograph), BRISQUE (0 best … 100 worst) scores blur and
    noise worse than the original: the adapter feeds the bundled LIVE model the right features."""
    from skimage import data

    camera = data.camera() / 255.0
    rng = np.random.default_rng(0)
    sharp = brisque(camera)
    blurred = brisque(ndi.gaussian_filter(camera, 2.0))
    noisy = brisque(np.clip(camera + rng.normal(0, 0.08, camera.shape), 0, 1))
    assert np.isfinite(sharp) and sharp < blurred and sharp < noisy


def test_display_is_what_a_reader_sees(ct_slice, mr_slice) -> None:
    """CT in its window (CT_small states none: soft tissue), MR between its percentiles, both in
    [0, 1]."""
    ct, mr = peers.display(ct_slice), peers.display(mr_slice)
    assert ct.shape == ct_slice.shape and mr.shape == mr_slice.shape
    for shown in (ct, mr):
        assert shown.min() >= 0 and shown.max() <= 1
    air = ct_slice.array < -900
    assert np.all(ct[air] == 0)  # below the window
    assert 0.0 < float(np.mean(mr == 1.0)) < 0.02  # the top half-percent saturates


def test_peer_scores_are_higher_for_better_quality(ct_slice, brisque) -> None:
    """Every peer score is turned so that higher is better: the MRIQC SNR of a CT slice falls
    when noise is added; BRISQUE and EFC (lower is better for both) enter negated."""
    from medq.assess.measures import compute_measures

    rng = np.random.default_rng(1)
    noisy = ct_slice.with_array(ct_slice.array + rng.normal(0, 40, ct_slice.shape))
    scores = peers.peer_scores([ct_slice, noisy], brisque)
    assert set(scores) == set(peers.PEERS)
    assert scores["mriqc_snr"][0] > scores["mriqc_snr"][1]
    assert scores["brisque"][1] == pytest.approx(-brisque(peers.display(noisy)))
    assert scores["mriqc_efc"][0] == pytest.approx(
        -compute_measures(ct_slice.array, "CT")["efc"])
    assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in scores.values())
