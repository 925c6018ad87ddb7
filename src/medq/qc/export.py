"""Export the QC results: one row per item (MRIQC-style group table) as CSV, TSV, Parquet or JSON.

Columns: `path, status, score, grade, verdict, recall, error, bad_input` (whose fault an error
is: the input's, or medq's), then modality, `modality_source` (where the graded modality came
from: `tags`, `values`, `predicted` by the prompt classifier — a picture that is no medical
image is guessed too —, `user`, `default`), `named_modality` (the `--modality` of the run
that read it, empty when the file's own was read), region, dimension,
shape, findings, the latest review (`review`, `reviewer`, `reviewed_at`, `review_comment`),
`suspected` (doubtful finding types that pull the score down without being reported: why an
image is recalled with no finding), `nonfinite_fraction` (the share of NaN or infinite
pixels; empty when all are finite), `noisy_slices` (a volume's slices noisier than those
around them or, in MR, marked by a k-space spike, which its salient slices may miss:
`medq.assess.noisy_slices`; "none of 61 compared" when none is; empty when they were not
compared: a 2D image, `--no-measures`, under 8 slices, or an item stored by an earlier medq)
and `noisy_slice_count` (how many, a number to filter on), `slice_gaps` (a DICOM series'
missing slices or uneven spacing, as `medq assess` shows it: "2 slices missing?"; empty when
its slices are evenly spaced, or it is no series) and `missing_slices` (how many are missing;
0 for uneven spacing alone), description, model, fingerprint,
`duplicate_of` (for a byte copy of another item, the copy kept: `medq.qc.duplicates`; empty
for the kept one, an error and an item whose bytes could not be read), run_id, updated_at,
`lossy` and `lossy_ratio` (what the file states about lossy
compression: a curator keeps such files out of a training set), and one column per classical
measure. In CSV/TSV/Parquet the findings become `type (severity)` text and the shape `ZxYxX`;
JSON keeps them structured (the measures as a `measures` object, the lossy compression as
`lossy_compression`). Files are written atomically.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medq.assess.noisy_slices import outliers_cell, spiked
from medq.errors import InvalidParameter
from medq.io.dicom import gaps_text
from medq.qc.duplicates import duplicate_of

if TYPE_CHECKING:
    from medq.qc.store import Store

FORMATS = ("csv", "tsv", "parquet", "json")
"""Export formats."""

COLUMNS = ("path", "status", "score", "grade", "verdict", "recall", "error", "bad_input",
           "modality", "modality_source", "named_modality", "region",
           "dimension", "shape", "findings", "review", "reviewer", "reviewed_at", "review_comment",
           "suspected", "nonfinite_fraction", "noisy_slices", "noisy_slice_count", "slice_gaps",
           "missing_slices", "description",
           "model", "fingerprint", "duplicate_of", "run_id", "updated_at", "lossy", "lossy_ratio")
"""Columns of every export, in order (measure columns follow in flat formats)."""

_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet", ".pq": "parquet",
             ".json": "json"}


def format_for(path: str | Path, fmt: str | None = None) -> str:
    """The export format: `fmt` when given, else from the file's suffix."""
    if fmt is not None:
        if fmt.lower() not in FORMATS:
            raise InvalidParameter(f"unknown export format {fmt!r}; choose from "
                                   f"{', '.join(FORMATS)}")
        return fmt.lower()
    found = _SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise InvalidParameter("cannot tell the export format from the suffix; give --format "
                               f"({', '.join(FORMATS)})", path)
    return found


def _findings_text(findings: list[dict[str, Any]] | None) -> str | None:
    if findings is None:
        return None
    return "; ".join(f"{f.get('type')} ({f.get('severity')})" for f in findings)


def item_row(item: dict[str, Any], flat: bool) -> dict[str, Any]:
    """One export row of a store item (see the module docstring for flat vs JSON)."""
    review = item.get("last_review") or {}
    row = {key: item.get(key) for key in COLUMNS}
    row.update(review=review.get("decision"), reviewer=review.get("reviewer"),
               reviewed_at=review.get("created_at"), review_comment=review.get("comment"))
    lossy = item.get("lossy_compression")  # {} stored when not lossy; None: not known (an
    row.update(lossy=None if lossy is None else bool(lossy),  # error, or stored by an older medq)
               lossy_ratio=(lossy or {}).get("ratio"))
    outliers = item.get("noisy_slices")
    row["noisy_slices"] = outliers
    row["noisy_slice_count"] = None if outliers is None else len(
        set(outliers.get("slices") or []) | set(spiked(outliers)))
    gaps = row["slice_gaps"]
    row["missing_slices"] = int(gaps.get("missing_slices") or 0) if gaps else None
    if not flat:
        row["measures"] = item.get("measures")
        row["lossy_compression"] = lossy
        return row
    row["findings"] = _findings_text(item.get("findings"))
    row["suspected"] = _findings_text(item.get("suspected"))
    if outliers:
        row["noisy_slices"] = outliers_cell(outliers, limit=None)
    if gaps:
        row["slice_gaps"] = gaps_text(gaps)
    shape = item.get("shape")
    row["shape"] = "x".join(str(s) for s in shape) if shape else None
    for key, value in (item.get("measures") or {}).items():
        row[key if key not in COLUMNS else f"measure_{key}"] = value
    return row


