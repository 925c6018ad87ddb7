"""Tiny training run, checkpoints, the Assessor, `medq assess` and `medq train` on real files."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import dicom_testfile, run_medq
from medq.assess.assessment import GRADES, combined_score, grade_for
from medq.assess.predictor import Assessor
from medq.data.samples import load_sample
from medq.data.sources import sources
from medq.errors import InputError, InvalidParameter
from medq.image import MedImage
from medq.train.config import config_from_dict, load_config


def test_tiny_training_writes_checkpoint_card_and_metrics(tiny_run: dict) -> None:
    rec = tiny_run["record"]
    folder: Path = tiny_run["folder"]
    assert (folder / "model.pt").is_file() and (folder / "metrics.json").is_file()
    card = (folder / "card.md").read_text()
    assert "physics-derived reference score" in card and "not** radiologists" in card
    assert card.count("configs/mediqa_tiny_test.yaml") == 2  # trained by, and reproduce with
    assert f"then `medq bench iqa --models {folder / 'model.pt'}`" in card  # this run's row
    assert f"wall time {rec['wall_time_s']:.0f} s of training" in card  # the build apart
    assert rec["slice_loss"] is not None and "slice weights fitted for" in card
    assert set(rec["steps"]) == {"physics", "score"}
    assert rec["metrics"]["overall"]["n"] == rec["test_items"] > 0
    assert len(rec["physics_targets"]) == 15
    losses = [h for h in rec["history"] if h["stage"] == "physics"]
    assert losses and np.isfinite(losses[-1]["physics"])
    from medq.train.config import load_config  # the config as it ran, every default written

    again = load_config(folder / "config.yaml")
    assert dataclasses.replace(again, config_file=None) == dataclasses.replace(
        tiny_run["config"], config_file=None)


def test_card_names_the_config_file_it_was_read_from(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    from medq.train.config import config_path

    root = Path(__file__).parents[1]
    monkeypatch.chdir(root)
    trial = load_config(Path("configs/trials/mediqa_s_ladders_scratch.yaml"))
    assert config_path(trial) == "configs/trials/mediqa_s_ladders_scratch.yaml"
    assert config_path(load_config(root / "configs" / "mediqa_s.yaml")) == "configs/mediqa_s.yaml"
    built = load_config(root / "configs" / "cnniqa.yaml")
    monkeypatch.chdir(tmp_path)  # read from outside the working folder: the path as given
    assert config_path(load_config(root / "configs" / "cnniqa.yaml")) == \
        (root / "configs" / "cnniqa.yaml").as_posix()
    built.config_file = None  # as if built in code, not read from a file: named after the config
    assert config_path(built) == "configs/cnniqa.yaml"


def test_grades_cover_the_score_range() -> None:
    assert [grade_for(s) for s in (5.0, 4.0, 3.0, 2.0, 1.0)] == [g for _, g in GRADES]


def test_assessor_on_real_slice_and_volume(tiny_run: dict, mni_t1: MedImage) -> None:
    assessor = Assessor(tiny_run["checkpoint"])
    a = assessor.assess(dicom_testfile("CT_small.dcm"))
    assert 1.0 <= a.score <= 5.0 and a.grade == grade_for(a.score)
    assert a.prompts["modality"] == "CT" and a.prompts["dimension"] == "2d"
    assert a.measures["noise_sigma"] > 0 and a.slices is None and a.modality == "CT"
    assert a.score == pytest.approx(combined_score(a.model_score, a.evidence_score), abs=2e-3)
    # a checkpoint is named with its file: two runs of one config are told apart
    assert a.model == f"mediqa-tiny-test ({tiny_run['checkpoint'].resolve()})"
    v = assessor.assess(mni_t1)
    assert v.prompts["dimension"] == "3d" and 1 <= len(v.slices) <= 7
    idx = [s["index"] for s in v.slices]
    assert idx == sorted(idx) and sum(s["weight"] for s in v.slices) == pytest.approx(1, abs=1e-3)
    json.dumps(v.to_dict())  # JSON-safe


def test_a_model_on_other_evidence_views_is_refused(tiny_run: dict, tmp_path: Path) -> None:
    """A checkpoint whose measure input was taken on 128-px views (a trial plan's
    `evidence_size`) is not scored on medq assess's 256-px rows: a ModelError naming both."""
    import torch

    from medq.errors import ModelError
    from medq.train.evaluate import benchmark_rows

    ckpt = torch.load(tiny_run["checkpoint"], map_location="cpu", weights_only=True)
    assert Assessor(tiny_run["checkpoint"]).record["bench_plan"]["evidence_size"] == 256
    ckpt["medq"]["bench_plan"]["evidence_size"] = 128
    other = tmp_path / "evidence128.pt"
    torch.save(ckpt, other)
    with pytest.raises(ModelError, match="128-px views.*256-px views"):
        Assessor(other)
    (row,) = benchmark_rows({}, [str(other)], classical=False)
    assert row["model"] == str(other) and "128-px views" in row["missing"]


def test_bench_iqa_refuses_models_of_different_test_splits(tiny_run: dict,
                                                           tmp_path: Path) -> None:
    """Every model was scored on the first one's benchmark plan: the shipped CNNIQA (224 px) on
    a tiny 32-px split, in a table still titled the held-out test split."""
    from conftest import run_medq

    res = run_medq("bench", "iqa", "--models", f"{tiny_run['folder']},cnniqa", "--no-classical",
                   "--results", tmp_path / "r")
    assert res.returncode == 2 and "different benchmark plans" in res.stderr
    assert "32 px" in res.stderr and "224 px" in res.stderr and not (tmp_path / "r").exists()
    from medq.data.bench import BenchPlan, test_split_plan  # training-only settings: one split

    assert test_split_plan(BenchPlan(fine_pixels=0.3, noisy_base=0.35)).key() == BenchPlan().key()


