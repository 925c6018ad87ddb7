"""Gzip-wrapped image files (a gzipped DICOM under any name, a gzipped NIfTI not named .nii.gz):
their first bytes and their content, decompressed, with a ceiling on the decompressed size."""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from medq.errors import UnreadableImage
from medq.io.volumes import last_file_cache

GZIP_MAGIC = b"\x1f\x8b"
MAX_GUNZIPPED = 2 << 30
"""Largest decompressed size of a gzipped file medq reads (2 GiB; more is refused)."""


def is_gzipped(path: str | Path) -> bool:
    """True when the file starts with the gzip signature."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def head(path: str | Path, n: int) -> bytes:
    """The first `n` bytes of the file, of its decompressed content when it is gzipped
    (b'' when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            first = fh.read(n)
        if first[:2] != GZIP_MAGIC:
            return first
        with gzip.open(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError):
        return b""


def content(path: str | Path) -> bytes:
    """The file's bytes, decompressed when it is gzipped (UnreadableImage past `MAX_GUNZIPPED`)."""
    data = Path(path).read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
        out = fh.read(MAX_GUNZIPPED + 1)
    if len(out) > MAX_GUNZIPPED:
        raise UnreadableImage(f"gzipped file decompresses to more than {MAX_GUNZIPPED >> 30} GiB",
                              path)
    return out


UNPACKED_LOCK = threading.Lock()
"""Held while a reader seeks and reads the shared `unpacked` file (loads may run in threads)."""


_LAST_UNPACKED: list[BinaryIO] = []
"""The temporary file `unpacked` made last: the one-entry cache drops it at the next file."""


@last_file_cache
def unpacked(path: Path) -> BinaryIO:
    """The decompressed content of a gzipped file in an anonymous temporary file (deleted when
    closed or when the process ends), unpacked once per process for the last file asked for
    (`volumes.last_file_cache`). Read it under `UNPACKED_LOCK`; UnreadableImage past
    `MAX_GUNZIPPED`. Called only on a cache miss, so the previous file's copy, which the cache
    is about to drop and no reader holds outside the lock, is closed here."""
    _close_last()
    # unbuffered: closing it moves no file offset (a buffered file seeks back over what it read
    # ahead, and a forked child's copy shares the parent's offset: `_forget_unpacked`)
    out = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 (kept open: the cache hands it out)
    _LAST_UNPACKED.append(out)
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            view = memoryview(chunk)
            while view:  # an unbuffered write may take part of it
                view = view[out.write(view):]
            if out.tell() > MAX_GUNZIPPED:
                out.close()
                raise UnreadableImage("gzipped file decompresses to more than "
                                      f"{MAX_GUNZIPPED >> 30} GiB", path)
    return out


def _close_last() -> None:
    """Close the copy `unpacked` made last (in a forked child, the child's descriptor only: the
    parent's stays open)."""
    while _LAST_UNPACKED:
        _LAST_UNPACKED.pop().close()


def _forget_unpacked() -> None:
    """In a forked child: drop the parent's `unpacked` copy and lock. The copy's descriptor
    shares the parent's file offset, so readers in two processes seeking it at once read each
    other's bytes (a worker pool's loads gave wrong pixels); the child unpacks its own copy
    when asked. The lock is new because a thread of the parent may have held it at the fork."""
    global UNPACKED_LOCK
    UNPACKED_LOCK = threading.Lock()
    unpacked.cache_clear()
    _close_last()


os.register_at_fork(after_in_child=_forget_unpacked)


@contextmanager
def unpacked_image(path: str | Path, kind: Any, others: dict[str, Path] | None = None
                   ) -> Iterator[Any]:
    """nibabel's image (class `kind`) of a gzipped file read from its `unpacked` copy, under
    `UNPACKED_LOCK` while the block reads it: one volume after another of a gzipped 4D file
    (NIfTI, MGZ, AFNI's .BRIK.gz) costs a seek each, not an unpacking. `others`: the other files
    of a pair by nibabel's key (AFNI's `header`), read as they are; without them every key of
    `kind` is the gzipped file (a single-file format)."""
    from nibabel.fileholders import FileHolder

    with UNPACKED_LOCK:
        holder = FileHolder(fileobj=unpacked(path))
        yield kind.from_file_map({key: FileHolder(filename=str(others[key]))
                                  if others and key in others else holder
                                  for key, _ in kind.files_types})
