"""The paths of a command's inputs and outputs: what an input is read from, and which files no
result may replace (`medq restore`, `medq simulate`)."""

from __future__ import annotations

from pathlib import Path

from medq.errors import InvalidParameter
from medq.io.special import resolved


def read_from(path: Path) -> Path:
    """The file or folder (resolved) an input is read from: a series' folder for
    `<folder>#<uid>`, the file for `<file>@volume=<k>`."""
    from medq.io.dicom_series import series_in_folder
    from medq.io.volumes import volume_in_file

    named = series_in_folder(path) or volume_in_file(path)
    return resolved(Path(named[0]) if named else path)


def input_files(path: Path) -> set[Path]:
    """The files and folders (resolved) an input is read from, which no result may replace
    (a folder that may not be listed holds none: reading it fails alone)."""
    where = read_from(path)
    found = {where}
    try:
        if where.is_dir():
            found |= {resolved(f) for f in where.iterdir()}
    except OSError:
        pass
    return found


def refuse_overwrite(path: Path, target: Path, output: Path) -> None:
    """InvalidParameter (naming `output`) when writing `target` would replace input `path`."""
    if resolved(target) in input_files(path):
        raise InvalidParameter(f"the result of {path} would replace the input itself; "
                               "write it elsewhere (medq never overwrites its input)", output)
