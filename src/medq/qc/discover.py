"""Archive → QC items: a DICOM series in a folder is one 3D item, every other image file one item.

DICOM files of a folder are grouped by SeriesInstanceUID (headers read with pydicom
`stop_before_pixels`). A group of two or more single-frame slices of one size with positions is
a series item (one per echo or phase when its slices repeat positions:
`io.dicom_series.series_parts`); anything else (one file, projection views sharing a UID,
multi-frame files, Siemens mosaics) gives one item per file. Non-image DICOM objects
(structured reports, presentation states, RT plans, …), derived maps (segmentations, RT dose:
`io.dicom_tags.NOT_ACQUIRED`) and non-image files (text, JSON sidecars, …) are not items. A
file that cannot be read — empty, random bytes, truncated — is still an item: assessing it
records the reason.

Item paths are what the results store records: the file, the series folder when the folder holds
only that series, else `<folder>#<SeriesInstanceUID>`, and for one echo or phase
`<folder>#<SeriesInstanceUID>@<keyword>=<value>`. `load_item` (and `medq.load`) loads any of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medq.errors import EmptySeries, MedqError, MissingInput, UnsupportedImage
from medq.image import MedImage
from medq.io.archive import is_archive, walk_folders
from medq.io.dicom_series import PART_MARK, SERIES_MARK, series_parts  # `<folder>#<uid>[@<part>]`
from medq.io.dicom_tags import NOT_ACQUIRED  # derived maps
from medq.io.mosaic import mosaic_count

NON_IMAGE_MODALITIES = frozenset({"SR", "PR", "KO", "RTPLAN", "RTSTRUCT", "RTRECORD", "DOC",
                                  "REG", "ECG", "AU", "HD", "FID", "PLAN"})
"""DICOM modalities of objects without an image to assess."""


@dataclass(frozen=True)
class Item:
    """One thing to assess: its store path, its member files (sorted) and whether it is a series."""

    path: str
    files: tuple[str, ...]
    series: bool = False
    note: str = ""
    """Why a file of a DICOM series of several files is an item of its own (`split_reason`)."""
    read_as: str = ""
    """The path to read when `path` had to be written with escapes (`storable`), else empty."""


UNLISTED = "a folder the walk could not list"
"""The note of an item that is a folder `discover` could not list (no permission): stored as an
error, and the items stored under it are not taken for gone."""


@dataclass
class _Header:
    """What grouping needs from one DICOM file's header."""

    path: Path
    uid: str | None
    frames: int
    size: tuple[int, int]
    positioned: bool
    ds: Any = None
    """The header itself (`io.dicom_series.series_parts` reads it when slices repeat positions)."""


def _is_candidate(path: Path) -> bool:
    """True for files that may be images (hidden files, DICOMDIR, known non-images, the data
    file of a header beside it and named pipes or devices are not)."""
    from medq.io import NOT_IMAGE_SUFFIXES
    from medq.io.neuro import is_data_file
    from medq.io.special import is_special_file

    name = path.name
    if name.startswith(".") or name.upper() == "DICOMDIR" or is_special_file(path):
        return False
    return not name.lower().endswith(NOT_IMAGE_SUFFIXES) and not is_data_file(path)


def _header(path: Path) -> _Header | None:
    """The grouping header of a DICOM file; None for a non-image object; raises when unreadable."""
    from medq.io.dicom import read_dataset

    ds = read_dataset(path, stop_before_pixels=True)
    if str(ds.get("Modality", "") or "").upper() in NON_IMAGE_MODALITIES | set(NOT_ACQUIRED):
        return None
    uid = str(ds.get("SeriesInstanceUID", "") or "").strip() or None
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        frames = 1
    frames = frames if frames > 1 else mosaic_count(ds) or 1  # a mosaic holds a whole volume
    size = (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0))
    return _Header(path, uid, frames, size, ds.get("ImagePositionPatient") is not None, ds)


