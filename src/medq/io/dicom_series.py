"""DICOM series: the image files of a folder grouped by SeriesInstanceUID, one series of a folder
holding several (`<folder>#<uid>`), the volumes of a series whose slices repeat positions
(`<folder>#<uid>@<keyword>=<value>`), read as one `(z, y, x)` volume."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from medq.errors import (
    EmptySeries,
    MedqError,
    MixedSeries,
    UnreadableImage,
    UnsupportedImage,
    unreadable,
)
from medq.image import MedImage
from medq.io.archive import unopened
from medq.io.dicom import DICOM_SUFFIXES, assemble, has_pixels, has_preamble, read_dataset
from medq.io.dicom_tags import as_floats, as_number, as_text
from medq.wording import first_of


def scan_folder(folder: Path) -> dict[str, list[tuple[Path, Dataset]]]:
    """Group the DICOM image files of `folder` by SeriesInstanceUID (other files are ignored)."""
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.name.upper() == "DICOMDIR":
            continue
        if not has_preamble(f) and f.suffix.lower() not in (*DICOM_SUFFIXES, ""):
            continue
        try:
            ds = read_dataset(f)
        except UnreadableImage:
            if has_preamble(f):
                raise
            continue  # README without suffix, random non-DICOM file
        if has_pixels(ds):
            groups.setdefault(as_text(ds.get("SeriesInstanceUID")) or "", []).append((f, ds))
    return groups


SERIES_MARK = "#"
"""Separator of `<folder>#<SeriesInstanceUID>`: one series of a folder that holds several."""

PART_MARK = "@"
"""Separator of `<folder>#<uid>@<keyword>=<value>`: one part of a series whose slices repeat
their positions (`series_parts`)."""

SPLIT_KEYS = ("EchoNumbers", "TemporalPositionIdentifier", "AcquisitionNumber", "TriggerTime",
              "EchoTime")
"""Header keywords that tell the volumes of one series apart when its slices repeat positions
(echoes, phases, repeated acquisitions), tried in this order."""


def series_in_folder(path: str | Path) -> tuple[Path, str, str | None] | None:
    """(folder, SeriesInstanceUID, part or None) of a `<folder>#<uid>[@<keyword>=<value>]` path
    that names no file or folder itself but whose folder exists; None for any other path."""
    text = str(path)
    if SERIES_MARK not in text or Path(text).exists():
        return None
    folder, rest = text.rsplit(SERIES_MARK, 1)
    uid, _, part = rest.partition(PART_MARK)
    return (Path(folder), uid, part or None) if uid and Path(folder).is_dir() else None


def _position(ds: Dataset) -> tuple[float, ...] | None:
    """A slice's ImagePositionPatient rounded to 1 µm, or None when it states none."""
    values = as_floats(ds.get("ImagePositionPatient"))
    return tuple(round(v, 3) for v in values) if values and len(values) == 3 else None


def series_parts(datasets: Sequence[Dataset]) -> dict[str, list[int]] | None:
    """The volumes of one series whose slices repeat positions (multi-echo, multi-phase):
    `{"<keyword>=<value>": indices}` split by the first of `SPLIT_KEYS` that leaves no position
    twice in a part; None when no position repeats or no keyword separates them."""
    positions = [_position(d) for d in datasets]
    if None in positions or len(set(positions)) == len(positions):
        return None
    for key in SPLIT_KEYS:
        values = [as_text(d.get(key)) for d in datasets]
        if "" in values:
            continue
        parts: dict[str, list[int]] = {}
        for i, value in enumerate(values):
            parts.setdefault(f"{key}={value}", []).append(i)
        if len(parts) > 1 and all(len({positions[i] for i in idx}) == len(idx)
                                  for idx in parts.values()):
            return parts
    return None


def empty_folder(folder: str | Path, advice: str, walked: bool = True) -> EmptySeries:
    """The error of a folder that holds no image medq reads, naming the archives in it (which a
    folder's walk does not open) with `advice` on them; when the folder was read as one image
    (not `walked`), also the subfolders that hold files, which such a read does not enter."""
    archives = unopened(folder, advice)
    below = "" if walked else subfolders_note(Path(folder))
    return EmptySeries("folder holds no image medq reads (DICOM, NIfTI, PNG, …)"
                       + (" at its top level" if below else "")
                       + "".join(f"; {part}" for part in (below, archives) if part), folder)


def subfolders_note(folder: Path) -> str:
    """The subfolders of `folder` that hold files, named for an error ("" when none): a
    patient's folder of series folders is read one series folder at a time."""
    try:
        found = sorted(d.name for d in folder.iterdir() if d.is_dir()
                       and not d.name.startswith(".") and any(f.is_file() for f in d.iterdir()))
    except OSError:
        return ""
    if not found:
        return ""
    names = first_of(found, 3)
    which = f"its subfolders {names} hold" if len(found) > 1 else f"its subfolder {names} holds"
    return (f"{which} files: name one image or series folder (medq assess, info and qc walk a "
            "folder's subfolders themselves)")


