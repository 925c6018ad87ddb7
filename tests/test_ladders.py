"""Severity ladders: the training images they are built from and the detector term they feed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from medq.assess.models.blocks import FINDING_TYPES
from medq.data.items import LADDER_RUNGS, kinds_for, severity_ladder, severity_targets
from medq.data.sources import sources
from medq.degrade import get_spec


def _source(name: str):
    return next(s for s in sources("train") if s.name == name)


@pytest.mark.parametrize(("name", "seed"), [("body_ct", 3), ("mni_mr_train", 11)])
def test_ladder_rungs_differ_only_by_their_kind_at_rising_severity(name: str, seed: int) -> None:
    rungs, kind = severity_ladder(_source(name), seed)
    again, same = severity_ladder(_source(name), seed)
    assert same == kind
    assert all(np.array_equal(a.array, b.array) for a, b in zip(rungs, again, strict=True))
    assert len(rungs) == LADDER_RUNGS + 1 and kind in kinds_for(rungs[0].modality)
    targets = np.stack([severity_targets(list(r.meta["degradations"])) for r in rungs])
    j = FINDING_TYPES.index(get_spec(kind).finding)
    assert (np.diff(targets[:, j]) > 0).all(), targets[:, j]  # one severity per part of the range
    assert targets[0, j] < 0.5  # the clean rung: at most the kind's own sub-mild baseline
    others = np.delete(targets[1:], j, axis=1)
    assert (others == others[0]).all()  # the same baseline on every degraded rung
    # the degraded rungs share one realisation: each moves further from the first
    gaps = [float(np.abs(r.array - rungs[1].array).mean()) for r in rungs[2:]]
    assert gaps == sorted(gaps) and gaps[0] > 0


class _Fixed(torch.nn.Module):
    """A 'net' that returns its input: the test sets logits and severities directly."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z


def test_ladder_loss_is_zero_for_a_falling_score_and_positive_for_a_rising_one() -> None:
    from medq.describe.ladders import badness, ladder_loss

    types = 2
    allowed = torch.ones(1, types)
    truth = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]])  # type 0 at rising severity

    def outputs(sev0: list[float]) -> torch.Tensor:
        logits = torch.full((3, types), 10.0)  # sure of every type: the weights are the severities
        sev = torch.tensor([[s, 0.0] for s in sev0])
        return torch.cat([logits, sev], dim=1)[None]

    assert ladder_loss(_Fixed(), outputs([0.0, 1.0, 2.0]), truth, allowed).item() == 0.0
    reversed_ = outputs([2.0, 1.0, 0.0]).requires_grad_()
    loss = ladder_loss(_Fixed(), reversed_, truth, allowed)
    assert loss.item() > 0.5
    loss.backward()
    # a descent step lowers the clean rung's severity and raises the worst rung's
    assert reversed_.grad[0, 2, types] < 0 < reversed_.grad[0, 0, types]
    # badness is −ln of the reference score's product: 1 + 4·e^−B is the reference score
    from medq.data.bench import reference_score

    b = badness(torch.tensor([[1.0, 0.5]]), torch.ones(1, 2)).item()
    assert 1 + 4 * np.exp(-b) == pytest.approx(reference_score([1.0, 0.5]), rel=1e-6)


@pytest.mark.slow
def test_fit_with_ladders_ranks_its_ladders_better(tmp_path: Path, monkeypatch) -> None:
    from medq.assess.detector import Detector
    from medq.describe import calibrate, calibration_data
    from medq.describe.ladders import ladder_loss

    monkeypatch.setenv("MEDQ_CACHE_DIR", str(tmp_path))
    data = calibration_data.build(24, 0, workers=1, view=True)
    ladders = calibration_data.build_ladders(8, workers=1, view=True)
    assert ladders["x"].shape == (8, LADDER_RUNGS + 1, data["x"].shape[1])
    assert ladders["y"].shape == (8, LADDER_RUNGS + 1, len(FINDING_TYPES))
    assert calibration_data.ladders_path(8, True, "anywhere").exists()
    assert set(ladders["source"]) <= {s.name for s in sources("train")}
    plain = calibrate.fit(data, steps=300, ensemble=1)
    ranked = calibrate.fit(data, steps=300, ensemble=1, ladders=ladders)
    assert "ladders" not in plain and ranked["ladders"]["n"] == 8
    assert ranked["validation"]["ladder_spearman"] > 0.5  # held-out ladders ranked (1.0 written)
    assert "ladder_spearman" not in plain["validation"]

    def violation(calib: dict) -> float:
        """The ladder term of a fitted detector's first net on all eight ladders."""
        det = Detector(calib)
        w, b = zip(*det.nets[0], strict=True)
        layers = []
        for k, (wk, bk) in enumerate(zip(w, b, strict=True)):
            lin = torch.nn.Linear(*wk.shape)
            lin.weight.data, lin.bias.data = (torch.from_numpy(wk.T).float(),
                                              torch.from_numpy(bk).float())
            layers += [lin] + ([torch.nn.ReLU()] if k < len(w) - 1 else [])
        z = (np.clip(ladders["x"], det.low, det.high) - det.mean) / det.std
        allowed = calibrate.allowed_matrix(ladders["modality"])
        return ladder_loss(torch.nn.Sequential(*layers), torch.from_numpy(z).float(),
                           torch.from_numpy(ladders["y"]).float(),
                           torch.from_numpy(allowed).float()).item()

    assert violation(ranked) < 0.5 * violation(plain)  # 0.004 against 0.090 when written
    # ladders carry the evidence features alone: a fit with the model's heads refuses them
    from medq.assess.detector import HEAD_NAMES
    from medq.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="ladders carry the evidence features alone"):
        calibrate.fit({**data, "h": np.zeros((len(data["x"]), len(HEAD_NAMES)), np.float32)},
                      "mediqa-s", steps=5, ensemble=1, ladders=ladders)


