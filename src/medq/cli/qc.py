"""`medq qc run|export|make-archive`: QC of whole archives on Dask, results in a database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
)
from rich.text import Text

from medq.cli.common import (
    EACH_VOLUME_OPTION,
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    MODALITY_OPTION,
    Outcome,
    app,
    err,
    out,
    print_json,
    sigterm_as_ctrl_c,
)
from medq.errors import InputError
from medq.wording import first_of, plural

qc_app = typer.Typer(help="Quality control of whole archives: assess every item on Dask, keep "
                          "the results in a database, export them. The database (--db) is a "
                          "SQLite file or a SQLAlchemy URL, e.g. "
                          "postgresql+psycopg://user:pw@host/db.", no_args_is_help=True)
app.add_typer(qc_app, name="qc")

DB_OPTION = typer.Option("qc.sqlite", "--db",
                         help="Results database: a SQLite file, or a database URL (PostgreSQL: "
                              "see `medq qc --help`).")


def _mean_rate(task: Task) -> float | None:
    """Items per second since the task began (the assessing: `bar.reset`), None before its first
    item; Rich's own speed reads a recent window, which read 885 items/s on a run of 6 items
    that took 6 s."""
    return task.completed / task.elapsed if task.completed and task.elapsed else None


class _RateColumn(ProgressColumn):
    """Items per second since the assessing began (`_mean_rate`)."""

    def render(self, task: Task) -> Text:
        """The task's mean speed so far."""
        rate = _mean_rate(task)
        return Text("" if rate is None else f"{rate:.1f} items/s", style="progress.data.speed")


class _EtaColumn(ProgressColumn):
    """Time left at the mean rate so far (Rich's own reads a recent window: a burst of quick
    items said one second left of a 13-minute run)."""

    def render(self, task: Task) -> Text:
        """The task's time left, h:mm:ss."""
        rate = _mean_rate(task)
        if rate is None or task.total is None:
            return Text("-:--:--", style="progress.remaining")
        left = int(round((task.total - task.completed) / rate))
        return Text(f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}",
                    style="progress.remaining")



LOG_EVERY_S = 60.0
"""Where stderr is no terminal (a cron job's or a batch scheduler's log), a line of progress this
often in seconds instead of the bar."""


def _exit_code(results: list[dict[str, Any]]) -> int:
    """1 when an item failed for an internal reason, else 2 when any input was bad, else 0."""
    failed = [r for r in results if r["status"] == "error"]
    if any(not r.get("bad_input", True) for r in failed):
        return EXIT_INTERNAL
    return EXIT_BAD_INPUT if failed else 0


def _stopped(message: str, counts: dict[str, int], as_json: bool, began: float) -> None:
    """Say that a run was stopped, and (`--json`) print its counts so far."""
    from medq.qc.store import RUN_COUNTS

    err.print(f"medq: {message}", markup=False, highlight=False)
    if as_json:  # a script reading the counts gets those so far
        print_json({**{k: counts.get(k, 0) for k in RUN_COUNTS},
                    "seconds": round(time.monotonic() - began, 1), "interrupted": True})


