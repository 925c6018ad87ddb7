"""Where medq trains: device names, the CUDA path (exercised where PyTorch sees a GPU), and the
worker processes of the cached builds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_medq
from medq.assess.precision import resolve_device, resolve_precision
from medq.data.cache import build_workers
from medq.errors import InvalidParameter
from medq.train.config import config_from_dict

CONFIGS = Path(__file__).parents[1] / "configs"
HAS_CUDA = torch.cuda.is_available()


def test_device_names_resolve_and_unknown_ones_are_refused() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    with pytest.raises(InvalidParameter, match="device must be one of auto, cpu, cuda"):
        resolve_device("tpu")
    with pytest.raises(InvalidParameter, match="device must be one of"):
        config_from_dict({"name": "x", "model": "mediqa-tiny", "device": "gpu"})
    assert config_from_dict({"name": "x", "model": "mediqa-tiny", "stages": [
        {"name": "s", "steps": 1, "losses": {"score": 1.0}}]}).device == "auto"
    native = HAS_CUDA and torch.cuda.is_bf16_supported()  # auto on a GPU: bfloat16 where native
    assert resolve_precision("auto", "cuda") == ("bfloat16" if native else "float32")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_bad_input_not_a_silent_cpu_run(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="sees no CUDA GPU"):
        resolve_device("cuda")
    proc = run_medq("train", CONFIGS / "mediqa_tiny_test.yaml", "--device", "cuda", "-o",
                    tmp_path / "run")
    assert proc.returncode == 2 and "sees no CUDA GPU" in proc.stderr
    assert proc.stderr.startswith("medq: error:") and not (tmp_path / "run").exists()
    bad = run_medq("train", CONFIGS / "mediqa_tiny_test.yaml", "--device", "gpu")
    assert bad.returncode == 2 and "device must be one of" in bad.stderr
    from medq.data.samples import export_samples

    sample = export_samples(tmp_path / "samples", ["ct_small"])[0]
    for command in ("assess", "describe"):
        proc = run_medq(command, sample, "--device", "cuda")
        assert proc.returncode == 2 and "sees no CUDA GPU" in proc.stderr, command


def test_build_workers_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDQ_WORKERS", "3")
    assert build_workers() == 3
    monkeypatch.setenv("MEDQ_WORKERS", "0")
    assert build_workers() == 1
    monkeypatch.setenv("MEDQ_WORKERS", "many")
    with pytest.raises(InvalidParameter, match="MEDQ_WORKERS"):
        build_workers()
    monkeypatch.delenv("MEDQ_WORKERS")
    assert build_workers() == len(os.sched_getaffinity(0))


def test_a_run_records_where_it_trained_and_saves_on_the_cpu(tiny_run: dict) -> None:
    record, folder = tiny_run["record"], tiny_run["folder"]
    assert record["device"].split(" ")[0] == ("cuda" if HAS_CUDA else "cpu")
    state = torch.load(folder / "model.pt", weights_only=True)["state_dict"]
    assert {t.device.type for t in state.values()} == {"cpu"}
    card = (folder / "card.md").read_text()
    assert ("on cuda (" in card) == HAS_CUDA and f"{record['threads']} CPU threads" in card


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_gpu_predictions_and_training_steps_match_the_cpu(tiny_run: dict) -> None:
    """The same checkpoint scores the held-out items alike on the GPU and the CPU (float32),
    and one training step's loss terms agree."""
    from medq.assess.weights import load_weights
    from medq.data import bench
    from medq.train.evaluate import predict
    from medq.train.loop import _batch, slice_pool
    from medq.train.losses import losses
    from medq.train.steps import on_device

    cfg = tiny_run["config"]
    test = bench.build(cfg.bench, "test", progress=False)
    model = load_weights(tiny_run["checkpoint"])[0].eval()
    on_cpu = predict(model, test, cfg.use_prompts, precision="float32")
    on_gpu = predict(model.to("cuda"), test, cfg.use_prompts, precision="float32")
    assert np.abs(on_cpu - on_gpu).max() < 0.02
    data = bench.build(cfg.bench, "train", progress=False)
    batch = _batch(data, slice_pool(data)[:8], np.random.default_rng(0), cfg.train_crop)
    weights = cfg.stages[-1].losses
    gpu_terms = losses(model, on_device(batch, torch.device("cuda")), weights, cfg.use_prompts)
    cpu_terms = losses(model.to("cpu"), batch, weights, cfg.use_prompts)
    for name, value in cpu_terms.items():
        assert gpu_terms[name].item() == pytest.approx(value.item(), rel=0.02, abs=1e-4)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_assessor_on_the_gpu_matches_the_cpu(tiny_run: dict, mni_t1, ct_slice) -> None:
    """`medq assess --device cuda`: the model on the GPU, loading and evidence on the CPU; the
    same scores and finding scores as on the CPU (float32), for a slice and a volume."""
    from medq.assess.predictor import Assessor

    runs = [Assessor(tiny_run["checkpoint"], precision="float32", device=d,
                     measures=False).assess_many([ct_slice, mni_t1]) for d in ("cpu", "cuda")]
    for cpu, gpu in zip(*runs, strict=True):
        assert abs(cpu.model_score - gpu.model_score) < 0.02
        assert cpu.slices is None or [s["index"] for s in cpu.slices] == [
            s["index"] for s in gpu.slices]
        for name, value in cpu.finding_scores.items():
            assert abs(value["presence"] - gpu.finding_scores[name]["presence"]) < 0.02
