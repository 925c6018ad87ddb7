"""What a QC results row holds: UTC timestamps and reviewers' texts.

Timestamps come back as ISO 8601 strings in UTC; values are stored JSON-safe
(`medq.jsonsafe.plain`: NumPy numbers as Python numbers, NaN/inf as empty); a review's texts are
checked before they are stored, so no stored review is one the web API cannot hand back.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

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