def export_rows(store: Store, *, flat: bool = True, model: str | None = None
                ) -> list[dict[str, Any]]:
    """Every item of the store (one model, or all), sorted by path, as export rows; a model
    without results in a database that holds some is InvalidParameter naming those it holds."""
    model = store.check_model(model)
    items = store.items(sort="path", model=model)
    rows = [item_row(item, flat) for item in items]
    copies = duplicate_of(items)
    for item, row in zip(items, rows, strict=True):
        row["duplicate_of"] = copies.get((item["path"], item.get("model")))
    return rows


def _measure_columns() -> list[str]:
    """The columns of every measure `compute_measures` gives (`MEASURE_NAMES`) and of a uniform
    phantom's reading (`phantom.EXPORT_NAMES`, on its error row), present in every flat export
    whatever the database holds (empty where a measure does not apply), so a nightly loader
    always reads the same header."""
    from medq.assess.measures import MEASURE_NAMES
    from medq.assess.phantom import EXPORT_NAMES

    return [k if k not in COLUMNS else f"measure_{k}" for k in (*MEASURE_NAMES, *EXPORT_NAMES)]


NUMBERS = ("score", "lossy_ratio", "nonfinite_fraction")
"""Fixed columns that hold real numbers (the measure columns do too)."""

COUNTS = ("noisy_slice_count", "missing_slices")
"""Fixed columns that hold whole numbers."""

FLAGS = ("recall", "bad_input", "lossy", "phantom_within_acr_water_limits")
"""Columns that hold true/false (the last a phantom's measure)."""


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """The fixed columns, every measure column, then any other column in name order."""
    measures = _measure_columns()
    extra = sorted({key for row in rows for key in row} - set(COLUMNS) - set(measures))
    return [*COLUMNS, *measures, *extra]


def _write_delimited(path: Path, rows: list[dict[str, Any]], delimiter: str) -> None:
    columns = _columns(rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, delimiter=delimiter, restval="",
                                extrasaction="raise", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else inert(v) for k, v in row.items()})


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""Characters a spreadsheet reads a cell starting with as a formula."""


def inert(value: Any) -> Any:
    """A delimited file's cell as a spreadsheet shows it, never runs it: text starting like a
    formula (a reviewer named `=HYPERLINK(…)` through the review app) gets a leading `'`;
    numbers and other text as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = _columns(rows)
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    if not rows:
        table = pa.table({c: pa.array([], type=pa.string()) for c in columns})
    numbers = {*NUMBERS, *_measure_columns()} - set(FLAGS)
    for i, field in enumerate(table.schema):  # one type per column, whatever the rows hold
        kind = (pa.float64() if field.name in numbers else pa.int64() if field.name in COUNTS
                else pa.bool_() if field.name in FLAGS else pa.string()
                if pa.types.is_null(field.type) else field.type)
        if kind != field.type:
            table = table.set_column(i, field.name, table.column(i).cast(kind))
    pq.write_table(table, path)


def export_items(store: Store, dest: str | Path, fmt: str | None = None, *,
                 model: str | None = None) -> int:
    """Write the store's items to `dest` as csv/tsv/parquet/json (`-`: standard output, csv
    unless `fmt` says otherwise); returns the number of rows."""
    import sys
    import tempfile

    from medq.io.atomic import atomic_path, cannot_write

    if str(dest) == STDOUT:
        fmt = format_for(dest, fmt or "csv")
        rows = export_rows(store, flat=fmt != "json", model=model)
        with tempfile.TemporaryDirectory(prefix="medq-export-") as folder:
            made = Path(folder) / f"items.{fmt}"
            _write(made, rows, fmt)
            sys.stdout.flush()
            sys.stdout.buffer.write(made.read_bytes())
            sys.stdout.buffer.flush()
        return len(rows)
    dest = Path(dest)
    store.refuse_output(dest)
    fmt = format_for(dest, fmt)
    rows = export_rows(store, flat=fmt != "json", model=model)
    try:
        with atomic_path(dest) as tmp:
            _write(tmp, rows, fmt)
    except OSError as e:
        raise cannot_write(e, dest) from e
    return len(rows)


STDOUT = "-"
"""The `--output` that names standard output."""


def _write(path: Path, rows: list[dict[str, Any]], fmt: str) -> None:
    """Write `rows` to `path` in the export format `fmt`."""
    if fmt == "json":
        path.write_text(json.dumps(rows, indent=2, default=str) + "\n", encoding="utf-8")
    elif fmt == "parquet":
        _write_parquet(path, rows)
    else:
        _write_delimited(path, rows, "," if fmt == "csv" else "\t")
