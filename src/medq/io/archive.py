"""Archives as inputs: a zip or tar file of images (a study exported from PACS, a dataset
download) is read as the folder it holds.

`unpack` extracts an archive once per process into a private temporary folder, removed when
the process exits, and returns that folder; the CLI then finds the images inside it as in any
folder (`qc.discover`). `shown` writes a path inside such a folder as the user knows it,
`<archive>/<path inside>`, in every line medq prints. Extraction is refused, with the archive
named, when it is unreadable or encrypted, when a member would land outside the folder (an
absolute path, `..`, a link pointing out: tar's `data` filter), or when its unpacked size
exceeds the free space of the temporary folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from medq.errors import EmptySeries, InputError, MedqError, UnreadableImage, UnsupportedImage
from medq.wording import first_of

ARCHIVE_ENDINGS = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
"""Name endings of the archives medq reads as folders."""

_UNPACKED: dict[Path, tuple[Path, str, int]] = {}
"""Archive (resolved) → (its extraction folder, the archive's path as first written, the pid of
the process that made the folder and removes it)."""


_FAILED: dict[Path, MedqError] = {}
"""Archive (resolved) → why `unpack_all` could not unpack it."""


def archive_name(name: str | os.PathLike[str]) -> bool:
    """True for a file name that ends like a zip or tar archive."""
    return Path(name).name.lower().endswith(ARCHIVE_ENDINGS)


def is_archive(path: str | os.PathLike[str]) -> bool:
    """True for an existing file whose name ends like a zip or tar archive."""
    return archive_name(path) and Path(path).is_file()


def _is_zip(path: Path) -> bool:
    """A zip archive by name (a tar archive otherwise), so a damaged one gets zip's reason."""
    return path.name.lower().endswith(".zip")


def _members(path: Path) -> tuple[int, int]:
    """How many members the archive lists and the bytes they take once unpacked."""
    if _is_zip(path):
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            return len(infos), sum(info.file_size for info in infos)
    with tarfile.open(path) as t:
        members = t.getmembers()
        return len(members), sum(m.size for m in members if m.isfile())


UNICODE_PATH_FIELD = 0x7075
"""Info-ZIP's Unicode Path extra field: the member's name in UTF-8, beside a legacy one."""


def member_name(info: zipfile.ZipInfo) -> str:
    """A zip member's name as written: UTF-8 when the archive flags it, else from Info-ZIP's
    Unicode Path field (Linux `zip` flags nothing and writes one), else the legacy name read
    as UTF-8 when it is valid UTF-8 (macOS and most tools write UTF-8 unflagged), else as
    zipfile read it (code page 437)."""
    if info.flag_bits & 0x800:
        return info.filename
    extra, at = info.extra, 0
    while at + 4 <= len(extra):
        kind, size = int.from_bytes(extra[at:at + 2], "little"), int.from_bytes(
            extra[at + 2:at + 4], "little")
        if kind == UNICODE_PATH_FIELD and size > 5 and extra[at + 4] == 1:
            try:
                return extra[at + 9:at + 4 + size].decode("utf-8")
            except UnicodeDecodeError:
                break
        at += 4 + size
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _extract(path: Path, into: Path, named: str | os.PathLike[str]) -> None:
    """Extract every member of the archive at `path` (the user's `named`) into `into`."""
    if _is_zip(path):
        with zipfile.ZipFile(path) as z:
            infos, names = z.infolist(), []
            for info in infos:
                info.filename = member_name(info)
                name = info.filename.replace("\\", "/")
                if name.startswith("/") or ".." in name.split("/"):
                    raise UnsupportedImage(f"archive refused, nothing in it read: its member "
                                           f"{info.filename!r} would be written outside the "
                                           "archive's folder", named)
                names += [] if info.is_dir() else [name]
            _refuse_repeated(names, named)
            z.extractall(into, infos)
        return
    with tarfile.open(path) as t:
        _refuse_repeated([m.name for m in t.getmembers() if not m.isdir()], named)
        t.extractall(into, filter="data")


def _refuse_repeated(names: list[str], named: str | os.PathLike[str]) -> None:
    """UnsupportedImage when members share a name: unpacked, the last would replace the others
    without a word (a good scan lost behind a broken one of its name)."""
    seen: set[str] = set()
    for name in names:
        key = os.path.normpath(name)
        if key in seen:
            raise UnsupportedImage(f"archive refused, nothing in it read: it holds several "
                                   f"members named {name!r}, and only one could be read", named)
        seen.add(key)


