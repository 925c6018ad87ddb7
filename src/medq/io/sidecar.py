"""JSON sidecars: `<image stem>.json` beside an image holds what its format cannot.

Each sidecar medq writes names its image (`File`), so two files of one stem (`scan.nii.gz`,
`scan.png`) never share one: the second gets `<name>.json` (`scan.png.json`).

medq writes the modality, region and physics of NIfTI/PNG/npy outputs (BIDS-style keys
`Modality` and `BodyPart`) and every degradation record there; `load` reads them back. A sidecar
is merged, never overwritten blindly, and written atomically.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

from medq.io.atomic import atomic_write_text, file_in_the_way

_MULTI_SUFFIXES = (".nii.gz",)


def sidecar_path(image_path: str | Path) -> Path:
    """The sidecar of an image: its name with the image suffix replaced by `.json`."""
    p = Path(image_path)
    name = p.name
    for suffix in _MULTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return p.with_name(name[: -len(suffix)] + ".json")
    return p.with_suffix(".json") if p.suffix else p.with_name(name + ".json")


def own_sidecar_path(image_path: str | Path) -> Path:
    """The sidecar named after the whole file name (`scan.png.json`): medq writes it when the
    shared `<stem>.json` already describes another file of that stem (`scan.nii.gz`)."""
    p = Path(image_path)
    return p.with_name(p.name + ".json")


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object file's content, or {} when missing or not a JSON object."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _one_image(a: Path, b: Path) -> bool:
    """Whether two files are one image: the same file, or a header and its data file (`x.hdr`
    and `x.img`)."""
    from medq.io.neuro import is_data_file

    return a.name == b.name or (sidecar_path(a) == sidecar_path(b)
                                and (is_data_file(a) or is_data_file(b)))


def _beside(p: Path, name: Any) -> Path:
    """The file a sidecar's `File` names, in `p`'s folder (`p` itself when it names none)."""
    base = Path(str(name or "")).name
    return p.with_name(base) if base else p


def _siblings(p: Path) -> list[Path]:
    """Other images (by their suffix: not a BIDS `.bval`) whose `<stem>.json` is `p`'s."""
    from medq.io import _suffix_format

    shared = sidecar_path(p)
    stem = shared.name[: -len(".json")]
    return [q for q in p.parent.glob(glob.escape(stem) + ".*")
            if q != shared and _suffix_format(q) is not None and not _one_image(p, q)
            and sidecar_path(q) == shared]


def _names_another(data: dict[str, Any], p: Path) -> bool:
    """Whether a shared sidecar names (`File`) another image that lies beside `p` (not `p`, its
    pair's other file, nor a file since renamed to `p`)."""
    named = _beside(p, data.get("File"))
    return bool(data.get("File")) and not _one_image(p, named) and named.exists()


def _claims(data: dict[str, Any], p: Path) -> bool:
    """Whether a shared sidecar may be rewritten as `p`'s: one that names `p` (or its pair's
    other file); else one that names no other image beside `p` only when no other image shares
    the stem (a stem sidecar of several files, or one renamed with another file of the stem,
    stays theirs)."""
    if data.get("File") and _one_image(p, _beside(p, data["File"])):
        return True
    return not _names_another(data, p) and not _siblings(p)


def read_sidecar(image_path: str | Path) -> dict[str, Any]:
    """The image's sidecar content: its own `<name>.json`, else the `<stem>.json` unless that one
    names another image beside it (`File`; a renamed pair keeps its sidecar); {} when there is
    none. One file's save never changes another's load."""
    p = Path(image_path)
    own = read_json_object(own_sidecar_path(p))
    if own:
        return own
    shared = read_json_object(sidecar_path(p))
    return {} if _names_another(shared, p) else shared


def sidecar_target(image_path: str | Path) -> Path:
    """The sidecar a write for the image goes to: the shared `<stem>.json` unless it describes
    another file of the same stem, else `<name>.json`."""
    p = Path(image_path)
    shared = sidecar_path(p)
    before = read_json_object(shared)
    use_shared = not own_sidecar_path(p).exists() and (not before or _claims(before, p))
    return shared if use_shared else own_sidecar_path(p)


def check_sidecar_writable(image_path: str | Path) -> None:
    """InvalidParameter naming the image's sidecar when it could not be written (a folder in its
    place, a read-only folder): checked before the image is written, so a run that fails on its
    record leaves an earlier output as it was."""
    from medq.errors import InvalidParameter

    target = sidecar_target(image_path)
    if target.exists() and not target.is_file():
        raise InvalidParameter(f"cannot write its record {target}: not a file", image_path)
    blocker = file_in_the_way(target.parent)
    if blocker is not None:
        raise InvalidParameter(f"cannot write: {blocker} is a file, not a folder", image_path)
    folder = target.parent if target.parent.exists() else None
    if folder is not None and not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidParameter(f"cannot write its record {target}: permission denied",
                               image_path)


def write_sidecar(image_path: str | Path, data: dict[str, Any], fresh: bool = False) -> Path:
    """Merge `data` into the image's sidecar (`sidecar_target`; top-level keys replaced; `File`
    names the image) and write it atomically; `fresh` replaces the sidecar there instead (a
    newly written image: what an earlier file of that name had stated is not true of it)."""
    p = Path(image_path)
    target = sidecar_target(p)
    merged = {**({} if fresh else read_json_object(target)), **data, "File": p.name}
    return atomic_write_text(target, json.dumps(merged, indent=2, default=str))
