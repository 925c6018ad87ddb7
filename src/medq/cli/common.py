"""Shared pieces of the command line: the Typer app, consoles, the error/exit-code contract.

Every command follows one error contract: a bad input prints one line
`medq: error: <file>: <reason>` on stderr, the other inputs are still processed, and the exit code
is 2 when any input was bad, 1 on an internal error (set MEDQ_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from medq import __version__
from medq.errors import InputError, InvalidParameter, MedqError, debugging, printable
from medq.image import graded_modality


def _is(exc: BaseException, name: str) -> bool:
    """Whether `exc` is a Click exception of class `name` (Typer ships Click inside itself in
    some releases and uses the `click` package in others: the class is found by name)."""
    return any(c.__name__ == name for c in type(exc).__mro__)


def _flags_take_no_value(command: Any) -> None:
    """Give every on/off flag of `command` and its subcommands (`--json`, `--help`) an empty
    metavar, so the help does not show it as taking a value (`--json <bool>`)."""
    ctx = typer.Context(command)
    params = [*command.params, command.get_help_option(ctx)]
    for param in params:
        if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _flags_take_no_value(sub)


class OneLineErrors(typer.core.TyperGroup):
    """medq's command group: a usage error (an unknown command or option, a missing argument, a
    value out of range) is one line on stderr, `medq: error: <reason> (see medq <command>
    --help)`, exit code 2, as every other bad input is, not a boxed panel."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the command line; usage errors and aborts as medq reports errors."""
        _flags_take_no_value(self)
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except Exception as e:
            if _is(e, "NoArgsIsHelpError"):  # the help is printed already
                sys.exit(e.exit_code)  # type: ignore[attr-defined]
            if _is(e, "ClickException"):
                ctx = getattr(e, "ctx", None)
                see = f" (see {ctx.command_path} --help)" if ctx is not None else ""
                message = " ".join(e.format_message().split())  # type: ignore[attr-defined]
                err.print(f"medq: error: {message}{see}", markup=False, highlight=False)
                sys.exit(e.exit_code)  # type: ignore[attr-defined]
            if _is(e, "Abort"):
                err.print("medq: aborted", markup=False, highlight=False)
                sys.exit(1)
            raise
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    name="medq",
    help="Medical image quality: assess, describe and restore CT, MRI, PET, "
    "radiographs and fundus photographs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
PIPE_WIDTH = 160
"""Columns of tables written to a file or a pipe (rich's default of 80 cut the benchmark tables'
model names to a few letters); `COLUMNS` overrides it."""


def reflowed(fn: Any) -> Any:
    """Decorator (under `@app.command()`): the command's docstring with each paragraph on one
    line, since the help keeps a later paragraph's line breaks and Rich then wraps every line
    of it again (ragged at 80 columns)."""
    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    fn.__doc__ = "\n\n".join(" ".join(line.strip() for line in p.splitlines())
                              for p in paragraphs)
    return fn


def console(stderr: bool = False) -> Console:
    """A rich console on stdout or stderr, `PIPE_WIDTH` wide when it is not a terminal."""
    made = Console(stderr=stderr, soft_wrap=True)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made.width = PIPE_WIDTH
    return made


out = console()
err = console(stderr=True)

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1

T = TypeVar("T")


def fail_line(path: str | os.PathLike[str] | None, exc: BaseException) -> str:
    """The one-line error message for `exc` about `path` (a path inside an archive written as
    `<archive>/<path inside>`, `io.archive.shown`)."""
    from medq.io.archive import shown

    if isinstance(exc, MedqError):
        if exc.path is None and path is not None and str(path).strip():
            return shown(f"{printable(path)}: {exc.reason}")
        return shown(exc.message)
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    return shown(f"{printable(path)}: internal error: {reason}" if path
                 else f"internal error: {reason}")


