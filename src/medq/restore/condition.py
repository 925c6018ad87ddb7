"""The conditioning vector of the restoration network: what is wrong, and what kind of image.

Layout (`COND_DIM` values): per finding type (`FINDING_TYPES`) a presence probability, then per
finding type a severity on 0–1 (continuous severity / 3), then a flag saying whether an external
description was given at all, then a one-hot of the modality group (`MODALITY_GROUPS`).

Where the presence/severity come from:
- at training time: the engine's records (ground truth), perturbed by `perturb` — dropped
  entirely, jittered, findings removed or invented — so the network learns to use a description
  but not to trust it blindly;
- at run time: the assessment's findings (`from_findings`), or nothing (flag 0), in which case the
  network relies on its own degradation-type prior.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from medq.assess.models.blocks import FINDING_TYPES, SEVERITIES

N_FINDINGS = len(FINDING_TYPES)
MODALITY_GROUPS = ("CT", "MR", "PT", "XR", "OP", "other")
"""Modality groups of the one-hot (CR and DX are both radiographs, XR)."""

COND_DIM = 2 * N_FINDINGS + 1 + len(MODALITY_GROUPS)
"""Length of a conditioning vector."""

RESTORABLE = ("noise", "blur", "low_resolution", "aliasing", "motion", "streak")
"""Finding types the restoration network is trained to repair."""


def modality_group(modality: str) -> int:
    """Index of a DICOM modality's group in `MODALITY_GROUPS`."""
    group = {"CR": "XR", "DX": "XR"}.get(modality, modality)
    return MODALITY_GROUPS.index(group) if group in MODALITY_GROUPS else len(MODALITY_GROUPS) - 1


def truth(records: Iterable[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(presence, severity 0–1) per finding type from engine degradation records."""
    from medq.degrade import get_spec

    presence = np.zeros(N_FINDINGS, np.float32)
    severity = np.zeros(N_FINDINGS, np.float32)
    for rec in records:
        spec = get_spec(rec["name"])
        i = FINDING_TYPES.index(spec.finding)
        value = min(spec.severity_value(rec["level"]), 3.0) / 3.0
        if spec.severity(rec["level"]) != "none":
            presence[i] = 1.0
        severity[i] = max(severity[i], value)
    return presence, severity


def from_findings(findings: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(presence, severity 0–1) from assessment findings (dicts) or description Findings."""
    presence = np.zeros(N_FINDINGS, np.float32)
    severity = np.zeros(N_FINDINGS, np.float32)
    for f in findings:
        get = f.get if isinstance(f, dict) else lambda k, d=None, f=f: getattr(f, k, d)
        kind = get("type")
        if kind not in FINDING_TYPES:
            continue
        i = FINDING_TYPES.index(kind)
        level = SEVERITIES.index(get("severity")) if get("severity") in SEVERITIES else 1
        expected = (get("evidence") or {}).get("expected_severity", level)
        presence[i] = max(presence[i], float(get("confidence", 1.0) or 0.0))
        severity[i] = max(severity[i], float(np.clip(expected, 0.0, 3.0)) / 3.0)
    return presence, severity


def from_report(report: Any, modality: str) -> np.ndarray:
    """The conditioning vector of a description (`QualityReport`): its findings, or "no
    description" when it has none (the network then relies on its own prior)."""
    presence, severity = from_findings(report.findings)
    return vector(presence if report.findings else None, severity, modality)


def vector(presence: np.ndarray | None, severity: np.ndarray | None, modality: str
           ) -> np.ndarray:
    """The conditioning vector; `presence=None` means no description was given."""
    out = np.zeros(COND_DIM, np.float32)
    if presence is not None:
        out[:N_FINDINGS] = presence
        out[N_FINDINGS:2 * N_FINDINGS] = severity if severity is not None else presence
        out[2 * N_FINDINGS] = 1.0
    out[2 * N_FINDINGS + 1 + modality_group(modality)] = 1.0
    return out


def perturb(cond: np.ndarray, rng: np.random.Generator, drop: float = 0.3,
            flip: float = 0.15) -> np.ndarray:
    """A training-time corruption of a ground-truth vector (a description that may be wrong).

    With probability `drop` the description is removed (flag 0); otherwise presences and
    severities are jittered, and with probability `flip` each a true finding is dropped and a
    false one of random type and severity is added. With probability `flip` the modality is
    hidden too (group `other`), so a wrong or missing modality tag does not derail the network.
    """
    out = cond.copy()
    n = N_FINDINGS
    if rng.random() < flip:
        out[2 * n + 1:] = 0.0
        out[-1] = 1.0
    if rng.random() < drop:
        out[:2 * n + 1] = 0.0
        return out
    present = np.flatnonzero(out[:n] > 0.5)
    if len(present) and rng.random() < flip:
        i = int(rng.choice(present))
        out[i] = out[n + i] = 0.0
    if rng.random() < flip:
        i = int(rng.integers(n))
        out[i], out[n + i] = 1.0, float(rng.uniform(0.1, 1.0))
    out[:n] = np.clip(out[:n] + rng.normal(0, 0.15, n) * (out[:n] > 0), 0, 1)
    out[n:2 * n] = np.clip(out[n:2 * n] + rng.normal(0, 0.1, n) * (out[n:2 * n] > 0), 0, 1)
    return out
