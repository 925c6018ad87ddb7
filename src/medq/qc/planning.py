"""What a `medq qc run` has to do: which items to assess (new or changed since they were
stored), which cannot even be read to fingerprint them, which stored items the archive no
longer holds, and whether another run of the archive may still be writing to the database."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medq.errors import InputError
from medq.io.special import resolved
from medq.io.volumes import VOLUME_MARK, volume_mark
from medq.qc.discover import SERIES_MARK, UNLISTED, Item

UNREADABLE = "unreadable"
"""The fingerprint stored for an item whose bytes could not be read (no content hash)."""


def unreadable_file(error: OSError, path: str) -> InputError:
    """The input error of a file the walk found but cannot open: a link to nothing, a loop of
    links, a file without read permission (the input's fault, not medq's)."""
    from medq.errors import DANGLING, MissingInput, UnreadableImage, refused

    if isinstance(error, FileNotFoundError):
        return MissingInput(DANGLING, path)
    listed = "; nothing in it is assessed" if os.path.isdir(path) else ""
    return UnreadableImage(refused(error, path) + listed, path)


def plan(items: Sequence[Item], known: dict[str, str],
         ) -> tuple[list[tuple[Item, str]], list[tuple[Item, str, InputError]], int]:
    """(to assess with fingerprints, unreadable at fingerprinting, skipped count)."""
    from medq.qc.fingerprint import fingerprint

    todo: list[tuple[Item, str]] = []
    unreadable: list[tuple[Item, str, InputError]] = []
    skipped = 0
    for item in items:
        try:
            if item.note == UNLISTED:
                os.listdir(item.path)  # the folder's own error (no permission)
            fp = fingerprint(item.files)
        except OSError as e:
            unreadable.append((item, UNREADABLE, unreadable_file(e, item.path)))
            continue
        if known.get(item.path) == fp:
            skipped += 1
        else:
            todo.append((item, fp))
    return todo, unreadable, skipped


def nothing_to_assess(archive: str | Path) -> InputError:
    """The error of an archive in which discovery found no item (as `medq assess` says it)."""
    from medq.errors import UnsupportedImage
    from medq.io.dicom_series import empty_folder

    if Path(archive).expanduser().is_dir():
        return empty_folder(archive, "unpack {them} to QC the images")
    return UnsupportedImage("not an image file medq reads", archive)


def vanished(known: dict[str, str], items: Sequence[Item], archive: str | Path) -> list[str]:
    """The stored items under `archive` (its files, series `<folder>#<uid>` and volumes
    `<file>@volume=<k>`) that this walk did not find: deleted, renamed or regrouped since.

    Not under it: a sibling whose name only starts like it (`site@2/…`, `site#old/…` beside
    `site`). A 4D file stored volume by volume is walked so again (`by_stored_volume`), so the
    volumes of a file this walk found whole are gone (it is no longer 4D), as is the whole-file
    item of a file it found volume by volume (its refusal as 4D, or a 3D file's row from before
    it became 4D: `superseded` removes an unreviewed refusal once the volumes are stored)."""
    root_path = Path(archive).expanduser().resolve()
    root = str(root_path)
    own_marks = (SERIES_MARK,) if root_path.is_dir() else (VOLUME_MARK,)  # the root's own items
    found = {item.path for item in items}
    unlisted = tuple(item.path + mark for item in items if item.note == UNLISTED
                     for mark in (os.sep, SERIES_MARK))  # what the walk could not list held

    def under_root(p: str) -> bool:
        rest = p[len(root):]
        return p.startswith(root) and (rest == "" or rest.startswith(os.sep) or (
            rest.startswith(own_marks) and os.sep not in rest))

    return sorted(p for p in known if p not in found and under_root(p)
                  and not p.startswith(unlisted))


def by_stored_volume(items: Sequence[Item], known: dict[str, str]) -> list[Item]:
    """The items, each 4D file whose volumes are stored (`<file>@volume=<k>`, a run with
    `--each-volume`) taken volume by volume again, so a later run without the flag finds them
    unchanged instead of refusing the file whole."""
    from medq.qc.discover import volumes_of

    stored = {_whole_file(p) for p in known if volume_mark(p)}
    out: list[Item] = []
    for item in items:
        out += volumes_of(item) if item.path in stored else [item]
    return sorted(out, key=lambda item: item.path)


def superseded(known: dict[str, str], items: Sequence[Item]) -> list[str]:
    """The stored whole-file items of the 4D files this walk took volume by volume whose every
    volume is now stored (`known`, read after the run): those volumes' rows stand for it."""
    volumes: dict[str, list[str]] = {}
    for item in items:
        if volume_mark(item.path):
            volumes.setdefault(_whole_file(item.path), []).append(item.path)
    return sorted(p for p, parts in volumes.items()
                  if p in known and all(v in known for v in parts))


def _whole_file(path: str) -> str:
    """The file an item `<file>@volume=<k>` is a volume of; any other item's own path."""
    named = volume_mark(path)
    return named[0] if named else path


def outside(items: Sequence[Item], files: Sequence[str | Path]) -> list[Item]:
    """The items that hold none of `files` (the results database's own files, when it is kept
    inside the archive it records: it is no input)."""
    own = {resolved(f) for f in files}
    return [i for i in items if not own & {resolved(f) for f in i.files}]


def archive_key(archive: str | Path) -> str:
    """The archive as a run row records it (`Store.start_run` escapes what is not UTF-8)."""
    return str(Path(archive).expanduser().resolve())


ALONGSIDE_S = 120.0
"""How recently an unfinished run of the same archive and model must have started or stored an
item for `medq qc run` to say another run may still be writing to the database."""


def running_alongside(store: Any, archive: str | Path, model: str,
                      within_s: float = ALONGSIDE_S) -> list[tuple[int, float]]:
    """(run id, seconds since it last started or stored an item) of each unfinished run of this
    archive and model active within `within_s` seconds and not stopped by Ctrl-C
    (`stopped_at`): probably another `medq qc run` on the same database, which assesses the
    same items again (a run killed that recently reads the same)."""
    import sqlalchemy as sa

    from medq.qc.discover import storable
    from medq.qc.rows import as_utc, now
    from medq.qc.schema import items_table, runs_table

    runs, items = runs_table.c, items_table.c
    query = (sa.select(runs.id, runs.started_at, sa.func.max(items.updated_at))
             .select_from(runs_table.outerjoin(items_table, items.run_id == runs.id))
             .where(runs.finished_at.is_(None), runs.stopped_at.is_(None), runs.model == model,
                    runs.archive == storable(archive_key(archive)))
             .group_by(runs.id, runs.started_at))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    moment = now()
    found = []
    for run_id, started, stored in rows:
        last = max(as_utc(t) for t in (started, stored) if t is not None)
        ago = (moment - last).total_seconds()
        if ago <= within_s:
            found.append((int(run_id), round(max(ago, 0.0), 1)))
    return found