def _classify(path: Path) -> tuple[str, _Header | None]:
    """('skip' | 'file' | 'unreadable' | 'dicom', header) for one file of a folder."""
    from medq.io import sniff

    if not _is_candidate(path):
        return "skip", None
    try:
        fmt = sniff(path)
    except UnsupportedImage:
        return "skip", None
    except MedqError:
        return "unreadable", None  # empty or unreadable: an item whose assessment says why
    if fmt != "dicom":
        return "file", None
    try:
        header = _header(path)
    except Exception:  # noqa: BLE001 - a malformed header is the file's problem, reported later
        return "unreadable", None
    return ("skip", None) if header is None else ("dicom", header)


def _is_volume(group: list[_Header]) -> bool:
    """A series item: ≥ 2 single-frame slices of one size and one orientation, each with
    ImagePositionPatient (two localizers of one series, frontal and lateral, are two images),
    that are not all one instance (copies of one SOPInstanceUID are each an image of their own,
    so a damaged copy is not hidden behind a good one)."""
    from medq.io.dicom import orientation_key

    instances = {str(h.ds.get("SOPInstanceUID") or "") or id(h) for h in group}
    return (len(instances) >= 2 and all(h.frames == 1 and h.positioned for h in group)
            and len({h.size for h in group}) == 1
            and len({orientation_key(h.ds) for h in group}) == 1)


def split_reason(group: list[_Header]) -> str:
    """Why the slices of one series, which state where they lie, are not one volume: some
    state no position, or their sizes differ ("" otherwise: projection views, which state no
    position, localizers in two orientations and multi-frame files are images of their own)."""
    placed = [h for h in group if h.positioned and h.frames == 1]
    if len(placed) < 1 or len({str(h.ds.get("SOPInstanceUID") or "") or id(h)
                               for h in group}) < 2:
        return ""
    if len(placed) < len(group) and all(h.frames == 1 for h in group):
        return (f"{len(group) - len(placed)} of {len(group)} state no slice position "
                "(ImagePositionPatient)")
    sizes = [h.size for h in placed]
    if len(set(sizes)) > 1:
        common = sorted(set(sizes), key=lambda size: -sizes.count(size))
        return "slices differ in size (" + ", ".join(f"{r}×{c}" for r, c in common[:3]) + ")"
    return ""


def split_notes(items: list[Item]) -> list[tuple[str, str]]:
    """(folder, note) once per DICOM series read file by file (`Item.note`), in item order."""
    return list(dict.fromkeys((str(Path(item.path).parent), item.note) for item in items
                              if item.note and item.note != UNLISTED))


def folder_items(folder: Path, names: list[str]) -> list[Item]:
    """The items among the files `names` of one folder."""
    singles: list[Path] = []
    dicom_like = 0  # single files that are (or may be) DICOM: they stop a folder being one series
    groups: dict[str, list[_Header]] = {}
    for name in sorted(names):
        path = folder / name
        kind, header = _classify(path)
        if kind in ("file", "unreadable") or (header is not None and header.uid is None):
            singles.append(path)
            dicom_like += kind != "file"
        elif header is not None and header.uid is not None:
            groups.setdefault(header.uid, []).append(header)
    volumes = {uid: g for uid, g in groups.items() if _is_volume(g)}
    notes: dict[Path, str] = {}
    for uid, group in groups.items():
        if uid not in volumes:
            singles += [h.path for h in group]
            dicom_like += len(group)
            if reason := split_reason(group):
                note = f"the {len(group)} files of series {uid} are read one by one: {reason}"
                notes.update((h.path, note) for h in group)
    parts = {uid: series_parts([h.ds for h in group]) for uid, group in volumes.items()}
    alone = len(volumes) == 1 and dicom_like == 0 and not any(parts.values())
    items = [Item(str(p), (str(p),), note=notes.get(p, "")) for p in singles]
    for uid, group in volumes.items():
        path = str(folder) if alone else f"{folder}{SERIES_MARK}{uid}"
        for part, picked in (parts[uid] or {"": range(len(group))}).items():
            files = tuple(sorted(str(group[i].path) for i in picked))
            items.append(Item(f"{path}{PART_MARK}{part}" if part else path, files,
                              series=len(files) > 1))
    return items


