"""The quality gate of `medq restore`: which of a description's findings the restoration
addresses, and why it addresses none."""

from __future__ import annotations

from typing import Any

from medq.restore import condition
from medq.restore.classical import METHODS as CLASSICAL

DETAIL_FINDINGS = ("blur", "low_resolution", "motion")
"""Findings the network repairs by adding detail. Alone and mild they do not open the gate:
sharpening a nearly good image risks inventing detail, and the description's false alarms on
clean real scans are mostly these (a real scan is softer than the phantoms the detector was
calibrated on); `medq bench restore`'s clean check counts how often the gate still opens."""


def mild_detail_only(report: Any) -> bool:
    """Whether every restorable finding of a description is a mild `DETAIL_FINDINGS` one."""
    found = [f for f in report.findings if f.type in condition.RESTORABLE]
    return bool(found) and all(f.type in DETAIL_FINDINGS and f.severity == "mild" for f in found)


def to_repair(report: Any) -> list[str]:
    """The restorable finding types of a description that open the quality gate (none when all
    are mild blur, low resolution or motion: `mild_detail_only`)."""
    return [] if mild_detail_only(report) else [
        f.type for f in report.findings if f.type in condition.RESTORABLE]


def gate_reason(report: Any, method: str, found: set[str]) -> str:
    """Why a method addresses none of a description's findings: `method` (it does not repair
    what was found), `mild` (the gate leaves mild detail findings alone), `other` (medq
    restores none of them) or `none` (nothing was found)."""
    if found and method in CLASSICAL:
        return "method"
    if mild_detail_only(report):
        return "mild"
    return "other" if report.findings else "none"
