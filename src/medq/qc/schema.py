"""The QC results store's schema (SQLAlchemy Core): runs, one row per assessed item, and the
reviewers' decisions; `create_schema` creates what a database lacks, and adds the columns later
releases added (`ADDED_COLUMNS`) to a database an earlier medq made."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medq.describe.schema import VERDICTS
from medq.severity import GRADES

DECISIONS = ("accept", "reject", "comment")
"""Review decisions."""

STATUSES = ("ok", "error")
"""Item statuses."""

QUALITY_ORDER = {"grade": tuple(name for _, name in GRADES)[::-1], "verdict": VERDICTS[::-1]}
"""The text columns that sort by quality, worst first as a rising score does (alphabetically,
"excellent" came before "good" and "reject" between "good" and "usable")."""

metadata = sa.MetaData()

runs_table = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("archive", sa.Text, nullable=False),
    sa.Column("model", sa.String(512), nullable=False),
    sa.Column("medq_version", sa.String(32), nullable=False),
    sa.Column("workers", sa.Integer),
    sa.Column("scheduler", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("total", sa.Integer),
    sa.Column("ok", sa.Integer),
    sa.Column("errors", sa.Integer),
    sa.Column("skipped", sa.Integer),
    sa.Column("named_modality", sa.String(8)),  # the run's --modality; none: as files say (added)
    sa.Column("stopped_at", sa.DateTime(timezone=True)),  # when it was interrupted (added)
)

items_table = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("model", sa.String(512), nullable=False),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="SET NULL")),
    sa.Column("dimension", sa.String(2)),
    sa.Column("modality", sa.String(8)),
    sa.Column("region", sa.String(32)),
    sa.Column("shape", sa.JSON),
    sa.Column("score", sa.Float),
    sa.Column("grade", sa.String(32)),
    sa.Column("verdict", sa.String(16)),
    sa.Column("recall", sa.Boolean),
    sa.Column("findings", sa.JSON),
    sa.Column("measures", sa.JSON),
    sa.Column("description", sa.Text),
    sa.Column("lossy_compression", sa.JSON),  # the Assessment's; {} when not lossy (added)
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("bad_input", sa.Boolean),  # an error's cause: the input (else medq's) (added)
    sa.Column("named_modality", sa.String(8)),  # the --modality it was read as (added)
    sa.Column("modality_source", sa.String(16)),  # where the graded modality came from (added)
    sa.Column("nonfinite_fraction", sa.Float),  # share of NaN/inf pixels; none: all finite (added)
    sa.Column("suspected", sa.JSON),  # the Assessment's doubtful types (added)
    sa.Column("noisy_slices", sa.JSON),  # a volume's noisy slices; none: not compared (added)
    sa.Column("slice_gaps", sa.JSON),  # a series' missing slices or uneven spacing (added)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("path", "model", name="uq_items_path_model"),
    sa.Index("ix_items_model_status", "model", "status"),
    sa.Index("ix_items_score", "score"),
    sa.Index("ix_items_verdict", "verdict"),
    sa.Index("ix_items_run_id", "run_id"),  # a run's latest item (`planning.running_alongside`)
)

reviews_table = sa.Table(
    "reviews", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("reviewer", sa.String(128), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fingerprint", sa.String(64)),  # the item's content when reviewed (added)
)

ITEM_COLUMNS = tuple(c.name for c in items_table.columns)
"""Columns of an item row (every `items()` dict also has `reviewed` and `last_review`)."""

ADDED_COLUMNS = {"items": ("lossy_compression", "bad_input", "named_modality", "modality_source",
                           "nonfinite_fraction", "suspected", "noisy_slices", "slice_gaps"),
                 "reviews": ("fingerprint",), "runs": ("named_modality", "stopped_at")}
"""Columns added after a table's first release: `create_schema` adds them to a database made
before (nullable, so old rows read as unknown)."""


def missing_columns(conn: sa.Connection) -> dict[str, list[str]]:
    """The `ADDED_COLUMNS` a database made by an earlier medq lacks, per table (none: absent)."""
    inspector = sa.inspect(conn)
    missing = {}
    for name, columns in ADDED_COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(name)}
        if lacking := [c for c in columns if c not in have]:
            missing[name] = lacking
    return missing


def _add_columns(conn: sa.Connection) -> None:
    """Add the `ADDED_COLUMNS` a database made by an earlier medq lacks (ALTER TABLE … ADD)."""
    for name, columns in missing_columns(conn).items():
        for column in (metadata.tables[name].c[c] for c in columns):
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f'ALTER TABLE {name} ADD COLUMN "{column.name}" {kind}'))


def read_as_now(engine: Engine) -> None:
    """Let a database this process may only read (`Store.read_only`), made by an earlier medq,
    be read as this one's: it cannot be given the `ADDED_COLUMNS` it lacks, so on SQLite each
    such table is shadowed, on every connection, by a TEMP VIEW of its name that adds them as
    NULL (a name is looked up in `temp` first; the file is not written). Nothing to do for a
    database that has them all."""
    with engine.connect() as conn:
        missing = missing_columns(conn)
    if not missing or engine.dialect.name != "sqlite":
        return

    def views(dbapi_conn: Any, _record: Any) -> None:
        for name, columns in missing.items():
            added = ", ".join(f'NULL AS "{c}"' for c in columns)
            dbapi_conn.execute(f'CREATE TEMP VIEW IF NOT EXISTS "{name}" AS SELECT *, {added} '
                               f'FROM main."{name}"')

    sa.event.listen(engine, "connect", views)
    engine.dispose()  # connections made before have no views


def create_schema(engine: Engine, attempts: int = 5) -> None:
    """Create the tables and indexes that are missing (safe when several processes open at once).

    `CREATE … IF NOT EXISTS` makes creation idempotent; the retry covers PostgreSQL's rare
    catalog conflict between two sessions creating the same table at the same instant.
    """
    from sqlalchemy.schema import CreateIndex, CreateTable

    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                for table in metadata.sorted_tables:
                    conn.execute(CreateTable(table, if_not_exists=True))
                    for index in sorted(table.indexes, key=lambda i: i.name or ""):
                        conn.execute(CreateIndex(index, if_not_exists=True))
                _add_columns(conn)
            return
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
