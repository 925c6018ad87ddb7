"""Stop signals of a QC run: Ctrl-C and SIGTERM held back while a result is written, and kept
from Dask's processes while they start."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
"""What stops a run: Ctrl-C, and SIGTERM, which `medq qc run` answers as Ctrl-C."""


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Block `STOP_SIGNALS` in this thread while the block runs (Linux keeps one that arrives
    for this thread pending) and unblock them once it ends."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a pending stop is handled here


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold `STOP_SIGNALS` back while the block runs and hand one that arrived to this process's
    handler once the block ends: a result's write transaction and its count are never cut in
    half (a Ctrl-C inside a commit left the write lock taken, and the run row's last update then
    met "database is locked"; one between the write and the count left the run row a result
    short). Blocking the signal in this thread is not enough, as another thread of the process
    (Dask's) may take it and Python then runs the handler here: meanwhile the handler only notes
    the signal. Outside the main thread, where Python does not handle signals, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                for sig in STOP_SIGNALS}
    try:
        with _stop_signals_blocked():
            yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if caught:  # handled by the handler put back, as if it had just arrived
            signal.raise_signal(caught[0])


@contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Start the processes of the block deaf to Ctrl-C, and hand a Ctrl-C pressed meanwhile to
    this process's own handler once it ends (Python's raises KeyboardInterrupt).

    A terminal's Ctrl-C reaches every process of the foreground group: Dask's workers, still
    importing, died with tracebacks, and a LocalCluster interrupted half-started cannot be closed
    (Dask's exit hook printed an AssertionError). SIGINT is ignored meanwhile (an ignored signal
    stays ignored in a child, through exec) and blocked in this thread (Linux then keeps it
    pending instead of dropping it, unless another thread of this process takes it); SIGTERM
    (`medq qc run` answers it as Ctrl-C) is held back the same way (`stop_signals_held`).
    Outside the main thread, where Python does not handle signals, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with stop_signals_held():
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:  # the handler back before the held signals are let through
            signal.signal(signal.SIGINT, previous)


@contextmanager
def stop_signals_ignored() -> Iterator[None]:
    """Ignore `STOP_SIGNALS` while the block runs: closing the cluster of a run that is already
    stopping (a second Ctrl-C there left Dask's exit hook printing a traceback instead of the
    run's one line). Outside the main thread nothing changes."""
    with _stop_handler(signal.SIG_IGN):
        yield


@contextmanager
def _stop_handler(handler: Any) -> Iterator[None]:
    """`handler` for `STOP_SIGNALS` while the block runs, the previous ones back after it;
    outside the main thread, where Python handles no signal, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, signal.SIG_DFL if before is None else before)


REPEAT_WINDOW_S = 2.0
"""How soon after a stop a second stop signal counts as its repeat (`repeat_ignored`)."""


@contextmanager
def repeat_ignored(window_s: float = REPEAT_WINDOW_S) -> Iterator[None]:
    """While the block records a stop: a stop signal within `window_s` of its start is the
    same stop again (`timeout -s INT` sends SIGINT to medq and then to its group) and is
    ignored; a later one stops the block as Ctrl-C does (KeyboardInterrupt), so a record
    stuck on a busy database can still be stopped. Outside the main thread nothing changes."""
    began = monotonic()

    def stop(signum: int, frame: Any) -> None:
        if monotonic() - began >= window_s:
            raise KeyboardInterrupt

    with _stop_handler(stop):
        yield
