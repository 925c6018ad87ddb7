"""Which stored items are byte copies of another, and which copy a curator keeps.

Items with the same content fingerprint (`medq.qc.fingerprint`: SHA-256 over the bytes of their
files, in file-name order) hold the same bytes. In each such group one copy is kept — a regular
file that is still there before a symbolic link or a path that is gone, then the first in path
order (Python's, whatever the database sorts by) — and the others name it as their
`duplicate_of`. Left out of every group: items that failed (an empty file is not a copy worth
naming), items whose bytes could not be read (`planning.UNREADABLE`), and the volumes of one 4D
file, which share its bytes but are not copies of each other (a volume is matched with the same
volume of a copied file). Results of several models for one path count as one copy.
A series whose files were renamed hashes differently and is not found.
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
    mark = volume_mark(path)
    for candidate in (path, mark[0] if mark else None, path.rsplit(SERIES_MARK, 1)[0],
                      path.rsplit(PART_MARK, 1)[0]):
        if candidate and os.path.lexists(candidate):
            return candidate
    return None


def _preference(path: str) -> tuple[bool, bool, str]:
    """Sort key of a copy: present regular files first, then links, then vanished paths."""
    on_disk = _on_disk(path)
    return (on_disk is None, on_disk is not None and os.path.islink(on_disk), path)


def duplicate_of(items: list[dict[str, Any]]) -> dict[str, str]:
    """Path → the kept copy's path, for every stored item that is a byte copy of another."""
    groups: dict[tuple[str, int | None], set[str]] = defaultdict(set)
    for item in items:
        fingerprint = item.get("fingerprint")
        if item.get("status") != "ok" or fingerprint in (None, UNREADABLE):
            continue
        mark = volume_mark(item["path"])
        groups[(fingerprint, mark[1] if mark else None)].add(item["path"])
    out: dict[str, str] = {}
    for paths in groups.values():
        if len(paths) > 1:
            kept, *copies = sorted(paths, key=_preference)
            out.update(dict.fromkeys(copies, kept))
    return out
