"""Assess an archive on Dask distributed and stream each result into the results store.

`run_qc` discovers the items, fingerprints them, skips those already stored with the same
fingerprint and model (`planning`), and assesses the rest in small batches on a `LocalCluster`
of worker processes (one thread each, torch threads = 1) or on an existing scheduler. Each worker
loads the model once. Results are written by this (client) process as they arrive, one
transaction each, so a run killed at any moment loses at most the items in flight. A failed item
becomes an `error` row with its one-line reason; a batch that fails as a whole is retried item
by item.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medq.io.volumes import volume_mark
from medq.qc.discover import Item
from medq.qc.planning import (
    archive_key,
    by_stored_volume,
    nothing_to_assess,
    outside,
    plan,
    superseded,
    vanished,
)
from medq.qc.rows import error_result, ok_result
from medq.qc.signals import ctrl_c_deferred, repeat_ignored, stop_signals_held, stop_signals_ignored

if TYPE_CHECKING:
    from distributed import Client, Future

    from medq.image import MedImage
    from medq.qc.store import Store

BATCH = 4
"""Items per Dask task."""

LOCAL_CLUSTER_CONFIG = {
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ for its workers, which turns glibc's adaptive
    # mmap threshold off: every large NumPy temporary is then mmap'd and page-faulted afresh
    # (≈ 20× the page faults, a third more wall time per item). medq's workers keep the default.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # The workers' statistical profiler (a sample every 10 ms) and the 20 ms event-loop tick
    # cost ≈ 5 % of a core per idle process; on a 2-core machine that is scaling lost.
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing-interval": "1s",
}
"""Dask settings of the LocalCluster `medq qc run` starts (a remote cluster keeps its own)."""

IN_FLIGHT_PER_WORKER = 3
"""Tasks kept in flight per worker thread (enough to hide scheduling latency, little memory)."""


def default_workers() -> int:
    """Worker processes by default: the CPU cores this process may use."""
    from medq.workers import usable_cores

    return usable_cores()


WORKERS_PER_CORE = 4
"""Most local worker processes `--workers` may ask for, per core (each holds the model: some
hundreds of MB; thousands of them ran a machine out of memory)."""


def check_workers(workers: int | None) -> None:
    """InvalidParameter (bad input) for a local worker count below 1 or above
    `WORKERS_PER_CORE` × the cores."""
    from medq.errors import InvalidParameter

    limit = WORKERS_PER_CORE * default_workers()
    if workers is not None and not 1 <= workers <= limit:
        raise InvalidParameter(f"--workers {workers}: give 1 to {limit} ({WORKERS_PER_CORE} per "
                               f"core of the {default_workers()} this process may use; each "
                               "worker is a process holding the model)")


CONTENT_MARK = "#sha256="
"""Between a checkpoint's path and the start of its content's fingerprint in a model key."""


def model_key(model: str) -> str:
    """The model as the store records it: a shipped name as is, a checkpoint (or a run folder's)
    by absolute path and the start of its fingerprint, the SHA-256 an item's files get
    (`<path>#sha256=<12 hex>`), so a model trained again into the same folder assesses every
    item again."""
    from medq.assess.weights import run_checkpoint
    from medq.qc.fingerprint import fingerprint

    path = run_checkpoint(Path(model).expanduser())
    if not path.is_file():
        return model
    return f"{path.resolve()}{CONTENT_MARK}{fingerprint([path])[:12]}"


def stored_model(held: list[str], model: str | None) -> str | None:
    """The stored model key a `--model` filter names among those a database `held`: the key
    itself, else for a checkpoint path the key of its present content, else of its only stored
    version (a model retrained since); the value as given when none matches (to be refused)."""
    if model is None or model in held:
        return model
    key = model_key(model)
    if key == model or key in held:
        return key
    stem = key.split(CONTENT_MARK)[0] + CONTENT_MARK
    versions = [h for h in held if h.startswith(stem)]
    return versions[0] if len(versions) == 1 else model


# --- worker side ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def worker_assessor(model: str, measures: bool = True, modality: str | None = None) -> Any:
    """The worker process's Assessor (loaded once per process, one torch thread), reading its
    inputs as `modality` when given (`--modality`)."""
    import torch

    from medq.assess.predictor import Assessor

    torch.set_num_threads(1)
    return Assessor(model, batch_size=16, measures=measures, threads=1, describe=True,
                    modality=modality)


def assess_batch(items: Sequence[Item], model: str, measures: bool = True,
                 modality: str | None = None) -> list[dict[str, Any]]:
    """Load and assess a batch of items on a worker, as `modality` if given; results in order."""
    from medq.errors import MedqError
    from medq.qc.discover import load_item

    assessor = worker_assessor(model, measures, modality)
    results: list[dict[str, Any] | None] = [None] * len(items)
    loaded: list[tuple[int, MedImage]] = []
    for i, item in enumerate(items):
        try:
            loaded.append((i, load_item(item, modality)))
        except Exception as e:  # noqa: BLE001 - every failure is the item's error row
            results[i] = error_result(item, e)
    outcomes = assessor.assess_many([image for _, image in loaded]) if loaded else []
    for (i, image), outcome in zip(loaded, outcomes, strict=True):
        results[i] = (error_result(items[i], outcome) if isinstance(outcome, MedqError)
                      else ok_result(items[i], outcome, image))
    return [r for r in results if r is not None]


def warm_worker(model: str, measures: bool = True, modality: str | None = None) -> str:
    """Load the model on this worker now (keeps start-up out of throughput measurements)."""
    return worker_assessor(model, measures, modality).name


# --- client side ------------------------------------------------------------------------------

def dask_setup(worker: Any) -> None:
    """Run by each worker process of medq's LocalCluster as it starts (a Dask preload): ignore
    Ctrl-C, and hide the file readers' warnings as `medq` does (`cli.common.quiet_readers`:
    Dask's workers are new processes, which do not inherit the filter; a pydicom warning on a
    good file reached the terminal). A terminal's Ctrl-C reaches every process of the
    foreground group, and the workers answered it with KeyboardInterrupt tracebacks while `medq
    qc run` stopped the run itself (`RunInterrupted`, then the cluster is closed)."""
    from medq.cli.common import quiet_readers

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_readers()


def start_client(workers: int | None, scheduler: str | None, items: int | None = None
                 ) -> tuple[Client, int]:
    """A Dask client on the scheduler at `scheduler`, else on a new LocalCluster of processes
    (`workers`, checked by `run_qc`: `check_workers`; never more than the `items` to assess)."""
    from distributed import Client, LocalCluster

    from medq.errors import InvalidParameter

    if scheduler:
        from distributed.comm.addressing import parse_address, parse_host_port

        try:  # before any Client: a half-built one, collected inside the next one's start,
            parse_host_port(parse_address(scheduler)[1])  # deadlocked it (Dask's loop lock)
        except (ValueError, TypeError) as e:  # no port, a port that is not a number, …
            raise InvalidParameter(f"not a Dask scheduler address ({e}); give one as "
                                   "tcp://HOST:PORT", scheduler) from e
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            raise InvalidParameter(f"cannot reach the Dask scheduler ({e})", scheduler) from e
        return client, max(1, len(client.nthreads()))
    import dask

    n = max(1, min(int(workers or default_workers()), items or sys.maxsize))
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        # the scheduler's HTTP endpoint on a free loopback port: no clash with another run;
        # Dask's own logs stay quiet (a worker closing mid-heartbeat logs a harmless ERROR);
        # task failures still reach the client and are recorded as the items' errors
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0",
                               silence_logs=logging.CRITICAL, preload=[__name__])
    return Client(cluster), n


def stop_client(client: Client, own_cluster: bool) -> None:
    """Close the client (and the LocalCluster it owns). A close that times out (a loaded
    machine, a run stopped in the middle of a call) is left to the process's exit rather than
    raised over the run's own outcome: an interrupted run still ends with its one line."""
    closers = [client.close] + ([client.cluster.close] if own_cluster else [])
    for close in closers:
        with suppress(TimeoutError, OSError):  # asyncio's TimeoutError is this one
            close()


