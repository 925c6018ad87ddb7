"""Your own expert scores as training data: a CSV `path,score[,modality,region]`.

Each row's image is loaded (a DICOM series folder is one volume), prepared exactly as at
inference (`preprocess.image_inputs`, salient slices for volumes) and labelled with its score;
these items carry no engine record, so only the score loss trains on them. Lines naming one
file are one image (its raters' mean score), and images are split 80 % train / 20 % test
(seeded) by subject (`medq.train.split`: a DICOM PatientID or BIDS `sub-` label), so no image,
nor where the files say so any patient, is in both.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from medq.assess.models.blocks import FINDING_TYPES
from medq.assess.prompts import encode, prompts_from_image
from medq.data.bench import KINDS
from medq.errors import InvalidParameter, MedqError
from medq.train.config import read_text_file
from medq.wording import first_of, plural

MIN_ROWS = 5
"""Fewest usable rows a scores file must have."""


def _delimiter(first_line: str) -> str:
    """The delimiter of a CSV header line: `;`, tab or `,` (comma when it cannot be told)."""
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _score(raw: str | None, n: int, path: Path) -> float:
    """Line `n`'s score as a number in 1–5 (a decimal comma accepted in `;`/tab files, and in
    a quoted field of a comma-separated one: `"4,5"`)."""
    text = (raw or "").strip()
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    if not text:
        raise InvalidParameter(f"line {n}: no score", path)
    try:
        score = float(text)
    except ValueError:
        raise InvalidParameter(f"line {n}: score {raw!r} is not a number", path) from None
    if not math.isfinite(score):
        raise InvalidParameter(f"line {n}: score {raw.strip()!r} is not a number", path)
    if not 1.0 <= score <= 5.0:
        raise InvalidParameter(f"line {n}: score {score:g} is outside 1–5", path)
    return score


def _label(row: dict[str, Any], key: str, n: int, path: Path) -> str | None:
    """Line `n`'s modality or region (None when blank), checked against what medq knows."""
    from medq.image import REGIONS, graded_modality

    text = (row.get(key) or "").strip()
    if not text:
        return None
    if key == "modality":
        try:
            return graded_modality(text)
        except InvalidParameter as e:
            raise InvalidParameter(f"line {n}: {e.reason}", path) from None
    if text.lower() not in REGIONS:
        raise InvalidParameter(f"line {n}: unknown region {text!r}; use one of "
                               f"{', '.join(REGIONS)}", path)
    return text.lower()


