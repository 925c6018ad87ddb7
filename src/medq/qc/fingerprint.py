"""Content fingerprint of a QC item: SHA-256 over its member files' bytes, in sorted path order.

Each file contributes its length (8 bytes, big-endian) then its bytes, so the boundaries between
files count. Renaming or moving a file does not change its fingerprint; any changed byte does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20
"""Bytes read at a time."""


def fingerprint(files: Iterable[str | Path]) -> str:
    """Hex SHA-256 of the files' bytes (sorted by path); raises OSError when one is unreadable."""
    digest = hashlib.sha256()
    for name in sorted(str(f) for f in files):
        path = Path(name)
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
