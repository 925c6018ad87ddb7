"""`medq restore` (assess → describe → restore → re-assess) and `medq bench restore`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from medq.cli.assess import assess_inputs
from medq.cli.bench_results import (
    BENCH_JSON_OPTION,
    RESULTS_OPTION,
    load_named,
    names_list,
    results_ready,
    write_results,
)
from medq.cli.common import (
    EACH_VOLUME_OPTION,
    INPUTS_ARGUMENT,
    MODALITY_OPTION,
    Outcome,
    app,
    dicom_reference,
    err,
    error_object,
    out,
    print_json,
    progress_bar,
)
from medq.cli.paths import input_files, read_from, refuse_overwrite
from medq.cli.train import bench_app
from medq.errors import InvalidParameter
from medq.io.special import resolved

METHOD_HELP = ("auto (the network, conditioned on the description; for MR noise alone BM3D "
               "inside the body where Stein's risk estimate reads it better), net (the network "
               "alone), bm3d, nlm or tv (denoisers: they address noise only); whichever, the "
               "assessment gates it: an image with nothing to repair is returned unchanged "
               "unless --force.")


def _known_method(value: str) -> str:
    """`--method` as given, or a usage error (exit 2) naming the methods, before any input."""
    from medq.restore.pipeline import METHODS

    if value not in METHODS:
        raise typer.BadParameter(f"{value!r} is not a method; use {', '.join(METHODS)}")
    return value


def output_paths(paths: list[Path], inputs: list[Path], output: Path) -> dict[Path, Path]:
    """Where each input's result goes: OUT itself for one input; for several, OUT/<its path
    inside the folder argument it was found in> (a study's subfolders are kept), else
    OUT/<its name> (`<stem>_volume<k><ext>` for a volume of a 4D file; NIfTI for a format medq
    reads only, `io.neuro.writable_name`). InvalidParameter when two results would share a path.
    """
    import os

    from medq.io.neuro import writable_name
    from medq.io.volumes import volume_file_name

    if len(inputs) == 1 and not (output.is_dir() and not _is_series_input(inputs[0])):
        return {inputs[0]: output}  # one input into an existing folder: OUT/<its name>
    folders = [p for p in paths if p.is_dir()]
    targets: dict[Path, Path] = {}
    for path in inputs:
        inside = next((rel for f in folders if path != f
                       and not (rel := os.path.relpath(path, f)).startswith("..")), None)
        target = output / (inside or volume_file_name(path))
        targets[path] = _as_read(path, target.with_name(writable_name(target.name)))
    seen: dict[Path, Path] = {}
    for path, target in targets.items():
        if target in seen:
            raise InvalidParameter(f"{seen[target]} and {path} would both be written to "
                                   f"{target}; restore them in separate runs", output)
        seen[target] = path
    return targets


def _as_read(path: Path, target: Path) -> Path:
    """`target`, with `.dcm` added when `path` is a DICOM file whose name says another format
    (`scan.png` holding DICOM → `scan.png.dcm`): DICOM in, DICOM out, header kept."""
    from medq.errors import MedqError
    from medq.io import sniff

    try:
        is_dicom = path.is_file() and sniff(path) == "dicom"
    except MedqError:
        return target  # unreadable: its own error says why
    if is_dicom and _format_named(target) not in ("dicom", None):
        return target.with_name(target.name + ".dcm")
    return target


def _is_series_input(path: Path) -> bool:
    """True for an input that is a DICOM series folder (or one series of a folder): its result
    is a series folder, so an existing folder OUT receives it as it is."""
    from medq.io.dicom_series import series_in_folder

    return path.is_dir() or series_in_folder(path) is not None


def _series_folder(target: Path) -> Path | None:
    """The series folder a volume read from one DICOM file (multi-frame, Siemens mosaic) is
    written to in place of the DICOM file name chosen for it (`x.dcm`, `x.dcm.gz`, `x.gz` →
    `x`); None when `target` names another format."""
    from medq.io import target_format
    from medq.io.dicom import DICOM_SUFFIXES

    if target_format(target) != "dicom":
        return None
    name = target.name
    for ending in (".gz", *DICOM_SUFFIXES):  # `.dcm.gz`: the `.gz`, then the `.dcm`
        if name.lower().endswith(ending):
            name = name[:len(name) - len(ending)]
    return target.with_name(name)


def _format_named(path: Path) -> str | None:
    """The format `path` would be written in (`io.target_format`), None for one medq cannot
    write."""
    from medq.errors import MedqError
    from medq.io import target_format

    try:
        return target_format(path)
    except MedqError:
        return None


def _names_a_file(path: Path) -> bool:
    """Whether `path` ends in an image format's suffix (`x.dcm`, `x.nii.gz`, `x.png`)."""
    return bool(path.suffix) and _format_named(path) not in (None, "dicom-series")


def _prepare(paths: list[Path], inputs: list[Path], output: Path, as_folder: bool = False
             ) -> dict[Path, Path]:
    """The output of every input (`output_paths`); several inputs need OUT to be a folder
    (created when missing), and a series from a folder holding several gets its own folder.
    `as_folder`: OUT was written with a trailing slash, a folder even for one input (made when
    missing; the result keeps its input's name)."""
    from medq.io.atomic import make_folder
    from medq.io.dicom_series import series_in_folder

    made = as_folder and not output.exists()
    if as_folder:
        make_folder(output)
    try:
        targets = _checked_targets(paths, inputs, output)
    except InvalidParameter:
        if made and not any(output.iterdir()):
            output.rmdir()  # refused before any work: no empty OUT left behind
        raise
    if len(inputs) > 1:
        for path, target in targets.items():
            make_folder(target.parent, output)
            if series_in_folder(path):
                target.mkdir(exist_ok=True)  # a series folder (its name has the UID's dots)
    return targets


def _checked_targets(paths: list[Path], inputs: list[Path], output: Path) -> dict[Path, Path]:
    """`output_paths`, refused (InvalidParameter) where a result would replace an input, has a
    suffix medq cannot write, or several inputs meet an OUT that is no folder."""
    from medq.io import target_format
    from medq.io.archive import archive_name

    targets = output_paths(paths, inputs, output)
    read = {f: path for path in inputs for f in input_files(path)}
    for path, target in targets.items():
        refuse_overwrite(path, target, output)
        if (other := read.get(resolved(target))) is not None:
            raise InvalidParameter(f"the result of {path} would replace the input {other}; "
                                   "write it elsewhere (medq never overwrites its input)", output)
        # a series goes to a folder (its name may hold dots); an archive still an input could
        # not be unpacked and fails alone when read; among several inputs one that cannot be
        # written (a stray .gif in a folder) fails alone too, not the batch
        if len(inputs) == 1 and not _is_series_input(path) and not archive_name(path):
            target_format(target)  # a suffix medq cannot write fails now, not after the work
    if len(inputs) > 1:
        if output.exists() and not output.is_dir():
            raise InvalidParameter("with several inputs OUT must be a folder", output)
        if not output.exists() and _names_a_file(output):
            raise InvalidParameter("with several inputs OUT must be a folder, and this names a "
                                   "file (its suffix is an image format's)", output)
    return targets


def _outside(inputs: list[Path], paths: list[Path], output: Path) -> list[Path]:
    """The inputs without those a folder's walk found inside OUT (the results of an earlier run
    into a folder within the input folder: restoring them would nest and replace them), with a
    note saying how many were left out; inputs named on the command line stay."""
    out = resolved(output)
    if not out.is_dir():
        return inputs

    def within(path: Path) -> bool:
        where = read_from(path)
        return where == out or out in where.parents

    named_inputs = {resolved(p) for p in paths}
    left = [p for p in inputs if resolved(p) not in named_inputs and within(p)]
    if left:
        many = f"{len(left)} images" if len(left) > 1 else "image"
        err.print(f"medq: note: {output}: lies inside an input folder; the {many} already in "
                  "it are not read as inputs",
                  markup=False, highlight=False)
    return [p for p in inputs if p not in left]


def _keep_jpeg_bytes(path: Path, image: Any, written: Path) -> None:
    """An unchanged JPEG written as JPEG is its input's bytes (encoded again, it lost detail
    while its report said "returned unchanged"); one read through a value map is left as
    written, its sidecar's map fitting the new bytes."""
    import shutil

    from medq.io import sniff, target_format
    from medq.io.atomic import atomic_path

    if (path.is_file() and not image.meta.get("rescale") and target_format(written) == "jpeg"
            and sniff(path) == "jpeg"):
        with atomic_path(written) as tmp:
            shutil.copyfile(path, tmp)


def _consistency_line(done: dict[str, Any] | None) -> str:
    """The table's line on the consistency step (empty when it did not run)."""
    if not done:
        return ""
    what = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in done.items() if k != "step")
    return f"\n  consistency step: {done['step']} ({what})"


