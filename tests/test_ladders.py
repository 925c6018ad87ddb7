"""Severity ladders: the training images they are built from and the detector term they feed."""

from __future__ import annotations

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
    assert -1.0 <= ranked["validation"]["ladder_spearman"] <= 1.0

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