def test_a_checkpoint_rewritten_in_place_is_read_again(tiny_run: dict, tmp_path: Path) -> None:
    """A long-lived process (the review app, a notebook) that loaded a checkpoint reads it again
    once a training run rewrote it at the same path, for the quality model as for the
    restoration network; a checkpoint under any file name is taken by both."""
    import os
    import shutil

    import torch

    from medq.assess.weights import load_weights
    from medq.restore.models import resolve as resolve_restorer

    path = tmp_path / "net.ckpt"
    shutil.copyfile(tiny_run["checkpoint"], path)
    _, record = load_weights(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["medq"]["name"] = "rewritten"
    torch.save(ckpt, path)
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert record["name"] != "rewritten" and load_weights(path)[1]["name"] == "rewritten"
    assert resolve_restorer(path) == path


def test_a_model_trained_with_row_extras_gets_them_from_the_loader(tiny_run: dict,
                                                                  tmp_path: Path) -> None:
    """A checkpoint whose plan appended `evidence_extras` to its rows is fed rows with them (the
    loader takes them beside the features); one with an extra medq does not compute is refused
    with a ModelError."""
    import torch

    from medq.assess.evidence import FEATURE_NAMES, evidence_rows
    from medq.assess.loading import load_measured
    from medq.errors import ModelError
    from medq.io import load

    assert Assessor(tiny_run["checkpoint"]).extras == ()
    ckpt = torch.load(tiny_run["checkpoint"], map_location="cpu", weights_only=True)
    ckpt["medq"]["bench_plan"]["evidence_extras"] = ["efc"]
    torch.save(ckpt, tmp_path / "efc.pt")
    assessor = Assessor(tmp_path / "efc.pt")
    assert assessor.extras == ("efc",)
    ct = dicom_testfile("CT_small.dcm")
    (loaded,) = assessor._load([ct], None)
    assert loaded.rows.shape == (1, len(FEATURE_NAMES) + 1)
    assert np.array_equal(loaded.rows[:, :-1], load_measured(ct, None, False).rows)
    assert np.array_equal(loaded.rows, evidence_rows(load(ct), None, extras=("efc",)))
    ckpt["medq"]["bench_plan"]["evidence_extras"] = ["snr"]
    torch.save(ckpt, tmp_path / "snr.pt")
    with pytest.raises(ModelError, match="unknown evidence row extras"):
        Assessor(tmp_path / "snr.pt")


def test_benchmark_rows_with_extras_serve_a_model_without_them(tiny_run: dict) -> None:
    """A model trained without row extras scores a benchmark whose rows have them (a trial's
    plan listed first) exactly as its own; one whose rows lack columns it reads is skipped with
    a note."""
    from medq.data import bench
    from medq.train.evaluate import benchmark_rows, predict

    test = bench.build(bench.BenchPlan(**tiny_run["record"]["bench_plan"]), "test")
    wider = {**test, "m": np.concatenate([test["m"], np.full((len(test["m"]), 1), 0.7,
                                                             np.float32)], axis=1)}
    model = Assessor(tiny_run["checkpoint"]).model
    assert np.array_equal(predict(model, wider), predict(model, test))
    told: list[str] = []  # bench iqa said nothing for minutes while it scored the split
    benchmark_rows(test, [str(tiny_run["checkpoint"])], classical=False, progress=told.append)
    assert told and all(line.startswith(f"scored {len(test['score'])} items: ") for line in told)
    narrower = {**test, "m": test["m"][:, :-1]}
    (row,) = benchmark_rows(narrower, [str(tiny_run["checkpoint"])], classical=False)
    assert "reads" in row["missing"] and "list the model trained with row extras first" in \
        row["missing"]


def test_evidence_score_and_findings_follow_radiograph_quantum_noise() -> None:
    """The assessment's evidence (view calibration on the evidence rows) grades the real skull
    radiograph well with no finding, and its severe quantum-noise version poorly with noise."""
    from medq.assess.assessment import findings_from
    from medq.assess.detector import read_evidence
    from medq.assess.evidence import evidence_rows
    from medq.degrade import get_spec, simulate

    xr = load_sample("xr_head")
    noisy = simulate(xr, "xr_quantum_noise", level=get_spec("xr_quantum_noise").level_at(2.8),
                     seed=0)[0]
    clean, bad = read_evidence(evidence_rows(xr), xr.modality), read_evidence(
        evidence_rows(noisy), xr.modality)
    assert clean.score >= 3.5 > bad.score + 1.0
    assert findings_from(clean, {}) == []
    found = findings_from(bad, {"noise_sigma": 1.0})
    assert found[0]["type"] == "noise" and found[0]["severity"] in ("moderate", "severe")
    assert found[0]["evidence"]["noise_sigma"] == 1.0


def test_confidence_score_counts_sure_findings_fully_and_doubtful_ones_in_part() -> None:
    """The evidence score: a type at its presence threshold counts as a reported finding of its
    severity, a doubtful one by its probability over the threshold, a disallowed one not at all;
    the score falls steadily as the detector grows surer, with no jump at the threshold."""
    from medq.assess.detector import confidence_score
    from medq.data.bench import reference_score

    sev = np.array([1.8, 1.2, 2.5])
    thr = np.array([0.5, 0.4, 0.5])
    allowed = np.array([True, True, False])
    sure = confidence_score(np.array([0.9, 0.0, 0.9]), sev, allowed, thr)
    assert sure == pytest.approx(reference_score([1.8]))
    half = confidence_score(np.array([0.9, 0.2, 0.9]), sev, allowed, thr)
    assert half == pytest.approx(reference_score([1.8, 0.6]))
    steps = [confidence_score(np.array([0.0, p, 0.0]), sev, allowed, thr)
             for p in np.linspace(0.0, 0.6, 13)]
    assert steps[0] == 5.0 and all(np.diff(steps) <= 0) and steps[-1] == steps[-3]
    assert max(-np.diff(steps)) <= 0.2 + 1e-9  # even steps: no jump at the threshold


def test_suspected_types_are_the_unreported_ones_that_lower_the_score_like_a_finding() -> None:
    from medq.assess.assessment import suspected_from
    from medq.assess.detector import Decision, Evidence, confidence_weighted
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.cli.cells import findings_text

    n = len(FINDING_TYPES)
    prob, sev, thr = np.zeros(n), np.zeros(n), np.full(n, 0.5)
    noise, blur, spike = (FINDING_TYPES.index(t) for t in ("noise", "blur", "spike"))
    prob[[noise, blur, spike]] = 0.9, 0.4, 0.1
    sev[[noise, blur, spike]] = 2.0, 1.0, 2.0  # blur weighs 0.8 (mild), spike 0.4 (below mild)
    weighted = confidence_weighted(prob, sev, np.ones(n, bool), thr)
    evidence = Evidence(1.0, prob, Decision({noise: 2.0}, [], []), weighted)
    suspected = suspected_from(evidence)
    assert suspected == [{"type": "blur", "severity": "mild", "confidence": 0.4}]
    found = [{"type": "noise", "severity": "moderate"}]
    assert findings_text(found, suspected) == "noise (moderate), possible blur (mild)"
    assert findings_text([], []) == "none"
    lossy = {"method": "jpeg", "ratio": 12.0}
    assert findings_text([], [], lossy) == "file: lossy, 12:1"  # not "none; file: …"
    assert findings_text(found, [], lossy) == "noise (moderate); file: lossy, 12:1"
    low = [{"type": "low_contrast", "severity": "mild"}]
    assert findings_text(low, [{"type": "bias_field", "severity": "mild"}]) == \
        "low contrast (mild), possible bias field (mild)"


def test_assessor_batches_and_keeps_failures_in_place(tiny_run: dict, tmp_path: Path) -> None:
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"not an image")
    paths = [dicom_testfile("CT_small.dcm"), bad, dicom_testfile("MR_small.dcm")]
    results = Assessor(tiny_run["checkpoint"], batch_size=2).assess_many(paths)
    assert isinstance(results[1], InputError) and "broken.dcm" in results[1].message
    assert results[0].modality == "CT" and results[2].modality == "MR"