@app.command()
def restore(
    paths: list[Path] = INPUTS_ARGUMENT,
    output_text: str = typer.Option(..., "--output", "-o", metavar="PATH",
                                    help="Output file (one input) or "
                                    "folder (several inputs, or a name ending in '/'; each "
                                    "result keeps its input's file name)."),
    method: str = typer.Option("auto", "--method", help=METHOD_HELP, callback=_known_method),
    model: str = typer.Option("restore-s", "--model", "-m",
                              help="Shipped restorer name or path to a checkpoint (.pt)."),
    force: bool = typer.Option(False, "--force", help="Restore even when nothing was found "
                               "to repair (skips the quality gate)."),
    consistency: bool = typer.Option(True, "--consistency/--no-consistency",
                                     help="Make the network's output consistent with a "
                                     "low-resolution or blurred input (one back-projection "
                                     "step)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per "
                                 "input: before/after scores and the findings addressed."),
    modality: str | None = MODALITY_OPTION,
    each: bool = EACH_VOLUME_OPTION,
) -> None:
    """Restore images guided by their assessment; the input's format is kept."""
    from medq.assess.predictor import Assessor
    from medq.io import check_writable, load, save
    from medq.io.archive import shown, unpack_all
    from medq.restore.pipeline import restore as run_restore

    outcome = Outcome()
    paths = unpack_all(paths)  # an archive: the folder it holds
    output = Path(output_text)
    found = assess_inputs(paths, each)
    inputs = _outside(list(dict.fromkeys(found)), paths, output)
    twice = sorted({shown(p) for p in found if found.count(p) > 1})
    if twice:  # one result each; several inputs given, so OUT is a folder all the same
        err.print(f"medq: note: {', '.join(twice)} given more than once: restored once",
                  markup=False, highlight=False)
    as_folder = output_text.endswith(("/", os.sep)) or (len(found) > 1 and len(inputs) == 1)
    ready = outcome.run(output, lambda: _prepare(paths, inputs, output, as_folder))
    assessor = None if isinstance(ready, BaseException) else \
        outcome.run("mediqa-s", lambda: Assessor("mediqa-s", modality=modality))
    if isinstance(ready, BaseException) or isinstance(assessor, BaseException):
        if as_json:  # still a JSON list, one error object per input
            failure = ready if isinstance(ready, BaseException) else assessor
            print_json([error_object(path, failure) for path in inputs])
        outcome.exit()
    rows: list[dict[str, Any]] = []
    scorer = assessor.with_settings(measures=False, describe=False)  # a score alone

    def job(path: Path) -> dict[str, Any]:
        image = load(path, modality=modality)
        target = ready[path]
        if len(inputs) > 1 and image.is_volume and (folder := _series_folder(target)):
            target = folder  # a volume: a series folder
        check_writable(image, target)  # before the work, not after it
        planes = bar.add_task("  channels" if image.is_rgb else "  slices", total=None,
                              visible=False)  # a volume's slices (a photograph's channels)

        def advance(done: int, total: int) -> None:
            bar.update(planes, completed=done, total=total, visible=total > 1)

        try:
            result = run_restore(image, method, model=model, assessor=assessor, force=force,
                                 consistency=consistency, reassess=False, progress=advance)
        finally:
            bar.remove_task(planes)
        written = save(result.image, target, reference=dicom_reference(image),
                       description=f"medq restore {method}: {result.note.rstrip('.')}")
        if not result.changed:
            _keep_jpeg_bytes(path, image, written)
        else:  # the score of the file as written (its pixels rounded to what it holds)
            try:
                result = result.rescored(scorer.assess(load(written, modality=modality)).score)
            except Exception as e:  # noqa: BLE001 - the file is written; its score is not known
                result = result.rescored(None)
                err.print(f"medq: note: {shown(path)}: the restored file {written} was written "
                          f"but could not be re-assessed ({type(e).__name__}: {e})",
                          markup=False, highlight=False)
        return dict(result.to_dict(), path=shown(path), output=str(written))

    with progress_bar(None) as bar:  # inputs, and a volume's slices (BM3D: seconds each)
        task = bar.add_task("restoring", total=len(inputs))
        for path in inputs:
            result = outcome.run(path, lambda p=path: job(p))
            rows.append(error_object(path, result) if isinstance(result, BaseException)
                        else result)
            bar.advance(task)
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            if "error" not in row:
                out.print(f"{row['path']} → {row['output']}\n  {row['description']}\n  "
                          f"{row['note']}{_consistency_line(row.get('consistency'))}",
                          highlight=False, markup=False)
    outcome.exit()


