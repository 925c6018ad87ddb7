"""Evaluation metrics, pure NumPy in / float out.

`correlation` (agreement of predicted and subjective quality scores: SRCC, KRCC, PLCC, PLCC after
the VQEG logistic fit, RMSE, LDCTIQAC score), `fidelity` (full-reference: PSNR, SSIM, NRMSE) and
`overlap` (segmentation: Dice, HD95). Each is imported when first used (`from medq.metrics import
psnr`), so a module that needs only `values` does not pay SciPy's statistics import.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see of the names imported on first use
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

_HOMES = {
    **dict.fromkeys(("correlation_report", "krcc", "ldctiqac_score", "plcc", "plcc_logistic",
                     "rmse", "srcc"), "correlation"),
    **dict.fromkeys(("nrmse", "psnr", "ssim"), "fidelity"),
    **dict.fromkeys(("dice", "hd95"), "overlap"),
}

__all__ = [
    "correlation_report", "dice", "hd95", "krcc", "ldctiqac_score", "nrmse", "plcc",
    "plcc_logistic", "psnr", "rmse", "srcc", "ssim",
]


def __getattr__(name: str) -> Any:
    """The metric `name`, imported from its module on first use."""
    if name in _HOMES:
        return getattr(import_module(f"medq.metrics.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'medq.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the metrics imported on first use among them."""
    return sorted({*globals(), *__all__})
