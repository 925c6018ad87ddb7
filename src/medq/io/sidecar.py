"""JSON sidecars: `<image stem>.json` beside an image holds what its format cannot.

medq writes the modality, region and physics of NIfTI/PNG/npy outputs (BIDS-style keys
`Modality` and `BodyPart`) and every degradation record there; `load` reads them back. A sidecar
is merged, never overwritten blindly, and written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medq.io.atomic import atomic_write_text

_MULTI_SUFFIXES = (".nii.gz",)


def sidecar_path(image_path: str | Path) -> Path:
    """The sidecar of an image: its name with the image suffix replaced by `.json`."""
    p = Path(image_path)
    name = p.name
    for suffix in _MULTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return p.with_name(name[: -len(suffix)] + ".json")
    return p.with_suffix(".json") if p.suffix else p.with_name(name + ".json")


def read_sidecar(image_path: str | Path) -> dict[str, Any]:
    """The sidecar's content, or {} when there is none or it is not a JSON object."""
    path = sidecar_path(image_path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_sidecar(image_path: str | Path, data: dict[str, Any]) -> Path:
    """Merge `data` into the image's sidecar (top-level keys replaced) and write it atomically."""
    merged = {**read_sidecar(image_path), **data}
    return atomic_write_text(sidecar_path(image_path), json.dumps(merged, indent=2, default=str))
