"""`medq assess`: score, grade and findings of every input, batched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medq.cli.cells import (
    PREDICTED_NOTE,
    UNKNOWN_MODALITY_NOTE,
    assessment_findings,
    path_table,
    prompts_text,
)
from medq.cli.common import (
    DEVICE_OPTION,
    EACH_VOLUME_OPTION,
    INPUTS_ARGUMENT,
    JSON_LIST_OPTION,
    MODALITY_OPTION,
    PRECISION_OPTION,
    QUALITY_MODEL_OPTION,
    Outcome,
    app,
    err,
    error_object,
    expand_inputs,
    out,
    print_json,
    progress_bar,
    sigterm_as_ctrl_c,
)


def assess_inputs(paths: list[Path], each: bool = False) -> list[Path]:
    """Inputs to assess: a folder gives its items as `medq qc` finds them (`qc.discover`, walking
    its subfolders): each DICOM series of several slices one volume (its folder, or
    `<folder>#<SeriesInstanceUID>` when the folder holds more), every other image file (single
    DICOM images, NIfTI, PNG, …) one input; with `each`, a 4D file gives each of its volumes
    (`io.volumes.each_volume`). Paths stay as the user wrote them; archives are given unpacked
    (`io.archive.unpack_all`)."""
    from medq.io.archive import shown, unopened
    from medq.qc.discover import discover, split_notes

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            items = discover(path)
            if items:
                found += [as_written(item.path, path) for item in items]
                for where, note in split_notes(items):
                    err.print(f"medq: note: {shown(as_written(where, path))}: {note}",
                              markup=False, highlight=False)
                if left := unopened(path, "name {them} to read {them}"):
                    err.print(f"medq: note: {shown(path)}: {shown(left)}", markup=False,
                              highlight=False)
                continue
        found.append(path)  # a missing path or a folder without images: fails with its reason
    if each:
        from medq.io.volumes import each_volume

        found = each_volume(found)
    return expand_inputs(found)


def as_written(item: str, folder: Path) -> Path:
    """A discovered item's path (absolute) under `folder` as the user wrote `folder`."""
    import os

    from medq.io.dicom_series import series_in_folder

    named = series_in_folder(item)  # `<folder>#<uid>[@<part>]`: the folder is a path, the rest not
    where = str(named[0]) if named else item
    inside = os.path.relpath(where, folder.resolve())
    shown = folder if inside == "." else folder / inside
    return Path(f"{shown}{item[len(where):]}")


@app.command()
def assess(
    paths: list[Path] = INPUTS_ARGUMENT,
    as_json: bool = JSON_LIST_OPTION,
    model: str = QUALITY_MODEL_OPTION,
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per forward pass."),
    measures: bool = typer.Option(True, "--measures/--no-measures",
                                  help="Also compute the classical measures and compare "
                                       "every slice of a volume for noisy slices (slower)."),
    modality: str | None = MODALITY_OPTION,
    precision: str = PRECISION_OPTION,
    device: str = DEVICE_OPTION,
    each: bool = EACH_VOLUME_OPTION,
) -> None:
    """Assess image quality: 1–5 score, grade, recall flag, findings, measures, prompts."""
    from medq.assess.predictor import Assessor, Interrupted
    from medq.assess.series import outlying_volumes
    from medq.io.archive import shown, unpack_all

    outcome = Outcome()
    inputs = assess_inputs(unpack_all(paths), each)
    assessor = outcome.run(model, lambda: Assessor(model, batch_size=batch_size,
                                                   measures=measures, modality=modality,
                                                   precision=precision, device=device))
    if isinstance(assessor, BaseException):
        outcome.exit()
    stopped = None
    with progress_bar("assessing", len(inputs) < 2) as bar, sigterm_as_ctrl_c() as terminated:
        task = bar.add_task("assess", total=len(inputs))
        try:
            results = outcome.run(None, lambda: assessor.assess_many(
                inputs, progress=lambda n: bar.advance(task, n)))
        except Interrupted as stop:  # what was assessed is printed, not lost
            results, stopped = stop.done, 143 if terminated else 130
    if isinstance(results, BaseException):
        outcome.exit()
    if stopped is not None:
        err.print(f"medq: interrupted after {len(results)} of {len(inputs)} inputs"
                  + ("; their results are printed" if results else "")
                  + " (medq qc run resumes an archive where it stopped)", markup=False,
                  highlight=False)
        inputs = inputs[:len(results)]
    rows = []
    for path, result in zip(inputs, results, strict=True):
        if isinstance(result, BaseException):
            outcome.fail(path, result)
            rows.append(error_object(path, result))
        else:
            rows.append(dict(result.to_dict(), path=shown(path)))
    outliers = outlying_volumes({r["path"]: r["score"] for r in rows if "score" in r})
    for row in rows:
        if row["path"] in outliers:
            row["volume_outlier"] = outliers[row["path"]]
    if as_json:
        print_json(rows)
    else:
        graded = [row for row in rows if "error" not in row]
        table, names = path_table("score", "grade", "recall", "findings", "prompts",
                                  paths=[row["path"] for row in graded])
        cells = [prompts_text(row["prompts"]) for row in graded]
        for name, row, prompts in zip(names, graded, cells, strict=True):
            table.add_row(name, f"{row['score']:.2f}", row["grade"],
                          "yes" if row["recall"] else "no",
                          assessment_findings(row),
                          prompts)
        notes = [note for note, shown in (
            (PREDICTED_NOTE, any("?" in cell for cell in cells)),
            (UNKNOWN_MODALITY_NOTE, any(r["prompts"]["modality"] == "other" for r in graded)))
            if shown]
        table.caption = "\n".join(notes) or None
        if table.row_count:
            out.print(table)
        for row in graded:
            if row.get("acquisition"):
                out.print(f"{row['path']}: looks like {acquisition_text(row['acquisition'])}",
                          highlight=False, markup=False)
        for path, found in outliers.items():
            out.print(f"{path}: {found['below_median']:.2f} below the median score "
                      f"({found['series_median']:.2f}) of its file's {found['volumes']} volumes;"
                      " look at this volume", highlight=False, markup=False)
    if stopped is not None:
        raise typer.Exit(stopped)
    outcome.exit()


def acquisition_text(found: dict[str, dict[str, Any]]) -> str:
    """`26.1 mAs exposure (the header states 25 mAs)`, per target an acquisition head learnt."""
    from medq.assess.acquisition import LABELS

    parts = []
    for name, f in found.items():
        stated = f"the header states {f['stated']:g} {f['unit']}" if f["stated"] is not None \
            else "the header does not say"
        parts.append(f"{f['estimated']:g} {f['unit']} {LABELS[name]} ({stated})")
    return "; ".join(parts)
