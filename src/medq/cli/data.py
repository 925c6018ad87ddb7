"""Data commands: `medq info`, `samples`, `simulate`, `degradations`, `demo`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from medq.cli.cells import KEY_PHYSICS, as_cell, assessment_findings, path_table
from medq.cli.common import (
    INPUTS_ARGUMENT,
    JSON_LIST_OPTION,
    READ_AS_OPTION,
    Outcome,
    app,
    dicom_reference,
    err,
    error_object,
    out,
    print_json,
    reflowed,
)
from medq.cli.paths import refuse_overwrite


@app.command()
@reflowed
def info(
    paths: list[Path] = INPUTS_ARGUMENT,
    as_json: bool = JSON_LIST_OPTION,
    modality: str | None = READ_AS_OPTION,
) -> None:
    """Show modality, region, shape, spacing and acquisition physics of each input.

    A 4D file shows its first volume's, with `volumes` and the volume count leading its shape."""
    from medq.cli.assess import assess_inputs
    from medq.io import load
    from medq.io.archive import shown, unpack_all
    from medq.io.volumes import VOLUME_MARK, volume_count

    outcome = Outcome()
    rows: list[dict[str, Any]] = []
    for path in assess_inputs(unpack_all(paths)):  # folders and archives as medq assess
        count = volume_count(path)
        first = Path(f"{path}{VOLUME_MARK}0") if count > 1 else path
        result = outcome.run(path, lambda p=first: load(p, modality=modality))
        if isinstance(result, BaseException):
            rows.append(error_object(path, result))
        else:
            row = dict(result.summary(), path=shown(path))
            if count > 1:
                row.update(shape=[count, *row["shape"]], volumes=count)
            rows.append(row)
    if as_json:
        print_json(rows)
    else:
        _info_table(rows)
    outcome.exit()


def _info_table(rows: Iterable[dict[str, Any]]) -> None:
    read = [row for row in rows if "error" not in row]
    table, names = path_table("modality", "region", "shape", "spacing (mm)", "key physics",
                              paths=[row["path"] for row in read])
    for name, row in zip(names, read, strict=True):
        physics = ", ".join(f"{k}={row['physics'][k]}" for k in KEY_PHYSICS
                            if k in row["physics"])
        if row.get("slice_gaps"):  # the spacing column shows the usual spacing only
            from medq.io.dicom import gaps_text

            physics = "; ".join(filter(None, [physics, f"series: {gaps_text(row['slice_gaps'])}"]))
        modality = row["modality"] + (f" (file: {row['stated_modality']})"
                                      if row.get("stated_modality") else "")
        table.add_row(name, as_cell(modality), row["region"],  # header text, as it is
                      "×".join(map(str, row["shape"])),
                      "×".join(f"{s:g}" for s in row["spacing"])
                      + (" (assumed)" if row.get("spacing_assumed") else ""), as_cell(physics))
    if table.row_count:
        out.print(table)


