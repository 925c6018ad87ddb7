"""Evaluation metrics, pure NumPy in / float out.

`correlation` (agreement of predicted and subjective quality scores: SRCC, KRCC, PLCC, PLCC after
the VQEG logistic fit, RMSE, LDCTIQAC score), `fidelity` (full-reference: PSNR, SSIM, NRMSE) and
`overlap` (segmentation: Dice, HD95).
"""

from __future__ import annotations

from medq.metrics.correlation import (
    correlation_report,
    krcc,
    ldctiqac_score,
    plcc,
    plcc_logistic,
    rmse,
    srcc,
)
from medq.metrics.fidelity import nrmse, psnr, ssim
from medq.metrics.overlap import dice, hd95

__all__ = [
    "correlation_report", "dice", "hd95", "krcc", "ldctiqac_score", "nrmse", "plcc",
    "plcc_logistic", "psnr", "rmse", "srcc", "ssim",
]
