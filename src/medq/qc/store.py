"""The QC results store (SQLAlchemy): runs, one row per assessed item, and reviewers' decisions
(the tables: `medq.qc.schema`).

SQLite by default, PostgreSQL by URL (how a database is opened: `medq.qc.database`). Every
`record` is one transaction, an upsert by (path, model): a run killed at any moment and started
again ends with one row per item. Reviews are an append-only audit table; they never change an
item's model result, and one made before the item's content changed (and was re-assessed) no
longer counts as its review. Timestamps come back as ISO 8601 strings in UTC (row values:
`medq.qc.rows`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from medq.errors import DatabaseGone, InvalidParameter
from medq.jsonsafe import plain
from medq.qc.database import (
    JOURNAL_SUFFIXES,
    READ_ONLY,
    check_tables,
    file_identity,
    locked_as_busy,
    open_database,
)
from medq.qc.discover import storable
from medq.qc.outputs import refuse_output
from medq.qc.reviews import DECIDED, decided, standing_reviews
from medq.qc.rows import (
    COMMENT_NEEDED,
    LARGEST_ID,
    now,
    review_text_problem,
    row_dict,
    run_rows,
)
from medq.qc.schema import (
    DECISIONS,
    ITEM_COLUMNS,
    QUALITY_ORDER,
    STATUSES,
    create_schema,
    items_table,
    read_as_now,
    reviews_table,
    runs_table,
)

_WRITABLE = tuple(c for c in ITEM_COLUMNS if c not in ("id", "created_at", "updated_at"))

_JSON_COLUMNS = ("shape", "findings", "measures", "lossy_compression", "suspected",
                 "noisy_slices", "slice_gaps")
RUN_COUNTS = ("total", "ok", "errors", "skipped")
"""A run's counts: recorded by `finish_run`, printed by `medq qc run --json`."""


