"""The shipped models on real images: size and cards, severity ranking, a new user's first run.

Acceptance goals the shipped `mediqa-s` does not reach yet are kept as strict `xfail` tests with
the reason (a model that reaches one makes its test fail as XPASS, so the marker is removed when
it ships and the goal is guarded from then on); the other tests are regression floors
at what the shipped model does today, so a broken model or pipeline fails them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_medq
from medq.assess.predictor import Assessor
from medq.assess.weights import WEIGHTS_DIR, shipped

SHORT_OF_GOALS = ("mediqa-s (2 seeds × 6,400 CPU steps) falls short of the goals on held-out "
                  "scans, and longer training did not close the gap: see its model card, "
                  "docs/training.md and `make bench`")


@pytest.fixture(scope="module")
def ranking() -> dict:
    """The severity ranking over ladders drawn with seeds 0 and 1 (`benchmarks/ranking.py`
    draws 0–3)."""
    from medq.train.evaluate import held_out_images, ranking_check, ranking_over_seeds

    assessor, images = Assessor("mediqa-s", measures=False), held_out_images()
    return ranking_over_seeds({seed: ranking_check(assessor, images, seed) for seed in (0, 1)})


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """What a new user does: export the samples, degrade three of them, assess all six."""
    folder = tmp_path_factory.mktemp("new_user")
    exported = run_medq("samples", "--export", folder)
    assert exported.returncode == 0, exported.stderr
    pairs = {"ct_small.dcm": "ct_low_dose", "mr_small.dcm": "mr_undersample",
             "mni_t1.nii.gz": "mr_undersample"}
    degraded = []
    for name, kind in pairs.items():
        out = folder / f"degraded_{name}"
        proc = run_medq("simulate", folder / name, "-k", kind, "--severity", "moderate",
                        "--seed", "1", "-o", out)
        assert proc.returncode == 0, proc.stderr
        degraded.append(out)
    clean = [folder / n for n in pairs]
    proc = run_medq("assess", *clean, *degraded, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_shipped_weights_are_small_and_have_cards() -> None:
    names = shipped()
    assert "mediqa-s" in names
    for name in names:
        assert (WEIGHTS_DIR / f"{name}.pt").stat().st_size <= 25 * 1024 * 1024
        card = (WEIGHTS_DIR / f"{name}.md").read_text()
        assert "seed" in card and "medq train configs/" in card
    assert "physics-derived reference score" in (WEIGHTS_DIR / "mediqa-s.md").read_text()


def test_ranking_covers_the_kinds_and_beats_chance(ranking: dict) -> None:
    """Regression floor: scores fall with severity more often than not (chance ≈ 0)."""
    assert set(ranking["per_kind"]) == {"ct_low_dose", "blur", "mr_undersample", "mr_noise",
                                        "mr_motion", "xr_quantum_noise"}
    assert ranking["mean"] >= 0.75, ranking["per_kind"]  # 0.86 / 0.85 (benchmarks/ranking.py)
    seeds = ranking["per_seed"]
    assert ranking["seeds"] == [0, 1] and ranking["mean"] == pytest.approx(
        np.mean([seeds[s]["mean"] for s in ("0", "1")]))  # every seed has every kind
    assert ranking["mean_range"] == sorted(seeds[s]["mean"] for s in ("0", "1"))
    for seed in seeds.values():
        xr = seed["pairs"]["xr_head/xr_quantum_noise"]["scores"]
        assert xr[0] > xr[-1] + 0.5  # a clean radiograph beats its severe quantum-noise version
    undersampled = [seeds[s]["pairs"]["mr_small/mr_undersample"]["scores"] for s in ("0", "1")]
    assert undersampled[0][1:] != undersampled[1][1:]  # each seed draws its own masks


@pytest.mark.xfail(reason=SHORT_OF_GOALS, strict=True)
def test_ranking_acceptance_goal(ranking: dict) -> None:
    """Acceptance: mean Spearman(severity, falling score) ≥ 0.90 over the kinds (and seeds)."""
    assert ranking["mean"] >= 0.90, ranking["per_kind"]


def test_new_user_first_run(first_run: list[dict]) -> None:
    assert [Path(r["path"]).name for r in first_run[:3]] == ["ct_small.dcm", "mr_small.dcm",
                                                             "mni_t1.nii.gz"]
    for row in first_run:
        assert 1.0 <= row["score"] <= 5.0 and row["grade"] and isinstance(row["findings"], list)
    volume, degraded_volume = first_run[2], first_run[5]
    assert volume["prompts"]["dimension"] == "3d" and len(volume["slices"]) == 7
    assert volume["score"] > degraded_volume["score"] + 0.3  # R≈2.5 undersampling of the MNI T1


def test_new_user_every_clean_sample_beats_its_degraded_version(first_run: list[dict]) -> None:
    """Acceptance: a clean sample is graded better than its moderate ct_low_dose /
    mr_undersample version (by 0.29 or more with the shipped model: the 64² MR_small, whose
    model score is inverted — 1.8 clean, 2.2 undersampled — and the evidence score carries the
    order; 0.35 with the float32-trained model before)."""
    for before, after in zip(first_run[:3], first_run[3:], strict=True):
        assert before["score"] > after["score"] + 0.25, (before["path"], before["score"],
                                                         after["score"])


@pytest.mark.xfail(reason=SHORT_OF_GOALS, strict=True)
def test_new_user_every_degraded_sample_has_a_finding(first_run: list[dict]) -> None:
    for after in first_run[3:]:
        assert after["findings"], after["path"]  # the 64² MR_small's aliasing goes unnamed


def test_series_directory_is_one_input(tmp_path: Path) -> None:
    from medq.data.samples import load_sample
    from medq.io import save

    pet = load_sample("pet_brain")
    folder = save(pet.evolve(array=pet.array[30:50]), tmp_path / "pet_series")
    proc = run_medq("assess", folder, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 1 and rows[0]["prompts"]["dimension"] == "3d"
    assert rows[0]["modality"] == "PT" and rows[0]["slices"]


def test_bfloat16_assessment_agrees_with_float32() -> None:
    """The faster bfloat16 arithmetic (`--precision auto` on CPUs that have it) moves a real
    scan's score by far less than a grade step, and the finding heads' outputs by little."""
    from medq.data.samples import load_sample
    from medq.degrade import simulate

    clean = load_sample("ct_small")
    noisy = simulate(clean, "ct_low_dose", severity="severe", seed=0)[0]
    runs = {p: Assessor("mediqa-s", precision=p).assess_many([clean, noisy])
            for p in ("float32", "bfloat16")}
    for exact, fast in zip(runs["float32"], runs["bfloat16"], strict=True):
        assert fast.score == pytest.approx(exact.score, abs=0.05)
        assert fast.model_score == pytest.approx(exact.model_score, abs=0.05)
        for kind, heads in exact.finding_scores.items():
            assert fast.finding_scores[kind]["presence"] == pytest.approx(heads["presence"],
                                                                        abs=0.03)
    assert runs["bfloat16"][0].model_score > runs["bfloat16"][1].model_score


def test_unknown_precision_is_bad_input(tmp_path: Path) -> None:
    from medq.data.samples import export_samples

    paths = export_samples(tmp_path)
    proc = run_medq("assess", paths[0], "--precision", "half")
    assert proc.returncode == 2
    assert "Invalid value for '--precision': 'half' is not one of auto, float32, bfloat16" \
        in proc.stderr  # a usage error, before the model is loaded


def test_a_batch_of_volumes_holds_only_their_salient_planes() -> None:
    """Loaded volumes keep their salient planes only (a chunk of CT series would otherwise hold
    whole volumes); the assessment still reports the full shape, the salient slice indices and
    the score of the volume assessed on its own."""
    from medq.assess.loading import load_measured
    from medq.assess.slices import input_indices
    from medq.data.samples import load_sample

    volume = load_sample("mni_t1")
    indices = input_indices(volume)
    loaded = load_measured(volume, None, measures=False)
    assert loaded.image.shape == (len(indices), *volume.shape[1:])
    assert loaded.shape == volume.shape and loaded.indices == indices
    assessor = Assessor("mediqa-s", measures=False)
    alone = assessor.assess(volume)
    for result in assessor.assess_many([volume, volume]):  # two inputs: the worker pool
        assert result.shape == list(volume.shape)
        assert [s["index"] for s in result.slices] == indices
        assert result.score == pytest.approx(alone.score, abs=0.01)


def test_a_folder_of_single_images_is_assessed_file_by_file(tmp_path: Path) -> None:
    """A folder that is not one DICOM series (here the exported samples: three DICOM files of
    three series, NIfTI volumes with JSON sidecars, a JPEG) gives one row per image file."""
    from medq.data.samples import export_samples

    export_samples(tmp_path)
    images = sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".json")
    proc = run_medq("assess", tmp_path, "--json", "--no-measures")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert sorted(Path(r["path"]).name for r in rows) == images and len(images) == 6
    assert all(1.0 <= r["score"] <= 5.0 for r in rows)


def test_a_monochrome1_radiograph_is_judged_as_its_monochrome2_twin(radiograph_twins) -> None:
    import medq
    from medq.io import load
    from medq.io.polarity import mirror_span
    from medq.report.render import display_slice
    from medq.restore.pipeline import restore

    plain, inverted = (load(p) for p in radiograph_twins)
    assessor = Assessor("mediqa-s")
    a, b = assessor.assess_many([plain, inverted])
    assert abs(a.score - b.score) < 1e-3 and a.findings == b.findings
    # the same stored values read as MONOCHROME2 (bone dark) are graded as another picture
    unshown = inverted.evolve(meta=dict(inverted.meta, photometric="MONOCHROME2"))
    assert assessor.assess(unshown).score < a.score - 0.5
    assert medq.describe(inverted).text == medq.describe(plain).text
    assert np.allclose(display_slice(inverted), plain.array, atol=1e-3)  # thumbnails
    # restored as shown, written back in the file's own polarity
    fixed_plain = restore(plain, "tv", force=True, reassess=False).image
    fixed = restore(inverted, "tv", force=True, reassess=False).image
    assert fixed.meta["photometric"] == "MONOCHROME1"
    lo, hi = mirror_span(inverted)  # the range its bits stored hold
    assert np.allclose(lo + hi - fixed.array, fixed_plain.array, atol=1e-2)
    assert not np.allclose(fixed.array, inverted.array, atol=1e-2)  # it did restore