class Outcome:
    """Collects per-input failures and turns them into the exit code."""

    def __init__(self) -> None:
        self.code = 0

    def run(self, path: str | os.PathLike[str] | None, fn: Callable[[], T]) -> T | BaseException:
        """Call `fn`; on failure print the one-line error and remember the exit code."""
        result = self.attempt(fn)
        if isinstance(result, BaseException):
            self.fail(path, result)
        return result

    @staticmethod
    def attempt(fn: Callable[[], T]) -> T | BaseException:
        """Call `fn`; a failure is returned, not yet reported (`fail` reports it in its turn,
        so the error lines keep the inputs' order)."""
        try:
            return fn()
        except InputError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - the batch must go on; reported as internal
            if debugging():
                raise
            return exc

    def fail(self, path: Any, exc: BaseException) -> None:
        """Report an input's failure caught elsewhere (bad input → 2, anything else → 1)."""
        self._report(path, exc, EXIT_BAD_INPUT if isinstance(exc, InputError) else EXIT_INTERNAL)

    def _report(self, path: Any, exc: BaseException, code: int) -> None:
        err.print(f"medq: error: {fail_line(path, exc)}", markup=False, highlight=False)
        # an internal error (1) outranks bad input (2) in the final exit code
        self.code = code if self.code == 0 else min(self.code, code)

    def exit(self) -> None:
        """Exit with the collected code (0 when everything worked)."""
        raise typer.Exit(self.code)


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """The inputs to process: medq's own JSON sidecars of other inputs (from a glob) are skipped."""
    from medq.io.sidecar import own_sidecar_path, sidecar_path

    paths = list(paths)
    sidecars = {side for p in paths if p.suffix.lower() != ".json"
                for side in (sidecar_path(p), own_sidecar_path(p))}
    return [p for p in paths if p not in sidecars]


def error_object(path: str | os.PathLike[str], exc: BaseException) -> dict[str, Any]:
    """The JSON object standing in for a failed input: `{"path", "error": {"type", "message"}}`
    (and what else the error states: a uniform phantom's ROI measures under `phantom`)."""
    from medq.io.archive import shown

    etype = type(exc).__name__ if isinstance(exc, MedqError) else "InternalError"
    more = {k: v for k, v in exc.to_dict().items() if k not in ("type", "message")} \
        if isinstance(exc, MedqError) else {}
    return {"path": shown(path),
            "error": {"type": etype, "message": fail_line(path, exc), **more}}


def print_json(data: Any) -> None:
    """Print JSON on stdout (plain, no Rich markup)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


INPUTS_ARGUMENT = typer.Argument(
    ..., readable=False,  # an unreadable input is that input's error, not the whole call's
    help="Image files, DICOM series folders, folders of images or zip/tar archives of them.")
"""The input paths of `medq assess`, `describe` and `restore`."""

JSON_LIST_OPTION = typer.Option(False, "--json", help="Print a JSON list, one object per input.")
"""`--json` of the per-input commands."""

QUALITY_MODEL_OPTION = typer.Option("mediqa-s", "--model", "-m",
                                    help="Shipped model name or path to a checkpoint (.pt).")
"""`--model` of the commands that assess with a quality model."""

def _one_of(name: str) -> Callable[[str], str]:
    """A callback refusing, as a usage error (exit code 2), a value not in
    `medq.assess.precision`'s tuple `name` (PRECISIONS, DEVICES), before any input is read."""
    def check(value: str) -> str:
        from medq.assess import precision

        allowed = getattr(precision, name)
        if value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}")
        return value
    return check


PRECISION_OPTION = typer.Option(
    "auto", "--precision", callback=_one_of("PRECISIONS"),
    help="Model arithmetic: auto (bfloat16 where the CPU has it natively, else float32), "
         "float32 or bfloat16. bfloat16 moves scores by about 0.01; it is about 1.1× faster "
         "where the CPU computes it natively, and about 3× slower where it does not (AVX2).")
"""`--precision` of the commands that assess with a quality model."""

DEVICE_OPTION = typer.Option(
    "cpu", "--device", callback=_one_of("DEVICES"),
    help="Where the quality model runs: cpu, cuda or auto (a CUDA GPU when PyTorch sees one). "
         "Loading and measuring stay on the CPU.")
"""`--device` of `medq assess` and `medq describe`."""

EACH_VOLUME_OPTION = typer.Option(
    False, "--each-volume",
    help="Take every volume of a 4D file (a diffusion or time series) as an input of its own "
         "(named file@volume=k), instead of refusing the file.")
"""`--each-volume` of the commands that read images (assess, describe, restore, qc run)."""


