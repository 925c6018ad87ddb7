"""Opening the QC results database: its URL, SQLite's settings, and read-only access.

SQLite by default (a plain file path or `sqlite:///qc.sqlite`; WAL journal and a busy timeout so
a reader — the review app — never blocks the writer), PostgreSQL by URL
(`postgresql+psycopg://user:password@host/db`). A SQLite file this process may not write is
opened read-only (readers) or refused (writers).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from medq.errors import DatabaseBusy, InvalidParameter, MissingInput

READ_ONLY = ("the results database is read-only for this user: it can be exported, reported "
             "and browsed, not written (runs, reviews, uploads)")
"""Why a write to a SQLite database opened read-only is refused."""


def database_url(url: str | Path) -> str:
    """A SQLAlchemy URL: URLs pass through, a plain file path becomes `sqlite:///<abs path>`."""
    text = str(url)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def writable(database: Path) -> bool:
    """Whether this process may write the SQLite file and its folder (its WAL and shared-memory
    files live beside it)."""
    return os.access(database, os.W_OK) and os.access(database.parent, os.W_OK)


def read_only_url(database: Path) -> str:
    """The URL of a SQLite file this process may not write, opened read-only. While a writer
    holds it open (its shared-memory file is there) the reader shares that journal and sees
    what is committed later (a run, another reviewer); otherwise it is opened immutable, as it
    is now (`is_snapshot`): on read-only storage a reader may not create the shared-memory
    file, and one it created would be its own, barring the owner's next writer."""
    from urllib.parse import quote

    shared = Path(f"{database.resolve()}-shm").is_file()  # SQLite's, beside a link's target
    return (f"sqlite:///file:{quote(str(database.resolve()))}?mode=ro"
            f"{'' if shared else '&immutable=1'}&uri=true")


def is_snapshot(url: str) -> bool:
    """Whether `url` opens a SQLite file immutable: later commits are not seen until reopened."""
    return "immutable=1" in url


def _read_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Settings of every SQLite connection: wait on a writer, enforce foreign keys."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """`_read_pragmas`, and the WAL journal a connection that may write sets."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()
    _read_pragmas(dbapi_conn, _record)


class Database(NamedTuple):
    """An opened database: its engine and what the store needs to know of it."""

    engine: Engine
    url: str
    display_url: str
    """The URL with any password hidden, for messages."""
    dialect: str
    database_file: Path | None
    """SQLite's file (None for a database server or an in-memory database)."""
    created: bool
    """Whether opening made the SQLite file."""
    read_only: bool


def _sqlite_file_url(url: str, database: str, create: bool) -> tuple[str, bool]:
    """(URL to open, read-only) for a SQLite file; InvalidParameter / MissingInput when a
    writer may not write it, its folder is missing, or a reader's file does not exist."""
    path = Path(database)
    if not path.parent.is_dir():  # a typo makes no database
        raise InvalidParameter("folder of the SQLite database does not exist", database)
    if not create and not path.is_file():
        raise MissingInput("no such results database (run `medq qc run` first)", database)
    if path.is_file() and not writable(path):
        if create:  # a writer (medq qc run)
            raise InvalidParameter(READ_ONLY, database)
        return read_only_url(path), True
    return url, False


JOURNAL_SUFFIXES = ("", "-wal", "-shm", "-journal")
"""The files a SQLite database is kept in: the database, then its journal files."""


def _sqlite_file(parsed: Any) -> Path | None:
    """The SQLite file a parsed database URL names (absolute); None for a database server or
    an in-memory database."""
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def open_database(url: str | Path, *, create: bool = True) -> Database:
    """An engine on `url` (a file path or a SQLAlchemy URL); `create=False` (readers) refuses
    a SQLite file that does not exist yet instead of silently creating an empty database."""
    url = database_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except SQLAlchemyError as e:
        raise InvalidParameter(f"not a database URL ({e})", str(url)) from e
    display_url = parsed.render_as_string(hide_password=True)
    dialect = parsed.get_backend_name()
    database_file = _sqlite_file(parsed)
    on_file = database_file is not None
    created = database_file is not None and not database_file.exists()
    read_only = False
    kwargs: dict[str, Any] = {"future": True}
    if dialect == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if on_file:
            url, read_only = _sqlite_file_url(url, parsed.database, create)
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as e:
        raise InvalidParameter(f"cannot use database ({type(e).__name__}: {e})",
                               display_url) from e
    if dialect == "sqlite":
        sa.event.listen(engine, "connect", _read_pragmas if read_only else _sqlite_pragmas)
    return Database(engine, url, display_url, dialect, database_file, created, read_only)


def check_tables(engine: Any, database_file: Path | None, create: bool, display_url: str) -> None:
    """InvalidParameter before any table is made: for a SQLite file holding another
    application's tables and none of medq's (its file is its own), and for a reader
    (`create=False`) on a database without medq's tables (an empty file, say)."""
    from medq.qc.schema import metadata

    present = set(sa.inspect(engine).get_table_names())
    if present & set(metadata.tables):
        return
    if database_file is not None and present:
        shown = ", ".join(sorted(present)[:4]) + (" …" if len(present) > 4 else "")
        raise InvalidParameter(f"not a medq results database: it holds other tables ({shown})",
                               display_url)
    if not create:
        raise InvalidParameter("holds no medq QC results (no medq tables): run medq qc run "
                               "with this --db first", display_url)


def file_identity(database_file: Path | None) -> tuple[int, int] | None:
    """(device, inode) of a SQLite file, None for a database server or a missing file."""
    if database_file is None:
        return None
    try:
        found = database_file.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


@contextmanager
def locked_as_busy(url: str) -> Iterator[None]:
    """DatabaseBusy (one line) for SQLite's "database is locked": another process held the
    write lock past the busy timeout (a run printed the whole statement, parameters and all)."""
    try:
        yield
    except sa.exc.OperationalError as e:
        if "database is locked" not in str(e.orig):
            raise
        raise DatabaseBusy("another process held the results database's write lock for over "
                           "30 s; nothing was written (run again when it is done)", url) from None
