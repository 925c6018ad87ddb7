"""Your own expert scores as training data: a CSV `path,score[,modality,region]`.

Each row's image is loaded (a DICOM series folder is one volume), prepared exactly as at
inference (`preprocess.image_inputs`, salient slices for volumes) and labelled with its score;
these items carry no engine record, so only the score loss trains on them. Rows are split by
image, 80 % train / 20 % test (seeded), so no image is in both.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from medq.assess.models.blocks import FINDING_TYPES
from medq.assess.prompts import encode, prompts_from_image
from medq.data.bench import KINDS
from medq.errors import InvalidParameter, MedqError

MIN_ROWS = 5
"""Fewest usable rows a scores file must have."""


def read_scores(path: str | Path) -> list[dict[str, Any]]:
    """Parse the CSV (header `path,score[,modality,region]`); relative paths are from its folder."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InvalidParameter("scores file not found", path) from None
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not {"path", "score"} <= set(reader.fieldnames):
        raise InvalidParameter("scores CSV needs a header with at least 'path' and 'score'",
                               path)
    rows = []
    for n, row in enumerate(reader, start=2):
        try:
            score = float(row["score"])
        except (TypeError, ValueError):
            raise InvalidParameter(f"line {n}: score {row['score']!r} is not a number",
                                   path) from None
        if not 1.0 <= score <= 5.0:
            raise InvalidParameter(f"line {n}: score {score} is outside 1–5", path)
        image = Path(row["path"]).expanduser()
        rows.append({"path": image if image.is_absolute() else path.parent / image,
                     "score": score, "modality": (row.get("modality") or "").strip() or None,
                     "region": (row.get("region") or "").strip() or None})
    return rows


def _item(row: dict[str, Any], size: int, extras: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load and prepare one scored image (`extras`: evidence row extras, `evidence.ROW_EXTRAS`)."""
    from medq.assess.evidence import evidence_rows
    from medq.assess.preprocess import image_inputs
    from medq.io import load

    image = load(row["path"], modality=row["modality"])
    if row["region"]:
        image = image.evolve(region=row["region"])
    prompts = prompts_from_image(image)
    x, indices = image_inputs(image, size, prompts.type)
    m = evidence_rows(image, indices if image.is_volume else None, extras=extras)
    return {"x": x.astype(np.float16), "m": m, "prompt": encode(prompts), "score": row["score"],
            "physics": np.zeros(len(KINDS), np.float32),
            "severity": np.zeros(len(FINDING_TYPES), np.int64), "labelled": False,
            "modality": image.modality, "dim": "3d" if image.is_volume else "2d",
            "source": str(row["path"])}


def load_scores(path: str | Path, size: int = 224, seed: int = 0, extras: tuple[str, ...] = ()
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(train, test) packed sets from a scores CSV (evidence rows with `extras`, as the plan of
    the model fine-tuned); unreadable images are skipped with a note."""
    import sys

    from medq.data.bench import pack

    items = []
    for row in read_scores(path):
        try:
            items.append(_item(row, size, extras))
        except MedqError as e:
            print(f"medq: note: skipping {e.message}", file=sys.stderr)
    if len(items) < MIN_ROWS:
        raise InvalidParameter(f"only {len(items)} usable rows; need at least {MIN_ROWS}", path)
    order = np.random.default_rng(seed).permutation(len(items))
    n_test = max(1, len(items) // 5)
    test, train = order[:n_test], order[n_test:]
    return pack([items[i] for i in train]), pack([items[i] for i in test])
