"""Command-line interface: `medq info|samples|simulate|demo` (Typer + Rich).

Every command follows one error contract: a bad input prints one line
`medq: error: <file>: <reason>` on stderr, the other inputs are still processed, and the exit code
is 2 when any input was bad, 1 on an internal error (set MEDQ_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from medq import __version__
from medq.errors import InputError, MedqError

app = typer.Typer(
    name="medq",
    help="Medical image quality: assess, describe, restore and segment CT, MRI, PET, "
    "radiographs and fundus photographs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1

T = TypeVar("T")


def fail_line(path: str | os.PathLike[str] | None, exc: BaseException) -> str:
    """The one-line error message for `exc` about `path`."""
    if isinstance(exc, MedqError):
        if exc.path is None and path is not None:
            return f"{path}: {exc.reason}"
        return exc.message
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    return f"{path}: internal error: {reason}" if path else f"internal error: {reason}"


class Outcome:
    """Collects per-input failures and turns them into the exit code."""

    def __init__(self) -> None:
        self.code = 0

    def run(self, path: str | os.PathLike[str] | None, fn: Callable[[], T]) -> T | BaseException:
        """Call `fn`; on failure print the one-line error and remember the exit code."""
        try:
            return fn()
        except InputError as exc:
            self._report(path, exc, EXIT_BAD_INPUT)
            return exc
        except Exception as exc:  # noqa: BLE001 - the batch must go on; reported as internal
            if os.environ.get("MEDQ_DEBUG"):
                raise
            self._report(path, exc, EXIT_INTERNAL)
            return exc

    def _report(self, path: Any, exc: BaseException, code: int) -> None:
        err.print(f"medq: error: {fail_line(path, exc)}", markup=False, highlight=False)
        # an internal error (1) outranks bad input (2) in the final exit code
        self.code = code if self.code == 0 else min(self.code, code)

    def exit(self) -> None:
        """Exit with the collected code (0 when everything worked)."""
        raise typer.Exit(self.code)


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """The inputs to process: medq's own JSON sidecars of other inputs (from a glob) are skipped."""
    from medq.io.sidecar import sidecar_path

    paths = list(paths)
    sidecars = {sidecar_path(p) for p in paths if p.suffix.lower() != ".json"}
    return [p for p in paths if p not in sidecars]


def error_object(path: str | os.PathLike[str], exc: BaseException) -> dict[str, Any]:
    """The JSON object standing in for a failed input: `{"path", "error": {"type", "message"}}`."""
    etype = type(exc).__name__ if isinstance(exc, MedqError) else "InternalError"
    return {"path": str(path), "error": {"type": etype, "message": fail_line(path, exc)}}


def print_json(data: Any) -> None:
    """Print JSON on stdout (plain, no Rich markup)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


MODALITY_OPTION = typer.Option(
    None, "--modality", help="Modality when the file does not say (CT, MR, PT, CR, DX, OP).")

KEY_PHYSICS = ("kvp", "exposure_mAs", "ctdi_vol", "convolution_kernel", "field_strength_T",
               "tr_ms", "te_ms", "slice_thickness_mm")
"""Physics shown in the `medq info` table (`--json` has all of it)."""


def _version(value: bool) -> None:
    if value:
        out.print(f"medq {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """medq: medical image quality toolkit."""


@app.command()
def info(
    paths: list[Path] = typer.Argument(..., help="Image files or DICOM series directories."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per input."),
    modality: str | None = MODALITY_OPTION,
) -> None:
    """Show modality, region, shape, spacing and acquisition physics of each input."""
    from medq.io import load

    outcome = Outcome()
    rows: list[dict[str, Any]] = []
    for path in expand_inputs(paths):
        result = outcome.run(path, lambda p=path: load(p, modality=modality))
        if isinstance(result, BaseException):
            rows.append(error_object(path, result))
        else:
            rows.append(dict(result.summary(), path=str(path)))
    if as_json:
        print_json(rows)
    else:
        _info_table(rows)
    outcome.exit()


def _info_table(rows: Iterable[dict[str, Any]]) -> None:
    table = Table("path", "modality", "region", "shape", "spacing (mm)", "key physics")
    for row in rows:
        if "error" in row:
            continue
        physics = ", ".join(f"{k}={row['physics'][k]}" for k in KEY_PHYSICS
                            if k in row["physics"])
        table.add_row(row["path"], row["modality"], row["region"],
                      "×".join(map(str, row["shape"])),
                      "×".join(f"{s:g}" for s in row["spacing"]), physics)
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
    path: Path = typer.Argument(..., help="Image file or DICOM series directory."),
    kind: str = typer.Option(..., "--kind", "-k", help="Degradation name (see --list)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (format from suffix)."),
    level: float | None = typer.Option(None, "--level", help="Physical level (unit per kind)."),
    severity: str | None = typer.Option(None, "--severity", help="mild, moderate or severe."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same result."),
    as_json: bool = typer.Option(False, "--json", help="Print the degradation record as JSON."),
    modality: str | None = MODALITY_OPTION,
) -> None:
    """Degrade an image with the physics engine; writes OUT and a JSON sidecar with the record."""
    from medq.degrade import simulate as run_simulate
    from medq.io import load, save, write_sidecar

    outcome = Outcome()

    def job() -> dict[str, Any]:
        image = load(path, modality=modality)
        degraded, record = run_simulate(image, kind, level=level, severity=severity, seed=seed)
        written = save(degraded, output, reference=image.source,
                       description=f"medq simulate {kind} level={record.level:g} seed={seed}")
        sidecar = write_sidecar(written, {"source": str(path), "degradation": record.to_dict()})
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


@app.command("degradations")
def degradations(
    modality: str | None = typer.Option(None, "--modality", help="Only kinds for this modality."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the physics degradations with their units and severity levels."""
    from medq.degrade import available, get_spec

    specs = [get_spec(name) for name in available(modality.upper() if modality else None)]
    rows = [{"name": s.name, "modalities": list(s.modalities), "unit": s.unit, "worse": s.worse,
             "levels": s.levels, "finding": s.finding, "description": s.description}
            for s in specs]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "modalities", "level unit", "mild / moderate / severe", "finding")
    for r in rows:
        lv = " / ".join(f"{r['levels'][k]:g}" for k in ("mild", "moderate", "severe"))
        table.add_row(r["name"], ",".join(r["modalities"]), r["unit"], lv, r["finding"])
    out.print(table)


@app.command()
def demo(
    output: Path = typer.Option(Path("demo-output"), "--output", "-o", help="Gallery folder."),
) -> None:
    """Run the demo: every bundled sample × every degradation × three severities → a gallery."""
    from medq.report.gallery import build_gallery

    outcome = Outcome()
    page = outcome.run(output, lambda: build_gallery(output, progress=err))
    if not isinstance(page, BaseException):
        out.print(f"gallery written: {page}", highlight=False)
    outcome.exit()


if __name__ == "__main__":  # pragma: no cover
    app()
