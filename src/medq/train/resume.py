"""Resumable training: an interrupted `medq train` continues where it stopped.

While a run trains, `<run folder>/resume.pt` holds what the next optimiser step needs: the stage
and step reached, the model's and the optimiser's state, the running loss averages and the loss
history, and the states of the random generators (NumPy's batch draws and augmentations,
PyTorch's CPU and CUDA generators). Started again with the same recipe
(`fingerprint`: every config field but where the run writes, how often it logs and how often it
saves; with training arrays handed to the run, such as a `--scores` set, also their `data_key`),
`medq train` loads it and continues, and ends with the weights of a run that was never
interrupted (on the CPU bit for bit; a GPU's kernels need not be deterministic). A file of another
recipe, or one that cannot be read, is left aside and the run starts over (the log says why).
The file is written atomically (temporary file, then rename) at most every `checkpoint_every_s`
seconds of training (a config field; 0: never), and when Ctrl-C stops the run: the first Ctrl-C
lets the step under way finish, saves the state at that step and raises `Interrupted` (a second
Ctrl-C stops at once). It is removed once the run's checkpoint is written.
Members of a seed ensemble each have their own (finished members are reused whole:
`medq.train.ensemble`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medq.io.atomic import atomic_path

RESUME_FILE = "resume.pt"
"""Name of the training state file in a run folder."""

NOT_RECIPE = ("output", "config_file", "log_every", "checkpoint_every_s")
"""Config fields that do not change what a run computes (left out of its `fingerprint`)."""


def fingerprint(cfg: Any) -> str:
    """A short hash of everything in a training config that decides the weights it trains."""
    data = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_RECIPE}
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_key(arrays: dict[str, np.ndarray]) -> str:
    """A short hash of training arrays handed to a run rather than built from its config (a
    `--scores` fine-tuning set): names, shapes, small arrays whole, large ones every so many
    rows."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        h.update(f"{name}{a.shape}{a.dtype}".encode())
        if a.dtype == object:
            h.update(repr(a.tolist()).encode())
        elif a.ndim == 0 or a.nbytes <= 1 << 24:
            h.update(np.ascontiguousarray(a).tobytes())
        else:  # e.g. the training slices: 256 rows spread over the array
            h.update(np.ascontiguousarray(a[::max(1, len(a) // 256)]).tobytes())
    return h.hexdigest()[:16]


def _random_states(rng: np.random.Generator) -> dict[str, Any]:
    """The states of NumPy's generator `rng` and of PyTorch's CPU (and CUDA) generators."""
    states = {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_random_states(states: dict[str, Any], rng: np.random.Generator) -> None:
    """Put the generators back in the saved `states` (CUDA's only where it was saved)."""
    rng.bit_generator.state = states["numpy"]
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training, taken at the end of a step: the stage and step
    reached, the state file written there (None when the config saves no state,
    `checkpoint_every_s: 0`) and the signal that stopped it."""

    def __init__(self, stage: str, step: int, saved: Path | None,
                 signum: int = signal.SIGINT) -> None:
        super().__init__(f"interrupted at {stage} step {step}")
        self.stage, self.step, self.saved, self.signum = stage, step, saved, signum


class Checkpointer:
    """Saves a run's training state every so often and hands it back after an interruption."""

    def __init__(self, cfg: Any, log: Any, data: dict[str, np.ndarray] | None = None) -> None:
        self.path = cfg.output_dir() / RESUME_FILE
        self.key = fingerprint(cfg) + (data_key(data) if data is not None else "")
        self.every = float(cfg.checkpoint_every_s)
        self.log = log
        self.started = self.saved_at = time.time()
        self.state = self._read()
        self.history: list[dict[str, Any]] = list(self.state["history"]) if self.state else []
        """Loss history of the finished stages (`run_stages` adds each)."""
        self.elapsed_before = float(self.state["elapsed_s"]) if self.state else 0.0
        """Seconds the run had trained before this start (0 for a fresh run)."""
        self.stop_asked = False
        """Set by the first Ctrl-C (or SIGTERM) under `stopping_at_step_end`."""
        self.stop_signal: int | None = None
        """The signal that asked the run to stop."""

    def _read(self) -> dict[str, Any] | None:
        """The saved state of this recipe, or None (no file, unreadable, another recipe)."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)  # no pickled code
        except Exception as e:  # a truncated or foreign file: train from the start
            self.log(f"cannot read {self.path} ({type(e).__name__}); training from the start")
            return None
        if not isinstance(state, dict) or state.get("fingerprint") != self.key:
            self.log(f"{self.path} holds another recipe's state; training from the start")
            return None
        self.log(f"resuming from {self.path}: stage {state['stage_name']!r} at step "
                 f"{state['step']} (delete the file to train from the start)")
        return state

    @property
    def resumed(self) -> dict[str, Any] | None:
        """Where this start resumed (stage, step, seconds trained before), None if fresh."""
        if self.state is None:
            return None
        return {"stage": self.state["stage_name"], "step": int(self.state["step"]),
                "trained_before_s": round(self.elapsed_before, 1)}

    def restore(self, model: torch.nn.Module, rng: np.random.Generator) -> None:
        """Load the saved weights and random states (nothing for a fresh run)."""
        if self.state is not None:
            model.load_state_dict(self.state["model"])
            _set_random_states(self.state["random"], rng)

    def stages_left(self, stages: list[Any]) -> list[tuple[int, Any]]:
        """(index, stage) of the stages still to train: from the saved one on, else all."""
        first = int(self.state["stage"]) if self.state is not None else 0
        return [(index, stage) for index, stage in enumerate(stages) if index >= first]

    def stage_start(self, index: int, opt: torch.optim.Optimizer
                    ) -> tuple[int, dict[str, float], list[dict[str, Any]]]:
        """(first step, running loss averages, history so far) of stage `index`: where the
        saved state left it (the optimiser's state loaded), else a fresh start."""
        if self.state is None or int(self.state["stage"]) != index:
            return 0, {}, []
        opt.load_state_dict(self.state["optimizer"])
        return (int(self.state["step"]), dict(self.state["running"]),
                list(self.state["stage_history"]))

    @contextlib.contextmanager
    def stopping_at_step_end(self) -> Iterator[None]:
        """Within the block, the first Ctrl-C only asks the run to stop: `step_done` saves the
        state at the end of the step under way and raises `Interrupted`; a second Ctrl-C stops
        at once. Only where Python's own Ctrl-C handler is in place, in the main thread (a run
        started with Ctrl-C ignored, or from another thread, is left as it is). SIGTERM is
        taken the same way where a handler of the caller's is in place (`medq train`'s, even
        in a background job whose Ctrl-C is ignored); the signal that asked is `stop_signal`."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        taken = [sig for sig, ours in ((signal.SIGINT, signal.default_int_handler),
                                       (signal.SIGTERM, None))
                 if (signal.getsignal(sig) is ours if ours else callable(signal.getsignal(sig)))]
        previous = {sig: signal.getsignal(sig) for sig in taken}

        def ask(signum: int, frame: Any) -> None:
            self.stop_asked, self.stop_signal = True, signum
            for sig, handler in previous.items():  # a second signal acts at once
                signal.signal(sig, handler)

        for sig in taken:
            signal.signal(sig, ask)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def step_done(self, index: int, stage_name: str, step: int, model: torch.nn.Module,
                  opt: torch.optim.Optimizer, running: dict[str, float],
                  stage_history: list[dict[str, Any]], rng: np.random.Generator) -> None:
        """After `step` steps of stage `index`: save the state when the interval has passed, or
        when Ctrl-C asked the run to stop (then raise `Interrupted`)."""
        now = time.time()
        due = self.every > 0 and (self.stop_asked or now - self.saved_at >= self.every)
        if due:
            state = {"fingerprint": self.key, "stage": index, "stage_name": stage_name,
                     "step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "running": dict(running), "stage_history": list(stage_history),
                     "history": list(self.history), "random": _random_states(rng),
                     "elapsed_s": self.elapsed_before + now - self.started}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                torch.save(state, tmp)
            self.saved_at = time.time()
        if self.stop_asked:
            raise Interrupted(stage_name, step, self.path if due else None,
                              self.stop_signal or signal.SIGINT)

    def run_stages(self, stages: list[Any],
                   run: Callable[[int, Any], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """`run(index, stage)` for each stage still to train (`stages_left`), Ctrl-C taken at a
        step's end (`stopping_at_step_end`); returns the run's loss history, every stage's."""
        with self.stopping_at_step_end():
            for index, stage in self.stages_left(stages):
                self.history += run(index, stage)
        return self.history

    def done(self) -> None:
        """The run's checkpoint is written: the training state is no longer needed."""
        self.path.unlink(missing_ok=True)
