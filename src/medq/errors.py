"""Typed errors: every failure medq reports names the file and the reason in one line."""

from __future__ import annotations

import os
from pathlib import Path


class MedqError(Exception):
    """Base of every error medq raises on purpose."""

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = " ".join(str(reason).split())  # always one line
        self.path = str(path) if path is not None else None
        super().__init__(self.message)

    def __reduce__(self) -> tuple[type, tuple[str, str | None]]:
        """Pickle by reason and path (errors cross from assessment worker processes)."""
        return type(self), (self.reason, self.path)

    @property
    def message(self) -> str:
        """The one-line message: `<file>: <reason>` (or the reason alone); a control character
        in the file's name (a newline) is shown escaped (`\\n`), so the message stays one line."""
        return f"{printable(self.path)}: {self.reason}" if self.path else self.reason

    def to_dict(self) -> dict[str, str]:
        """JSON form used in place of a result: `{"type", "message"}`."""
        return {"type": type(self).__name__, "message": self.message}


class InputError(MedqError):
    """Something about the user's input is wrong; the CLI exits with code 2."""


class MissingInput(InputError):
    """The path does not exist."""


class UnreadableImage(InputError):
    """The file exists but cannot be decoded (corrupt, truncated, not an image)."""


class UnsupportedImage(InputError):
    """The file is readable but holds something medq does not handle (waveform, plan, 4D, …)."""


class EmptySeries(InputError):
    """A directory or series without any image in it."""


class MixedSeries(InputError):
    """A directory holding several DICOM series where one was expected."""


class InvalidImage(InputError):
    """The pixels are unusable: all NaN/inf, empty shape, constant where structure is needed."""


class DatabaseUnavailable(MedqError):
    """The results database cannot take a write now; nothing was written (HTTP 503)."""


class DatabaseGone(DatabaseUnavailable):
    """The results database's file was deleted or replaced while medq had it open: a write
    would land in the old file's remains and be lost."""


class DatabaseBusy(DatabaseUnavailable):
    """Another process held the SQLite database's write lock past the busy timeout (30 s)."""


class InvalidParameter(InputError):
    """A user-supplied parameter is out of range or unknown (degradation kind, level, format)."""


class ModelError(MedqError):
    """A model, its weights or its config is broken; an internal error (CLI exit code 1)."""


def unreadable(exc: Exception, path: str | Path, what: str | None = None) -> UnreadableImage:
    """The UnreadableImage of a file a reader tripped on with `exc` (`<what> (<type>: <text>)`,
    or `<type>: <text>`); with MEDQ_DEBUG set, `exc` itself is raised instead, so that a fault
    of medq's own code shows its traceback rather than passing for a bad file."""
    if debugging():
        raise exc
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return UnreadableImage(refused(exc, path, what), path)
    detail = f"{type(exc).__name__}: {exc}"
    return UnreadableImage(f"{what} ({detail})" if what else detail, path)


DANGLING = "no such file or directory (a symbolic link to a missing file?)"
"""The reason of a path the walk found whose link leads to nothing."""


def refused(error: OSError, path: str | Path, what: str | None = None) -> str:
    """The system's refusal of `path` in words, as every command gives it: `<what>` (else
    "cannot read the file" or "cannot list the folder") with the reason ("a loop of symbolic
    links", "permission denied", a pair's other file named), not "PermissionError: [Errno 13]"."""
    import errno

    words = ("a loop of symbolic links" if error.errno == errno.ELOOP
             else error.strerror or type(error).__name__)
    words = words[0].lower() + words[1:]
    if error.filename and os.path.abspath(error.filename) != os.path.abspath(path):
        words += f": {Path(error.filename).name}"  # a pair's data file
    where = "cannot list the folder" if os.path.isdir(path) else "cannot read the file"
    return f"{what or where} ({words})"


def printable(name: str | Path) -> str:
    """A file name as one line: its control characters (a newline) escaped (`\\n`)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name))


def debugging() -> bool:
    """Whether MEDQ_DEBUG asks for tracebacks (set, and not `0`, `false`, `no` or `off`)."""
    return os.environ.get("MEDQ_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")

