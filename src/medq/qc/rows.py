"""What a QC results row holds: an item's result (`ok_result`, `error_result`), a run's row
(`run_rows`), UTC timestamps and reviewers' texts.

Timestamps come back as ISO 8601 strings in UTC; values are stored JSON-safe
(`medq.jsonsafe.plain`: NumPy numbers as Python numbers, NaN/inf as empty); a review's texts are
checked before they are stored, so no stored review is one the web API cannot hand back.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from medq.errors import InputError

if TYPE_CHECKING:
    from medq.image import MedImage
    from medq.qc.discover import Item

COMMENT_NEEDED = "a comment review needs a comment (write it, or accept or reject the item)"
"""Why a `comment` review without text is refused."""

REVIEWER_MAX, COMMENT_MAX = 128, 10_000
"""Longest reviewer's name and comment (characters) a review may store: the web API and the
review page take no longer ones, so no stored review is one the API cannot hand back."""

LARGEST_ID = 2**63 - 1
"""The largest integer a database column holds: no item id (or row offset) lies beyond it."""

TIMESTAMPS = ("created_at", "updated_at", "started_at", "finished_at")
"""The timestamp columns of the tables."""


def now() -> dt.datetime:
    """The current time, in UTC."""
    return dt.datetime.now(dt.timezone.utc)


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored timestamp in UTC (SQLite hands back naive UTC datetimes)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def iso(value: Any) -> str | None:
    """A stored timestamp as ISO 8601 in UTC."""
    return None if value is None else as_utc(value).isoformat()


def row_dict(mapping: Any) -> dict[str, Any]:
    """A database row as a dict, its timestamps as ISO 8601 strings."""
    data = dict(mapping)
    for key in TIMESTAMPS:
        if key in data:
            data[key] = iso(data[key])
    return data


def review_text_problem(reviewer: str, comment: str) -> str | None:
    """Why a review's texts cannot be stored (longer than `REVIEWER_MAX` / `COMMENT_MAX`; a
    lone surrogate, which no encoding holds; a control character in the reviewer's name), or
    None."""
    for field, text, most in (("reviewer's name", reviewer, REVIEWER_MAX),
                              ("comment", comment, COMMENT_MAX)):
        if len(text) > most:
            return f"the {field} is {len(text)} characters long; at most {most} are stored"
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return f"the {field} is not valid text (a lone surrogate character)"
    if any(unicodedata.category(ch) == "Cc" for ch in reviewer):
        return "the reviewer's name holds control characters"
    return None


def graded_as(assessment: Any) -> str:
    """The modality an item is stored under: the one it was graded as (the file's, or the prompt
    classifier's sure guess, `medq.assess.guess`), or, for a file stating
    none that was graded as OT, its guessed prompt (a CT guess, which fills the prompt only), so
    a filter by modality finds it."""
    told = (assessment.prompts or {}).get("modality")
    if assessment.modality != "OT" or told in (None, "other"):
        return assessment.modality
    from medq.image import modality_code

    return modality_code(told)


def error_result(item: Item, exc: BaseException) -> dict[str, Any]:
    """The stored form of a failed item: status `error` and the one-line reason (a uniform
    phantom's ROI numbers as its measures, `phantom_<name>`, and its modality)."""
    from medq.cli.common import fail_line

    row = {"path": item.path, "status": "error", "error": fail_line(item.path, exc),
           "dimension": "3D" if item.series else None, "bad_input": isinstance(exc, InputError)}
    reading = getattr(exc, "reading", None)  # phantom.UniformPhantom's
    if reading is not None:
        numbers = reading.to_dict()
        row["modality"] = numbers.pop("modality")
        row["measures"] = {f"phantom_{k}": v for k, v in numbers.items()}
    return row


_WARNED: set[str] = set()


def _warn_once(message: str, kind: str) -> None:
    """Log a one-line warning the first time this process meets a kind of problem."""
    if kind not in _WARNED:
        _WARNED.add(kind)
        logging.getLogger(__name__).warning(message)


def ok_result(item: Item, assessment: Any, image: MedImage) -> dict[str, Any]:
    """The stored form of an assessed item (score, grade, verdict, findings, description, …).

    Score and grade are the assessment's (`medq assess`); verdict, findings and description
    come from one `QualityReport`, so the stored verdict always agrees with the stored findings
    and text (as in `medq describe`). If the wording fails, the assessment's own findings and
    score-based verdict stand.
    """
    from medq.assess.assessment import prompted_source
    from medq.describe import report_from, verdict_for

    prompts = assessment.prompts or {}
    verdict, findings, description = verdict_for(assessment.score), assessment.findings, None
    try:
        report = report_from(assessment, image).to_dict()
        verdict, findings, description = report["verdict"], report["findings"], report["text"]
    except Exception as e:  # noqa: BLE001 - the model result stands even if its wording fails
        _warn_once(f"medq: warning: {item.path}: no description "
                   f"({' '.join(f'{type(e).__name__}: {e}'.split())})", type(e).__name__)
    return {
        "path": item.path, "status": "ok", "error": None,
        "dimension": "3D" if image.is_volume else "2D",
        "modality": graded_as(assessment), "region": prompts.get("region") or image.region,
        "shape": list(assessment.shape), "score": assessment.score, "grade": assessment.grade,
        "verdict": verdict, "recall": assessment.recall,
        "findings": findings, "measures": assessment.measures,
        "description": description, "lossy_compression": assessment.lossy_compression or {},
        "modality_source": prompted_source(assessment), "suspected": assessment.suspected,
        "nonfinite_fraction": assessment.nonfinite_fraction,
        "noisy_slices": assessment.noisy_slices, "slice_gaps": assessment.slice_gaps}


def run_rows(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every run row, newest first. A run that never recorded its counts (killed, or still
    running: neither `finished_at` nor `stopped_at`, and 0 ok and 0 errors) gets `ok` and
    `errors` counted from the items it stored that no later run assessed again, with `counted`
    true."""
    from medq.qc.schema import items_table, runs_table

    c = items_table.c
    rows = [row_dict(r._mapping) for r in conn.execute(
        sa.select(runs_table).order_by(runs_table.c.id.desc()))]
    open_ids = [r["id"] for r in rows if r["finished_at"] is None and r.get("stopped_at") is None
                and not (r["ok"] or r["errors"])]  # an older medq's interrupted run has them
    counts: dict[int, dict[str, int]] = {}
    if open_ids:
        for run_id, status, n in conn.execute(sa.select(c.run_id, c.status, sa.func.count())
                                              .where(c.run_id.in_(open_ids))
                                              .group_by(c.run_id, c.status)):
            counts.setdefault(run_id, {})[status] = int(n)
    for row in rows:
        if row["id"] in open_ids:
            held = counts.get(row["id"], {})
            row.update(ok=held.get("ok", 0), errors=held.get("error", 0), counted=True)
    return rows