def read_series(folder: str | Path, uid: str | None = None, part: str | None = None
                ) -> MedImage:
    """Read a folder holding exactly one DICOM series into a `(z, y, x)` volume, or with `uid`
    the series of that SeriesInstanceUID among several (named `<folder>#<uid>`), or with `part`
    one volume of a series whose slices repeat positions (`<folder>#<uid>@<keyword>=<value>`)."""
    folder = Path(folder)
    groups = scan_folder(folder)
    if not groups:
        raise empty_folder(folder, "name {them} to read {them}", walked=False)
    if uid is not None:
        source = Path(f"{folder}{SERIES_MARK}{uid}" + (f"{PART_MARK}{part}" if part else ""))
        if uid not in groups:
            raise EmptySeries("the folder holds no DICOM series of that SeriesInstanceUID",
                              source)
        items = groups[uid]
        if part:
            key, _, value = part.partition("=")
            items = [(p, d) for p, d in items if as_text(d.get(key)) == value]
            if not items:
                raise EmptySeries(f"the series has no slice with {key} {value}", source)
        return _assemble_series([d for _, d in items], [p for p, _ in items], source)
    if len(groups) > 1:
        names = [f"{uid or '<no UID>'} '{as_text(items[0][1].get('SeriesDescription')) or ''}' "
                 f"({len(items)} files)" for uid, items in groups.items()]
        raise MixedSeries(f"folder holds {len(groups)} DICOM series: {'; '.join(names)}; "
                          f"name one as <folder>{SERIES_MARK}<SeriesInstanceUID>", folder)
    uid, items = next(iter(groups.items()))
    parts = series_parts([d for _, d in items])
    if parts:
        raise UnsupportedImage(f"the series holds {len(parts)} volumes at the same positions "
                               f"({', '.join(parts)}); name one as <folder>{SERIES_MARK}{uid}"
                               f"{PART_MARK}{next(iter(parts))}", folder)
    if len(items) > 1 and any(int(as_number(d.get("NumberOfFrames")) or 1) > 1 for _, d in items):
        raise UnsupportedImage(f"series holds {len(items)} files of which some are multi-frame; "
                               "load the multi-frame file itself", folder)
    return _assemble_series([d for _, d in items], [p for p, _ in items], folder)


def distinct_instances(datasets: list[Dataset], paths: list[Path]
                       ) -> tuple[list[Dataset], list[Path]]:
    """The datasets (and their paths) without those repeating an earlier one: the same
    SOPInstanceUID (an instance stored twice, as copied folders and PACS exports hold it), or
    the same position and the same pixel bytes under a new SOPInstanceUID (a slice sent again);
    two different slices at one position stay, and the series is refused by `assemble`. Of the
    copies of one SOPInstanceUID the first whose pixel data is whole is read (`whole_pixels`: a
    copy cut short in a re-send, whatever its name, does not spoil the series)."""
    uids = [str(ds.get("SOPInstanceUID") or "") for ds in datasets]
    chosen: dict[str, int] = {}
    for i, uid in enumerate(uids):  # a copy's bytes are counted only where its UID repeats
        if uid and (uid not in chosen or whole_pixels(datasets[i])
                    and not whole_pixels(datasets[chosen[uid]])):
            chosen[uid] = i
    placed: dict[tuple[float, ...], list[bytes]] = {}
    kept = []
    for i, (ds, path, uid) in enumerate(zip(datasets, paths, uids, strict=True)):
        if uid and chosen[uid] != i:
            continue
        where, pixels = _position(ds), ds.get("PixelData")
        if where is not None and isinstance(pixels, bytes):
            if pixels in placed.get(where, []):
                continue
            placed.setdefault(where, []).append(pixels)
        kept.append((ds, path))
    return [ds for ds, _ in kept], [path for _, path in kept]


def whole_pixels(ds: Dataset) -> bool:
    """Whether a dataset's native (uncompressed) pixel data holds every byte its rows, columns,
    samples, bits allocated and frames call for; a compressed one is taken as whole."""
    pixels = ds.get("PixelData")
    if not isinstance(pixels, bytes):
        return False
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if syntax is not None and syntax.is_compressed:
        return True
    try:
        need = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
                * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.BitsAllocated)) // 8
    except (AttributeError, TypeError, ValueError):
        return True  # not told how many: the reader decides
    return len(pixels) >= need


def _assemble_series(datasets: list[Dataset], paths: list[Path], source: Path) -> MedImage:
    """`assemble` for a series (an instance stored twice read once: `distinct_instances`);
    anything but a medq error becomes a one-line UnreadableImage."""
    datasets, paths = distinct_instances(datasets, paths)
    try:
        return assemble(datasets, paths, source, "dicom-series")
    except MedqError:
        raise
    except Exception as e:
        raise unreadable(e, source, "malformed DICOM series") from e


def read_series_files(files: Sequence[str | Path], source: str | Path) -> MedImage:
    """Read the given DICOM files as one series named `source` (their folder may hold others)."""
    paths = [Path(f) for f in files]
    if not paths:
        raise EmptySeries("no DICOM files given", source)
    return _assemble_series([read_dataset(f) for f in paths], paths, Path(source))