@bench_app.command("restore")
def bench_restore(
    per_level: int = typer.Option(2, "--per-level", min=1, help="Items per task and severity."),
    bm3d_items: int = typer.Option(4, "--bm3d-items", min=0, help="Items per task also restored by "
                                   "BM3D (slow: the others run on every item); 0 leaves BM3D "
                                   "out, its timing too."),
    models: str = typer.Option("restore-s,restore-s-nocond", "--models",
                               help="Conditioned network, then its no-conditioning ablation."),
    results: Path = RESULTS_OPTION,
    as_json: bool = BENCH_JSON_OPTION,
) -> None:
    """PSNR/SSIM per task of input, NLM, TV, BM3D and the networks on held-out test images."""
    from medq.restore.benchmark import run_benchmark

    outcome = Outcome()
    names = names_list(models)

    def job() -> dict[str, Any]:
        from medq.restore.models import load_restorer

        results_ready(results)
        load_named(names, load_restorer)
        payload = run_benchmark(names, per_level=per_level, bm3d_items=bm3d_items, console=err)
        write_results(results, "restore.json", payload)
        return payload

    payload = outcome.run(models, job)
    if isinstance(payload, BaseException):
        outcome.exit()
    if as_json:
        print_json(payload["summary"])
        outcome.exit()
    _print_table(payload)
    out.print(f"JSON: {results / 'restore.json'}", highlight=False, markup=False)
    outcome.exit()


def _print_table(payload: dict[str, Any]) -> None:
    """The benchmark summary as Rich tables: PSNR/SSIM per task and method, then timings."""
    summary = payload["summary"]
    methods = payload["methods"]
    table = Table("task", "n", *[f"{m}\nPSNR / SSIM" for m in methods],
                  title="Restoration on held-out test images (CT: [−160, 240] HU window)")
    for task, row in summary["tasks"].items():
        cells = [f"{row[m]['psnr']:.2f} / {row[m]['ssim']:.3f}" if m in row else "–"
                 for m in methods]
        table.add_row(task, str(row["n"]), *cells)
    out.print(table)
    paired = {t: r["psnr_on_bm3d_items"] for t, r in summary["tasks"].items()
              if r.get("psnr_on_bm3d_items")}
    if paired:  # BM3D's column averages only its first items of each task: compare like with like
        table = Table("task", "n", *methods, title="PSNR on the items BM3D restored (paired)")
        for task, row in paired.items():
            table.add_row(task, str(summary["tasks"][task]["n_bm3d"]),
                          *[f"{row[m]:.2f}" if m in row else "–" for m in methods])
        out.print(table)
    for line in summary["notes"]:
        out.print(line, highlight=False, markup=False)
