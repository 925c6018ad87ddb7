"""The noise discrepancy step of noise-only CT restorations (`medq.restore.discrepancy`)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from medq.data.samples import load_sample
from medq.restore.discrepancy import alpha, discrepancy_step


def _ct_planes(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """pydicom's CT_small in normalised units (HU / 1000) and a copy with white noise added."""
    clean = load_sample("ct_small").array.astype(np.float64) / 1000.0
    noisy = clean + np.random.default_rng(seed).normal(0.0, 0.03, clean.shape)
    return clean, noisy


def test_a_residual_that_is_only_noise_is_kept_whole() -> None:
    clean, noisy = _ct_planes()
    assert alpha(noisy, clean) == 1.0  # a perfect denoiser's residual is the noise itself
    out, info = discrepancy_step([noisy], [clean])
    assert out[0] is clean and info == {"step": "noise discrepancy", "alpha": 1.0}


def test_an_oversmoothed_output_gets_the_anatomy_back() -> None:
    clean, noisy = _ct_planes()
    smeared = ndi.gaussian_filter(noisy, 4.0)  # takes the noise and the trabecular bone
    a = alpha(noisy, smeared)
    assert 0.0 < a < 1.0
    # σ̂² / var(r): the flat-window noise estimate against the whole residual
    out, info = discrepancy_step([noisy], [smeared])
    assert info["alpha"] == round(a, 3)
    np.testing.assert_allclose(out[0], noisy - a * (noisy - smeared), rtol=1e-6)

    def error(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean((x - clean) ** 2)))

    assert error(out[0]) < error(smeared)  # closer to the clean scan than the smeared output


def test_constant_padding_counts_neither_as_flat_noise_nor_as_residual() -> None:
    clean, noisy = _ct_planes()
    smeared = ndi.gaussian_filter(noisy, 4.0)
    padded, padded_out = (np.pad(a, 64, constant_values=-2.0) for a in (noisy, smeared))
    padded_out[:64] = -2.0  # the pipeline keeps a CT's padding as it was
    # without the exclusion the flattest windows would be the padding: σ̂ = 0, α = 0
    assert abs(alpha(padded, padded_out) - alpha(noisy, smeared)) < 0.05


def test_medq_restore_keeps_most_of_the_bundled_ct_and_says_so() -> None:
    import medq

    ct = load_sample("ct_small")
    result = medq.restore(ct, reassess=False)  # the gate opens: its own mottle reads as noise
    assert result.consistency and result.consistency["step"] == "noise discrepancy"
    assert 0.0 < result.consistency["alpha"] < 0.5
    change = np.sqrt(np.mean((result.image.array - ct.array.astype(np.float64)) ** 2))
    assert change < 15.0  # HU RMS; the network alone changes it by about 42
