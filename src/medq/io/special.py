"""Paths that are neither regular files nor folders (named pipes, devices and sockets), and
paths whose links lead nowhere.

medq never reads one as an image (opening a pipe waits for a writer, a device such as
`/dev/zero` never ends) and never replaces one with a written result (`medq.io.atomic`).
"""

from __future__ import annotations

import stat
from pathlib import Path


def is_special_file(path: str | Path) -> bool:
    """True for an existing path (links followed) that is neither a regular file nor a folder:
    a named pipe, a character or block device, a socket."""
    try:
        mode = Path(path).stat().st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


SPECIAL_REASON = "not a regular file (a named pipe, device or socket): medq reads files and folders"
"""Why such a path is refused as an input."""


def resolved(path: str | Path) -> Path:
    """The absolute path with its links followed as far as they lead; a loop of links (which
    `Path.resolve` refuses with RuntimeError on some Pythons, ending a whole batch) stays as it
    is written, made absolute: reading it fails alone, as bad input."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(path).absolute()
