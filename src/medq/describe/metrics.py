"""Description metrics: MedQ-Bench's four 0–2 dimensions, reference-based and deterministic.

A description is judged from its structured content — predicted findings (type, severity), the
types its text states are absent (`normal`) and its verdict — against the engine's ground truth
of the image: the **reference findings** are the applied degradations at severity ≥ mild (one per
finding type, the worst), the **reference verdict** is `verdict_for(reference_score(s))` of the
continuous severities s of every applied degradation (`medq.data.bench.reference_score`).

- **completeness** (reference findings covered): a reference finding is covered when a predicted
  finding has its type. 2 = all covered (or no reference finding), 1 = at least half, 0 = fewer.
- **preciseness** (nothing contradicts the reference). Contradictions: a predicted type the
  reference lacks (false alarm; *minor* when predicted mild, else *major*); a type stated absent
  (`normal`) that the reference has (*minor* when the reference is mild, else *major*); a type in
  both whose severities differ by two or more levels (*major*). 2 = none, 1 = one minor and no
  major, 0 = otherwise.
- **consistency** (the verdict follows the findings): each predicted finding's severity bounds
  its continuous severity (mild 0.5–1.5, moderate 1.5–2.5, severe 2.5–3), and the unlisted
  types together add at most one sub-mild severity (< 0.5); the verdicts those severities allow
  under the reference-score rule form a range. 2 = the verdict is in it, 1 = one level outside,
  0 = further. (Several sub-mild degradations can lower the reference verdict below what one
  allows, so a description listing none of them, as it should, then scores 1 here.)
- **quality accuracy**: 2 = verdict equals the reference verdict, 1 = adjacent, 0 = opposite.

The total is their sum (/8). `type_hits` gives the acceptance check "finding type correct": for
each applied degradation at moderate or worse, whether a finding of its type was predicted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from medq.describe.schema import VERDICTS, score_for, verdict_for
from medq.severity import SEVERITIES

DIMENSIONS = ("completeness", "preciseness", "consistency", "accuracy")
"""The four 0–2 dimensions, in table order."""

SEVERITY_RANGES = {"mild": (0.5, 1.5), "moderate": (1.5, 2.5), "severe": (2.5, 3.0)}
"""Continuous severity range of each severity name (engine scale)."""


def reference(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Reference findings `{type: severity}` (≥ mild, worst per type), score and verdict."""
    from medq.degrade import get_spec

    findings: dict[str, str] = {}
    values = []
    for rec in records:
        spec = get_spec(rec["name"])
        values.append(spec.severity_value(rec["level"]))
        sev = spec.severity(rec["level"])
        if sev != "none" and SEVERITIES.index(sev) > SEVERITIES.index(
                findings.get(spec.finding, "none")):
            findings[spec.finding] = sev
    score = score_for(values)
    return {"findings": findings, "score": score, "verdict": verdict_for(score)}


def _as_pairs(findings: Iterable[Any]) -> dict[str, str]:
    """`{type: severity}` of Finding objects or dicts (the worst per type)."""
    out: dict[str, str] = {}
    for f in findings:
        kind, sev = (f["type"], f["severity"]) if isinstance(f, dict) else (f.type, f.severity)
        if SEVERITIES.index(sev) > SEVERITIES.index(out.get(kind, "none")):
            out[kind] = sev
    return out


def completeness(pred: dict[str, str], ref: dict[str, str]) -> int:
    """2 all reference findings covered (or none to cover), 1 at least half, 0 fewer."""
    if not ref:
        return 2
    covered = sum(kind in pred for kind in ref) / len(ref)
    return 2 if covered == 1 else (1 if covered >= 0.5 else 0)


def contradictions(pred: dict[str, str], normal: Iterable[str], ref: dict[str, str]
                   ) -> list[tuple[str, str, str]]:
    """(type, what, minor|major) for every statement the reference contradicts."""
    out = []
    for kind, sev in pred.items():
        if kind not in ref:
            out.append((kind, "false finding", "minor" if sev == "mild" else "major"))
        elif abs(SEVERITIES.index(sev) - SEVERITIES.index(ref[kind])) >= 2:
            out.append((kind, "severity", "major"))
    for kind in normal:
        if kind in ref:
            out.append((kind, "stated absent", "minor" if ref[kind] == "mild" else "major"))
    return out


