"""A MetaImage or NRRD header without its geometry, for files whose geometry ITK refuses.

ITK will not make an image of zero or NaN spacing or of a singular direction matrix (a valid
file may state either: a scanner's export with no calibration, a hand-written header), so
SimpleITK cannot read such a file at all. `unit_frame_header` restates the header without its
spacing, origin and direction fields (ITK's defaults: 1 mm, at 0, identity) as a detached header
(.mhd / .nhdr) that reads the original file's pixels where they are: an attached data block by
its offset (MetaImage `HeaderSize`, NRRD `line skip`), a detached data file by its absolute
path. Nothing is copied; every other field (pixel type, sizes, encoding, byte order) is kept.

`stated_axes` tells, axis by axis, whether the header states a usable spacing at all: ITK reads
a NRRD whose `spacings` are NaN, or a header with no spacing field, at 1 mm without a word.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

HEADER_BYTES = 1 << 20
"""At most this much of a file is read as its header (headers are a few hundred bytes)."""

HEADER_SUFFIX = {"metaimage": ".mhd", "nrrd": ".nhdr"}
"""The detached header suffix of each format, naming the restated header."""

_METAIMAGE_GEOMETRY = ("ElementSpacing", "ElementSize", "TransformMatrix", "Rotation",
                       "Orientation", "Offset", "Position", "Origin", "CenterOfRotation",
                       "AnatomicalOrientation")
_NRRD_GEOMETRY = ("space", "space dimension", "space directions", "space origin", "space units",
                  "spacings", "axis mins", "axis maxs", "axismins", "axismaxs", "thicknesses",
                  "measurement frame")
_NRRD_DATA = ("data file", "datafile")
_NRRD_LINE_SKIP = ("line skip", "lineskip")


def _text(path: Path) -> str:
    """`path` as header text: its file-system bytes, one character a byte as the header's."""
    return os.fsencode(path).decode("latin-1")


def _absolute(name: str, folder: Path) -> str:
    """A data file name (or file name pattern) a header states, absolute against its folder."""
    return name if os.path.isabs(name) else os.path.join(_text(folder), name)


def _metaimage(lines: list[str], path: Path) -> list[str] | None:
    """The MetaImage header in `lines` (the file's start) without geometry, reading the
    file's data where it lies."""
    keys = [line.partition("=")[0].strip() for line in lines]
    if "ElementDataFile" not in keys:
        return None  # not a header to restate
    last = keys.index("ElementDataFile")  # the header's last field
    value, folder = lines[last].partition("=")[2].strip(), path.resolve().parent
    out = [line.rstrip("\r") for line, key in zip(lines[:last], keys, strict=False)
           if key not in _METAIMAGE_GEOMETRY]
    if value == "LOCAL":  # the data follows the header: skip its bytes (latin-1: one a character)
        offset = sum(len(line) + 1 for line in lines[: last + 1])
        out = [line for line in out if line.partition("=")[0].strip() != "HeaderSize"]
        return [*out, f"HeaderSize = {offset}", f"ElementDataFile = {_text(path.resolve())}"]
    if value.startswith("LIST"):  # the data files follow, one a line
        files = [_absolute(name.strip(), folder) for name in lines[last + 1:] if name.strip()]
        return [*out, f"ElementDataFile = {value}", *files]
    return [*out, f"ElementDataFile = {_absolute(value, folder)}"]


def _nrrd(lines: list[str], path: Path) -> list[str] | None:
    """The NRRD header in `lines` (the file's start) without geometry, reading the file's
    data where it lies."""
    if not lines or not lines[0].startswith("NRRD"):
        return None
    out, folder, data, skip, end = [lines[0]], path.resolve().parent, "", 0, 0
    for i, raw in enumerate(lines[1:], start=1):
        line = raw.rstrip("\r")
        if not line.strip():  # the header's end (an attached data block follows)
            end = i + 1
            break
        field, _, value = (part.strip() for part in line.partition(":"))
        key = field.lower()
        if line.startswith("#") or ":=" in line:  # a comment or a key/value pair
            out.append(line)
        elif key in _NRRD_LINE_SKIP and value.isdigit():
            skip = int(value)
        elif key in _NRRD_DATA and value.startswith("LIST"):  # the data files follow
            files = [_absolute(name.strip(), folder) for name in lines[i + 1:] if name.strip()]
            return [*out, f"line skip: {skip}", f"data file: {value}", *files]
        elif key in _NRRD_DATA:
            data = _absolute(value, folder)
        elif key not in _NRRD_GEOMETRY:
            out.append(line)
    if not data and not end:
        return None  # neither a data file nor the blank line that ends an attached header
    if not data:  # attached: the data block follows the header's lines
        data, skip = _text(path.resolve()), skip + end
    return [*out, f"line skip: {skip}", f"data file: {data}"]


def _usable(values: list[float]) -> list[bool]:
    """Whether each stated spacing (or axis vector length) is finite and positive."""
    return [math.isfinite(v) and v > 0 for v in values]


