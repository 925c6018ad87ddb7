"""Resumable training (`medq.train.resume`): an interrupted `medq train` continues where it stopped
and ends with the weights of a run that was never interrupted."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medq.errors import InvalidParameter
from medq.train.config import Stage, config_from_dict, load_config
from medq.train.resume import RESUME_FILE, Checkpointer, data_key, fingerprint

CONFIGS = Path(__file__).parents[1] / "configs"


class Interrupted(Exception):
    """Stands for Ctrl-C or a killed process in the middle of a stage."""


def _stop_at(text: str, seen: list[str]):
    """A training log that records every message and interrupts the run at `text`."""
    def log(msg: str) -> None:
        seen.append(msg)
        if text in msg:
            raise Interrupted(msg)
    return log


def _state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint's model, whatever the model type."""
    found = torch.load(path, map_location="cpu", weights_only=False)
    return found.get("state_dict", found)


def _equal_checkpoints(a: Path, b: Path) -> bool:
    """Whether two checkpoints hold the same tensors (bit for bit)."""
    sa, sb = _state(a), _state(b)
    tensors = [k for k, v in sa.items() if isinstance(v, torch.Tensor)]
    return bool(tensors) and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k])
                                                            for k in tensors)


def _interrupt_then_resume(cfg, stop_at: str, tmp_path: Path) -> tuple[dict, dict, list[str]]:
    """Train `cfg` uninterrupted into `full/`, and into `resumed/` interrupted at the log
    message `stop_at` then started again; (full record, resumed record, second start's log)."""
    from medq.train.loop import train

    full = train(dataclasses.replace(cfg, output=str(tmp_path / "full")), log=lambda m: None)
    again = dataclasses.replace(cfg, output=str(tmp_path / "resumed"))
    with pytest.raises(Interrupted):
        train(again, log=_stop_at(stop_at, []))
    assert (tmp_path / "resumed" / RESUME_FILE).is_file()
    assert not (tmp_path / "resumed" / "model.pt").exists()
    seen: list[str] = []
    resumed = train(again, log=seen.append)
    assert not (tmp_path / "resumed" / RESUME_FILE).exists()  # removed once the run is written
    return full, resumed, seen


def test_interrupted_quality_training_resumes_to_the_same_weights(tiny_run: dict,
                                                                  tmp_path: Path) -> None:
    # a state saved after every step; interrupted at step 10 of 20 of the second stage (on the
    # CPU, whose kernels are deterministic: a GPU's may not be, see the test below)
    cfg = dataclasses.replace(tiny_run["config"], checkpoint_every_s=1e-9, log_every=5,
                              device="cpu")
    full, resumed, seen = _interrupt_then_resume(cfg, "score step 10/20", tmp_path)
    assert any("resuming from" in m and "'score' at step 9" in m for m in seen)
    assert not any("physics step" in m for m in seen)  # the finished stage is not trained again
    assert resumed["resumed"]["stage"] == "score" and resumed["resumed"]["step"] == 9
    assert full["resumed"] is None
    assert "resumed at step 9 of stage 'score'" in (tmp_path / "resumed" / "card.md").read_text()
    assert "resumed" not in (tmp_path / "full" / "card.md").read_text()
    assert _equal_checkpoints(tmp_path / "full" / "model.pt", tmp_path / "resumed" / "model.pt")
    assert json.dumps(resumed["metrics"]) == json.dumps(full["metrics"])  # NaN == NaN here
    assert [h["step"] for h in resumed["history"]] == [h["step"] for h in full["history"]]


