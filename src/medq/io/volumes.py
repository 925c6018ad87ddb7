"""One 3D volume of a 4D file (a diffusion or time series): `<file>@volume=<k>`.

medq grades 2D and 3D images. A 4D NIfTI, MetaImage, NRRD (or MGH, MINC, PAR/REC, AFNI) file of
several volumes is not read whole; `load("dwi.nii.gz@volume=0")` reads its first volume (k counts
from 0), the refusal of the whole file names that form, and `each_volume` turns such a file into
all of its volumes (the commands' `--each-volume`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any, TypeVar

from medq.errors import (
    DANGLING,
    InputError,
    InvalidParameter,
    MissingInput,
    UnreadableImage,
    UnsupportedImage,
    refused,
)

T = TypeVar("T")

VOLUME_MARK = "@volume="
"""Joins a 4D file's path and the index of one of its volumes."""

_INDEX = re.compile(r"\d+")


def volume_mark(path: str | Path) -> tuple[str, int] | None:
    """(file, volume index) of a path written `<file>@volume=<k>`, whether or not anything is
    there (a stored item's path); None for any other path."""
    file, mark, index = str(path).rpartition(VOLUME_MARK)
    return (file, int(index)) if mark and _INDEX.fullmatch(index) else None


def volume_in_file(path: str | Path) -> tuple[Path, int] | None:
    """(file, volume index) of a `<file>@volume=<k>` path that names no file itself but whose
    file exists; None for any other path."""
    named = volume_mark(path)
    if named is None or Path(path).exists() or not Path(named[0]).is_file():
        return None
    return Path(named[0]), named[1]


def missing(path: str | Path) -> InputError:
    """The error of a path that names nothing: MissingInput, or for `<file>@volume=<k>` of an
    existing file with a `k` that is no whole number, what the mark takes."""
    text = str(path)
    if VOLUME_MARK in text:
        file, index = text.rsplit(VOLUME_MARK, 1)
        if Path(file).is_file() and not _INDEX.fullmatch(index):
            return InvalidParameter(f"{index!r} is not a volume number: name a volume of "
                                    f"{Path(file).name} as {VOLUME_MARK}<k>, k = 0, 1, 2, …",
                                    path)
    return _unreachable(text) or MissingInput("no such file or directory", path)


def _unreachable(path: str) -> InputError | None:
    """The error of a symbolic link that leads nowhere (a loop, a missing target), in `medq qc`'s
    words (a loop read as "no such file or directory"), else None."""
    import errno
    import os

    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return UnreadableImage(refused(e, path), path)
        if os.path.islink(path):
            return MissingInput(DANGLING, path)
    return None


def several_volumes(count: int, source: str | Path | None) -> UnsupportedImage:
    """The refusal of a whole 4D file: how many volumes it has and how to name one."""
    return UnsupportedImage(f"4D image of {count} volumes (a diffusion or time series); name "
                            f"one 3D volume as <file>{VOLUME_MARK}<k>, k = 0 … {count - 1} "
                            "(medq assess, describe, restore and qc run also take every volume "
                            "with --each-volume)", source)


def check_volume(volume: int, count: int, source: str | Path | None) -> None:
    """InvalidParameter unless `volume` indexes one of a 4D file's `count` volumes."""
    if count < 1:
        raise InvalidParameter("not a 4D image: it has no volumes to pick", source)
    if not 0 <= volume < count:
        raise InvalidParameter(f"volume {volume} does not exist: the file has {count} "
                               f"(0 … {count - 1})", source)


def volume_file_name(path: Path) -> str:
    """The file name a result of `<file>@volume=<k>` is written under: `<stem>_volume<k><ext>`
    (`dwi.nii.gz@volume=3` → `dwi_volume3.nii.gz`); other paths keep their name."""
    named = volume_in_file(path)
    if named is None:
        return path.name
    file, index = named
    name = file.name
    ext = ".nii.gz" if name.lower().endswith(".nii.gz") else file.suffix
    return f"{name[:len(name) - len(ext)]}_volume{index}{ext}"


def volume_count(path: str | Path) -> int:
    """How many volumes a 4D image file holds, from its header alone; 0 for anything else (a
    3D or 2D image, a folder, another format, a file that cannot be read: its loading says why)."""
    from medq.io import sniff
    from medq.io.neuro import FORMATS as NIBABEL_FORMATS
    from medq.io.neuro import open_neuro

    path = Path(path)
    try:
        if not path.is_file():
            return 0
        fmt = sniff(path)
        if fmt == "nifti" or fmt in NIBABEL_FORMATS:
            from medq.io import minc
            from medq.io.nifti import open_nifti, quiet_header_checks

            with quiet_header_checks():  # a header read: nibabel's notes stay off stderr
                img = open_nifti(path) if fmt == "nifti" else open_neuro(path, fmt)
            if minc.is_minc(img):  # its time axis is first: counted in medq's axis order
                return minc.volume_count(img)
            shape = img.shape
            return int(shape[3]) if len(shape) == 4 else 0
        if fmt in ("metaimage", "nrrd"):
            import SimpleITK as sitk

            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            return int(reader.GetSize()[3]) if reader.GetDimension() == 4 else 0
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is loaded
        return 0
    return 0


def volume_paths(path: str | Path) -> list[str]:
    """`<file>@volume=0`, `<file>@volume=1`, … of a 4D file of two or more volumes; `[path]`
    for anything else."""
    count = volume_count(path)
    return [f"{path}{VOLUME_MARK}{k}" for k in range(count)] if count > 1 else [str(path)]


def each_volume(paths: list[Path]) -> list[Path]:
    """The paths with every 4D file of two or more volumes replaced by its volumes
    (`volume_paths`)."""
    return [Path(p) for path in paths for p in volume_paths(path)]


def last_file_cache(read: Callable[..., T]) -> Callable[..., T]:
    """`read(path, *args)` kept for the last file version read in this process (the key: its
    resolved path, modification time and size), for readers that must take a 4D file whole:
    the volumes of a series are read one after the other (`--each-volume`), and reading the
    whole file again for each made that quadratic. `cache_clear` and `cache_info` as
    `functools.lru_cache`'s."""
    cached = lru_cache(maxsize=1)(lambda version, path, *args: read(path, *args))

    @wraps(read)
    def call(path: str | Path, *args: Any) -> T:
        p = Path(path)  # read (and named in its errors) as given
        stat = p.stat()
        return cached((str(p.resolve()), stat.st_mtime_ns, stat.st_size), p, *args)

    call.cache_clear, call.cache_info = cached.cache_clear, cached.cache_info  # type: ignore
    return call
