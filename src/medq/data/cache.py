"""The cache folder and the two steps every cached data set shares: a parallel build, an npz file.

Deterministic data (the quality benchmark, restoration pairs) is built once, in worker processes
with a progress bar, and kept as one `.npz` per split under `cache_dir()` — never in git.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from medq.errors import InvalidParameter
from medq.io.atomic import atomic_path, atomic_write_text


def cache_dir() -> Path:
    """medq's cache folder: `$MEDQ_CACHE_DIR` or `~/.cache/medq`."""
    return Path(os.environ.get("MEDQ_CACHE_DIR") or Path.home() / ".cache" / "medq")


def read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cached `.npz`, or None when it is not there yet."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays to `path` atomically (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def build_workers() -> int:
    """Worker processes of a cached build: `$MEDQ_WORKERS`, else every core this process may
    use (two on the reference machine; sixteen on a GPU workstation with sixteen)."""
    raw = os.environ.get("MEDQ_WORKERS", "")
    if raw.strip():
        try:
            return max(1, int(raw))
        except ValueError:
            raise InvalidParameter(f"MEDQ_WORKERS must be a whole number, got {raw!r}") from None
    from medq.workers import usable_cores

    return usable_cores()


def map_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int | None, progress: bool,
             label: str, chunksize: int = 8) -> list[Any]:
    """`[fn(j) for j in jobs]`, in `workers` processes when > 1 (None: `build_workers()`), with
    a progress bar on stderr (a line at every tenth done where stderr is no terminal: a log)."""
    from rich.console import Console
    from rich.progress import track

    console = Console(stderr=True)  # stdout stays for results (`--json`)
    workers = build_workers() if workers is None else workers

    def shown(results: Iterable[Any]) -> list[Any]:
        if not progress:
            return list(results)
        if console.is_terminal or console.is_jupyter:
            return list(track(results, description=label, total=len(jobs), transient=True,
                              console=console))
        return list(_logged(results, len(jobs), label))

    if workers <= 1:
        return shown(fn(j) for j in jobs)
    from medq.workers import pool_of

    with pool_of(workers) as pool:  # a Ctrl-C stops it at once, not after every job
        return shown(pool.map(fn, jobs, chunksize=chunksize))


def _logged(results: Iterable[Any], total: int, label: str) -> Iterator[Any]:
    """`results`, with a plain line on stderr at every tenth of `total` done (progress in a log
    file, where a bar shows nothing)."""
    import sys
    import time

    started, next_tenth = time.time(), 1
    for done, result in enumerate(results, 1):
        yield result
        if total and done * 10 >= next_tenth * total:
            print(f"{label}: {done}/{total} ({time.time() - started:.0f} s)", file=sys.stderr,
                  flush=True)
            next_tenth = done * 10 // total + 1


def cached_split(folder: Path, split: str, plan: Any, build: Callable[[], list[dict[str, Any]]],
                 pack: Callable[[list[dict[str, Any]]], dict[str, np.ndarray]],
                 keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """One split (`train` or `test`) of a deterministic simulated set: read from
    `folder/<split>.npz` when cached, else `build()`'s items packed by `pack` and stored there,
    with each item's `keys` (`<split>.records.json`) and the `plan` dataclass (`plan.json`)."""
    if split not in ("train", "test"):
        raise InvalidParameter(f"split must be 'train' or 'test', got {split!r}")
    cached = read_npz(folder / f"{split}.npz")
    if cached is not None:
        return cached
    items = build()
    packed = pack(items)
    write_npz(folder / f"{split}.npz", packed)
    atomic_write_text(folder / f"{split}.records.json",
                      json.dumps([{k: i[k] for k in keys} for i in items]))
    atomic_write_text(folder / "plan.json", json.dumps(asdict(plan), indent=2))
    return packed