@qc_app.command("run")
def run(
    archive: Path = typer.Argument(..., help="Folder to QC (walked recursively) or one file."),
    db: str = DB_OPTION,
    workers: int | None = typer.Option(None, "--workers", "-w", min=1,
                                       help="Local worker processes (default: one per core)."),
    scheduler: str | None = typer.Option(None, "--scheduler",
                                         help="Address of a running Dask scheduler to use "
                                              "instead of local workers (tcp://host:8786)."),
    model: str = typer.Option("mediqa-s", "--model", "-m",
                              help="Shipped model name or path to a checkpoint (.pt)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary at the end."),
    measures: bool = typer.Option(True, "--measures/--no-measures",
                                  help="Also compute the classical measures and compare "
                                       "every slice of a volume for noisy slices (items "
                                       "stored without measures are assessed again)."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Items per Dask task."),
    retry_errors: bool = typer.Option(False, "--retry-errors",
                                      help="Assess again the items stored as errors."),
    each: bool = EACH_VOLUME_OPTION,
    modality: str | None = MODALITY_OPTION,
    prune: bool = typer.Option(False, "--prune",
                               help="Remove from the database the items stored under this "
                                    "archive that are no longer in it (deleted, renamed), "
                                    "with their reviews."),
) -> None:
    """Assess every item of an archive; unchanged items already in the database are skipped."""
    from medq.assess.weights import load_weights
    from medq.io.archive import unopened
    from medq.qc.planning import running_alongside
    from medq.qc.runner import RunInterrupted, model_key, run_qc
    from medq.qc.signals import repeat_ignored
    from medq.qc.store import RUN_COUNTS, Store

    def alongside(store: Store, archive: Path, model: str) -> list[tuple[int, float]]:
        try:  # a note only: a failed look never stops the run
            return running_alongside(store, archive, model_key(model))
        except Exception:  # noqa: BLE001
            return []

    began = time.monotonic()
    outcome = Outcome()  # an unknown or broken model fails here, before any database or worker
    with sigterm_as_ctrl_c() as terminated:  # SIGTERM: stopped as Ctrl-C stops it
        stage = "loading the model"
        try:
            if isinstance(outcome.run(model, lambda: load_weights(model)), BaseException):
                outcome.exit()
            stage = "opening the results database"
            store = outcome.run(db, lambda: Store(db))
        except KeyboardInterrupt as e:  # nothing is stored yet (a half-made file: Store's)
            _stopped(f"interrupted while {stage}; nothing was assessed", {}, as_json, began)
            raise typer.Exit(143 if terminated else 130) from e
    if isinstance(store, BaseException):
        outcome.exit()
    results: list[dict[str, Any]] = []
    last_line = [began]  # when the latest progress line was printed (stderr no terminal)
    with sigterm_as_ctrl_c() as terminated:
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          _RateColumn(), _EtaColumn(), console=err,
                          disable=not err.is_terminal) as bar:
                task = bar.add_task("finding items", total=None)

                def on_plan(todo: int, skipped: int) -> None:
                    if Path(archive).is_dir() and (left := unopened(archive, "unpack {them} to QC "
                                                                    "the images")):
                        err.print(f"medq: note: {archive}: {left}", markup=False, highlight=False)
                    bar.reset(task, total=todo, description="assessing" + (
                        f" ({skipped} unchanged skipped)" if skipped else ""))  # timed from here
                    last_line[0] = time.monotonic()
                    for other, ago in alongside(store, archive, model) if todo else ():
                        err.print(f"medq: note: run {other} of this archive was last active "
                                  f"{ago:g} s ago and has not finished: if another medq qc run "
                                  "is still writing to this database, both assess the same "
                                  "items (stop one)", markup=False, highlight=False)

                def on_result(result: dict[str, Any]) -> None:
                    results.append({"status": result["status"],
                                    "bad_input": result.get("bad_input")})
                    if result["status"] == "error":
                        err.print(f"medq: error: {result['error']}", markup=False, highlight=False)
                    bar.advance(task)
                    moment = time.monotonic()
                    if not err.is_terminal and moment - last_line[0] >= LOG_EVERY_S:
                        last_line[0] = moment  # the hidden bar's task still counts and times
                        shown = next(t for t in bar.tasks if t.id == task)
                        err.print(f"medq: {int(shown.completed)} of {int(shown.total or 0)} "
                                  f"items assessed ({_mean_rate(shown) or 0.0:.1f} items/s)",
                                  markup=False, highlight=False)

                summary = outcome.run(archive, lambda: run_qc(
                    archive, store, model=model, workers=workers, scheduler=scheduler,
                    measures=measures, batch=batch_size, retry_errors=retry_errors,
                    each_volume=each, prune=prune, modality=modality, on_plan=on_plan,
                    on_result=on_result))
        except RunInterrupted as e:  # Ctrl-C or SIGTERM: the run row holds the counts so far
            with repeat_ignored():  # a second Ctrl-C (`timeout` sends two) loses nothing
                store.discard()  # kept once a run row or an item is in it
                _stopped(str(e), e.counts, as_json, began)
            raise typer.Exit(143 if terminated else 130) from e
    if isinstance(summary, InputError):  # refused (nothing to assess): no empty database left
        store.discard()
        outcome.exit()
    store.close()
    if isinstance(summary, BaseException):
        outcome.exit()
    public = {**{k: summary[k] for k in (*RUN_COUNTS, "seconds")},
              "interrupted": False}
    gone, pruned = summary.get("gone") or [], summary.get("pruned", 0)
    if gone:
        first = first_of(gone, 3)
        err.print(f"medq: note: {archive}: {plural(len(gone), 'item')} stored from earlier runs "
                  f"{'is' if len(gone) == 1 else 'are'} no longer there ({first}); "
                  f"{'it stays' if len(gone) == 1 else 'they stay'} in the database and its "
                  f"exports until --prune removes {'it' if len(gone) == 1 else 'them'}",
                  markup=False, highlight=False)
    if pruned:
        err.print(f"medq: note: {archive}: removed {plural(pruned, 'item')} no longer there "
                  "(and their reviews) from the database", markup=False, highlight=False)
    if replaced := summary.get("replaced", 0):
        err.print(f"medq: note: {archive}: {plural(replaced, '4D file')} now stored volume by "
                  "volume: the earlier refusal of the whole file was removed",
                  markup=False, highlight=False)
    for where, note in summary.get("split") or []:
        err.print(f"medq: note: {where}: {note}", markup=False, highlight=False)

    if as_json:
        print_json(public)
    else:
        out.print(f"{plural(public['total'], 'item')}: {public['ok']} ok, "
                  f"{plural(public['errors'], 'error')}, "
                  f"{public['skipped']} skipped (unchanged) in {public['seconds']:.1f} s "
                  f"→ {store.display_url}", highlight=False, markup=False)
    raise typer.Exit(_exit_code(results))


