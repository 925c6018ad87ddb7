"""Which stored items are byte copies of another, and which copy a curator keeps.

Items with the same content fingerprint (`medq.qc.fingerprint`: SHA-256 over the bytes of their
files, in file-name order) under one model hold the same bytes. In each such group one copy is
kept — the file itself (present, reached through no symbolic link) before a path through a link
and a path that is gone, then the first in path order (Python's, whatever the database sorts
by), so every model that saw the same copies keeps the same one — and the others name it as
their `duplicate_of`, except a path that reaches the kept file itself through a link (deleting
it would delete the kept bytes). Left out of every group: items that failed (an empty file is
not a copy worth naming), items whose bytes could not be read (`planning.UNREADABLE`), and the
volumes of one 4D file, which share its bytes but are not copies of each other (a volume is
matched with the same volume of a copied file). A series whose files were renamed hashes
differently and is not found. Which copy is present is read from the disk when exporting; on a
machine without the archive every copy reads as gone and path order decides.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from medq.io.dicom_series import PART_MARK, SERIES_MARK
from medq.io.volumes import volume_mark
from medq.qc.planning import UNREADABLE


def _on_disk(path: str) -> str | None:
    """The file or folder a stored path names (a volume's 4D file, a series' folder), None
    when it is gone."""
    if os.path.lexists(path):
        return path
    mark = volume_mark(path)
    if mark and os.path.lexists(mark[0]):
        return mark[0]
    for sign in (SERIES_MARK, PART_MARK):  # folder#UID, folder@part: the folder must be there
        folder = path.rsplit(sign, 1)[0]
        if sign in path and os.path.isdir(folder):
            return folder
    return None


def _kept_first(paths: set[str]) -> list[str]:
    """The copies of one group with the kept one first: the file itself (present, reached
    through no link), then a path through a link, then a vanished one; then path order. A path
    reaching the kept one's file through a link is left out (it is no copy of it)."""
    on_disk = {p: _on_disk(p) for p in paths}  # the disk read once per path
    real = {p: os.path.realpath(d) if d is not None else None for p, d in on_disk.items()}

    def preference(path: str) -> tuple[bool, bool, str]:
        found = on_disk[path]
        return (found is None, found is not None and real[path] != os.path.abspath(found), path)

    kept, *copies = sorted(paths, key=preference)
    return [kept, *(p for p in copies if real[p] is None or real[p] != real[kept])]


def duplicate_of(items: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(path, model) → the kept copy's path, for every stored result of a byte copy of another
    item under the same model (one path reaching the same file as the kept one is no copy)."""
    groups: dict[tuple[Any, str, int | None], set[str]] = defaultdict(set)
    for item in items:
        fingerprint = item.get("fingerprint")
        if item.get("status") != "ok" or fingerprint in (None, UNREADABLE):
            continue
        mark = volume_mark(item["path"])
        groups[(item.get("model"), fingerprint, mark[1] if mark else None)].add(item["path"])
    out: dict[tuple[str, str], str] = {}
    for (model, _, _), paths in groups.items():
        if len(paths) > 1:
            kept, *copies = _kept_first(paths)
            out.update({(path, model): kept for path in copies})
    return out
