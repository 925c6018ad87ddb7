"""The noise discrepancy step of MR restoration: a denoiser's residual no larger than the
input's white noise (`medq.restore.consistency.noise_discrepancy`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from medq.describe.schema import Finding, QualityReport
from medq.image import MedImage
from medq.restore.consistency import NOISE_DISCREPANCY, noise_discrepancy, white_noise_only


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


def test_an_oversmoothing_denoiser_is_moved_back_towards_the_input(
        mr_abdomen_slice: MedImage) -> None:
    """Real abdominal MR plus white noise: a Gaussian 'denoiser' that also takes anatomy out is
    pulled back (α < 1) and lands nearer the image without the added noise; an oracle that
    removes exactly the added noise is left as it is (its residual is no larger than the
    input's noise, the image's own included)."""
    clean = np.asarray(mr_abdomen_slice.array, dtype=np.float64)
    sigma = 0.03 * float(np.percentile(clean, 99))
    noisy = clean + np.random.default_rng(0).normal(0.0, sigma, clean.shape)
    smoothed = ndi.gaussian_filter(noisy, 2.5)
    (out,), info = noise_discrepancy([noisy], [smoothed])
    assert info["step"] == NOISE_DISCREPANCY and 0.05 < info["alpha"] < 0.9
    assert _rmse(out, clean) < 0.9 * _rmse(smoothed, clean)
    (kept,), oracle = noise_discrepancy([noisy], [clean.astype(np.float32)])
    assert oracle["alpha"] == 1.0 and kept.dtype == np.float32
    assert np.array_equal(kept, clean.astype(np.float32))


def test_flat_or_unchanged_planes_are_left_alone() -> None:
    plane = np.full((32, 32), 5.0)
    (out,), info = noise_discrepancy([plane], [plane.copy()])
    assert info["alpha"] == 1.0 and np.array_equal(out, plane)


@pytest.mark.parametrize(("modality", "types", "expected"), [
    ("MR", ("noise",), True),
    ("MR", ("noise", "low_contrast"), True),  # not a restorable finding
    ("MR", ("noise", "aliasing"), False),
    ("MR", ("blur",), False),
    ("CT", ("noise",), False),  # coloured by the reconstruction kernel
    ("PT", ("noise",), False),
])
def test_the_step_is_for_mr_noise_alone(modality: str, types: tuple[str, ...],
                                        expected: bool) -> None:
    findings = [Finding(t, "moderate", 0.9, severity_value=2.0) for t in types]
    report = QualityReport(modality, "unknown", 2.0, "usable", findings, "")
    assert white_noise_only(report, modality) is expected


@pytest.mark.slow
def test_restoring_a_noisy_real_mr_reports_the_step() -> None:
    """`medq restore` on pydicom's 64² MR with engine noise: described as noise alone, restored
    by the network, then the discrepancy step (reported in `consistency`)."""
    from medq.data.samples import load_sample
    from medq.degrade import simulate
    from medq.restore.pipeline import restore

    degraded, _ = simulate(load_sample("mr_small"), "mr_noise", severity="severe", seed=1)
    result = restore(degraded, "auto", reassess=False)
    assert result.changed and result.findings_addressed == ["noise"], result.note
    assert result.consistency is not None and result.consistency["step"] == NOISE_DISCREPANCY
    assert 0.0 < result.consistency["alpha"] <= 1.0
