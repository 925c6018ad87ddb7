"""Atomic writes: write into a temporary sibling of the target, then `os.replace` it into place.

A reader never sees a half-written file: either the old content or the complete new one. A
target that is a symbolic link is written through it (the file it points to is replaced, the
link kept), and one that is not a regular file (a named pipe, `/dev/stdout`, a device) is
written into once the content is complete, never replaced.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from medq.io.special import is_special_file

if TYPE_CHECKING:
    from medq.errors import InvalidParameter


def file_in_the_way(folder: str | Path) -> Path | None:
    """The file standing where `folder` or one of its parents has to be a folder (the nearest
    of them that exists, when it is no folder), else None."""
    for path in (Path(folder), *Path(folder).parents):
        if path.exists():
            return None if path.is_dir() else path
    return None


def make_folder(folder: str | Path, target: str | Path | None = None) -> Path:
    """Create `folder` and its parents; InvalidParameter naming `target` (default: the folder)
    when a file stands where a folder has to be, or the folder cannot be made."""
    from medq.errors import InvalidParameter

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        blocker = file_in_the_way(folder) or folder
        raise InvalidParameter(f"cannot write: {blocker} is a file, not a folder",
                               target or folder) from e
    except OSError as e:
        raise InvalidParameter(f"cannot create the folder {folder} ({e.strerror or e})",
                               target or folder) from e
    return folder


def _target(dest: str | Path) -> Path:
    """The path a write to `dest` lands on: the file a symbolic link points to (followed to
    its end, even where that file does not exist yet), else `dest` itself."""
    dest = Path(dest)
    return Path(os.path.realpath(dest)) if dest.is_symlink() else dest


def cannot_write(error: OSError, path: str | Path) -> InvalidParameter:
    """The bad-input error of an output that could not be written (a read-only or full
    folder, a full device): `<path>: cannot write (<reason>)`."""
    from medq.errors import InvalidParameter

    return InvalidParameter(f"cannot write ({error.strerror or error})", path)


def _copy_into(tmp: Path, dest: Path) -> None:
    """Stream the finished temporary file into a special file (`cannot_write` when it cannot
    be written, such as a full device)."""
    try:
        with open(tmp, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    except OSError as e:
        raise cannot_write(e, dest) from e


@contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside `dest`; on success it is moved onto `dest` atomically
    (through a symbolic link; streamed into a named pipe or device, see the module docstring).

    The temporary name ends with `dest`'s own name, so writers that pick the encoding from the
    suffix (nibabel's `.nii.gz`, Pillow's `.png`, NumPy's `.npy`) behave as for `dest`.
    """
    dest = _target(dest)
    special = is_special_file(dest)  # its folder (/dev) may take no temporary file: the system's
    folder = Path(tempfile.gettempdir()) if special else make_folder(dest.parent, dest)
    tmp = folder / f".{secrets.token_hex(4)}.tmp.{dest.name}"
    try:
        yield tmp
        if special:
            _copy_into(tmp, dest)
            tmp.unlink(missing_ok=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `dest`; on success it replaces `dest` (old one removed;
    through a symbolic link, which is kept)."""
    dest = _target(dest)
    make_folder(dest.parent, dest)
    token = secrets.token_hex(4)
    tmp = dest.parent / f".{dest.name}.{token}.tmp"
    tmp.mkdir()
    try:
        yield tmp
        if dest.exists():
            old = dest.parent / f".{dest.name}.{token}.old"
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(dest: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `dest` atomically; returns `dest`."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)