@app.command()
def samples(
    export: Path | None = typer.Option(None, "--export", help="Write every sample into DIR."),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the bundled real samples, or export them as files with --export DIR."""
    from medq.data.samples import SAMPLES, export_samples

    outcome = Outcome()
    if export is not None:
        written = outcome.run(export, lambda: export_samples(export))
        if not isinstance(written, BaseException):
            for path in written:
                out.print(str(path), highlight=False)
        outcome.exit()
    rows = [{"name": s.name, "modality": s.modality, "region": s.region, "origin": s.origin,
             "derived": s.derived, "path": str(s.path()) if s.path() else None}
            for s in SAMPLES.values()]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "modality", "region", "origin")
    for row in rows:
        table.add_row(row["name"], row["modality"], row["region"], row["origin"])
    out.print(table)


@app.command()
def simulate(
    path: Path = typer.Argument(..., readable=False, help="Image file or DICOM series directory."),
    kind: str = typer.Option(..., "--kind", "-k", help="Degradation name (see medq degradations)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (format from suffix)."),
    level: float | None = typer.Option(None, "--level", help="Physical level (unit per kind)."),
    severity: str | None = typer.Option(None, "--severity", help="mild, moderate or severe."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same result."),
    as_json: bool = typer.Option(False, "--json", help="Print the degradation record as JSON."),
    modality: str | None = READ_AS_OPTION,
) -> None:
    """Degrade an image with the physics engine; writes OUT and a JSON sidecar with the record."""
    import numpy as np

    from medq.degrade import simulate as run_simulate
    from medq.errors import UnsupportedImage
    from medq.io import check_writable, load, save, write_sidecar
    from medq.io.polarity import storable_range
    from medq.io.sidecar import check_sidecar_writable

    outcome = Outcome()

    def job() -> dict[str, Any]:
        refuse_overwrite(path, output, output)
        image = load(path, modality=modality)
        fmt = check_writable(image, output)
        check_sidecar_writable(output)  # its record too, before the image replaces anything
        try:
            degraded, record = run_simulate(image, kind, level=level, severity=severity,
                                            seed=seed)
        except UnsupportedImage as e:
            raise UnsupportedImage(e.reason + _modality_guess(image, kind), e.path) from None
        if fmt in ("dicom", "dicom-series") and (span := storable_range(image)) is not None:
            degraded = degraded.with_array(np.clip(degraded.array, *span))  # as a detector
        written = save(degraded, output, reference=dicom_reference(image),  # saturates
                       description=f"medq simulate {kind} level={record.level:g} seed={seed}")
        sidecar = write_sidecar(written, {"source": str(path), "degradation": record.to_dict()},
                                fresh=fmt in ("dicom", "dicom-series"))  # save wrote none
        return {"path": str(path), "output": str(written), "sidecar": str(sidecar),
                "degradation": record.to_dict()}

    result = outcome.run(path, job)
    if not isinstance(result, BaseException):
        if as_json:
            print_json(result)
        else:
            rec = result["degradation"]
            out.print(f"{result['output']}: {rec['name']} level={rec['level']:g} {rec['unit']} "
                      f"({rec['severity']}), record in {result['sidecar']}", highlight=False)
    outcome.exit()


def _modality_guess(image: Any, kind: str) -> str:
    """For an image whose file states no modality, what medq's prompt classifier reads it as, to
    add to the error of degradation `kind` ("" when it is unsure or the modality was stated)."""
    if image.modality != "OT":
        return ""
    from medq.assess.prompt_classifier import load_classifier
    from medq.degrade import get_spec

    guess = load_classifier()
    found = guess(image, ("modality",)).get("modality") if guess else None
    if not found:
        return ""
    fits = [m for m in get_spec(kind).modalities
            if m == found or (found == "XR" and m in ("CR", "DX"))]
    if not fits:
        return f"; medq's prompt classifier reads it as {found}, which {kind} does not apply to"
    return f"; medq's prompt classifier reads it as {found}: add --modality {fits[0]} if so"


@app.command("degradations")
def degradations(
    modality: str | None = typer.Option(None, "--modality", help="Only kinds for this modality "
                                        "(XR is read as DX, PET as PT, as elsewhere)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the physics degradations with their units and severity levels."""
    from medq.degrade import available, get_spec
    from medq.image import modality_code

    code = modality_code(modality) if modality else None
    specs = [get_spec(name) for name in available(code or None)]
    if not specs:
        known = sorted({m for name in available() for m in get_spec(name).modalities})
        raise typer.BadParameter(f"no degradation for modality {modality!r}; the engine's "
                                 f"modalities are {', '.join(known)}", param_hint="'--modality'")
    rows = [{"name": s.name, "modalities": list(s.modalities), "unit": s.unit, "worse": s.worse,
             "levels": s.levels, "defined": list(s.domain),
             "defined_text": s.domain_text(),  # "> 0 – 200": a level of 0 is refused
             "finding": s.finding,
             "description": s.description} for s in specs]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "modalities", "level unit", "mild / moderate / severe", "defined",
                  "finding")
    for r in rows:
        lv = " / ".join(f"{r['levels'][k]:g}" for k in ("mild", "moderate", "severe"))
        table.add_row(r["name"], ",".join(r["modalities"]), r["unit"], lv, r["defined_text"],
                      r["finding"])
    out.print(table)


@app.command()
def demo(
    output: Path = typer.Option(Path("demo-output"), "--output", "-o", help="Gallery folder."),
) -> None:
    """Run the demo: every sample × degradation × severity, assessed → gallery + score table."""
    import json

    from medq.assess.predictor import Assessor
    from medq.assess.weights import DEFAULT_MODEL
    from medq.report.gallery import build_gallery

    outcome = Outcome()
    assessor = outcome.run(DEFAULT_MODEL, lambda: Assessor(DEFAULT_MODEL))
    if isinstance(assessor, BaseException):
        outcome.exit()
    page = outcome.run(output, lambda: build_gallery(output, progress=err, assessor=assessor))
    if not isinstance(page, BaseException):
        table = Table("sample", "score", "grade", "findings", title="medq assess (bundled samples)")
        for row in json.loads((output / "assessment.json").read_text()):
            table.add_row(row["sample"], f"{row['score']:.2f}", row["grade"],
                          assessment_findings(row))
        out.print(table)
        out.print(f"gallery written: {page}", highlight=False)
    outcome.exit()