def progress_bar(label: str | None, disable: bool = False) -> Progress:
    """The per-input progress bar on stderr (hidden when `disable` or stderr is no terminal);
    `label` None labels each row by its task's description."""
    return Progress(TextColumn("{task.description}" if label is None else label), BarColumn(),
                    MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=True, disable=disable or not err.is_terminal)


def _modality(value: str | None) -> str | None:
    """`--modality` upper-cased; a usage error (exit code 2) for anything medq does not grade."""
    try:
        return graded_modality(value)
    except InvalidParameter as e:
        raise typer.BadParameter(e.reason) from None


MODALITY_HELP = ("Read the inputs as this modality, over what the files say (CT, MR, PT, CR, DX, "
                 "OP; XR is read as DX, PET as PT)")

MODALITY_OPTION = typer.Option(None, "--modality", callback=_modality,
                               help=MODALITY_HELP + "; the prompts then give its source as user.")
"""`--modality` of the commands that assess (assess, describe, restore, qc run)."""

READ_AS_OPTION = typer.Option(None, "--modality", callback=_modality,
                              help=MODALITY_HELP + ".")
"""`--modality` of the commands that only read (info, simulate)."""


def dicom_reference(image: Any) -> str | None:
    """The header template of a result written from `image` as DICOM: its own source when it
    was read from DICOM (a file, series or mosaic), else None (a new header is made: a NIfTI,
    MetaImage or ECAT source is no DICOM to copy)."""
    return image.source if image.meta.get("dicom_files") else None


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
    quiet_readers()
    if not debugging():
        sys.excepthook = last_resort
    if Path(sys.argv[0]).name in ("medq", "__main__.py"):  # the command line, not a test runner's
        refuse_empty_arguments(sys.argv[1:])


def refuse_empty_arguments(args: list[str]) -> None:
    """Exit 2 with one line when an argument is empty or blank: `medq assess "$SCAN"` with the
    variable unset would otherwise read Path("") as the current folder and assess all of it."""
    for k, arg in enumerate(args, 1):
        if not arg.strip():
            after = f" (after {args[k - 2]})" if k > 1 else ""
            err.print(f"medq: error: argument {k}{after} is empty: it names no file, folder or "
                      "value (an unset shell variable?)", highlight=False)
            raise typer.Exit(2)


OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EPIPE, errno.EBADF, errno.EIO, errno.EDQUOT,
                           errno.EFBIG})
"""Why a write to the output stream fails (full disk or quota, closed pipe or descriptor): an
unhandled OSError of these, naming no file, is the command's output that could not be written."""


def last_resort(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    """The one error line for an exception no command handled (the process then exits with
    code 1): an output that cannot be written (stdout on a full disk or a closed descriptor,
    `OUTPUT_ERRNOS`) says so; anything else is an internal error. MEDQ_DEBUG=1 keeps Python's
    traceback."""
    if isinstance(exc, OSError) and exc.errno in OUTPUT_ERRNOS and exc.filename is None:
        line = f"cannot write the output ({exc.strerror or exc})"
        with contextlib.suppress(OSError, ValueError):  # nothing more reaches that stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second failure
    else:
        line = fail_line(None, exc)
    sys.stderr.write(f"medq: error: {line}\n")


QUIET_MODULES = r"(pydicom|nibabel|PIL|tifffile|SimpleITK)(\.|$)"
"""Readers whose warnings about a file's quirks (excess padding after the pixel data, an invalid
IS value, an implicit VR where explicit was expected) the CLI does not print: what medq could not
read is an error line, the rest it read."""


def quiet_readers() -> None:
    """Hide the file readers' warnings from the terminal (`QUIET_MODULES`; forked workers
    inherit it), unless MEDQ_DEBUG is set. The notes nibabel logs on a header it mends (a zero
    or negative pixdim) are dropped for every medq read, the Python API's too
    (`io.nifti.quiet_header_checks`)."""
    if not debugging():
        warnings.filterwarnings("ignore", module=QUIET_MODULES)


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[list[int]]:
    """Within the block SIGTERM (`timeout`, systemd, a scheduler's stop) stops the command as
    Ctrl-C does (KeyboardInterrupt); yields the list of SIGTERMs received, so that the command
    can exit 143 rather than 130."""
    terminated: list[int] = []

    def terminate(signum: int, frame: Any) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield terminated
    finally:
        signal.signal(signal.SIGTERM, previous)