def test_model_ladders_pack_each_rung_as_a_benchmark_item(tmp_path: Path, monkeypatch) -> None:
    """`bench.build_ladders`: rung by rung, the reference score falls from 5 along each ladder
    and only the ladder's kind is recorded; a second build reads the cache."""
    from medq.data import bench

    monkeypatch.setenv("MEDQ_CACHE_DIR", str(tmp_path))
    plan = bench.BenchPlan(size=32)
    data = bench.build_ladders(plan, 3, workers=1, progress=False)
    rungs = LADDER_RUNGS + 1
    assert data["x"].shape == (3 * rungs, 3, 32, 32) and data["m"].shape[0] == 3 * rungs
    assert list(data["ladder"]) == [i for i in range(3) for _ in range(rungs)]
    scores = data["score"].reshape(3, rungs)
    assert (scores[:, 0] == 5.0).all() and (np.diff(scores, axis=1) < 0).all(), scores
    for i in range(3):  # the physics targets name the ladder's kind alone, rising
        kind = data["kind"][i * rungs]
        physics = data["physics"][i * rungs:(i + 1) * rungs]
        assert (np.delete(physics, bench.KINDS.index(kind), axis=1) == 0).all()
        assert (np.diff(physics[:, bench.KINDS.index(kind)]) > 0).all()
    assert set(data["source"]) <= {s.name for s in sources("train")}
    again = bench.build_ladders(plan, 3, workers=1, progress=False)
    assert np.array_equal(again["x"], data["x"])


@dataclasses.dataclass
class _Out:
    score: torch.Tensor


class _Scores:
    """A 'model' whose scores the test sets: `run` returns them as they are."""

    def __init__(self, scores: torch.Tensor) -> None:
        self.scores = scores

    def run(self, x, prompt, m):  # noqa: ANN001, ANN201
        return _Out(self.scores)


def test_rank_loss_asks_each_worse_rung_to_score_lower_by_a_margin() -> None:
    from medq.train.losses import rank_loss

    true = torch.tensor([5.0, 4.0, 3.0, 5.0, 3.0, 1.0])  # two ladders of three rungs
    batch = {"x": torch.zeros(6, 1), "prompt": torch.zeros(6, 1), "score": true}
    assert rank_loss(_Scores(true.clone()), batch, 3, 0.25, True).item() == 0.0
    # a fall of a quarter of the reference's fall is enough; a smaller one, a tie or a rise not
    enough = torch.tensor([3.0, 2.75, 2.5, 3.0, 2.5, 2.0])
    assert rank_loss(_Scores(enough), batch, 3, 0.25, True).item() == pytest.approx(0.0)
    rising = torch.tensor([2.0, 2.5, 3.0, 2.0, 2.0, 2.0], requires_grad=True)
    loss = rank_loss(_Scores(rising), batch, 3, 0.25, True)
    assert loss.item() > 0.25
    loss.backward()
    # descent raises each ladder's clean rung and lowers its worst
    assert rising.grad[0] < 0 < rising.grad[2] and rising.grad[3] < 0 < rising.grad[5]


def test_a_stage_with_the_rank_loss_needs_ladders() -> None:
    from medq.errors import InvalidParameter
    from medq.train.config import config_from_dict

    stage = {"name": "s", "steps": 1, "losses": {"score": 1.0, "rank": 1.0}}
    with pytest.raises(InvalidParameter, match="set ladders"):
        config_from_dict({"name": "x", "model": "mediqa-tiny", "stages": [stage]})
    cfg = config_from_dict({"name": "x", "model": "mediqa-tiny", "stages": [stage],
                            "ladders": 4})
    assert cfg.ladders == 4 and cfg.ladder_batch == 4


def test_fine_tuning_with_the_rank_loss_orders_the_ladders(tiny_run: dict, tmp_path: Path
                                                           ) -> None:
    """`medq train` with `ladders:` and a `rank` stage: the tiny model's ladder violations on
    its own ladders fall, and the history logs the rank term."""
    from medq.assess.weights import load_weights
    from medq.data import bench
    from medq.train.config import Stage
    from medq.train.loop import _batch, train
    from medq.train.losses import rank_loss

    cfg = dataclasses.replace(
        tiny_run["config"], init=str(tiny_run["checkpoint"]), ladders=4, ladder_batch=4,
        output=str(tmp_path / "run"), slice_steps=0, log_every=5,
        stages=[Stage("ladders", 80, 0.003, {"rank": 1.0}, warmup=2)])
    ladders = bench.build_ladders(cfg.bench, 4, workers=1, progress=False)
    rows = np.stack([np.arange(len(ladders["ladder"])), ladders["offset"]], axis=1)

    def violation(checkpoint: Path) -> float:
        model = load_weights(checkpoint)[0].eval()
        batch = _batch(ladders, rows, np.random.default_rng(0), None)
        with torch.no_grad():
            return rank_loss(model, batch, LADDER_RUNGS + 1, cfg.rank_margin, True).item()

    record = train(cfg, log=lambda msg: None)
    assert "rank" in record["history"][-1]
    before, after = violation(tiny_run["checkpoint"]), violation(tmp_path / "run" / "model.pt")
    assert after < 0.5 * before, (before, after)  # 0.23 → 0.004 when written