def test_blank_and_tiny_images_are_typed_errors_in_place(tiny_run: dict, tmp_path: Path) -> None:
    from PIL import Image

    from medq.errors import InvalidImage

    blank = MedImage(np.zeros((64, 64, 5), np.float32), (1.0, 1.0, 1.0), "MR",
                     source=str(tmp_path / "blank.nii.gz"))
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.arange(9, dtype=np.uint8).reshape(3, 3)).save(tiny)
    holes = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    holes[:8] = np.nan  # partly non-finite is not blank
    results = Assessor(tiny_run["checkpoint"]).assess_many(
        [blank, tiny, dicom_testfile("CT_small.dcm"), MedImage(holes, (1.0, 1.0), "MR")])
    assert isinstance(results[0], InvalidImage) and "blank" in results[0].message
    assert "blank.nii.gz" in str(results[0])
    assert isinstance(results[1], InvalidImage) and "3×3" in str(results[1])
    assert "tiny.png" in str(results[1])
    assert results[2].modality == "CT" and 1.0 <= results[2].score <= 5.0
    assert 1.0 <= results[3].score <= 5.0


def test_worker_processes_give_the_same_assessments_and_errors_in_place(
        tiny_run: dict, tmp_path: Path, mni_t1: MedImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"not an image")
    real = [dicom_testfile("CT_small.dcm"), dicom_testfile("MR_small.dcm"), mni_t1]
    items = [*real, bad]
    import medq.workers as workers

    pools = []

    def spy(workers: int):  # record the worker pool assess_many forks for the batch
        pools.append(real_pool(workers))
        return pools[-1]

    real_pool = workers.worker_pool  # what `workers.pool_of` starts
    monkeypatch.setattr(workers, "worker_pool", spy)
    results = Assessor(tiny_run["checkpoint"], batch_size=3, threads=2).assess_many(items)
    assert len(pools) == 1  # the batch was loaded and measured by worker processes …
    with pytest.raises(RuntimeError):  # … which were shut down when the call returned
        pools[0].submit(int)
    alone = Assessor(tiny_run["checkpoint"], threads=1)
    assert isinstance(results[-1], InputError) and results[-1].path == str(bad)
    for item, got in zip(items[:3], results[:3], strict=True):
        want = alone.assess(item)
        assert got.score == pytest.approx(want.score, abs=2e-3)  # batched vs single forward
        assert got.measures == want.measures and got.shape == want.shape
        assert [f["type"] for f in got.to_dict()["findings"]] == [
            f["type"] for f in want.to_dict()["findings"]]
        assert [s["index"] for s in got.slices or []] == [s["index"] for s in want.slices or []]


def test_cli_assess_json_exit_code_and_order(tiny_run: dict, tmp_path: Path) -> None:
    bad = tmp_path / "empty.nii.gz"
    bad.write_bytes(b"")
    good = dicom_testfile("CT_small.dcm")
    proc = run_medq("assess", good, bad, "--json", "--model", tiny_run["checkpoint"])
    assert proc.returncode == 2, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["path"] for r in rows] == [good, str(bad)]
    assert "score" in rows[0] and rows[1]["error"]["type"] in ("UnreadableImage", "InvalidImage")
    assert rows[0]["acquisition"] is None  # a model without an acquisition head (no --tagged)
    assert len(proc.stderr.strip().splitlines()) == 1 and "empty.nii.gz" in proc.stderr


def test_unknown_model_is_a_clear_error() -> None:
    """A model name or checkpoint the user got wrong is bad input (exit code 2), not medq's
    internal error."""
    with pytest.raises(InvalidParameter, match=r"no quality model weights called "
                       r"'no-such-model': .* shipped ones \(cnniqa, .*mediqa-s"):
        Assessor("no-such-model")
    with pytest.raises(InvalidParameter, match="a shipped restoration network, not a quality "
                       "model: `medq restore --model`, `medq bench restore --models` take it"):
        Assessor("restore-s")
    with pytest.raises(InvalidParameter, match="missing/model.pt: checkpoint file not found"):
        Assessor("missing/model.pt")
    with pytest.raises(InvalidParameter, match="restore-s.pt: a restoration network, not a "
                       "quality model"):  # a file of the other kind, wherever it lies
        Assessor(Path(__file__).parents[1] / "src" / "medq" / "weights" / "restore-s.pt")


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="unknown config field"):
        config_from_dict({"name": "x", "model": "mediqa-tiny", "epochs": 3})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: cnniqa\nstages: [{name: s, steps: 1, losses: {mse: 1}}]\n")
    with pytest.raises(InvalidParameter, match="bad.yaml"):
        load_config(bad)
    proc = run_medq("train", bad)
    assert proc.returncode == 2 and proc.stderr.startswith("medq: error:")
    with pytest.raises(InvalidParameter, match="precision must be one of"):
        config_from_dict({"name": "x", "model": "mediqa-tiny", "precision": "half"})
    stage = {"name": "s", "steps": 2, "lr": 0.001, "losses": {"score": 1.0}}
    base = {"name": "x", "model": "mediqa-tiny", "stages": [stage]}
    loaded = config_from_dict({**base, "stages": [{**stage, "lr": "3e-4", "steps": "2"}]})
    assert (loaded.stages[0].lr, loaded.stages[0].steps) == (3e-4, 2)  # YAML 1.1 reads 3e-4 as text
    for change, said in (
            ({"grad_clip": -1}, "grad_clip: must be > 0, got -1"),
            ({"grad_clip": 0}, "grad_clip: must be > 0"),
            ({"use_prompts": "false"}, "use_prompts: must be true or false, got 'false'"),
            ({"log_every": 0}, "log_every: must be ≥ 1"),
            ({"seed": "zero"}, "seed: must be a number"),
            ({"weight_decay": -0.1}, "weight_decay: must be ≥ 0"),
            ({"ensemble": True}, "ensemble: must be a whole number, got True"),
            ({"output": "runs/{nmae}"}, "output: may name the run as {name}"),
            ({"model_args": {"n_physic": 14}}, "model_args {'n_physic': 14} do not build"),
            ({"pairs": {"train": {}}}, "pairs is for task: restore"),
            ({"member_pairs": [{}]}, "member_pairs is for task: restore"),
            ({"batch_size": 0}, "batch_size: must be ≥ 1, got 0"),
            ({"checkpoint_every_s": -1}, "checkpoint_every_s: must be ≥ 0"),
            ({"bench": {"size": "32px"}}, "bench.size: must be a number, got '32px'"),
            ({"bench": {"noisy_base": 2}}, "bench.noisy_base: must lie in 0–1"),
            ({"bench": {"evidence_extras": ["bogus"]}}, "bench.evidence_extras: unknown"),
            ({"stages": []}, "stages: a config needs at least one stage"),
            ({"stages": [{"name": "s", "lr": 0.1}]}, "stages[0]: needs steps"),
            ({"stages": [{**stage, "steps": 20.5}]}, "stages[0].steps: must be a whole number"),
            ({"stages": [{**stage, "warmup": -5}]}, "stages[0].warmup: must be ≥ 0"),
            ({"stages": [{**stage, "losses": {"score": -1}}]}, "stages[0].losses.score: must be"),
            ({"stages": [{**stage, "losses": ["score"]}]}, "stages[0].losses: must be a mapping"),
            ({"stages": [stage, {**stage, "losses": {"score": 0.0}}]},
             "stages[1] ('s') has 2 steps but weights none of the quality losses"),
            ({"stages": [stage, {**stage, "losses": {"l1": 1.0}}]},
             "stages[1].losses: 'l1' is no quality loss"),
            ({"model_args": {"n_physics": 14}, "stages": [{**stage, "losses": {"physics": 1}}]},
             "model_args.n_physics: must be 15, one output per degradation kind"),
            ({"task": "prompts", "model": "prompt-zzz"}, "for task 'prompts'")):
        with pytest.raises(InvalidParameter, match=re.escape(said)):
            config_from_dict({**base, **change})
    # a restoration config holding quality settings (they were silently ignored); at their
    # defaults, as a run's config.yaml writes them out, they pass
    restore = {"name": "r", "model": "restore-unet-tiny", "task": "restore",
               "stages": [{"name": "fit", "steps": 2, "lr": 0.001, "losses": {"l1": 1.0}}]}
    for change in ({"bench": {"size": 32}}, {"slice_steps": 5}, {"use_prompts": False}):
        with pytest.raises(InvalidParameter, match="a restoration run .* does not use it"):
            config_from_dict({**restore, **change})
    config_from_dict({**restore, "bench": {}, "slice_steps": 300, "use_prompts": True})
    broken = tmp_path / "broken.yaml"  # PyYAML's several lines and "<unicode string>": one line
    broken.write_text("name: x\nmodel: mediqa-tiny\nstages: [a, b\n")
    with pytest.raises(InvalidParameter, match=r"not valid YAML \(expected ',' or '\]', but got "
                                               r"'<stream end>' at line 4, column 1\)$"):
        load_config(broken)
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: x\nmodel: mediqa-tiny\nseed: 1\nseed: 2\n")
    with pytest.raises(InvalidParameter, match="key 'seed' is written twice"):
        load_config(twice)


