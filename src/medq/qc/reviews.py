"""Which review stands for an item: of its current content, its newest decision (accept or
reject), else its newest comment; an item is reviewed once a decision stands."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from medq.qc.rows import row_dict
from medq.qc.schema import items_table, reviews_table

CURRENT = sa.or_(reviews_table.c.fingerprint.is_(None),
                 reviews_table.c.fingerprint == items_table.c.fingerprint)
"""A review of the item's current content: made on the same fingerprint (or before reviews
recorded it). A review of content that has since changed and been re-assessed is history."""
DECIDED = sa.and_(CURRENT, reviews_table.c.decision != "comment")
"""A current review that decides (accept or reject): what makes an item reviewed; a comment
alone does not, nor does it hide an earlier decision."""


def standing_reviews(conn: sa.Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """item id → the review that stands for its current content (`CURRENT`), for the given
    ids: its newest decision (accept / reject), else its newest comment."""
    if not ids:
        return {}
    r = reviews_table.c
    out: dict[int, dict[str, Any]] = {}
    for decisions in (False, True):  # comments first, then decisions replace them
        newest = (sa.select(sa.func.max(r.id))
                  .select_from(reviews_table.join(items_table, r.item_id == items_table.c.id))
                  .where(r.item_id.in_(ids), DECIDED if decisions else CURRENT)
                  .group_by(r.item_id).scalar_subquery())
        rows = conn.execute(sa.select(reviews_table).where(r.id.in_(newest)))
        out.update({row.item_id: row_dict(row._mapping) for row in rows})
    return out


def decided(review: dict[str, Any] | None) -> bool:
    """Whether the review standing for an item decides it (accept or reject): it is reviewed."""
    return review is not None and review.get("decision") != "comment"