class Store:
    """The results database of `medq qc`: runs, items and reviews (see the module docstring).

    `create=False` (readers: export, report) refuses a SQLite file that does not exist yet
    instead of silently creating an empty database.
    """

    def __init__(self, url: str | Path, *, create: bool = True) -> None:
        opened = open_database(url, create=create)
        self.engine = opened.engine
        self.url, self.display_url, self.dialect = opened.url, opened.display_url, opened.dialect
        self.database_file, self.read_only = opened.database_file, opened.read_only
        self.created = opened.created
        """Whether opening made the SQLite file (`discard` removes it again)."""
        insert = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(
            items_table)
        self._upsert = insert.on_conflict_do_update(  # created_at survives, the rest is new
            index_elements=["path", "model"],
            set_={k: insert.excluded[k] for k in (*_WRITABLE, "updated_at")},
        ).returning(items_table.c.id)
        try:
            check_tables(self.engine, self.database_file, create, self.display_url)
            (read_as_now if self.read_only else create_schema)(self.engine)
        except SQLAlchemyError as e:
            self.engine.dispose()
            reason = " ".join(str(getattr(e, "orig", e) or e).split())
            raise InvalidParameter(f"cannot open the results database ({reason})",
                                   self.display_url) from e
        except InvalidParameter:
            self.engine.dispose()
            raise
        except KeyboardInterrupt:  # stopped while the file is made: no half-made database left
            self.engine.dispose()
            self._remove_made()
            raise
        self._file_id = file_identity(self.database_file)

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A write transaction; InvalidParameter when this process may not write the database,
        DatabaseGone when its SQLite file was deleted or replaced since it was opened (the write
        would be lost with the old file's remains), DatabaseBusy (`locked_as_busy`)."""
        if self.read_only:
            raise InvalidParameter(READ_ONLY, self.display_url)
        self.check_in_place()
        with locked_as_busy(self.display_url), self.engine.begin() as conn:
            yield conn

    def check_in_place(self) -> None:
        """DatabaseGone when the SQLite file was deleted or replaced since it was opened: what
        this process would read or write then is the old file's remains."""
        if self._file_id is not None and file_identity(self.database_file) != self._file_id:
            raise DatabaseGone("the results database file was deleted or replaced while open; "
                               "nothing was read or written (restart with the database in "
                               "place)", self.display_url)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @property
    def own_files(self) -> list[Path]:
        """The files a SQLite database is kept in (the database and its journal files, which
        need not exist yet); none for a database server."""
        if self.database_file is None:
            return []
        return [Path(f"{self.database_file}{suffix}") for suffix in JOURNAL_SUFFIXES]

    def discard(self) -> None:
        """Close, and remove the SQLite file (and its journal files) when opening made it and
        nothing was written since: a run refused before its first write leaves no empty
        database that readers would accept."""
        written = self.created and (self.runs() or self.count())
        self.close()
        if not written:
            self._remove_made()

    def _remove_made(self) -> None:
        """Remove the SQLite file and its journal files when opening made them."""
        for path in self.own_files if self.created else ():
            path.unlink(missing_ok=True)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # runs ------------------------------------------------------------------------------------

    def start_run(self, archive: str, model: str, workers: int | None,
                  scheduler: str | None, named_modality: str | None = None) -> int:
        """Insert a run row (started now, with the `--modality` it reads its items as) and
        return its id."""
        from medq import __version__

        with self._writing() as conn:
            result = conn.execute(runs_table.insert().values(
                archive=storable(str(archive)), model=str(model), medq_version=__version__,
                workers=workers, scheduler=scheduler, named_modality=named_modality,
                started_at=now(),
                total=0, ok=0, errors=0, skipped=0))
            return int(result.inserted_primary_key[0])

    def finish_run(self, run_id: int, summary: dict[str, Any], finished: bool = True) -> None:
        """Record a run's counts (`total`, `ok`, `errors`, `skipped`) and mark it finished now;
        `finished=False` (an interrupted run) records the counts and when it stopped
        (`stopped_at`), and leaves `finished_at` empty."""
        values: dict[str, Any] = {k: int(summary[k]) for k in RUN_COUNTS
                                  if summary.get(k) is not None}
        values["finished_at" if finished else "stopped_at"] = now()
        with self._writing() as conn:
            conn.execute(runs_table.update().where(runs_table.c.id == run_id).values(**values))

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first (`finished_at` is None for a run that was interrupted; a run
        that never recorded its counts is counted from its items: `rows.run_rows`)."""
        with self.engine.connect() as conn:
            return run_rows(conn)

    # items -----------------------------------------------------------------------------------

    def refuse_output(self, output: str | Path) -> None:
        """InvalidParameter when writing `output` would replace this database, an image whose
        results it holds or that image's sidecar (`qc.outputs.refuse_output`)."""
        refuse_output(self.engine, self.database_file, output)

    def known(self, model: str) -> dict[str, str]:
        """path → fingerprint of every item already stored (status ok or error) for `model`."""
        query = sa.select(items_table.c.path, items_table.c.fingerprint).where(
            items_table.c.model == model, items_table.c.status.in_(STATUSES))
        with self.engine.connect() as conn:
            return {path: fp for path, fp in conn.execute(query)}

    def again(self, model: str, *, unmeasured: bool = False, errors: bool = False,
              named_modality: str | None = None) -> set[str]:
        """Paths of the items of `model` a run assesses again though unchanged: always those
        whose stored error was medq's own (an internal error, or one stored by a medq that did
        not record the cause), not the input's, and those read as another `--modality` than
        `named_modality` (None: as their files say); with `unmeasured`, those assessed (status
        ok) without classical measures (a run with `--no-measures`); with `errors`, every
        stored error (`--retry-errors`). One query, paths only."""
        c = items_table.c
        empty = sa.or_(c.measures.is_(None), sa.cast(c.measures, sa.Text).in_(["{}", "null"]))
        wanted = [c.named_modality.is_distinct_from(named_modality)]
        wanted += [sa.and_(c.status == "ok", empty)] if unmeasured else []
        wanted.append(sa.and_(c.status == "error",
                              sa.true() if errors else sa.or_(c.bad_input.is_(None),
                                                               c.bad_input.is_(False))))
        query = sa.select(c.path).where(c.model == model, sa.or_(*wanted))
        with self.engine.connect() as conn:  # the filter runs in the database: no JSON read here
            return set(conn.scalars(query))

    def forget(self, paths: Sequence[str], model: str, status: str | None = None,
               unreviewed: bool = False) -> int:
        """Remove the items at `paths` for `model` (only those of `status`, when given; only
        those no reviewer reviewed, with `unreviewed`), and their reviews, in one transaction
        (files no longer in the archive: `qc run --prune`; a 4D file's refusal its volumes
        replaced); returns how many were removed."""
        if not paths:
            return 0
        c = items_table.c
        wanted = [c.model == model, c.path.in_(list(paths))]
        wanted += [c.status == status] if status else []
        wanted += [~sa.exists().where(reviews_table.c.item_id == c.id)] if unreviewed else []
        with self._writing() as conn:
            ids = [row[0] for row in conn.execute(sa.select(c.id).where(*wanted))]
            if ids:
                conn.execute(reviews_table.delete().where(reviews_table.c.item_id.in_(ids)))
                conn.execute(items_table.delete().where(items_table.c.id.in_(ids)))
        return len(ids)

    def record(self, result: dict[str, Any]) -> int:
        """Upsert one item result by (path, model) in one transaction; returns the item id.

        `result` carries item columns (`path`, `model`, `fingerprint` and `status` are required);
        keys that are not columns are ignored. `created_at` survives an update.
        """
        missing = [k for k in ("path", "model", "fingerprint", "status") if not result.get(k)]
        if missing:
            raise InvalidParameter(f"result lacks {', '.join(missing)}", result.get("path"))
        if result["status"] not in STATUSES:
            raise InvalidParameter(f"unknown status {result['status']!r}", result["path"])
        values = {k: result.get(k) for k in _WRITABLE}
        values["path"] = str(values["path"])
        for key in ("path", "error", "description"):  # a name that is not UTF-8, in any text
            if isinstance(values[key], str):
                values[key] = storable(values[key])
        for key in _JSON_COLUMNS:
            values[key] = plain(values[key])
        if values["score"] is not None:
            values["score"] = plain(float(values["score"]))
        for key in ("recall", "bad_input"):
            if values[key] is not None:
                values[key] = bool(values[key])
        stamp = now()
        with self._writing() as conn:
            return int(conn.execute(self._upsert, {**values, "created_at": stamp,
                                                   "updated_at": stamp}).scalar_one())

    def _filtered(self, query: sa.Select, modality: str | None, verdict: str | None,
                  status: str | None, min_score: float | None, max_score: float | None,
                  reviewed: bool | None, model: str | None) -> sa.Select:
        c = items_table.c
        modality = modality.strip().upper() if modality else modality  # stored upper-case
        for column, value in ((c.modality, modality), (c.verdict, verdict), (c.status, status),
                              (c.model, model)):
            if value is not None:
                query = query.where(column == value)
        if min_score is not None:
            query = query.where(c.score >= float(min_score))
        if max_score is not None:
            query = query.where(c.score <= float(max_score))
        if reviewed is not None:
            has_review = sa.exists().where(reviews_table.c.item_id == c.id, DECIDED)
            query = query.where(has_review if reviewed else ~has_review)
        return query

    def items(self, *, modality: str | None = None, verdict: str | None = None,
              status: str | None = None, min_score: float | None = None,
              max_score: float | None = None, reviewed: bool | None = None,
              sort: str = "score", descending: bool = False, limit: int | None = None,
              offset: int = 0, model: str | None = None) -> list[dict[str, Any]]:
        """Items matching every given filter, sorted by a column (empty values last).

        Each dict holds all item columns plus `reviewed` (bool) and `last_review` (the newest
        review as a dict, or None).
        """
        if sort not in ITEM_COLUMNS:
            raise InvalidParameter(f"cannot sort by {sort!r}; choose from "
                                   f"{', '.join(ITEM_COLUMNS)}")
        column: Any = items_table.c[sort]
        if sort in QUALITY_ORDER:
            column = sa.case({v: k for k, v in enumerate(QUALITY_ORDER[sort])}, value=column)
        order = column.desc() if descending else column.asc()
        query = self._filtered(sa.select(items_table), modality, verdict, status, min_score,
                               max_score, reviewed, model)
        id_order = items_table.c.id.desc() if descending else items_table.c.id.asc()
        query = query.order_by(order.nulls_last(), id_order).offset(
            min(max(0, int(offset)), LARGEST_ID))  # further than any row: an empty page
        if limit is not None:
            query = query.limit(max(0, int(limit)))
        with self.engine.connect() as conn:
            rows = [row_dict(r._mapping) for r in conn.execute(query)]
            last = standing_reviews(conn, [r["id"] for r in rows])
        for row in rows:
            row["last_review"] = last.get(row["id"])
            row["reviewed"] = decided(row["last_review"])
        return rows

    def count(self, *, modality: str | None = None, verdict: str | None = None,
              status: str | None = None, min_score: float | None = None,
              max_score: float | None = None, reviewed: bool | None = None,
              model: str | None = None) -> int:
        """Number of items matching the filters of `items`."""
        query = self._filtered(sa.select(sa.func.count()).select_from(items_table), modality,
                               verdict, status, min_score, max_score, reviewed, model)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def values(self, column: str) -> list[str]:
        """The distinct values (NULL left out) of an item column, e.g. the models stored, sorted;
        ValueError for a name that is no item column (a caller's mistake, not bad input)."""
        if column not in ITEM_COLUMNS:
            raise ValueError(f"no item column {column!r}")
        c = items_table.c[column]
        query = sa.select(c).distinct().where(c.is_not(None)).order_by(c)
        with self.engine.connect() as conn:
            return [str(value) for value in conn.scalars(query)]

    def check_model(self, model: str | None) -> str | None:
        """The stored model `model` names (`runner.stored_model`: a checkpoint's path names its
        stored key); InvalidParameter, naming the models it holds, when the database holds
        results but none of that model (a filter that would give nothing by a typo)."""
        from medq.qc.runner import stored_model

        held = self.values("model") if model is not None else []
        model = stored_model(held, model)
        if held and model not in held:
            raise InvalidParameter(f"no results for model {model!r}; the database holds: "
                                   f"{', '.join(held)}", self.display_url)
        return model

    def item(self, item_id: int) -> dict[str, Any] | None:
        """One item (same dict as `items`), or None when there is no such id."""
        if not 0 < int(item_id) <= LARGEST_ID:  # a database integer holds no other id
            return None
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(items_table).where(items_table.c.id == int(item_id)))
            mapping = found.mappings().first()
            if mapping is None:
                return None
            row = row_dict(mapping)
            row["last_review"] = standing_reviews(conn, [row["id"]]).get(row["id"])
        row["reviewed"] = decided(row["last_review"])
        return row

    # reviews ---------------------------------------------------------------------------------

    def add_review(self, item_id: int, reviewer: str, decision: str,
                   comment: str = "") -> dict[str, Any]:
        """Append a reviewer's decision (accept / reject / comment) on an item; returns it."""
        if decision not in DECISIONS:
            raise InvalidParameter(f"unknown review decision {decision!r}; choose from "
                                   f"{', '.join(DECISIONS)}")
        reviewer = " ".join(str(reviewer or "").split())
        if not reviewer:
            raise InvalidParameter("a review needs the reviewer's name")
        reason = review_text_problem(reviewer, str(comment or ""))
        if reason:
            raise InvalidParameter(reason)
        if decision == "comment" and not str(comment or "").strip():
            raise InvalidParameter(COMMENT_NEEDED)
        values = {"item_id": int(item_id), "reviewer": reviewer, "decision": decision,
                  "comment": str(comment or ""), "created_at": now()}
        with self._writing() as conn:
            exists = conn.execute(sa.select(items_table.c.fingerprint)
                                  .where(items_table.c.id == int(item_id))).first()
            if exists is None:
                raise InvalidParameter(f"no item with id {item_id}")
            values["fingerprint"] = exists[0]  # the content this decision is about
            result = conn.execute(reviews_table.insert().values(**values))
            values["id"] = int(result.inserted_primary_key[0])
        return row_dict(values)

    def reviews(self, item_id: int) -> list[dict[str, Any]]:
        """Every review of an item, oldest first (with the `fingerprint` of the content each was
        made on: one of content since changed is history, not the item's review)."""
        query = (sa.select(reviews_table).where(reviews_table.c.item_id == int(item_id))
                 .order_by(reviews_table.c.id))
        with self.engine.connect() as conn:
            return [row_dict(r._mapping) for r in conn.execute(query)]

    def summary(self) -> dict[str, Any]:
        """Totals of the items: `{"total", "reviewed", "status": {...}, "modality": {...},
        "verdict": {...}, "model": {...}}`.

        Empty values (e.g. the verdict of an error row) are not counted in the breakdowns.
        """
        c = items_table.c
        out: dict[str, Any] = {"total": 0, "reviewed": 0}
        with self.engine.connect() as conn:
            out["total"] = int(conn.execute(sa.select(sa.func.count()).select_from(items_table)
                                            ).scalar_one())
            out["reviewed"] = int(conn.execute(
                sa.select(sa.func.count(sa.distinct(reviews_table.c.item_id))).select_from(
                    reviews_table.join(items_table, reviews_table.c.item_id == items_table.c.id))
                .where(DECIDED)).scalar_one())
            for key in ("status", "modality", "verdict", "model"):
                query = (sa.select(c[key], sa.func.count()).where(c[key].is_not(None))
                         .group_by(c[key]).order_by(c[key]))
                out[key] = {str(value): int(n) for value, n in conn.execute(query)}
        return out
