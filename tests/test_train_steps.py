"""A training stage's steps (`medq.train.steps`): what it logs as it goes."""

from __future__ import annotations

import numpy as np


def test_a_stage_run_without_a_terminal_logs_its_progress_as_it_goes(monkeypatch) -> None:
    """Under nohup or a scheduler (stderr no terminal, no progress bar) a 300-step fine-tune
    logged one line per 100 steps, minutes apart; a progress line now comes every
    `PROGRESS_EVERY_S` too, and the run's history keeps only the `log_every` lines."""
    import torch

    from medq.train import steps
    from medq.train.config import Stage, TrainConfig

    monkeypatch.setattr(steps, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(steps.sys.stderr, "isatty", lambda: False, raising=False)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(8, 3)
    lines: list[str] = []
    history = steps.run_steps(model, Stage("score", steps=5, lr=1e-2, warmup=1),
                              TrainConfig(name="t", model="m", log_every=100),
                              np.random.default_rng(0), lines.append,
                              lambda device: {"score": model(x).pow(2).mean()}, momentum=0.9)
    assert [line.split(" (")[0] for line in lines] == [f"score step {k}/5" for k in range(1, 6)]
    assert [h["step"] for h in history] == [5]
