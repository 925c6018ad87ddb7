"""Worker processes: a forked pool whose workers each run one thread.

Every process pool of medq (cached data builds, calibration items, the loaders of
`medq assess`) comes from `worker_pool`. Workers are forked, not spawned: spawn and forkserver
re-import the caller's main script in every worker, so a user's script without an
`if __name__ == "__main__"` guard would run twice. A forked worker inherits the parent's
libraries as they were at the fork, and a torch thread pool the parent has already used does
not survive it: the worker's first parallel torch operation waits forever for threads that do
not exist. So each worker starts by putting torch (when loaded) and the BLAS/OpenMP libraries
on one thread — the workers are the parallelism.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager


def usable_cores() -> int:
    """The CPU cores this process may use (its affinity; else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_threads(threads: int | None = None) -> int:
    """Use as many torch threads as cores (or `threads`, else `OMP_NUM_THREADS` when the
    environment sets it: a user's limit for the whole process); returns the number set."""
    import torch

    if not threads:
        told = os.environ.get("OMP_NUM_THREADS", "").strip()
        threads = int(told) if told.isdigit() and int(told) > 0 else usable_cores()
    torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()


def single_thread() -> None:
    """Put this process's torch (when imported) and BLAS/OpenMP pools on one thread, and let
    SIGTERM end it as it ends any process (not through a handler its parent had set)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` forked processes, each on one thread (`single_thread`)."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=single_thread)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """End `pool` now: queued jobs dropped and its workers killed. On Ctrl-C, leaving the pool
    as a `with` block waited for the jobs under way, and a second Ctrl-C left the parent waiting
    forever on workers that ran on after it was killed."""
    # the executor's own processes (CPython keeps them in `_processes`; it has no public way
    # to stop its workers before Python 3.14)
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def pool_of(workers: int | None) -> Iterator[ProcessPoolExecutor | None]:
    """A `worker_pool` of `workers` processes for the block (None: none, the block runs here),
    ended with it: shut down when the block finishes, stopped at once (`stop_pool`) when it
    raises, a Ctrl-C included."""
    pool = worker_pool(workers) if workers else None
    try:
        yield pool
    except BaseException:
        if pool is not None:
            stop_pool(pool)
        raise
    if pool is not None:
        pool.shutdown()

