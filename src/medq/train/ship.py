"""Ship a training run: its weights (float16 state dict) and model card into medq/weights/.

Usage: `python -m medq.train.ship runs/mediqa-s [runs/cnniqa ...]` — each run folder's
`model.pt` becomes `medq/weights/<name>.pt` (weights halved to float16, loaded back as float32)
and its `card.md` becomes `<name>.md`. Shipped weights must stay ≤ 25 MB.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from medq.assess.weights import WEIGHTS_DIR
from medq.errors import InvalidParameter
from medq.io.atomic import atomic_path

MAX_BYTES = 25 * 1024 * 1024
"""Largest shipped weight file."""


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with its floating-point tensors in float16."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def ship_run(folder: str | Path, dest: Path = WEIGHTS_DIR) -> Path:
    """Copy one run's checkpoint (float16) and card into `dest`; returns the weight path."""
    folder = Path(folder)
    src = folder / "model.pt"
    if not src.is_file():
        raise InvalidParameter("no model.pt in the run folder", folder)
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    for part in ckpt.get("members", [ckpt]):  # a seed ensemble: every member
        part["state_dict"] = _half(part["state_dict"])
    name = ckpt.get("medq", {}).get("name") or folder.name
    path = dest / f"{name}.pt"
    with atomic_path(path) as tmp:  # too large: refused before it replaces shipped weights
        torch.save(ckpt, tmp)
        if Path(tmp).stat().st_size > MAX_BYTES:
            raise InvalidParameter(f"weights of {name} exceed 25 MB", folder)
    if (folder / "card.md").is_file():
        with atomic_path(dest / f"{name}.md") as tmp:
            shutil.copyfile(folder / "card.md", tmp)
    return path


def main(argv: list[str] | None = None) -> int:
    """Ship each run folder named; a bad folder is one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(prog="python -m medq.train.ship",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders written by medq train")
    status = 0
    for folder in parser.parse_args(argv).runs:
        try:
            print(ship_run(folder))
        except InvalidParameter as e:
            print(f"medq: error: {e}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