def _merged(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """One row per image (its resolved path): an image scored on several lines (several raters)
    gets their mean score, its `lines` listed; lines stating other modalities or regions for one
    image are refused (a blank cell states none)."""
    by_image: dict[Path, list[dict[str, Any]]] = {}
    for row in rows:
        by_image.setdefault(row["path"].resolve(), []).append(row)
    out = []
    for same in by_image.values():
        merged = {**same[0], "score": float(np.mean([r["score"] for r in same])),
                  "lines": [r["line"] for r in same]}
        for key in ("modality", "region"):
            said = {r[key] for r in same if r[key]}  # a blank cell states nothing
            if len(said) > 1:
                lines = ", ".join(str(r["line"]) for r in same)
                raise InvalidParameter(f"lines {lines} name one image ({same[0]['path']}) with "
                                       f"different {key} values", path)
            merged[key] = said.pop() if said else None
        out.append(merged)
    return out


def read_scores(path: str | Path) -> list[dict[str, Any]]:
    """Parse the CSV (header `path,score[,modality,region]`, any case, `,`/`;`/tab-separated,
    a UTF-8 BOM allowed; rows of empty cells, as spreadsheets save them, skipped); relative
    paths are from its folder. One row per image: lines naming the same file (however its path
    is spelt) are its raters' scores, averaged (`lines`). InvalidParameter naming the file and
    line for a malformed row, an unknown modality or region, and for scores without spread."""
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
    reader = csv.reader(lines[1:], delimiter=delimiter)
    rows, problems = [], []
    for cells in reader:
        n = reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue  # a blank line, or a spreadsheet's row of empty cells
        try:
            rows.append(_row(names, cells, n, path, delimiter))
        except InvalidParameter as e:  # every bad line at once, not one per attempt
            problems.append(e.reason)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InvalidParameter("; ".join(problems[:5]) + more, path)
    rows = _merged(rows, path)
    if len(rows) >= 2 and len({r["score"] for r in rows}) == 1:
        raise InvalidParameter(f"every image has score {rows[0]['score']:g}: a model cannot "
                               "learn which images are better from scores without spread", path)
    return rows


def _row(names: list[str], cells: list[str], n: int, path: Path, delimiter: str
         ) -> dict[str, Any]:
    """One scored line (line `n`) as a row; InvalidParameter naming the line when malformed."""
    if len(cells) > len(names) and any(c.strip() for c in cells[len(names):]):
        hint = (" (a decimal comma in a comma-separated file? quote the score, or save "
                "the file with ';')" if delimiter == "," else "")
        raise InvalidParameter(f"line {n}: {len(cells)} fields but the header has "
                               f"{len(names)}{hint}", path)
    row = dict(zip(names, cells, strict=False))
    score = _score(row.get("score"), n, path)
    if not (row.get("path") or "").strip():
        raise InvalidParameter(f"line {n}: no path", path)
    image = Path(row["path"].strip()).expanduser()
    after = names[names.index("score") + 1] if names.index("score") + 1 < len(names) else None
    try:
        modality, region = _label(row, "modality", n, path), _label(row, "region", n, path)
    except InvalidParameter as e:  # `4,5` split in two: the decimals read as a modality/region
        if delimiter == "," and after in ("modality", "region") \
                and (row.get(after) or "").strip().isdigit():
            raise InvalidParameter(f"{e.reason} (a decimal comma in a comma-separated file? "
                                   "quote the score, or save the file with ';')", path) from e
        raise
    return {"path": image if image.is_absolute() else path.parent / image,
            "score": score, "modality": modality, "region": region, "line": n}


SCORE_LOSSES = ("score",)
"""Loss terms a `--scores` set can teach: its images carry a score but no engine record, so the
physics and finding terms (and the ladders' rank term) have nothing to train on there."""


def check_scores_config(cfg: Any, config: str | Path, tagged: bool = False) -> None:
    """InvalidParameter, naming the `config` file, unless `cfg` can fine-tune on a `--scores`
    set: a quality model whose every stage weights the score loss (or, with `tagged` images,
    the acquisition loss their headers teach)."""
    if cfg.task != "quality":
        raise InvalidParameter(f"--scores fine-tunes quality models (task: quality); this "
                               f"config trains task: {cfg.task}", config)
    from medq.train.config_check import trains_none_of

    if not any(stage.steps and stage.losses.get("score") for stage in cfg.stages):
        raise InvalidParameter("no stage weights the score loss: the run would not learn your "
                               "scores", config)
    for stage in cfg.stages:
        if trains_none_of(stage, SCORE_LOSSES + (("acquisition",) if tagged else ())):
            taught = ", ".join(k for k, w in stage.losses.items() if w) or "no loss"
            raise InvalidParameter(f"stage {stage.name!r} trains {taught}, which your scores "
                                   "cannot teach (they carry no engine record): drop the "
                                   "stage, or give it a score loss", config)


def user_item(image: Any, size: int, extras: tuple[str, ...], score: float, source: str
              ) -> dict[str, Any]:
    """A training item of one of the user's images (`score` as rated; no engine record):
    model inputs and evidence rows with `extras` (`evidence.ROW_EXTRAS`)."""
    from medq.assess.evidence import evidence_rows
    from medq.assess.preprocess import image_inputs
    from medq.train.split import subject_key

    prompts = prompts_from_image(image)
    x, indices = image_inputs(image, size, prompts.type)
    m = evidence_rows(image, indices if image.is_volume else None, extras=extras)
    return {"x": x.astype(np.float16), "m": m, "prompt": encode(prompts), "score": score,
            "physics": np.zeros(len(KINDS), np.float32),
            "severity": np.zeros(len(FINDING_TYPES), np.int64), "labelled": False,
            "modality": image.modality, "dim": "3d" if image.is_volume else "2d",
            "source": source, "subject": subject_key(image, source)}


def _item(row: dict[str, Any], size: int, extras: tuple[str, ...] = ()
          ) -> tuple[dict[str, Any], str | None]:
    """Load and prepare one scored image (`extras`: evidence row extras, `evidence.ROW_EXTRAS`),
    with the modality its DICOM header states when the row's modality contradicts it."""
    from medq.image import graded_modality
    from medq.io import load

    image = load(row["path"], modality=row["modality"])
    if row["region"]:
        image = image.evolve(region=row["region"])
    stated = str(image.meta.get("dicom_modality") or "").upper()
    try:
        contradicted = bool(row["modality"] and stated) and graded_modality(stated) != \
            row["modality"]
    except MedqError:  # a header modality medq does not grade: nothing to contradict
        contradicted = False
    return (user_item(image, size, extras, row["score"], str(row["path"])),
            stated if contradicted else None)


def load_scores(path: str | Path, size: int = 224, seed: int = 0, extras: tuple[str, ...] = (),
                rows: list[dict[str, Any]] | None = None
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(train, test) packed sets from a scores CSV (evidence rows with `extras`, as the plan of
    the model fine-tuned; `rows`: its `read_scores`, when already read); images scored on
    several lines and unreadable images are named in a note, the latter skipped."""
    import sys

    from medq.train.split import held_out

    rows = read_scores(path) if rows is None else rows
    repeated = [r for r in rows if len(r["lines"]) > 1]
    if repeated:
        lines = first_of([", ".join(map(str, r["lines"])) for r in repeated], 5, "; ")
        print(f"medq: note: {path}: {plural(len(repeated), 'image')} scored on several lines "
              f"(lines {lines}): each is trained on its mean score", file=sys.stderr)
    items, contradicted = [], []
    for row in rows:
        try:
            item, stated = _item(row, size, extras)
            items.append(item)
            if stated:
                contradicted.append(f"line {row['lines'][0]} says {row['modality']}, the file "
                                    f"{stated}")
        except MedqError as e:
            lines = ", ".join(map(str, row["lines"]))
            hint = (" (a Windows path: write / between folders)"
                    if "\\" in str(row["path"]) and not Path(row["path"]).exists() else "")
            print(f"medq: note: {path}: line {lines}: skipping {e.message}{hint}",
                  file=sys.stderr)
    if len(items) < len(rows):
        print(f"medq: note: {path}: {len(items)} of {plural(len(rows), 'image')} usable",
              file=sys.stderr)
    if contradicted:  # the row's modality is what trains: say where it overrides the header
        headers = plural(len(contradicted), "DICOM header")
        print(f"medq: note: {path}: the modality column overrides what {headers} state "
              f"({first_of(contradicted, 3, '; ')}); check the column if that is not meant",
              file=sys.stderr)
    if len(items) < MIN_ROWS:
        raise InvalidParameter(f"only {plural(len(items), 'usable image')}; need at least "
                               f"{MIN_ROWS}", path)
    keys, copies = copy_groups(items)
    if copies:
        print(f"medq: note: {path}: {plural(copies, 'image')} under another name are pixel for "
              "pixel copies of an earlier one: each set of copies is held out or trained on "
              "together", file=sys.stderr)
    train, test, note = held_out(keys, seed)
    if note:
        print(f"medq: note: {path}: {note}", file=sys.stderr)
    return _packed([items[i] for i in train]), _packed([items[i] for i in test])


def copy_groups(items: list[dict[str, Any]]) -> tuple[list[str | None], int]:
    """The split keys of scored items: items of one subject (`split.subject_key`) and items
    whose model input is the same pixel for pixel (a file copied under another name or saved
    in another format, which may lose its PatientID) share one key, joined through each other
    (a copy of a named patient's image goes with that patient), so no copy sits on both sides
    of the split; and how many items are later pixel copies of an earlier one."""
    import hashlib

    digests = [hashlib.sha256(np.ascontiguousarray(it["x"]).tobytes()).hexdigest()[:16]
               for it in items]
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, (it, d) in enumerate(zip(items, digests, strict=True)):
        for mark in (("pixels", d), ("subject", it["subject"])):
            if mark[1]:
                j = first.setdefault(mark, i)
                parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for i in range(len(items)):
        members.setdefault(root(i), []).append(i)
    keys: list[str | None] = [None] * len(items)
    for group in members.values():
        named = sorted(items[i]["subject"] for i in group if items[i]["subject"])
        key = named[0] if named else (f"copy:{digests[group[0]]}" if len(group) > 1 else None)
        for i in group:
            keys[i] = key
    return keys, len(items) - len(set(digests))


def _packed(items: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """`bench.pack` of scored items, with each item's subject ("" when its file names none), so
    `--tagged` can leave the held-out patients' other images out too."""
    from medq.data.bench import pack

    return {**pack(items), "subject": np.array([it["subject"] or "" for it in items])}


def describe(path: str | Path, rows: list[dict[str, Any]], train: dict[str, np.ndarray],
             test: dict[str, np.ndarray]) -> dict[str, Any]:
    """What a run's record and card say of a `--scores` set (its `read_scores` rows, packed
    into `train` and `test`): the file (and a digest of its content), its scored lines and
    images, how many were trained on and which images were held out for the test (paths as
    the CSV gives them), the lines of the images that could not be used, and how the split was
    made (`split.held_out`: whole patients, or by image when too few were named)."""
    import hashlib

    from medq.train.config import shown_path
    from medq.train.split import split_made

    path = Path(path)

    def named(source: str) -> str:
        try:
            return Path(source).relative_to(path.parent).as_posix()
        except ValueError:
            return Path(source).as_posix()

    used = {str(s) for s in (*train["source"], *test["source"])}
    skipped = sorted(n for r in rows if str(r["path"]) not in used for n in r["lines"])
    return {"file": shown_path(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "rows": sum(len(r["lines"]) for r in rows), "images": len(rows),
            "train": int(len(train["score"])), "held_out": [named(s) for s in test["source"]],
            "skipped_lines": skipped, **split_made(train["subject"], test["subject"])}
