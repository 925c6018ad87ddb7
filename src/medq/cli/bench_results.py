"""Options and result files shared by the `medq bench` commands: `--results`, `--json`,
`--models` lists, the results folder check before minutes of work, and the atomic JSON write."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from medq.errors import MedqError

RESULTS_OPTION = typer.Option(Path("benchmarks/results"), "--results",
                              help="Folder for the JSON results.")
"""The `--results` option of the `medq bench` commands."""


BENCH_JSON_OPTION = typer.Option(False, "--json", help="Print the summary as JSON.")
"""`--json` of the `medq bench` commands."""


def lossy_source_note(name: str, lossy: dict[str, Any], n: int, result: str) -> str:
    """The line a benchmark prints under its table for a test source stored lossy: its
    references count the base image as clean, and `result` says how medq did within it."""
    from medq.describe.text import ratio_text

    at = f" at {ratio_text(lossy)}" if ratio_text(lossy) else ""
    return (f"{name}: its file states lossy compression{at}; the references of its {n} items "
            f"count the base image as clean ({result})")


def names_list(text: str, option: str = "--models") -> list[str]:
    """The names of a comma-separated option value (`"a, b,"` → `["a", "b"]`; a name given
    twice counts once); a usage error (exit 2) when it names none."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise typer.BadParameter("names no model: give one or more comma-separated model names "
                                 "or checkpoint paths", param_hint=f"'{option}'")
    return names


def load_named(names: list[str], load: Callable[[str], Any]) -> None:
    """`load` every model the user named before a benchmark's minutes start; a failure is
    raised naming its own entry of the option (not the whole comma-separated value)."""
    for name in names:
        try:
            load(name)
        except MedqError as e:
            raise type(e)(e.reason, e.path or name) from None


def results_ready(folder: Path) -> None:
    """Make a benchmark's results folder and check it can be written, before the benchmark
    runs (it takes minutes): InvalidParameter naming it otherwise."""
    import tempfile

    from medq.io.atomic import cannot_write, make_folder

    make_folder(folder)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".medq-check-"):
            pass
    except OSError as e:
        raise cannot_write(e, folder) from None


def write_results(folder: Path, name: str, payload: Any, indent: int = 2) -> Path:
    """Write a benchmark's JSON payload atomically to `folder/name` (folder created); the path."""
    from medq.io.atomic import atomic_write_text, make_folder

    make_folder(folder)
    path = folder / name
    atomic_write_text(path, json.dumps(payload, indent=indent, default=float))
    return path