def unpack(path: str | os.PathLike[str]) -> Path:
    """The folder holding the archive's members (extracted on the first call in this process,
    removed at its exit; `shown` then writes it as this call names the archive); typed errors
    naming the archive when it cannot be unpacked."""
    archive = Path(path).resolve()
    known = _UNPACKED.get(archive)
    if known is not None:
        _UNPACKED[archive] = (known[0], str(path), known[2])
        return known[0]
    try:
        count, size = _members(archive)
        if count == 0:
            raise EmptySeries("the archive holds no files", path)
        free = shutil.disk_usage(tempfile.gettempdir()).free
        if size > free:
            raise InputError(f"archive unpacks to {size / 1e9:.1f} GB but the temporary "
                             f"folder {tempfile.gettempdir()} has {free / 1e9:.1f} GB free "
                             "(TMPDIR moves it)", path)
        folder = Path(tempfile.mkdtemp(prefix="medq-archive-")).resolve()
        try:
            _extract(archive, folder, path)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, RuntimeError,
            NotImplementedError) as e:  # corrupt, truncated, encrypted, unknown compression
        raise UnreadableImage(f"cannot unpack archive ({type(e).__name__}: {e})", path) from e
    _UNPACKED[archive] = (folder, str(path), os.getpid())
    return folder


def walk_folders(root: str | os.PathLike[str], onerror: Callable[[OSError], None] | None = None
                 ) -> Iterator[tuple[str, list[str]]]:
    """(folder, file names) of `root` and every folder under it, depth first in name order, as
    `qc.discover` and `archives_under` read a folder: hidden folders skipped; a linked folder
    (a training set is often built of links) followed when it leads outside `root` (one inside
    is walked under its own name) and not to a folder holding `root`, each such target once (a
    second link to it, or a loop of links, is not walked again)."""
    top = os.path.realpath(root)

    def within(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    taken: set[str] = set()
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as found:
                entries = sorted(found, key=lambda e: e.name)
        except OSError as e:
            if onerror is not None:
                onerror(e)
            continue
        files, folders = [], []
        for entry in entries:
            try:
                is_folder = entry.is_dir()
            except OSError:  # a link to nothing, a loop of links: a file that fails to read
                is_folder = False
            if not is_folder:
                files.append(entry.name)
            elif not entry.name.startswith("."):
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if within(target, top) or within(top, target) or target in taken:
                        continue
                    taken.add(target)
                folders.append(entry.path)
        yield folder, files
        stack.extend(reversed(folders))


def archives_under(folder: str | os.PathLike[str]) -> list[Path]:
    """The zip and tar archives under `folder` (walked as `qc.discover` walks it:
    `walk_folders`, hidden files skipped), sorted, written under `folder` as given."""
    found = []
    for where, files in walk_folders(folder):
        found += [Path(where) / f for f in files if not f.startswith(".") and archive_name(f)]
    return sorted(p for p in found if p.is_file())


def unopened(folder: str | os.PathLike[str], advice: str) -> str:
    """What a walked folder leaves unread, for a note or an error: its zip and tar archives
    (a walked folder never opens them, so a study beside its own export is not read twice)
    and `advice` on reading them (`{them}` becomes "it" for one); "" when it holds none."""
    found = archives_under(folder)
    if not found:
        return ""
    names = first_of(found, 3)
    some = "1 zip/tar archive" if len(found) == 1 else f"{len(found)} zip/tar archives"
    return f"{some} inside not opened ({names}): " + advice.format(
        them="it" if len(found) == 1 else "them")


def unpack_all(paths: list[Path]) -> list[Path]:
    """The paths with every archive replaced by the folder it unpacks to (`unpack`); an archive
    that cannot be unpacked stays as it is, and reading it later gives the reason (`refusal`)."""
    out = []
    for p in paths:
        if is_archive(p):
            try:
                p = unpack(p)
            except MedqError as e:
                _FAILED[Path(p).resolve()] = e
        out.append(p)
    return out


def refusal(path: str | os.PathLike[str]) -> MedqError:
    """Why the archive at `path` is not read as an image: the reason it could not be unpacked,
    else that only the commands taking folders read archives."""
    return _FAILED.get(Path(path).resolve()) or UnsupportedImage(
        "an archive of images, not an image: medq assess, describe, restore and info read the "
        "images inside it; extract it for other commands", path)


def shown(text: str | os.PathLike[str]) -> str:
    """`text` with every extraction folder of this process written as its archive's path."""
    out = str(text)
    for folder, written, _ in _UNPACKED.values():
        out = out.replace(str(folder), written)
    return out


@atexit.register
def _remove_unpacked() -> None:
    """Remove the extraction folders this process made (not those a forked parent made)."""
    for folder, _, pid in list(_UNPACKED.values()):
        if pid == os.getpid():
            shutil.rmtree(folder, ignore_errors=True)
