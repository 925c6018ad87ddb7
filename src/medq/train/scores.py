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
from medq.train.config import read_text_file
from medq.train.evaluate import plural

MIN_ROWS = 5
"""Fewest usable rows a scores file must have."""


def _delimiter(first_line: str) -> str:
    """The delimiter of a CSV header line: `;`, tab or `,` (comma when it cannot be told)."""
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _score(raw: str | None, delimiter: str, n: int, path: Path) -> float:
    """Line `n`'s score as a number in 1–5 (a decimal comma accepted in `;`/tab files)."""
    text = (raw or "").strip()
    if delimiter != ",":
        text = text.replace(",", ".")
    if not text:
        raise InvalidParameter(f"line {n}: no score", path)
    try:
        score = float(text)
    except ValueError:
        raise InvalidParameter(f"line {n}: score {raw!r} is not a number", path) from None
    if not 1.0 <= score <= 5.0:
        raise InvalidParameter(f"line {n}: score {score:g} is outside 1–5", path)
    return score


def read_scores(path: str | Path) -> list[dict[str, Any]]:
    """Parse the CSV (header `path,score[,modality,region]`, any case, `,`/`;`/tab-separated,
    a UTF-8 BOM allowed); relative paths are from its folder."""
    path = Path(path)
    lines = read_text_file(path, "scores file",
                           "UTF-8 text file (save it as CSV UTF-8)").splitlines()
    delimiter = _delimiter(lines[0] if lines else "")
    header = next(csv.reader(lines[:1], delimiter=delimiter), [])
    names = [h.strip().lower() for h in header]
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        raise InvalidParameter(f"the header names {', '.join(twice)} twice", path)
    if not {"path", "score"} <= set(names):
        found = ", ".join(h.strip() for h in header) or "no columns"
        raise InvalidParameter("scores CSV needs a header with at least 'path' and 'score' "
                               f"(found: {found})", path)
    reader = csv.DictReader(lines[1:], fieldnames=names, delimiter=delimiter)
    rows = []
    for row in reader:
        score = _score(row["score"], delimiter, reader.line_num + 1, path)
        if not (row["path"] or "").strip():
            raise InvalidParameter(f"line {reader.line_num + 1}: no path", path)
        image = Path(row["path"].strip()).expanduser()
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
        raise InvalidParameter(f"only {plural(len(items), 'usable row')}; need at least "
                               f"{MIN_ROWS}", path)
    order = np.random.default_rng(seed).permutation(len(items))
    n_test = max(1, len(items) // 5)
    test, train = order[:n_test], order[n_test:]
    return pack([items[i] for i in train]), pack([items[i] for i in test])


def describe(path: str | Path, train: dict[str, np.ndarray], test: dict[str, np.ndarray]
             ) -> dict[str, Any]:
    """What a run's record and card say of a `--scores` set: the file, its rows, how many were
    trained on and which images were held out for the test (paths as the CSV gives them)."""
    from medq.train.config import shown_path

    path = Path(path)

    def named(source: str) -> str:
        try:
            return Path(source).relative_to(path.parent).as_posix()
        except ValueError:
            return Path(source).as_posix()

    return {"file": shown_path(path), "rows": len(read_scores(path)),
            "train": int(len(train["score"])), "held_out": [named(s) for s in test["source"]]}