def preciseness(pred: dict[str, str], normal: Iterable[str], ref: dict[str, str]) -> int:
    """2 no contradiction, 1 a single minor one, 0 otherwise."""
    found = contradictions(pred, normal, ref)
    if not found:
        return 2
    return 1 if len(found) == 1 and found[0][2] == "minor" else 0


def allowed_verdicts(pred: dict[str, str]) -> list[str]:
    """Verdicts the reference-score rule allows for findings of these severities."""
    lows = [SEVERITY_RANGES[s][0] for s in pred.values() if s in SEVERITY_RANGES]
    highs = [SEVERITY_RANGES[s][1] for s in pred.values() if s in SEVERITY_RANGES]
    best, worst = score_for(lows), score_for(highs + [0.5])
    return [v for v in VERDICTS if VERDICTS.index(verdict_for(best)) <= VERDICTS.index(v)
            <= VERDICTS.index(verdict_for(worst))]


def consistency(pred: dict[str, str], verdict: str) -> int:
    """2 verdict within the range the findings allow, 1 one level outside, 0 further."""
    allowed = [VERDICTS.index(v) for v in allowed_verdicts(pred)]
    i = VERDICTS.index(verdict)
    gap = 0 if i in allowed else min(abs(i - a) for a in allowed)
    return max(0, 2 - gap)


def accuracy(verdict: str, ref_verdict: str) -> int:
    """2 exact verdict, 1 adjacent, 0 opposite."""
    return max(0, 2 - abs(VERDICTS.index(verdict) - VERDICTS.index(ref_verdict)))


def score_against(pred: dict[str, str], normal: list[str], verdict: str,
                  ref: dict[str, Any]) -> dict[str, Any]:
    """The four dimensions and total /8 of `{type: severity}` findings against a reference."""
    row: dict[str, Any] = {"completeness": completeness(pred, ref["findings"]),
                           "preciseness": preciseness(pred, normal, ref["findings"]),
                           "consistency": consistency(pred, verdict),
                           "accuracy": accuracy(verdict, ref["verdict"])}
    row["total"] = sum(row[d] for d in DIMENSIONS)
    return row


def score_description(findings: Iterable[Any], normal: Iterable[str], verdict: str,
                      records: list[dict[str, Any]]) -> dict[str, Any]:
    """The four dimensions, total /8, type hits and both verdicts of one description against its
    records."""
    ref = reference(records)
    pred = _as_pairs(findings)
    row = score_against(pred, list(normal), verdict, ref)
    row["contradictions"] = [list(c) for c in contradictions(pred, list(normal),
                                                             ref["findings"])]
    row["type_hits"] = type_hits(pred, records)
    row["verdict"], row["reference_verdict"] = verdict, ref["verdict"]
    return row


def type_hits(pred: dict[str, str], records: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """(finding type, predicted?) for each applied degradation at moderate or worse."""
    from medq.degrade import get_spec

    out = []
    for rec in records:
        spec = get_spec(rec["name"])
        if spec.severity(rec["level"]) in ("moderate", "severe"):
            out.append((spec.finding, spec.finding in pred))
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each dimension and the total, and the type accuracy on moderate-or-worse; the
    total's and the type accuracy's 95 % bootstrap intervals over the items (`total_ci`,
    `type_accuracy_ci`: `medq.metrics.uncertainty.mean_interval`)."""
    from medq.metrics.uncertainty import mean_interval

    if not rows:
        return {"n": 0}
    out: dict[str, Any] = {"n": len(rows)}
    for key in (*DIMENSIONS, "total"):
        out[key] = float(np.mean([r[key] for r in rows]))
    out["total_ci"] = list(mean_interval([r["total"] for r in rows]))
    hits = [hit for r in rows for _, hit in r["type_hits"]]
    out["type_accuracy"] = float(np.mean(hits)) if hits else None
    out["type_accuracy_ci"] = list(mean_interval(np.asarray(hits, dtype=float)))
    out["type_n"] = len(hits)
    return out