@qc_app.command("export")
def export(
    db: str = DB_OPTION,
    output: Path = typer.Option(..., "--output", "-o", help="File to write; - writes to "
                                "standard output (csv unless --format says otherwise)."),
    fmt: str | None = typer.Option(None, "--format", "-f",
                                   help="csv, tsv, parquet or json (default: from the suffix)."),
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="Only the results of this model."),
) -> None:
    """Export the results: one row per item (path, status, score, verdict, error, measures…)."""
    from medq.qc.export import export_items
    from medq.qc.store import Store

    outcome = Outcome()
    store = outcome.run(db, lambda: Store(db, create=False))
    if isinstance(store, BaseException):
        outcome.exit()
    rows = outcome.run(output, lambda: export_items(store, output, fmt, model=model))
    store.close()
    if not isinstance(rows, BaseException):
        err.print(f"{rows} rows → {'standard output' if str(output) == '-' else output}",
                  highlight=False, markup=False)
    outcome.exit()


@qc_app.command("make-archive")
def make_archive_command(
    directory: Path = typer.Argument(..., help="Folder to write the archive into."),
    n: int = typer.Option(1000, "--n", min=1, help="DICOM files to write (about)."),
    all_samples: bool = typer.Option(True, "--all-samples/--fast-samples",
                                     help="Use every bundled sample (radiograph, PET and fundus "
                                          "take a few seconds to prepare) or only the fast ones."),
    seed: int = typer.Option(0, "--seed", help="Seed of the degradations."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write a test archive: bundled samples × degradations as DICOM, plus corrupt files."""
    from medq.qc.archive import ALL_SAMPLES, FAST_SAMPLES, make_archive

    outcome = Outcome()
    made = outcome.run(directory, lambda: make_archive(
        directory, n, samples=ALL_SAMPLES if all_samples else FAST_SAMPLES, seed=seed))
    if isinstance(made, BaseException):
        outcome.exit()
    summary = {"directory": str(directory), "files": made["files"], "items": len(made["items"]),
               "series": len(made["series"]), "corrupt": len(made["corrupt"])}
    if as_json:
        print_json(summary)
    else:
        out.print(f"{summary['files']} DICOM files ({summary['items']} items, "
                  f"{summary['series']} series, {summary['corrupt']} corrupt) → {directory}",
                  highlight=False, markup=False)
