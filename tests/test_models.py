"""Quality model architectures: shapes, prompts, volumes, heads, gradients, registry, training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medq.assess.models import (
    FINDING_TYPES,
    SEVERITIES,
    IQAModel,
    available_models,
    build_model,
    interpret_findings,
)
from medq.assess.models.attention import SwinBlock
from medq.assess.models.blocks import coral_targets
from medq.assess.prompts import PROMPT_DIM, Prompts, encode
from medq.errors import InvalidParameter, ModelError

N_F, N_S = len(FINDING_TYPES), len(SEVERITIES)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def tiny() -> IQAModel:
    """The test-size MedIQA."""
    return build_model("mediqa-tiny")


def test_registry() -> None:
    assert {"mediqa-s", "mediqa-tiny", "mediqa-b", "cnniqa", "wadiqam"} <= set(available_models())
    with pytest.raises(InvalidParameter, match="unknown model"):
        build_model("no-such-model")
    with pytest.raises(ModelError, match="bad config"):
        build_model("mediqa-tiny", no_such_field=1)
    with pytest.raises(ModelError, match="taps"):
        build_model("mediqa-tiny", taps=(0,))  # block 1 would never train


def test_sizes_of_named_configs() -> None:
    with torch.device("meta"):  # no memory, no init cost
        small, base = build_model("mediqa-s"), build_model("mediqa-b")
    assert small.n_parameters() * 4 < 25e6
    assert 1e6 < small.n_parameters() < 3e6
    assert base.n_parameters() > 20 * small.n_parameters()


@pytest.mark.parametrize("name,size", [("mediqa-tiny", 32), ("cnniqa", 64), ("wadiqam", 64)])
def test_output_shapes_2d(name: str, size: int) -> None:
    model = build_model(name).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, size, size), torch.as_tensor(encode(Prompts())))
    assert out.score.shape == (3,)
    assert torch.all((out.score > 1) & (out.score < 5))
    assert out.patch_scores is not None and out.patch_scores.shape[0] == 3
    assert out.physics is not None and out.physics.shape == (3, model.config.n_physics)
    assert out.finding_logits is not None and out.finding_logits.shape == (3, N_F)
    assert out.severity_logits is not None and out.severity_logits.shape == (3, N_F, N_S - 1)
    assert out.features.ndim == 2 and out.features.shape[0] == 3


def test_grey_input_any_size_and_padding() -> None:
    model = tiny().eval()
    grey = torch.rand(2, 1, 48, 40)  # token grid 6×5: window padding and shift masks
    with torch.no_grad():
        a, b = model(grey), model(grey.expand(-1, 3, -1, -1))
    assert a.patch_scores is not None and a.patch_scores.shape == (2, 30)
    torch.testing.assert_close(a.score, b.score)
    with pytest.raises(ModelError, match="multiple of the patch"):
        model(torch.rand(1, 3, 30, 32))
    with pytest.raises(ModelError, match="input must be"):
        model(torch.rand(1, 2, 32, 32))
    with pytest.raises(ModelError, match="prompts must be"):
        model(torch.rand(2, 3, 32, 32), torch.zeros(3, PROMPT_DIM))


@pytest.mark.parametrize("name,size", [("mediqa-tiny", 32), ("cnniqa", 32)])
def test_volume(name: str, size: int) -> None:
    model = build_model(name).eval()
    prompt = torch.as_tensor(encode(Prompts(dimension="3d", modality="CT")))
    with torch.no_grad():
        vol = model.forward_volume(torch.rand(7, 1, size, size), prompt)
    assert vol.score.shape == () and vol.slice_scores.shape == (7,)
    assert vol.slice_weights.shape == (7,)
    assert torch.all(vol.slice_weights > 0)
    assert vol.slice_weights.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert vol.slice_scores.min() - 1e-6 <= vol.score <= vol.slice_scores.max() + 1e-6
    assert torch.isclose(vol.score, (vol.slice_weights * vol.slice_scores).sum())


def test_prompts_change_the_score() -> None:
    model = tiny().eval()
    x = torch.rand(1, 3, 32, 32)
    ct = torch.as_tensor(encode(Prompts(modality="CT", region="chest", type="ct_lung")))
    mr = torch.as_tensor(encode(Prompts(modality="MR", region="brain", type="mr_t2")))
    with torch.no_grad():
        assert not torch.isclose(model(x, ct).score, model(x, mr).score, rtol=0, atol=1e-6)


def test_gradients_reach_every_parameter() -> None:
    model = tiny().train()
    x, p = torch.rand(4, 3, 32, 32), torch.rand(4, PROMPT_DIM)
    out = model(x, p)
    vol = model.forward_volume(x, p)
    assert out.physics is not None and out.finding_logits is not None
    assert out.severity_logits is not None
    loss = (out.score.sum() + out.physics.square().sum() + out.finding_logits.sum()
            + out.severity_logits.sum() + vol.score)
    loss.backward()
    dead = [n for n, q in model.named_parameters() if q.grad is None or not q.grad.abs().sum() > 0]
    assert dead == []


@pytest.mark.parametrize("name", ["cnniqa", "wadiqam"])
def test_baseline_heads_get_gradients(name: str) -> None:
    model = build_model(name).train()
    out = model(torch.rand(2, 3, 32, 32))
    assert out.physics is not None and out.finding_logits is not None
    assert out.severity_logits is not None
    (out.score.sum() + out.physics.sum() + out.finding_logits.sum()
     + out.severity_logits.sum()).backward()
    for part in (model.heads, model.score_head if name == "cnniqa" else model.quality):
        assert all(q.grad is not None for q in part.parameters())


def test_findings_are_probabilities() -> None:
    model = tiny().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
        model.heads.findings.severity.bias.add_(torch.linspace(-3, 3, N_F))
        out = model(torch.rand(2, 3, 32, 32))
    f = model.findings(out)
    assert f is not None
    assert f["presence"].shape == (2, N_F) and f["severity_probs"].shape == (2, N_F, N_S)
    torch.testing.assert_close(f["severity_probs"].sum(-1), torch.ones(2, N_F))
    assert torch.all(f["exceed"][..., :-1] >= f["exceed"][..., 1:])  # rank-consistent
    assert torch.all((f["expected_severity"] >= 0) & (f["expected_severity"] <= N_S - 1))
    extreme = interpret_findings(torch.zeros(1, 1), torch.full((1, 1, 3), 20.0))
    assert extreme["expected_severity"].item() == pytest.approx(3.0, abs=1e-6)
    assert coral_targets(torch.tensor([0, 2, 3])).tolist() == [[0, 0, 0], [1, 1, 0], [1, 1, 1]]


def test_shifted_window_attention_stays_in_its_window() -> None:
    block = SwinBlock(8, 2, window=4, shift=True).eval()
    x = torch.rand(1, 10 * 10, 8)
    kick = torch.randn(8)  # not constant over channels: LayerNorm would remove that

    def changed(r: int, c: int) -> set[tuple[int, int]]:
        y = x.clone()
        y[0, r * 10 + c] += kick
        with torch.no_grad():
            diff = (block(y, (10, 10)) - block(x, (10, 10))).abs().sum(-1).view(10, 10)
        return {(int(i), int(j)) for i, j in torch.nonzero(diff > 1e-6)}

    # shift 2: rolled windows cover rows/cols 2–5, 6–9 and the wrapped 0–1 | 10–11 (masked apart)
    assert changed(3, 4) == {(i, j) for i in range(2, 6) for j in range(2, 6)}
    assert changed(0, 0) == {(i, j) for i in range(2) for j in range(2)}
    assert changed(9, 0) == {(i, j) for i in range(6, 10) for j in range(2)}


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = tiny().eval()
    path = tmp_path / "tiny.pt"
    model.save_checkpoint(path, note="test")
    again = type(model).from_checkpoint(path)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x).score, model(x).score)
    assert again.config == model.config
    with pytest.raises(ModelError, match="not found"):
        type(model).from_checkpoint(tmp_path / "missing.pt")


def test_tiny_model_overfits_eight_images() -> None:
    model = tiny().train()
    smooth = torch.nn.functional.avg_pool2d(torch.rand(8, 1, 40, 40), 9, 1)[..., :32, :32]
    sigma = torch.linspace(0.0, 0.35, 8).view(8, 1, 1, 1)  # noisier image, lower target
    x = (smooth - smooth.mean() + 0.5 + sigma * torch.randn(8, 1, 32, 32)).clamp(0, 1)
    target = torch.linspace(4.5, 1.5, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x).score, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_measures_are_required_clipped_and_change_the_score(tmp_path: Path) -> None:
    model = build_model("mediqa-tiny", n_measures=3, measure_dim=8).eval()
    train = torch.tensor([[0.0, 10.0, -1.0], [1.0, 20.0, 1.0], [2.0, 30.0, 0.0]]).repeat(50, 1)
    model.measures.fit(train)
    assert torch.allclose(model.measures.low, torch.tensor([0.0, 10.0, -1.0]))
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ModelError, match="needs measures"):
        model.run(x)
    with pytest.raises(ModelError, match=r"measures must be \[2, 3\]"):
        model(x, None, torch.zeros(2, 4))
    m = torch.tensor([[0.0, 10.0, -1.0], [2.0, 30.0, 1.0]])
    with torch.no_grad():
        base = model.run(x, None, m).score
        far = model.run(x, None, m * 1000).score  # beyond the training range: clipped
        assert torch.allclose(far, model.run(x, None, torch.tensor(
            [[0.0, 30.0, -1.0], [2.0, 30.0, 1.0]])).score)
        assert (base - model.run(x, None, m.flip(0)).score).abs().max() > 0
        nan = model.run(x, None, torch.full((2, 3), float("nan"))).score
        assert torch.isfinite(nan).all()
    path = tmp_path / "m.pt"
    model.save_checkpoint(path)
    again = type(model).from_checkpoint(path)
    torch.testing.assert_close(again.measures.high, model.measures.high)
    with torch.no_grad():
        torch.testing.assert_close(again.run(x, None, m).score, base)


CONFIG_FOLDER = Path(__file__).parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIG_FOLDER.rglob("*.yaml")), ids=lambda p: p.stem)
def test_every_config_loads_and_builds_its_model(path: Path) -> None:
    """Each config medq ships (the recipes, the paper-size `mediqa_b.yaml` for GPU users, the
    trials) passes the config checks and builds its model with its own arguments (on PyTorch's
    meta device: no memory, no init cost)."""
    from medq.train.config import load_config

    cfg = load_config(path)
    if cfg.task == "prompts":
        return
    if cfg.task == "restore":
        from medq.restore.models import build_model as build
    else:
        build = build_model
    with torch.device("meta"):
        model = build(cfg.model, **cfg.model_args)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_the_paper_size_config_takes_the_shipped_inputs() -> None:
    """`configs/mediqa_b.yaml`: the MANIQA-like preset at the paper's size, reading prompts and
    the 43 evidence features as `mediqa-s` does; one real forward pass on the CPU."""
    from medq.train.config import load_config

    cfg = load_config(CONFIG_FOLDER / "mediqa_b.yaml")
    assert (cfg.model, cfg.device) == ("mediqa-b", "cuda")
    torch.manual_seed(0)
    model = build_model(cfg.model, **cfg.model_args).eval()
    assert 90e6 < model.n_parameters() < 110e6
    with torch.no_grad():
        out = model(torch.rand(1, 3, 224, 224), torch.as_tensor(encode(Prompts()))[None],
                    torch.rand(1, cfg.model_args["n_measures"]))
    assert out.score.shape == (1,) and out.physics.shape == (1, cfg.model_args["n_physics"])