def test_interrupted_restoration_training_resumes_to_the_same_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDQ_CACHE_DIR", str(tmp_path / "cache"))
    cfg = dataclasses.replace(load_config(CONFIGS / "restore_tiny_test.yaml"),
                              checkpoint_every_s=1e-9, device="cpu")
    full, resumed, seen = _interrupt_then_resume(cfg, "restore step 20/30", tmp_path)
    assert resumed["resumed"]["step"] == 19 and any("resuming from" in m for m in seen)
    assert "resumed at step 19 of stage 'restore'" in (tmp_path / "resumed" / "card.md").read_text()
    assert _equal_checkpoints(tmp_path / "full" / "model.pt", tmp_path / "resumed" / "model.pt")
    assert json.dumps(resumed["metrics"]) == json.dumps(full["metrics"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_interrupted_training_on_the_gpu_resumes(tiny_run: dict, tmp_path: Path) -> None:
    """On a GPU the state (with the CUDA generators) is saved and continued alike; its kernels
    need not be deterministic, so the weights are compared within a tolerance."""
    cfg = dataclasses.replace(tiny_run["config"], checkpoint_every_s=1e-9, log_every=5,
                              device="cuda", precision="float32")
    full, resumed, seen = _interrupt_then_resume(cfg, "score step 10/20", tmp_path)
    assert resumed["resumed"]["step"] == 9 and resumed["device"].startswith("cuda")
    a, b = (_state(tmp_path / run / "model.pt") for run in ("full", "resumed"))
    for k, v in a.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            torch.testing.assert_close(b[k], v, rtol=1e-3, atol=1e-4)


class _Planted:
    """An object whose unpickling would run code (it records that it ran)."""

    ran = False

    def __reduce__(self):
        return (_Planted._run, ())

    @staticmethod
    def _run() -> None:
        _Planted.ran = True


def test_another_recipe_or_an_unreadable_state_trains_from_the_start(tmp_path: Path) -> None:
    cfg = config_from_dict({"name": "r", "model": "mediqa-tiny", "output": str(tmp_path),
                            "stages": [{"name": "score", "steps": 10}]})
    # where it writes, how often it logs and saves do not change the weights; the rest does
    same = dataclasses.replace(cfg, output="elsewhere", log_every=1, checkpoint_every_s=5)
    assert fingerprint(same) == fingerprint(cfg)
    for other in (dataclasses.replace(cfg, seed=1),
                  dataclasses.replace(cfg, stages=[Stage("score", 10, lr=1e-3)])):
        assert fingerprint(other) != fingerprint(cfg)
    # arrays handed to a run (a --scores set) key its state too
    scores = {"score": np.array([1.0, 4.0]), "source": np.array(["a.dcm", "b.dcm"]),
              "x": np.zeros((600, 3, 64, 64), np.float32)}
    other = {**scores, "x": scores["x"].copy()}
    other["x"][256] = 1.0  # a change in a row the key samples
    assert data_key(scores) == data_key({k: v.copy() for k, v in scores.items()})
    assert data_key(other) != data_key(scores)
    assert data_key({**scores, "score": np.array([1.0, 5.0])}) != data_key(scores)
    assert (Checkpointer(cfg, print, scores).key != Checkpointer(cfg, print).key
            != Checkpointer(cfg, print, {**scores, "score": np.array([2.0, 4.0])}).key)
    (tmp_path / RESUME_FILE).write_bytes(b"not a training state")
    seen: list[str] = []
    assert Checkpointer(cfg, seen.append).state is None
    assert any("cannot read" in m and "from the start" in m for m in seen)
    torch.save({"fingerprint": "0" * 16, "stage": 0}, tmp_path / RESUME_FILE)
    seen.clear()
    assert Checkpointer(cfg, seen.append).resumed is None
    assert any("another recipe" in m for m in seen)
    # a state whose pickle would run code (a file planted in the run folder) is never run
    torch.save({"fingerprint": Checkpointer(cfg, print).key, "stage": 0, "step": 1,
                "stage_name": "score", "code": _Planted()}, tmp_path / RESUME_FILE)
    seen.clear()
    assert Checkpointer(cfg, seen.append).state is None and not _Planted.ran
    assert any("cannot read" in m for m in seen)
    with pytest.raises(InvalidParameter, match="no stage has steps"):  # an untrained "run"
        config_from_dict({"name": "r", "model": "mediqa-tiny",
                          "stages": [{"name": "s", "steps": 0, "losses": {"score": 1.0}}]})
    with pytest.raises(InvalidParameter, match="checkpoint_every_s"):
        config_from_dict({"name": "r", "model": "mediqa-tiny", "checkpoint_every_s": -1,
                          "stages": [{"name": "s", "steps": 1, "losses": {"score": 1.0}}]})


def _ctrl_c_at(text: str, seen: list[str]):
    """A training log that sends this process Ctrl-C (SIGINT) when it logs `text`."""
    import os
    import signal

    def log(msg: str) -> None:
        seen.append(msg)
        if text in msg:
            os.kill(os.getpid(), signal.SIGINT)
    return log


def test_ctrl_c_saves_the_state_at_the_step_end_and_the_run_resumes_to_the_same_weights(
        tiny_run: dict, tmp_path: Path) -> None:
    # the default interval (120 s) never comes in this short run: only Ctrl-C saves the state
    import signal

    from medq.train.loop import train
    from medq.train.resume import Interrupted

    cfg = dataclasses.replace(tiny_run["config"], log_every=5, device="cpu")
    assert cfg.checkpoint_every_s >= 60
    full = train(dataclasses.replace(cfg, output=str(tmp_path / "full")), log=lambda m: None)
    again = dataclasses.replace(cfg, output=str(tmp_path / "resumed"))
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as `medq train` runs:
    try:  # a test worker may have Ctrl-C set otherwise
        with pytest.raises(Interrupted) as stop:
            train(again, log=_ctrl_c_at("score step 10/20", []))
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, before)
    assert (stop.value.stage, stop.value.step) == ("score", 10)
    assert stop.value.saved == tmp_path / "resumed" / RESUME_FILE and stop.value.saved.is_file()
    seen: list[str] = []
    resumed = train(again, log=seen.append)
    assert any("resuming from" in m and "'score' at step 10" in m for m in seen)
    assert resumed["resumed"]["step"] == 10
    assert _equal_checkpoints(tmp_path / "full" / "model.pt", tmp_path / "resumed" / "model.pt")
    assert json.dumps(resumed["metrics"]) == json.dumps(full["metrics"])


def test_cli_ctrl_c_line_names_the_saved_state() -> None:
    # what `medq train` prints on Ctrl-C (exit 130): where it stopped and what the same
    # command does next (it claimed a checkpoint that, before the first interval, was none)
    from medq.cli.train import interrupted_line
    from medq.train.resume import Interrupted

    saved = Path("runs/x/resume.pt")
    assert interrupted_line(Interrupted("physics", 230, saved)) == (
        "interrupted at physics step 230, saved in runs/x/resume.pt; run the same command "
        "again to continue from there")
    assert "nothing saved (checkpoint_every_s is 0" in interrupted_line(
        Interrupted("score", 3, None))
    assert "if one was saved, else starts over" in interrupted_line(KeyboardInterrupt())


@pytest.mark.parametrize("background", [False, True], ids=["terminal", "background-job"])
def test_sigterm_stops_training_as_ctrl_c_does_saving_the_state(tmp_path: Path,
                                                                background: bool) -> None:
    """A scheduler's pre-emption, `timeout` or `docker stop` sends SIGTERM: the run stopped at
    once with nothing saved (exit 143, no message); it now stops as Ctrl-C stops it, the state
    saved at the step's end, with its one line and exit 143 — also as a shell script's
    background job (`medq train … &`), which starts with Ctrl-C ignored."""
    import os
    import signal
    import subprocess
    import time

    import yaml

    from conftest import MEDQ

    cfg = yaml.safe_load((Path(__file__).parents[1] / "configs" / "restore_tiny_test.yaml")
                         .read_text())
    cfg.update(log_every=1, output=str(tmp_path / "run"))
    cfg["stages"][0]["steps"] = 100_000
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, MEDQ_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("MEDQ_DEBUG", None)
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None
    proc = subprocess.Popen([*MEDQ, "train", str(tmp_path / "long.yaml")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=ignore)
    lines: list[str] = []
    started = time.time()
    for line in proc.stdout:  # the log's first step: training has begun
        lines.append(line)
        if "restore step 3/" in line or time.time() - started > 300:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    last = (lines + rest.splitlines())[-1].strip()
    assert proc.returncode == 143, rest
    assert last.startswith("medq: interrupted at restore step") and "resume.pt" in last, last
    assert (tmp_path / "run" / "resume.pt").is_file()



def test_a_resume_state_given_as_a_model_says_what_it_is(tmp_path: Path) -> None:
    # `medq assess --model runs/x/resume.pt` read "not a medq quality checkpoint (TypeError:
    # unhashable type: 'collections.OrderedDict')"
    import torch

    from medq.assess.weights import load_weights
    from medq.errors import MedqError

    path = tmp_path / "resume.pt"
    torch.save({"fingerprint": "f", "stage": 0, "stage_name": "physics", "step": 3,
                "model": torch.nn.Linear(2, 2).state_dict(), "optimizer": {}}, path)
    with pytest.raises(MedqError, match="a training run's resume state, not a model"):
        load_weights(path)