def test_bfloat16_training_steps_compute_the_float32_objective(tiny_run: dict) -> None:
    """A training step in bfloat16 (`precision: auto` where the CPU has it) computes the loss
    terms of float32 up to bfloat16 rounding, in float32, with finite gradients."""
    import torch

    from medq.assess.precision import model_precision
    from medq.assess.weights import load_weights
    from medq.data import bench
    from medq.train.loop import _batch, slice_pool
    from medq.train.losses import losses

    cfg = tiny_run["config"]
    data = bench.build(cfg.bench, "train", progress=False)
    model = load_weights(tiny_run["checkpoint"])[0].eval()
    batch = _batch(data, slice_pool(data)[:8], np.random.default_rng(0), cfg.train_crop)
    weights = cfg.stages[-1].losses
    exact = losses(model, batch, weights, cfg.use_prompts)
    with model_precision("bfloat16"):
        fast = losses(model, batch, weights, cfg.use_prompts)
    assert set(fast) == set(exact) == {"score", "findings", "physics"}
    for name, value in exact.items():
        assert fast[name].dtype == torch.float32
        assert fast[name].item() == pytest.approx(value.item(), rel=0.05)
    sum(fast.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_a_scores_modality_that_contradicts_the_header_is_named(tmp_path: Path, capsys) -> None:
    """The modality column is what trains (prompts); a row that calls a CT file MR was taken
    silently (every row marked CT took a model's held-out SRCC from 0.80 to −1)."""
    from medq.data.samples import export_samples
    from medq.train.scores import load_scores

    files = export_samples(tmp_path, ["ct_small", "mr_small", "retina"])
    files += [f.with_name(f"again_{f.name}") for f in files]
    for f in files[3:]:
        shutil.copy(f.with_name(f.name.removeprefix("again_")), f)
    modalities = ("MR", "MR", "", "", "", "")  # line 2: CT_small called MR; line 3 agrees
    lines = ["path,score,modality"] + [f"{f.name},{s},{m}" for f, s, m in zip(
        files, (5, 4, 3, 2, 4.5, 1.5), modalities, strict=True)]
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    load_scores(tmp_path / "scores.csv", size=32)
    notes = [n for n in capsys.readouterr().err.splitlines() if "overrides" in n]
    assert len(notes) == 1 and "(line 2 says MR, the file CT)" in notes[0], notes


def test_finetune_on_user_scores(tiny_run: dict, tmp_path: Path) -> None:
    """`medq train CONFIG --scores CSV` fine-tunes on the user's ratings; its record says so:
    the card names the scores file, its rows and the held-out images, the reproduce line keeps
    `--scores`, metrics.json is strict JSON (null for what is undefined) and the log says why
    the SRCC of two held-out images is not computed, with the RMSE that is. The copies are held
    out or trained on together (the DICOM pairs by their PatientID, the PNG pair by its pixels)."""
    from medq.data.samples import export_samples
    from medq.train.scores import load_scores, read_scores

    files = export_samples(tmp_path / "imgs", ["ct_small", "mr_small", "retina"])
    files += [f.with_name(f"again_{f.name}") for f in files]  # six images, three pairs
    for f in files[3:]:
        shutil.copy(f.with_name(f.name.removeprefix("again_")), f)
    csv = tmp_path / "scores.csv"
    lines = ["path,score,modality"] + [f"{f.name},{s},{m}" for f, s, m in zip(
        files, (5, 4, 3, 2, 4.5, 1.5), ("", "", "OP") * 2, strict=True)]
    (tmp_path / "imgs" / "scores.csv").write_text("\n".join(lines) + "\n")
    assert len(read_scores(tmp_path / "imgs" / "scores.csv")) == 6
    csv.write_text("path,score\nx.dcm,7\n")
    with pytest.raises(InvalidParameter, match="outside 1–5"):
        read_scores(csv)
    csv.write_text("path,score\na.dcm,0\nb.dcm,3\nc.dcm,7\nd.dcm,x\n")  # every bad line at once
    with pytest.raises(InvalidParameter, match=r"line 2: score 0 is outside 1–5; line 4: score 7 "
                                               r"is outside 1–5; line 5: score 'x' is not a"):
        read_scores(csv)
    train_set, test_set = load_scores(tmp_path / "imgs" / "scores.csv", size=32)
    assert len(train_set["score"]) + len(test_set["score"]) == 6
    assert not train_set["labelled"].any()
    (tmp_path / "ft.yaml").write_text(
        f"name: ft\nmodel: mediqa-tiny\ninit: {tiny_run['checkpoint']}\nbatch_size: 4\n"
        "bench: {size: 32}\nslice_steps: 0\ncheckpoint_every_s: 0\noutput: ft\nstages:\n"
        "  - {name: score, steps: 3, lr: 0.00005, losses: {score: 1.0}, warmup: 1}\n")
    proc = run_medq("train", "ft.yaml", "--scores", "imgs/scores.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("test SRCC not computed: 2 held-out images (need ≥ 3 with different scores); "
            "RMSE") in proc.stderr and "nan" not in proc.stderr
    assert "3 images under another name are pixel for pixel copies" in proc.stderr
    assert (tmp_path / "ft" / "model.pt").is_file()

    def strict(name: str) -> None:
        raise ValueError(f"metrics.json holds {name}")

    rec = json.loads((tmp_path / "ft" / "metrics.json").read_text(), parse_constant=strict)
    overall = rec["metrics"]["overall"]
    assert rec["train_items"] == 4 and overall["n"] == 2 and overall["srcc"] is None
    assert overall["rmse_raw"] >= 0 and "2 held-out images" in overall["not_computed"]
    held = rec["scores"]["held_out"]
    assert rec["scores"]["rows"] == 6 and rec["scores"]["file"] == "imgs/scores.csv"
    assert len(held) == 2 and len({h.removeprefix("again_") for h in held}) == 1  # a pair
    card = (tmp_path / "ft" / "card.md").read_text()
    assert "**your ratings**" in card and "not** radiologists" not in card
    assert "engine degradations" not in card and f"`{held[0]}`" in card
    assert re.search(r"`imgs/scores.csv` \(SHA-256 [0-9a-f]{16}…\): 6 scored lines, 6 images, "
                     "6 of them usable; 4 trained on, 2 held out", card), card
    assert "Model `mediqa-tiny` ({'n_physics'" in card  # the starting weights' sizes
    # the scores by absolute path (the command runs from any folder); only 2D images: no
    # slice weights fitted, and the card no longer claims a fit
    assert (f"Reproduce: `medq train ft.yaml --scores {tmp_path.resolve() / 'imgs/scores.csv'} "
            "-o ft`.") in card
    assert rec["slice_loss"] is None and "no slice weights fitted" in card
    assert "nan" not in card and "SRCC and PLCC not computed: 2 held-out images" in card
    # `medq assess` reports the fine-tuned score on the raters' scale, not mixed with the
    # evidence score (an estimate of the physics reference score), which stays beside it
    from medq.assess.predictor import Assessor

    assert rec["score_scale"] == "user"
    tuned = Assessor(tmp_path / "ft" / "model.pt").assess(files[0])
    assert tuned.score == tuned.model_score and tuned.evidence_score is not None
    base = Assessor(tiny_run["checkpoint"]).assess(files[0])
    assert base.score == pytest.approx((base.model_score + base.evidence_score) / 2, abs=2e-3)
    from medq.data import bench
    from medq.train.evaluate import benchmark_rows

    tuned_path = str(tmp_path / "ft" / "model.pt")  # no "medq assess (… + evidence score)" row
    rows = benchmark_rows(bench.build(tiny_run["config"].bench, "test"), [tuned_path], False)
    assert [r["model"] for r in rows] == [tuned_path] and rows[0]["score_scale"] == "user"


def test_scores_csv_as_spreadsheets_save_it(tmp_path: Path) -> None:
    """A BOM, capitalised or padded column names and `;` or tab delimiters (with decimal
    commas) are read; a header without the columns names those it found."""
    from medq.data.samples import export_samples
    from medq.train.scores import load_scores, read_scores

    csv = tmp_path / "scores.csv"
    for text in ("\ufeffpath,score\na.dcm,4\n", "Path,Score\na.dcm,4\n",
                 " path , score \na.dcm,4\n", "path;score;Modality\na.dcm;4,0;CT\n",
                 "PATH\tSCORE\na.dcm\t4\n"):
        csv.write_text(text, encoding="utf-8")
        (row,) = read_scores(csv)
        assert row["path"] == tmp_path / "a.dcm" and row["score"] == 4.0, text
    csv.write_text("Path; Score ;MODALITY\na.dcm;4,5;CT\n")
    assert read_scores(csv)[0]["score"] == 4.5 and read_scores(csv)[0]["modality"] == "CT"
    csv.write_text("image;rating\na.dcm;4\n")
    with pytest.raises(InvalidParameter, match=r"'path' and 'score' \(found: image, rating\)"):
        read_scores(csv)
    (one,) = export_samples(tmp_path / "imgs", ["ct_small"])
    csv.write_text(f"path,score\n{one},3\n")
    with pytest.raises(InvalidParameter, match="only 1 usable image; need at least 5"):
        load_scores(csv, size=32)
    with pytest.raises(InvalidParameter, match="is a folder, not a scores file"):
        read_scores(tmp_path)
    csv.write_text("path,score\n,3\n")  # an empty path is no image (it read as the folder)
    with pytest.raises(InvalidParameter, match="line 2: no path"):
        read_scores(csv)
    csv.write_text("path,score,Score\na.dcm,3,4\n")
    with pytest.raises(InvalidParameter, match="the header names score twice"):
        read_scores(csv)


def test_scores_csv_rows_are_checked_and_one_image_is_one_item(tmp_path: Path) -> None:
    """An image on several lines (however its path is spelt) is one image with its raters' mean
    score; lines that disagree on its modality, a row with more fields than the header (a
    decimal comma in a comma-separated file), an unknown modality or region, a NaN score and
    scores without spread are refused naming the line; rows of empty cells are skipped."""
    from medq.train.scores import read_scores

    csv = tmp_path / "scores.csv"
    (tmp_path / "sub").mkdir()
    csv.write_text("path,score,region\na.dcm,4,Chest\n./a.dcm,2,chest\nsub/../a.dcm,3,\n"
                   "b.dcm,5,\n,,\n")
    rows = read_scores(csv)
    assert [(r["path"].name, r["score"], r["lines"]) for r in rows] == [
        ("a.dcm", 3.0, [2, 3, 4]), ("b.dcm", 5.0, [5])]
    assert rows[0]["region"] == "chest"
    for text, said in (("path,score,modality\na.dcm,4,CT\na.dcm,2,MR\nb.dcm,1,\n",
                        "lines 2, 3 name one image"),
                       ("path,score\na.dcm,3,5\nb.dcm,1\n",
                        "line 2: 3 fields but the header has 2 (a decimal comma"),
                       ("path,score,modality\na.dcm,4,5\n",  # 4,5 read as 4 and modality 5
                        "OP (a decimal comma in a comma-separated file?"),
                       ("path,score,modality\na.dcm,3,XA\n", "line 2: 'XA' is not a modality"),
                       ("path,score,region\na.dcm,3,Thorax\n", "line 2: unknown region 'Thorax'"),
                       ("path,score\na.dcm,nan\n", "line 2: score 'nan' is not a number"),
                       ("path,score\na.dcm,3\nb.dcm,3\nc.dcm,3\n", "every image has score 3")):
        csv.write_text(text)
        with pytest.raises(InvalidParameter, match=re.escape(said)):
            read_scores(csv)


def test_train_refuses_what_scores_cannot_teach_and_a_file_as_run_folder(tmp_path: Path) -> None:
    """Before any image is read: `--scores` with a restoration config, or with a stage that
    weights no score loss (a physics stage: scores carry no engine record), and a run folder
    that is a file, are bad input naming the file (exit 2)."""
    root = Path(__file__).parents[1] / "configs"
    csv = tmp_path / "scores.csv"
    csv.write_text("path,score\nmissing.dcm,3\n")
    (tmp_path / "afile").write_text("")
    for args, said in (
            ((root / "restore_tiny_test.yaml", "--scores", csv),
             "--scores fine-tunes quality models (task: quality); this config trains task: "
             "restore"),
            ((root / "mediqa_tiny_test.yaml", "--scores", csv),
             "stage 'physics' trains physics, which your scores cannot teach"),
            ((root / "mediqa_tiny_test.yaml", "-o", tmp_path / "afile"),
             f"{tmp_path / 'afile'}: the run folder is a file, not a folder"),
            ((root / "mediqa_tiny_test.yaml", "-o", tmp_path / "afile" / "run"),  # was found
             f"cannot make the run folder: {tmp_path / 'afile'} is a file"),  # after training
            ((root / "mediqa_s_finetune.yaml", "--scores", csv, "-o", tmp_path / "x{y}"),
             "only 0 usable images")):  # a folder's braces are no placeholder
        proc = run_medq("train", *args, cwd=tmp_path)
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("medq: note")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_init_is_checked_before_any_data_work() -> None:
    """`init:` naming a member an ensemble does not have, a member of a single model, another
    architecture than `model:` (CNNIQA was trained and carded as mediqa-tiny), or given to a
    restoration run (where it was silently ignored) is refused at once, naming `init`."""
    from medq.train.loop import check_init

    tiny = {"name": "x", "model": "mediqa-tiny",
            "stages": [{"name": "score", "steps": 1, "lr": 1e-4, "losses": {"score": 1.0}}]}
    for init, said in (("mediqa-s#5", "has 2 members (#0 … #1), not #5"),
                       ("mediqa-s#x", "not #x"),
                       ("cnniqa#0", "is one model, not a seed ensemble"),
                       ("cnniqa", "is a cnniqa checkpoint, but the config's model is mediqa-tiny")):
        with pytest.raises(InvalidParameter, match=re.escape(said)):
            check_init(config_from_dict({**tiny, "init": init}))
    assert check_init(config_from_dict({**tiny, "model": "mediqa-s", "init": "mediqa-s#1"}))
    with pytest.raises(InvalidParameter, match="init: a restore run starts from fresh weights"):
        config_from_dict({**tiny, "model": "restore-unet-tiny", "task": "restore",
                          "init": "x.pt", "stages": [{"name": "l1", "steps": 1, "lr": 1e-4,
                                                      "losses": {"l1": 1.0}}]})
    for field, value, said in (("per_task", -6, "must be a whole number ≥ 0"),
                               ("soft", 1.5, "must lie in 0 … 1")):  # -6 trained on clean pairs
        with pytest.raises(InvalidParameter, match=f"pairs.train.{field}: {said}"):
            config_from_dict({**tiny, "model": "restore-unet-tiny", "task": "restore",
                              "pairs": {"train": {field: value}},
                              "stages": [{"name": "l1", "steps": 1, "lr": 1e-4,
                                          "losses": {"l1": 1.0}}]})


def test_training_config_is_checked_before_any_data_work(tmp_path: Path) -> None:
    """A model name outside the registry or malformed stages are bad input at once: `medq
    train` exits 2 without building any benchmark (a cold build takes many minutes)."""
    with pytest.raises(InvalidParameter, match="unknown model 'nosuchmodel' for task 'quality'"):
        config_from_dict({"name": "x", "model": "nosuchmodel"})
    with pytest.raises(InvalidParameter, match="unknown model 'mediqa-s' for task 'restore'"):
        config_from_dict({"name": "x", "model": "mediqa-s", "task": "restore"})
    with pytest.raises(InvalidParameter, match="is a model of task restore: add task: restore"):
        config_from_dict({"name": "x", "model": "restore-unet-tiny"})  # task: left out
    with pytest.raises(InvalidParameter, match="unknown pairs.train field.* foo; expected some "
                       "of clean, "):  # (was PairPlan.__init__()'s keyword error)
        config_from_dict({"name": "x", "model": "restore-unet-tiny", "task": "restore",
                          "pairs": {"train": {"tasks": ["mr_noise"], "foo": 1}},
                          "stages": [{"name": "r", "steps": 1, "losses": {"l1": 1.0}}]})
    with pytest.raises(InvalidParameter, match="stages must be a list of mappings"):
        config_from_dict({"name": "x", "model": "mediqa-tiny", "stages": ["score"]})
    with pytest.raises(InvalidParameter, match="model_args: must be a mapping"):
        config_from_dict({"name": "x", "model": "mediqa-tiny", "model_args": "big"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: nosuchmodel\n")
    env = {**os.environ, "MEDQ_CACHE_DIR": str(tmp_path / "cache")}
    proc = run_medq("train", bad, env=env)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"medq: error: {bad}: unknown model 'nosuchmodel' for task 'quality'; expected one of "
        "cnniqa, mediqa-b, mediqa-s, mediqa-tiny, wadiqam")
    assert not (tmp_path / "cache" / "bench").exists()


def test_benchmark_builds_are_announced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the benchmark of a run is read or built, the log says so (a cold build is long)."""
    from medq.data import bench
    from medq.train.loop import build_split

    cfg = config_from_dict({"name": "x", "model": "mediqa-tiny", "stages": [
        {"name": "s", "steps": 1, "losses": {"score": 1.0}}]})
    built: list[str] = []
    monkeypatch.setattr(bench, "build", lambda plan, split: built.append(split) or {})
    said: list[str] = []
    assert build_split(cfg, "test", said.append) == {} and built == ["test"]
    assert said == [f"test benchmark (plan {cfg.bench.key()}): read from the cache, or built "
                    "now (the first build takes a while; cached for later runs)"]


def test_train_on_a_binary_file_or_a_folder_is_bad_input(tmp_path: Path) -> None:
    """A DICOM file renamed .yaml and a folder are one-line bad-input errors (exit 2)."""
    import shutil

    shutil.copy(dicom_testfile("CT_small.dcm"), tmp_path / "x.yaml")
    (tmp_path / "x").mkdir()
    for arg, reason in (("x.yaml", "not a YAML text file"),
                        ("x", "is a folder, not a training config")):
        proc = run_medq("train", arg, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr == f"medq: error: {arg}: {reason}\n"


def test_prompt_classifier_trains_and_predicts(tmp_path: Path) -> None:
    import torch

    from medq.assess import prompt_classifier as pc
    from medq.train.loop import train

    cfg = config_from_dict({"name": "pc", "model": "prompt-classifier", "task": "prompts",
                            "model_args": {"steps": 3, "n_train": 14, "n_test": 7},
                            "output": str(tmp_path / "pc")})
    rec = train(cfg, log=lambda m: None)
    assert rec["n_train"] == 14
    assert "Modality accuracy per test source" in (tmp_path / "pc" / "card.md").read_text()
    net = pc.PromptNet()
    net.load_state_dict(torch.load(tmp_path / "pc" / "model.pt", weights_only=True)["state_dict"])
    with torch.no_grad():  # the saved weights are the ones the record's accuracies measured
        again = pc.held_out_check(net, pc.make_examples("test", 7, 1))
    assert again == rec["test"] and rec["test_modality_accuracy"] == again["modality_accuracy"]
    image = MedImage(np.zeros((40, 30)) + 1, (1, 1), "OT")
    m, r = net.eval()(torch.from_numpy(pc.classifier_input(image))[None],
                      torch.from_numpy(pc.intensity_cues(image))[None])
    assert m.shape == (1, len(pc.MODALITIES)) and r.shape[0] == 1
    for check in ("test", "test_8bit", "test_as_found"):  # each in the card's tables
        assert set(rec[check]["per_source"]) <= {s.name for s in sources("test")}
    card = (tmp_path / "pc" / "card.md").read_text()
    assert "| as found: any degradation, orientation, padding, scale |" in card


def test_prompt_classifier_unit_cues_and_varied_units() -> None:
    from medq.assess import prompt_classifier as pc

    ct = load_sample("ct_small")
    cues = pc.intensity_cues(ct)
    assert cues.shape == (pc.N_CUES,) and cues[0] == 0.0 and cues[3] < 0  # HU: P1 is air
    stored = ct.evolve(array=ct.array + 1024.0)
    assert pc.intensity_cues(stored)[2] == 0.0  # HU + 1024 has no negative values
    assert pc.intensity_cues(load_sample("retina"))[0] == 1.0
    rng = np.random.default_rng(0)
    varied = [pc.vary_units(ct, rng).array for _ in range(40)]
    assert any(np.array_equal(v, ct.array) for v in varied)  # kept in HU
    assert any(v.max() <= 255 and v.min() >= 0 for v in varied)  # an 8-bit export
    assert any(v.min() >= 0 and v.max() > 1000 for v in varied)  # HU + 1024


def test_prompt_classifier_sees_planes_laid_out_and_degraded_as_files_hold_them() -> None:
    """Training draws each plane in any of the eight orientations, half of them on a padded
    canvas of their lowest value, with the spacing following the axes; and with any of the
    engine's degradations of its modality (the held-out `as found` check draws the same)."""
    from medq.assess import prompt_classifier as pc

    mr = load_sample("mr_small")
    mr = mr.evolve(array=mr.array[:, :50], spacing=(0.5, 0.8))  # 64 × 50: axes tell apart
    rng = np.random.default_rng(0)
    seen_spacing, padded = set(), 0
    for _ in range(40):
        out = pc.as_found(mr, rng)
        rows, cols = (64, 50) if out.spacing == (0.5, 0.8) else (50, 64)  # mm follow the axes
        seen_spacing.add(out.spacing)
        assert out.array.dtype == np.float32 and out.array.min() == mr.array.min()
        if out.array.shape == (rows, cols):  # a turn or a mirror of the pixels, nothing else
            assert np.array_equal(np.sort(out.array, axis=None), np.sort(mr.array, axis=None))
        else:  # centred on a larger canvas
            padded += 1
            extra = np.subtract(out.array.shape, (rows, cols))
            assert (extra >= 0).all() and (extra % 2 == 0).all()
    assert seen_spacing == {(0.5, 0.8), (0.8, 0.5)} and 10 < padded < 30
    drawn = {kinds: {d["name"] for i in range(30) for d in pc._degraded(
        mr, kinds, np.random.default_rng(i)).meta.get("degradations", [])}
        for kinds in ("generic", "all")}
    assert drawn["generic"] <= {"blur", "low_contrast", "low_resolution"}
    assert len(drawn["all"]) >= 5 and any(k.startswith("mr_") for k in drawn["all"])


def test_seed_ensemble_trains_resumes_averages_and_fine_tunes(tiny_run: dict,
                                                             tmp_path: Path) -> None:
    import dataclasses
    import shutil

    from medq.assess.models.ensemble import SeedEnsemble
    from medq.train.loop import train
    from medq.train.ship import ship_run

    out = tmp_path / "ens"
    shutil.copytree(tiny_run["folder"], out / "seed-0")  # a finished seed-0 run is reused
    cfg = dataclasses.replace(tiny_run["config"], ensemble=2, output=str(out))
    logged: list[str] = []
    rec = train(cfg, log=logged.append)
    assert any("reused" in m for m in logged) and (out / "seed-1" / "model.pt").is_file()
    assert rec["ensemble_seeds"] == [0, 1] and len(rec["members"]) == 2
    assert rec["members"][0]["wall_time_s"] == tiny_run["record"]["wall_time_s"]
    card = (out / "card.md").read_text()
    assert "seed ensemble" in card and "Each member alone" in card
    from medq.data import bench
    from medq.train.ensemble import finished_member, member_config

    data = bench.build(cfg.bench, "train")  # a finished member is reused for its own recipe only
    assert finished_member(member_config(cfg, 0), data) is not None
    slower = dataclasses.replace(cfg, stages=[dataclasses.replace(s, lr=s.lr / 2)
                                              for s in cfg.stages])
    for other, arrays in ((slower, data), (dataclasses.replace(cfg, batch_size=3), data),
                          (cfg, {**data, "score": data["score"][::-1].copy()})):
        assert finished_member(member_config(other, 0), arrays) is None

    ct = dicom_testfile("CT_small.dcm")
    ensemble = Assessor(out / "model.pt", precision="float32")  # the average, not rounding
    assert isinstance(ensemble.model, SeedEnsemble) and len(ensemble.model.members) == 2
    alone = [Assessor(out / f"seed-{k}" / "model.pt", measures=False,
                      precision="float32").assess(ct).score for k in (0, 1)]
    assert ensemble.assess(ct).score == pytest.approx(np.mean(alone), abs=2e-3)

    from medq.train.evaluate import benchmark_rows

    test = bench.build(cfg.bench, "test")
    rows = benchmark_rows(test, [str(out / "model.pt")], False)
    assert [r["model"] for r in rows[1:]] == [
        f"medq assess ({out / 'model.pt'} + evidence score)",  # a checkpoint taking measures
        f"{out / 'model.pt'} (seed 0 alone)", f"{out / 'model.pt'} (seed 1 alone)"]
    from medq.train.evaluate import assess_scores, evaluate, predict

    combined = evaluate(assess_scores(predict(ensemble.model, test), test), test)
    assert rows[1]["metrics"]["overall"]["srcc"] == pytest.approx(
        combined["overall"]["srcc"], abs=1e-6, nan_ok=True)
    sources = set(test["source"].tolist())  # within each test source too (n per source)
    assert set(rows[0]["per_source"]) == sources and sum(
        m["n"] for m in rows[0]["per_source"].values()) == len(test["score"])
    assert rows[2]["metrics"]["overall"]["srcc"] == pytest.approx(
        tiny_run["record"]["metrics"]["overall"]["srcc"], abs=1e-6, nan_ok=True)
    for m in rows[0]["metrics"].values():  # every SRCC with its bootstrap interval, which
        # brackets it up to a tenth of its width: a percentile interval of a rank correlation
        # over a dozen items may sit just beside the estimate (resampled duplicates tie ranks)
        low, high = m["srcc_ci"]
        slack = 0.1 * (high - low)
        assert (low <= high and low - slack <= m["srcc"] <= high + slack) \
            or not np.isfinite(m["srcc"])
    member = str(out / "seed-0" / "model.pt")  # a member as the baseline: paired margins
    rows = benchmark_rows(test, [str(out / "model.pt"), member], False, baselines=(member,))
    by = {r["model"]: r for r in rows}
    for name in (str(out / "model.pt"), f"medq assess ({out / 'model.pt'} + evidence score)"):
        gains = by[name]["margins"][member]
        assert set(gains) == set(by[name]["metrics"])
        overall = gains["overall"]
        assert overall["gain"] == pytest.approx(by[name]["metrics"]["overall"]["srcc"] - by[
            member]["metrics"]["overall"]["srcc"], abs=1e-9, nan_ok=True)
        assert overall["ci"][0] <= overall["gain"] <= overall["ci"][1] or not np.isfinite(
            overall["gain"])
    assert "margins" not in by[member]  # only the first model's rows are compared
    peers = {r["model"]: r for r in benchmark_rows(test, [], True)}  # classical rows and BRISQUE
    assert set(peers) == {"noise σ (wavelet MAD)", "sharpness", "EFC (MRIQC)",
                          "BRISQUE (generic NR-IQA)"}
    assert all(np.isfinite(r["metrics"]["overall"]["srcc"]) for r in peers.values())

    shipped = ship_run(out, dest=tmp_path)  # float16 members, loaded back as float32
    assert Assessor(shipped, measures=False).assess(ct).score == pytest.approx(
        np.mean(alone), abs=0.05)

    ft = dataclasses.replace(cfg, init=str(out / "model.pt"), ensemble=1,
                             output=str(tmp_path / "ft"), slice_steps=0,
                             stages=[dataclasses.replace(cfg.stages[-1], steps=2, warmup=1)])
    rec = train(ft, log=lambda m: None)  # each member fine-tuned from its own weights
    assert rec["ensemble_seeds"] == [0, 1] and (tmp_path / "ft" / "seed-1" / "model.pt").is_file()
    with pytest.raises(InvalidParameter, match="members"):
        train(dataclasses.replace(ft, ensemble=3), log=lambda m: None)


def test_shipped_prompt_classifier_fills_the_modality_only() -> None:
    from medq.assess.prompt_classifier import load_classifier

    predict = load_classifier()
    assert predict is not None  # shipped in medq/weights
    ct = load_sample("ct_small")
    assert predict(ct, ("region",)) == {}  # a stated modality: no region guess
    assert predict(ct.evolve(modality="OT"), ("modality", "region", "type")) == {
        "modality": "CT", "type": "ct_other"}  # Hounsfield units
    pet = load_sample("pet_brain")
    assert predict(pet.evolve(modality="OT"), ("modality", "type")) == {
        "modality": "PT", "type": "pet"}


def test_ship_command_has_help_and_names_a_folder_without_weights(tmp_path, capsys) -> None:
    """`python -m medq.train.ship --help` prints its usage (it was taken for a run folder and
    ended in a traceback); a folder without model.pt is one line and exit code 2."""
    from medq.train.ship import main

    with pytest.raises(SystemExit) as shown:
        main(["--help"])
    assert shown.value.code == 0 and "run folders written by medq train" in capsys.readouterr().out
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"medq: error: {tmp_path}: no model.pt in the run folder\n"


def test_a_checkpoint_from_before_a_new_kind_fine_tunes_with_the_physics_loss() -> None:
    """The shipped mediqa-s was trained on 14 kinds; the engine has gained fundus_noise. Its
    members, taken as `init:`, get a physics output per kind: each old kind keeps its trained
    output, the new one a fresh one (the physics loss compared 14 outputs with 15 targets)."""
    import torch

    from medq.assess.weights import load_weights
    from medq.data.bench import KINDS
    from medq.train.loop import _initial_model

    shipped, record = load_weights("mediqa-s")
    trained = record["physics_targets"]
    assert "fundus_noise" not in trained and "fundus_noise" in KINDS
    stage = {"name": "p", "steps": 1, "lr": 1e-4, "losses": {"physics": 1.0}}
    model = _initial_model(config_from_dict({"name": "x", "model": "mediqa-s",
                                             "init": "mediqa-s#0", "stages": [stage]}))
    old, new = shipped.members[0].heads.physics[-1], model.heads.physics[-1]
    assert model.config.n_physics == new.out_features == len(KINDS)
    for kind in trained:
        assert torch.equal(new.weight[KINDS.index(kind)], old.weight[trained.index(kind)])
    assert shipped.members[0].config.n_physics == len(trained)  # the shipped model untouched