def discover(archive: str | Path, each_volume: bool = False) -> list[Item]:
    """Every item under `archive` (a folder, walked recursively, or one file), sorted by path;
    with `each_volume`, a 4D file gives one item per volume (`<file>@volume=<k>`)."""
    root = Path(archive).expanduser()
    if not root.exists():
        raise MissingInput("no such file or directory", root)
    root = root.resolve()
    if is_archive(root):
        raise UnsupportedImage("a zip or tar archive: medq qc keeps each item's path for the "
                               "review app, so unpack it and QC the folder (medq assess, "
                               "describe, restore and info read archives as they are)", archive)
    if root.is_file():
        items = folder_items(root.parent, [root.name]) if _is_candidate(root) else []
    else:
        items, unlisted = [], []  # folders the walk may not list: an item each, which fails
        for folder, files in walk_folders(root, lambda e: unlisted.append(e.filename)):
            items += folder_items(Path(folder), files)
        items += [Item(str(f), (str(f),), note=UNLISTED) for f in unlisted]
    if each_volume:
        items = [part for item in items for part in volumes_of(item)]
    return sorted((_storable(item) for item in items), key=lambda item: item.path)


def storable(path: str) -> str:
    """`path` as text a database stores: a name that is not UTF-8 written with `\\xff`
    escapes (one such name ended every run before anything was stored)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def _storable(item: Item) -> Item:
    """The item, stored under `storable(path)`: one whose name had to be escaped is still read
    from its own path (`read_as`), and a note says the review app cannot open it."""
    path = storable(item.path)
    if path == item.path:
        return item
    note = (f"{Path(path).name}: the name is not UTF-8 text, stored as written here; rename it "
            "for the review app to open it")
    return Item(path, item.files, item.series, item.note or note, read_as=item.path)


def volumes_of(item: Item) -> list[Item]:
    """The item, or one item per volume when it is a 4D file (`io.volumes.volume_paths`; read
    from its own path `read_as` when its stored name had to be escaped)."""
    from medq.io.volumes import volume_paths

    if item.series:
        return [item]
    own = item.read_as or item.path
    parts = volume_paths(own)
    if parts == [own]:
        return [item]
    return [_storable(Item(p, item.files)) for p in parts]


def load_item(item: Item | str | Path, modality: str | None = None) -> MedImage:
    """Load a QC item, or the item a stored path names (file, series folder, folder#UID,
    folder#UID@part), read as `modality` when given (`--modality`, as `medq.io.load` takes it)."""
    from medq.io import load, load_series_files
    from medq.io.arrays import as_image
    from medq.io.volumes import volume_in_file

    if not isinstance(item, Item):
        item = item_from_path(str(item))
    path = item.read_as or item.path
    if not item.series and volume_in_file(path):
        return load(path, modality=modality)  # one volume of a 4D file
    if not item.series or len(item.files) == 1:
        return load(item.files[0], modality=modality)
    if SERIES_MARK not in path or Path(path).is_dir():
        return load(path, modality=modality)
    return as_image(load_series_files(item.files, path), modality=modality)


def item_from_path(path: str) -> Item:
    """Rebuild the Item a stored path names (re-reading the folder's headers for a series)."""
    from medq.io.volumes import missing, volume_in_file

    p = Path(path)
    if p.is_file():
        return Item(path, (path,))
    if named := volume_in_file(path):  # one volume of a 4D file
        return Item(path, (str(named[0]),))
    folder = p if p.is_dir() else Path(path.rsplit(SERIES_MARK, 1)[0])
    if not folder.is_dir():
        raise missing(path)
    names = [f.name for f in folder.iterdir() if f.is_file()]
    found = [i for i in folder_items(folder, names) if i.series and i.path == str(p)]
    if not found:
        raise EmptySeries("no DICOM series of that name in the folder", path)
    return found[0]