def _number(text: str) -> float:
    """`text` as a number; NaN where it is none."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def _nrrd_axes(fields: dict[str, str]) -> list[bool]:
    """Per axis (fastest first), whether the NRRD fields state a usable spacing: by `space
    directions` (a vector of finite, nonzero length; `none` for a non-spatial axis) or by
    `spacings`, whichever states more."""
    directions = [
        math.hypot(*(_number(v) for v in vector.split(","))) if vector.strip() else math.nan
        for vector in re.findall(r"\(([^)]*)\)|none", fields.get("space directions", ""))]
    spacings = [_number(v) for v in fields.get("spacings", "").split()]
    return max(_usable(directions), _usable(spacings), key=sum)


def _fields(text: str, fmt: str) -> dict[str, str]:
    """The header fields at the start of a MetaImage (`key = value`, up to `ElementDataFile`)
    or NRRD file (`key: value`, up to the blank line), keys in lower case."""
    fields: dict[str, str] = {}
    separator, last = ("=", "elementdatafile") if fmt == "metaimage" else (":", "")
    for line in text.split("\n")[1 if fmt == "nrrd" else 0:]:  # past the NRRD magic
        key, sep, value = line.rstrip("\r").partition(separator)
        if not line.strip() or (fmt == "metaimage" and not sep):
            break  # the header's end: a blank line, or a data block
        if sep and not line.startswith("#") and ":=" not in line:
            fields.setdefault(key.strip().lower(), value.strip())
        if key.strip().lower() == last:
            break
    return fields


def stated_axes(path: Path, fmt: str) -> list[bool] | None:
    """Per axis (x first), whether the header of the MetaImage or NRRD file `path` states a
    usable spacing (finite, positive); an NRRD's leading non-spatial axis (colour) is left out.
    None when its start holds no NRRD header."""
    with open(path, "rb") as f:
        text = f.read(HEADER_BYTES).decode("latin-1")
    fields = _fields(text, fmt)
    if fmt == "metaimage":
        stated = fields.get("elementspacing", fields.get("elementsize", ""))
        return _usable([_number(v) for v in stated.split()])
    if not text.startswith("NRRD"):
        return None
    axes, kinds = _nrrd_axes(fields), fields.get("kinds", "").lower().split()
    if len(axes) == len(kinds) > 1 and not axes[0] and kinds[0] not in ("domain", "space"):
        axes = axes[1:]  # a colour or vector axis, which has no spacing
    return axes


def unit_frame_header(path: Path, fmt: str) -> str | None:
    """The header of the MetaImage or NRRD file `path` (`fmt` 'metaimage' or 'nrrd') restated
    as a detached header without spacing, origin or direction that reads the file's own data;
    None when its start holds no header medq can restate."""
    with open(path, "rb") as f:
        lines = f.read(HEADER_BYTES).decode("latin-1").split("\n")  # an attached data block too
    restated = (_metaimage if fmt == "metaimage" else _nrrd)(lines, path)
    return "\n".join(restated) + "\n" if restated else None


def missing_data_file(path: Path, fmt: str) -> str | None:
    """The one data file the detached header `path` names (MetaImage `ElementDataFile`, NRRD
    `data file`), as it names it, when that file does not exist; None otherwise (data in the
    file itself, a list or a pattern of files, or a file that is there)."""
    with open(path, "rb") as f:
        fields = _fields(f.read(HEADER_BYTES).decode("latin-1"), fmt)
    name = fields.get("elementdatafile") if fmt == "metaimage" else next(
        (fields[k] for k in _NRRD_DATA if k in fields), None)
    if not name or name == "LOCAL" or name.startswith("LIST") or "%" in name or \
            (fmt == "nrrd" and " " in name):
        return None
    return None if os.path.exists(_absolute(name, path.resolve().parent)) else name


_METAIMAGE_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4,
                    "MET_UINT": 4, "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8,
                    "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}
"""Bytes per value of each MetaImage element type."""


def short_data(path: Path) -> tuple[int, int] | None:
    """(bytes present, bytes stated) of an uncompressed MetaImage's pixel data when the file
    (its own data, `LOCAL`, or the one data file it names) holds fewer than its header states
    (a truncated copy); None when complete or not to be told (compressed, a list of files)."""
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
    text = head.decode("latin-1")
    fields = _fields(text, "metaimage")
    name = fields.get("elementdatafile", "")
    kind = fields.get("elementtype", "").upper()
    if fields.get("compresseddata", "false").lower() == "true" or kind not in _METAIMAGE_BYTES \
            or not name or name.startswith("LIST") or "%" in name \
            or fields.get("binarydata", "true").lower() == "false" \
            or fields.get("headersize", "0").strip() not in ("0", ""):
        return None  # text values, or a data file with a header of its own: not told
    try:
        sizes = [int(v) for v in fields.get("dimsize", "").split()]
        channels = int(fields.get("elementnumberofchannels", "1"))
    except ValueError:
        return None
    stated = math.prod(sizes) * channels * _METAIMAGE_BYTES[kind] if sizes else 0
    if name == "LOCAL":
        marker = text.find("ElementDataFile")
        end = text.find("\n", marker)
        if marker < 0 or end < 0:
            return None
        present = path.stat().st_size - (end + 1)
    else:
        data = Path(_absolute(name, path.resolve().parent))
        if not data.is_file():
            return None
        present = data.stat().st_size
    return (present, stated) if 0 <= present < stated else None
