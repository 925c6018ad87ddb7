"""The list filters of the review app: query parameters → `Store.items` keyword arguments.

The HTML list page gets its filters from a plain GET form, where an empty box arrives as an
empty string; `parse_filters` turns those into None and anything unparsable into an error
message instead of a crash. The JSON API takes the same filters as typed query parameters
(its score bounds exact: `SHOWN_HALF`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from medq.describe.schema import VERDICTS
from medq.qc.schema import STATUSES

SORTS = ("score", "id", "path", "modality", "region", "verdict", "grade", "updated_at")
"""Columns the lists can be sorted by."""

REVIEWED = {"yes": True, "no": False}
"""Values of the `reviewed` filter (anything else: no filter)."""

SHOWN_HALF = 0.005
"""Half the last digit the list shows a score with ("%.2f"): a score bound of at most two
decimals takes in every score shown within it (2.496, shown 2.50, is kept by "to 2.5"); a
finer bound, and the JSON API's, is exact."""

PAGE_SIZE = 50
"""Items per page of the HTML list."""

FILTER_KEYS = ("modality", "verdict", "status", "min_score", "max_score", "reviewed", "model",
               "sort", "order", "page")
"""Query parameters the HTML list understands."""


def _score(text: str, name: str, errors: list[str]) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        errors.append(f"{name} must be a number, not {text!r}")
        return None
    if not 1.0 <= value <= 5.0:  # as the message says, and the form's inputs allow
        errors.append(f"{name} must lie between 1 and 5")
        return None
    return value


def parse_filters(params: Mapping[str, str]) -> tuple[dict[str, Any], int, list[str]]:
    """(Store.items keyword arguments, 1-based page, error messages) from the list's query."""
    get = {k: (params.get(k) or "").strip() for k in FILTER_KEYS}
    errors: list[str] = []
    kwargs: dict[str, Any] = {
        "modality": get["modality"] or None,
        "verdict": get["verdict"] if get["verdict"] in VERDICTS else None,
        "status": get["status"] if get["status"] in STATUSES else None,
        "min_score": _score(get["min_score"], "minimum score", errors),
        "max_score": _score(get["max_score"], "maximum score", errors),
        "reviewed": REVIEWED.get(get["reviewed"]),
        "model": get["model"] or None,  # a database two models assessed lists each item twice
        "sort": get["sort"] if get["sort"] in SORTS else "score",
        "descending": get["order"] == "desc",
    }
    for key in ("verdict", "status"):
        if get[key] and kwargs[key] is None:
            errors.append(f"unknown {key} {get[key]!r}")
    if (kwargs["min_score"] is not None and kwargs["max_score"] is not None
            and kwargs["min_score"] > kwargs["max_score"]):
        errors.append("the minimum score is above the maximum")
    for key, widen in (("min_score", -SHOWN_HALF), ("max_score", SHOWN_HALF)):
        if kwargs[key] is not None and round(kwargs[key], 2) == kwargs[key]:  # as shown
            kwargs[key] += widen
    raw = get["page"]  # "²" is a digit to str.isdigit, and no number to int
    page = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 and int(raw) else 1
    return kwargs, page, errors


def count_filters(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `Store.items` arguments that `Store.count` takes."""
    return {k: v for k, v in kwargs.items() if k not in ("sort", "descending", "limit", "offset")}


def query_string(params: Mapping[str, str], **changes: Any) -> str:
    """The list's query string with `changes` applied (empty values dropped)."""
    merged = {k: params.get(k, "") for k in FILTER_KEYS}
    merged.update({k: "" if v is None else str(v) for k, v in changes.items()})
    return urlencode([(k, v) for k, v in merged.items() if v])
