"""What a `medq qc run` has to do: which items to assess (new or changed since they were
stored), which cannot even be read to fingerprint them, and which stored items the archive no
longer holds."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from medq.errors import InputError
from medq.qc.discover import SERIES_MARK, Item


def unreadable_file(error: OSError, path: str) -> InputError:
    """The input error of a file the walk found but cannot open: a link to nothing, a loop of
    links, a file without read permission (the input's fault, not medq's)."""
    import errno

    from medq.errors import MissingInput, UnreadableImage

    if isinstance(error, FileNotFoundError):
        return MissingInput("no such file or directory (a symbolic link to a missing file?)",
                            path)
    reason = ("a loop of symbolic links" if error.errno == errno.ELOOP
              else "permission denied" if isinstance(error, PermissionError)
              else error.strerror or type(error).__name__)
    return UnreadableImage(f"cannot read the file ({reason})", path)


def plan(items: Sequence[Item], known: dict[str, str],
         ) -> tuple[list[tuple[Item, str]], list[tuple[Item, str, InputError]], int]:
    """(to assess with fingerprints, unreadable at fingerprinting, skipped count)."""
    from medq.qc.fingerprint import fingerprint

    todo: list[tuple[Item, str]] = []
    unreadable: list[tuple[Item, str, InputError]] = []
    skipped = 0
    for item in items:
        try:
            fp = fingerprint(item.files)
        except OSError as e:
            unreadable.append((item, "unreadable", unreadable_file(e, item.path)))
            continue
        if known.get(item.path) == fp:
            skipped += 1
        else:
            todo.append((item, fp))
    return todo, unreadable, skipped


def vanished(known: dict[str, str], items: Sequence[Item], archive: str | Path) -> list[str]:
    """The stored items under `archive` (its files, series `<folder>#<uid>` and volumes
    `<file>@volume=<k>`) that this walk did not find: deleted, renamed or regrouped since."""
    root = str(Path(archive).expanduser().resolve())
    found = {item.path for item in items}
    inside = (os.sep, SERIES_MARK, "@")
    return sorted(p for p in known if p not in found
                  and (p == root or any(p.startswith(root + mark) for mark in inside)))


def outside(items: Sequence[Item], files: Sequence[str | Path]) -> list[Item]:
    """The items that hold none of `files` (the results database's own files, when it is kept
    inside the archive it records: it is no input)."""
    own = {_resolved(f) for f in files}
    return [i for i in items if not own & {_resolved(f) for f in i.files}]


def _resolved(path: str | Path) -> str:
    """The absolute path with its links followed as far as they lead (a loop of links, which
    `Path.resolve` refuses with RuntimeError on some Pythons, stays as it is written)."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return str(Path(path).absolute())