def _batches(todo: list[tuple[Item, str]], size: int) -> list[list[tuple[Item, str]]]:
    return [todo[i:i + size] for i in range(0, len(todo), size)]


def assess_on(client: Client, todo: list[tuple[Item, str]], model: str, record: Callable[
        [dict[str, Any]], None], *, measures: bool = True, batch: int = BATCH,
        window: int = 2, modality: str | None = None) -> None:
    """Assess `todo` on the cluster (as `modality` if given), `record(result)` as each ends."""
    from distributed import as_completed

    pending = _batches(todo, max(1, batch))
    pending.reverse()  # pop() from the end keeps archive order
    futures: dict[Future, list[tuple[Item, str]]] = {}

    def submit() -> Future:
        group = pending.pop()
        fut = client.submit(assess_batch, [item for item, _ in group], model, measures,
                            modality, pure=False)
        futures[fut] = group
        return fut

    queue = as_completed([submit() for _ in range(min(window, len(pending)))])
    for fut in queue:
        group = futures.pop(fut)
        try:
            results = fut.result()  # a lost scheduler (cancelled) ends the run
        except Exception as exc:  # noqa: BLE001 - the task failed: its items must be recorded
            if len(group) > 1:  # the batch failed as a whole: find the culprit item by item
                pending += [[one] for one in reversed(group)]
            else:
                record({**error_result(group[0][0], exc), "fingerprint": group[0][1]})
        else:
            fps = {item.path: fp for item, fp in group}
            for result in results:
                record({**result, "fingerprint": fps[result["path"]]})
        fut.release()
        if pending:
            queue.add(submit())


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (SIGINT): `done` of the `todo` items it had to assess were
    stored, and its run row (when the run had begun) holds those counts (`counts`: total, ok,
    errors, skipped) with `finished_at` left empty."""

    def __init__(self, todo: int, counts: dict[str, int]) -> None:
        self.todo, self.counts = todo, dict(counts)
        done = self.done
        super().__init__(f"interrupted after {done} of {todo} items; run the same command "
                         "again to continue" if todo else "interrupted while finding the items; "
                         "nothing was assessed")

    @property
    def done(self) -> int:
        """The items assessed and stored before the stop."""
        return int(self.counts.get("ok", 0)) + int(self.counts.get("errors", 0))


def run_qc(archive: str | Path, store: Store, *, model: str = "mediqa-s",
           workers: int | None = None, scheduler: str | None = None,
           client: Client | None = None, measures: bool = True, batch: int = BATCH,
           retry_errors: bool = False, each_volume: bool = False, prune: bool = False,
           modality: str | None = None, on_plan: Callable[[int, int], None] | None = None,
           on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """QC an archive into `store`; returns `{"total", "ok", "errors", "skipped", "seconds", …}`.

    `client` reuses a running Dask client (else one is started from `workers`/`scheduler` and
    closed at the end); `each_volume` makes every volume of a 4D file an item; `modality`
    (`--modality`: `medq.image.graded_modality`) reads every item as that modality, and an item
    stored as read with another (or without) is assessed again though unchanged. Items stored
    under the archive that the walk no longer finds (`vanished`) are listed under `gone`, or
    with `prune` removed with their reviews (counted under `pruned`). A 4D file stored volume by
    volume is taken so again without `each_volume`, and its stored refusal as 4D is removed at
    the end of a run that stored every volume, unless it was reviewed (`superseded`, counted
    under `replaced`).
    `on_plan(to_assess, skipped)` is called once the archive is planned,
    `on_result(result)` after each stored result. An archive without any item to assess is an
    InputError (`nothing_to_assess`; one whose items are all unchanged is a run of skips), but
    with `prune` one that held stored items has them removed.
    Ctrl-C raises `RunInterrupted` once the run row holds the counts so far (`total`: the items
    found), its `finished_at` left empty.
    """
    from medq.assess.weights import resolve
    from medq.image import graded_modality
    from medq.qc.discover import discover, split_notes

    start = time.perf_counter()
    modality = graded_modality(modality)  # one spelling in the store: `mr` is MR
    if not scheduler:
        check_workers(workers)  # before any work
    checkpoint = resolve(model)  # an unknown model fails here, not per item on the workers
    key = model_key(model)
    loaded = model if key == model else str(checkpoint.resolve())  # what the workers load
    counts, items, todo, unreadable = {"ok": 0, "errors": 0}, [], [], []
    own, n_workers, assess_seconds, run_id, skipped = False, None, 0.0, None, 0
    try:  # a Ctrl-C while walking or fingerprinting a big archive is a RunInterrupted too
        items = outside(discover(archive, each_volume), store.own_files)
        known = store.known(key)
        if not each_volume:  # a 4D file once taken volume by volume stays so
            items = by_stored_volume(items, known)
        gone = vanished(known, items, archive)
        if not items and not (prune and gone):
            raise nothing_to_assess(archive)  # with --prune, an emptied folder's items go
        pruned = store.forget(gone, key) if prune else 0
        again = store.again(key, unmeasured=measures, errors=retry_errors,  # though unchanged
                            named_modality=modality)
        known = {path: fp for path, fp in known.items() if path not in again}
        todo, unreadable, skipped = plan(items, known)
        if on_plan:
            on_plan(len(todo) + len(unreadable), skipped)
        own = client is None and bool(todo)
        if own:
            with ctrl_c_deferred():  # a Ctrl-C meanwhile stops the run once the cluster is up
                client, n_workers = start_client(workers, scheduler,
                                                 len(todo) + len(unreadable))
        elif client is not None:
            n_workers = len(client.nthreads())
        run_id = store.start_run(archive_key(archive), key, n_workers, scheduler, modality)

        def record(result: dict[str, Any]) -> None:
            with stop_signals_held():  # stored and counted, or neither
                store.record({**result, "model": key, "run_id": run_id,
                              "named_modality": modality})
                counts["ok" if result["status"] == "ok" else "errors"] += 1
            if on_result:
                on_result(result)

        for item, fp, exc in unreadable:
            record({**error_result(item, exc), "fingerprint": fp})
        if todo and client is not None:
            t0 = time.perf_counter()
            window = IN_FLIGHT_PER_WORKER * max(1, sum(client.nthreads().values()))
            assess_on(client, todo, loaded, record, measures=measures, batch=batch,
                      window=window, modality=modality)
            assess_seconds = time.perf_counter() - t0
    except KeyboardInterrupt as e:
        so_far = {"total": len(items), **counts, "skipped": skipped}
        if run_id is not None:  # the counts so far; deaf to a second Ctrl-C (`timeout` sends two)
            with repeat_ignored():
                store.finish_run(run_id, so_far, finished=False)
        raise RunInterrupted(len(todo) + len(unreadable), so_far) from e
    finally:
        if own and client is not None:
            with stop_signals_ignored():
                stop_client(client, own_cluster=not scheduler)
    replaced = 0  # a 4D file's unreviewed refusal goes once all its volumes are stored
    if any(volume_mark(item.path) for item in items):  # (a reviewed one: --prune)
        replaced = store.forget(superseded(store.known(key), items), key, status="error",
                                unreviewed=True)
        if replaced:  # no longer listed as gone
            still = store.known(key)
            gone = [p for p in gone if p in still]
    summary = {"total": len(items), **counts, "skipped": skipped,
               "seconds": round(time.perf_counter() - start, 3)}
    store.finish_run(run_id, summary)
    return {**summary, "run_id": run_id, "assessed": len(todo),
            "assess_seconds": round(assess_seconds, 3),
            "gone": [] if prune else gone, "pruned": pruned, "replaced": replaced,
            "split": split_notes(items)}
