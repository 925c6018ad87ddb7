"""Benchmark data: continuous severities, reference scores, targets, sources and their split."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

from medq.assess.evidence import FEATURE_NAMES
from medq.data import bench
from medq.data.sources import TEST_ZONE, _zone_mask, sources
from medq.degrade import available, get_spec
from medq.errors import InvalidParameter


@pytest.mark.parametrize("kind", available())
def test_severity_value_hits_bounds_and_inverts(kind: str) -> None:
    spec = get_spec(kind)
    assert [round(spec.severity_value(b), 6) for b in spec.bounds] == [0.5, 1.5, 2.5]
    for s in (0.3, 1.0, 2.2, 3.1):
        assert spec.severity_value(spec.level_at(s)) == pytest.approx(s, abs=1e-6)
    # worse levels → larger values, matching the named severities
    values = [spec.severity_value(spec.levels[k]) for k in ("mild", "moderate", "severe")]
    assert values == sorted(values) and 0.5 <= values[0] <= 1.5 <= values[1] <= 2.5 <= values[2]


def test_reference_score_examples() -> None:
    assert bench.reference_score([]) == 5.0
    assert bench.reference_score([3.0]) == 1.0
    assert bench.reference_score([3.4]) == 1.0  # clipped at severe
    assert bench.reference_score([1.5]) == pytest.approx(3.0)
    assert bench.reference_score([1.5, 1.5]) == pytest.approx(2.0)  # 1 + 4·0.5·0.5


def test_targets_from_records() -> None:
    spec = get_spec("ct_low_dose")
    recs = [{"name": "ct_low_dose", "level": spec.levels["moderate"]},
            {"name": "blur", "level": get_spec("blur").levels["mild"]}]
    t = bench.targets(recs)
    s1 = spec.severity_value(spec.levels["moderate"])
    s2 = get_spec("blur").severity_value(get_spec("blur").levels["mild"])
    assert t["score"] == pytest.approx(bench.reference_score([s1, s2]))
    assert t["physics"][bench.KINDS.index("ct_low_dose")] == pytest.approx(s1 / 3)
    assert np.count_nonzero(t["physics"]) == 2
    from medq.assess.models.blocks import FINDING_TYPES

    assert t["severity"][FINDING_TYPES.index("noise")] == 2  # moderate
    assert t["severity"][FINDING_TYPES.index("blur")] == 1  # mild


def test_sources_split_is_disjoint() -> None:
    train = {s.name for s in sources("train")}
    test = {s.name for s in sources("test")}
    assert train and test and not train & test
    for nz in (91, 189, 193):
        assert not (_zone_mask(nz, "train") & _zone_mask(nz, "test")).any()
        assert (_zone_mask(nz, "train") | _zone_mask(nz, "test")).all()
        frac = _zone_mask(nz, "test").mean()
        assert frac == pytest.approx(TEST_ZONE[1] - TEST_ZONE[0], abs=0.02)
    # every modality subset has held-out real or derived test images
    assert {s.modality for s in sources("test")} >= {"CT", "MR", "PT", "DX", "OP"}


def test_make_item_is_deterministic_and_labelled() -> None:
    plan = bench.BenchPlan(size=32)
    src = next(s for s in sources("test") if s.name == "ct_small")
    a = bench.make_item(src, "2d", 7, plan)
    b = bench.make_item(src, "2d", 7, plan)
    assert np.array_equal(a["x"], b["x"]) and a["records"] == b["records"]
    assert a["x"].shape == (1, 3, 32, 32) and a["x"].dtype == np.float16
    assert float(a["x"].min()) >= 0.0 and float(a["x"].max()) <= 1.0
    assert a["score"] == pytest.approx(bench.targets(a["records"])["score"])


def test_evidence_size_of_a_plan_sets_the_items_views_and_its_own_key() -> None:
    from medq.assess.evidence import EVIDENCE_SIZE, evidence_rows
    from medq.data.items import degraded_item

    src = next(s for s in sources("test") if s.name == "ct_693")  # 512²: both views shrink it
    small = bench.BenchPlan(size=32, evidence_size=128)
    item = bench.make_item(src, "2d", 7, small)
    image, _ = degraded_item(src, "2d", 7, small.clean_fraction, small.pair_fraction)
    assert np.array_equal(item["m"], evidence_rows(image, None, 128))
    assert not np.array_equal(item["m"], evidence_rows(image, None, EVIDENCE_SIZE))
    assert np.array_equal(bench.make_item(src, "2d", 7, bench.BenchPlan(size=32))["m"],
                          evidence_rows(image, None, EVIDENCE_SIZE))
    assert bench.BenchPlan().key() == bench.BenchPlan(evidence_size=EVIDENCE_SIZE).key() != \
        bench.BenchPlan(evidence_size=128).key()


def test_evidence_extras_of_a_plan_append_efc_to_every_row_under_their_own_key() -> None:
    """A plan's `evidence_extras` append the view's EFC after the features (the leading columns
    as without them, so the detectors read them unchanged), key their own cache, keep the
    plans without them at their keys, and come back as a tuple from a JSON list."""
    from medq.assess.detector import read_evidence
    from medq.assess.evidence import EVIDENCE_SIZE, read_plane, view_features
    from medq.assess.filters import shrink
    from medq.assess.iqms import efc
    from medq.data.items import degraded_item

    src = next(s for s in sources("test") if s.name == "ct_693")  # a 512² CT: its view shrinks
    plan = bench.BenchPlan(size=32, evidence_extras=["efc"])
    assert plan.evidence_extras == ("efc",)
    item = bench.make_item(src, "2d", 7, plan)
    plain = bench.make_item(src, "2d", 7, bench.BenchPlan(size=32))
    assert item["m"].shape == (1, len(FEATURE_NAMES) + 1)
    assert np.array_equal(item["m"][:, :len(FEATURE_NAMES)], plain["m"])
    image, _ = degraded_item(src, "2d", 7, plan.clean_fraction, plan.pair_fraction)
    view = read_plane(shrink(image.array.astype(np.float64), EVIDENCE_SIZE), "CT")
    assert item["m"][0, -1] == pytest.approx(efc(view, None, 1024.0), rel=1e-6)
    assert 0.0 < item["m"][0, -1] < 1.0
    assert np.array_equal(view_features(item["m"]), view_features(plain["m"]))
    assert read_evidence(item["m"], "CT").score == read_evidence(plain["m"], "CT").score
    assert bench.BenchPlan().key() == bench.BenchPlan(evidence_extras=()).key() != \
        bench.BenchPlan(evidence_extras=("efc",)).key()
    with pytest.raises(ValueError, match="unknown evidence row extras"):
        bench.make_item(src, "2d", 7, bench.BenchPlan(size=32, evidence_extras=("snr",)))


def test_volume_item_uses_salient_slices() -> None:
    plan = bench.BenchPlan(size=32)
    src = next(s for s in sources("train", "3d") if s.modality == "PT")
    item = bench.make_item(src, "3d", 3, plan)
    assert 1 <= item["x"].shape[0] <= 7 and item["slices"] == sorted(item["slices"])
    # one evidence row per stored slice, each from its own slice
    assert item["m"].shape == (item["x"].shape[0], len(FEATURE_NAMES))
    assert np.isfinite(item["m"]).all() and len(np.unique(item["m"][:, 0])) > 1


def test_realism_noise_is_part_of_the_clean_image() -> None:
    """Training items get sub-threshold acquisition noise that does not lower the score."""
    plan = bench.BenchPlan(size=32, clean_fraction=1.0)
    src = next(s for s in sources("train", "2d") if s.modality == "MR")
    plain = bench.make_item(src, "2d", 11, plan)
    real = bench.make_item(src, "2d", 11, plan, realism=True)
    assert plain["records"] == real["records"] == [] and real["score"] == plain["score"] == 5.0
    noise = FEATURE_NAMES.index("noise_hh")
    assert real["m"][0, noise] > plain["m"][0, noise] + 0.2  # log σ/contrast: noisier


def test_noisy_base_counts_its_noise_and_lets_the_drawn_degradations_act_on_it() -> None:
    """A noisy base: the modality's noise first, recorded (so the reference counts it), then
    the drawn degradations; never a second noise; the test split and plans without it keep
    their items and keys."""
    from medq.data.items import NOISY_BASE_RANGE, degraded_item

    src = next(s for s in sources("train", "2d") if s.modality == "MR")
    lower = []
    for seed in range(6):
        image, records = degraded_item(src, "2d", seed, clean_fraction=0.0, pair_fraction=1.0,
                                       realism=True, noisy_base=1.0)
        counted = [r for r in records if not r.get("baseline")]
        assert counted[0]["name"] == "mr_noise"
        assert NOISY_BASE_RANGE[0] <= get_spec("mr_noise").severity_value(
            counted[0]["level"]) <= NOISY_BASE_RANGE[1] + 1e-6
        assert [r["name"] for r in records].count("mr_noise") == 1  # no baseline noise too
        assert 2 <= len(counted) <= 3
        with_noise, without = (bench.targets(r)["score"] for r in (counted, counted[1:]))
        assert with_noise <= without
        lower.append(with_noise < without)
    assert sum(lower) >= 3  # the base's noise lowers the reference (unless it is already 1)
    plain = degraded_item(src, "2d", 3, realism=True)
    zero = degraded_item(src, "2d", 3, realism=True, noisy_base=0.0)
    assert np.array_equal(plain[0].array, zero[0].array) and plain[1] == zero[1]
    assert bench.BenchPlan().key() == bench.BenchPlan(noisy_base=0.0).key() != bench.BenchPlan(
        noisy_base=0.35).key()
    test_src = next(s for s in sources("test") if s.name == "mr_small")  # no realism: as before
    plan = bench.BenchPlan(size=32, noisy_base=1.0)
    assert bench.make_item(test_src, "2d", 5, plan)["records"] == bench.make_item(
        test_src, "2d", 5, bench.BenchPlan(size=32))["records"]


def test_build_is_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MEDQ_CACHE_DIR", str(tmp_path))
    plan = bench.BenchPlan(size=32, train_2d=6, train_3d=2, test_2d_per_source=1,
                           test_3d_per_source=1)
    first = bench.build(plan, "train", workers=1, progress=False)
    files = list(tmp_path.rglob("train.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime
    second = bench.build(plan, "train", workers=1, progress=False)
    assert files[0].stat().st_mtime == mtime
    assert np.array_equal(first["x"], second["x"]) and len(first["score"]) == 8
    assert first["n_valid"].sum() == len(first["x"])


def test_evidence_rows_use_a_view_of_at_most_256_pixels() -> None:
    from medq.assess.evidence import EVIDENCE_SIZE, evidence_rows, feature_vector
    from medq.assess.filters import shrink
    from medq.image import MedImage

    rng = np.random.default_rng(0)
    ramp = np.linspace(100.0, 1000.0, 384)[None, :].repeat(512, 0)  # contrast set by structure
    big = (ramp + rng.normal(0.0, 10.0, (512, 384))).astype(np.float32)
    assert shrink(big, EVIDENCE_SIZE).shape == (EVIDENCE_SIZE, 192)
    small = big[:100, :80]
    assert shrink(small, EVIDENCE_SIZE) is small
    image = MedImage(big, (0.5, 0.5), "MR", "brain")
    rows = evidence_rows(image)
    assert rows.shape == (1, len(FEATURE_NAMES))
    noise = FEATURE_NAMES.index("noise_hh")
    # shrinking 2× with antialiasing averages white noise over ≥ 2×2 pixels: σ falls 2–4×
    drop = feature_vector(image)[noise] - rows[0, noise]
    assert np.log(2.0) - 0.1 < drop < np.log(4.0)
    # context keeps the native matrix size
    assert rows[0, FEATURE_NAMES.index("log_matrix")] == pytest.approx(np.log(384.0))


def test_body_mr_source_gives_varied_mr_body_slices() -> None:
    """MR-like body phantoms: an MR training source whose anatomy fills a body, not a brain."""
    src = next(s for s in sources("train", "2d") if s.name == "body_mr")
    images = [src.draw(np.random.default_rng(seed), "2d") for seed in range(4)]
    for image in images:
        a = image.array
        assert image.modality == "MR" and a.ndim == 2 and 48 <= max(a.shape) <= 512
        assert a.min() >= 0 and (a < 0.02 * a.max()).mean() > 0.05  # air around the body
        assert 0.5 <= image.spacing[0] <= 8.0
    assert len({img.shape for img in images}) > 1  # matrix size varies
    body = [np.median(img.array[img.array > 0.05 * img.array.max()]) / img.array.max()
            for img in images]
    assert np.ptp(body) > 0.05  # tissue contrast varies


def test_training_ct_reaches_clinical_matrices_and_test_slices_keep_their_sizes() -> None:
    """Training CT reaches the 512² matrix (and sub-millimetre pixels) of clinical scans; the
    held-out MNI test slices keep the 128–320 px they were always drawn at."""
    train = {s.name: s for s in sources("train", "2d")}
    body = [train["body_ct"].draw(np.random.default_rng(seed), "2d") for seed in range(24)]
    assert max(max(img.shape) for img in body) == 512
    assert min(img.spacing[0] for img in body) < 0.8
    head = [train["mni_ct_train"].draw(np.random.default_rng(seed), "2d") for seed in range(24)]
    assert max(max(img.shape) for img in head) > 384
    test = next(s for s in sources("test", "2d") if s.name == "mni_ct_test")
    sizes = [max(test.draw(np.random.default_rng(seed), "2d").shape) for seed in range(12)]
    assert min(sizes) >= 128 and max(sizes) <= 320


def test_mr_realism_adds_a_faint_field_psf_and_noise_below_mild() -> None:
    from medq.data.items import degraded_item

    src = next(s for s in sources("train", "2d") if s.name == "body_mr")
    image, records = degraded_item(src, "2d", 5, clean_fraction=1.0, realism=True)
    assert [r["name"] for r in records] == ["mr_bias_field", "blur", "mr_noise"]
    assert all(r["baseline"] and get_spec(r["name"]).severity(r["level"]) == "none"
               for r in records)
    plain, none = degraded_item(src, "2d", 5, clean_fraction=1.0)
    assert none == [] and not np.array_equal(plain.array, image.array)


def test_zoomed_fields_of_view_are_off_centre_small_and_keep_physical_size() -> None:
    from medq.data.items import SMALL_MATRIX, ZOOM, zoomed

    src = next(s for s in sources("train", "2d") if s.name == "body_mr")
    centres, small = [], 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        image = src.draw(rng, "2d")
        crop = zoomed(image, rng)
        extent = np.multiply(crop.shape, crop.spacing) / np.multiply(image.shape, image.spacing)
        # the crop covers 25–75 % of each side (32 px at least), whatever matrix it is stored at
        assert np.all(extent <= ZOOM[1][1] + 0.02), (seed, extent)
        assert np.all((extent >= ZOOM[1][0] - 0.02) | (np.multiply(crop.shape, crop.spacing)
                                                        <= 32 * np.asarray(image.spacing) + 1e-6))
        if crop.spacing != image.spacing:  # stored at a smaller matrix: coarser pixels
            assert max(crop.shape) <= SMALL_MATRIX[1][1] and crop.spacing[0] > image.spacing[0]
            small += 1
        if crop.spacing == image.spacing:  # a native crop: where it is in the image
            at = _located(image.array, crop.array)
            if at is not None:
                centres.append((at + np.asarray(crop.shape) / 2) / image.shape)
    assert small >= 5  # some crops are stored at a small matrix, like a 64² MR
    assert len(centres) >= 10, len(centres)
    assert np.ptp(np.asarray(centres), axis=0).min() > 0.2  # not always the image centre


def _located(image: np.ndarray, patch: np.ndarray) -> np.ndarray | None:
    """The one top-left corner at which `patch` is a window of `image` (None: none or many)."""
    h, w = patch.shape
    hits = [(i, j) for i, j in np.argwhere(image[:image.shape[0] - h + 1, :image.shape[1] - w + 1]
                                           == patch[0, 0])
            if np.array_equal(image[i:i + h, j:j + w], patch)]
    return np.asarray(hits[0]) if len(hits) == 1 else None


def test_central_zoom_profile_crops_the_middle_at_the_source_matrix() -> None:
    from medq.data.items import CENTRAL_ZOOM, degraded_item, zoomed
    from medq.describe.calibration_data import data_path

    src = next(s for s in sources("train", "2d") if s.name == "body_mr")
    for seed in range(6):
        rng = np.random.default_rng(seed)
        image = src.draw(rng, "2d")
        crop = zoomed(image, rng, "central")
        h, w = image.shape
        ch, cw = crop.shape
        assert crop.spacing == image.spacing  # kept at the source's pixel size
        assert CENTRAL_ZOOM[1][0] - 0.02 <= ch / h <= CENTRAL_ZOOM[1][1] + 0.02
        y0, x0 = (h - ch) // 2, (w - cw) // 2  # exactly the middle of the image
        assert np.array_equal(crop.array, image.array[y0:y0 + ch, x0:x0 + cw])
    with pytest.raises(InvalidParameter, match="zoom must be one of"):
        degraded_item(src, "2d", 0, realism=True, zoom="edge")
    # the default profile keeps the cache key it always had; another profile gets its own
    assert data_path(10, 0) == data_path(10, 0, zoom="anywhere") != data_path(10, 0, zoom="central")


WORKERS_AFTER_TORCH = """
import torch
from medq.data.cache import map_jobs

def work(i):
    x = torch.rand(1, 1, 512, 512)  # output above torch's grain size: a parallel operation
    return float(torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear").mean())

torch.set_num_threads(2)
torch.nn.functional.interpolate(torch.rand(4, 1, 1024, 1024), size=(224, 224), mode="bilinear")
print(len(map_jobs(work, list(range(6)), workers=2, progress=False, label="x", chunksize=1)))
"""


def test_worker_pool_runs_torch_after_the_parent_used_its_thread_pool() -> None:
    """Forked workers of a parent whose torch thread pool ran once used to wait forever on
    their first parallel torch operation (a fresh `medq bench iqa` hung building its items)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", WORKERS_AFTER_TORCH], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6"]


def test_full_plane_vector_appends_the_extras_asked_for() -> None:
    from medq.assess.artifacts import spike_contrast
    from medq.assess.detector import Detector
    from medq.assess.evidence import (
        DETECTOR_EXTRAS,
        evidence_rows,
        feature_names,
        feature_vector,
        read_plane,
    )
    from medq.assess.inu import inu_range
    from medq.assess.masks import body_and_anatomy
    from medq.image import MedImage

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :96]
    plane = (500.0 + 200.0 * np.exp(-((yy - 48) ** 2 + (xx - 44) ** 2) / 800.0)
             + rng.normal(0.0, 5.0, (96, 96)) + 30.0 * np.cos(2 * np.pi * (17 * yy + 9 * xx) / 96))
    mr = MedImage(plane.astype(np.float32), (1.0, 1.0), "MR", "brain")
    plain, full = feature_vector(mr), feature_vector(mr, extras=("spike_contrast",))
    assert plain.shape == (len(FEATURE_NAMES),) and full.shape == (len(FEATURE_NAMES) + 1,)
    # a 96² plane is its own ≤256-px view: the evidence part is the model's row exactly
    assert np.array_equal(plain, evidence_rows(mr)[0]) and np.array_equal(full[:-1], plain)
    assert full[-1] == pytest.approx(spike_contrast(read_plane(plane, "MR")), rel=1e-5)
    assert full[-1] > 8.0  # the cosine is one k-space sample
    ct = MedImage(plane.astype(np.float32) - 1000.0, (1.0, 1.0), "CT", "head")
    assert feature_vector(ct, extras=DETECTOR_EXTRAS)[-1] == 0.0  # an MR artefact only
    assert feature_names(len(full)) == FEATURE_NAMES + ("spike_contrast",)
    with pytest.raises(ValueError, match="evidence features"):
        feature_names(3)
    with pytest.raises(ValueError, match="unknown detector extras"):
        feature_vector(mr, extras=("sharpness2",))
    # a calibration reads the extras its feature list names, the shipped one none
    assert Detector({"types": [], "mean": [], "std": [], "nets": [], "thresholds": {},
                     "features": [*FEATURE_NAMES, "spike_contrast"]}).extras == ("spike_contrast",)
    # the N4 bias-field spread inside the body, after the spike contrast whatever the order asked
    both = feature_vector(mr, extras=("inu_range", "spike_contrast"))
    body = body_and_anatomy(read_plane(plane, "MR"), "MR")[0]
    assert both[-2] == full[-1]
    assert both[-1] == pytest.approx(inu_range(read_plane(plane, "MR"), body), rel=1e-5)
    from medq.assess.detector import load_detector

    assert load_detector().extras == ()


def test_mr_realism_states_some_images_at_fine_pixels_at_any_matrix() -> None:
    from medq.data.items import FINE_PIXELS, degraded_item, maybe_fine_pixels

    low = FINE_PIXELS[1][0]
    src = next(s for s in sources("train", "2d") if s.name == "body_mr")
    pixels = []
    for seed in range(60):
        image, _ = degraded_item(src, "2d", seed, clean_fraction=1.0, realism=True,
                                 fine_pixels=0.3)
        pixels.append((float(np.sqrt(image.spacing[0] * image.spacing[1])), max(image.shape)))
    # fine pixels come at small matrices too (a 64² small-part MR at 0.3 mm); the source and the
    # zoom alone never go below 0.75 · 300 mm / 512 px, 0.44 mm
    fine = [(p, n) for p, n in pixels if p < 0.4]
    assert any(n < 160 for _, n in fine), pixels
    assert all(p >= low - 1e-6 for p, _ in fine) and 3 <= len(fine) <= 25
    plain = [degraded_item(src, "2d", seed, realism=True)[0].spacing for seed in range(30)]
    assert min(float(np.sqrt(np.prod(spacing))) for spacing in plain) >= 0.43
    # only the stated geometry changes, and only for MR; a CT image, or the default chance of
    # 0, leaves the rng untouched, so the default benchmark keeps its items and its cache key
    rng = np.random.default_rng(1)
    image = src.draw(rng, "2d")
    restated = next(out for seed in range(20) if (
        out := maybe_fine_pixels(image, np.random.default_rng(seed), 0.3)) is not image)
    assert restated.array is image.array and restated.spacing[0] / restated.spacing[1] == \
        pytest.approx(image.spacing[0] / image.spacing[1])
    ct = next(s for s in sources("train", "2d") if s.name == "body_ct").draw(rng, "2d")
    for case, chance in ((ct, 0.3), (image, 0.0)):
        rng_case = np.random.default_rng(3)
        assert maybe_fine_pixels(case, rng_case, chance) is case
        assert rng_case.random() == np.random.default_rng(3).random()
    plan = bench.BenchPlan()
    assert plan.key() == bench.BenchPlan(fine_pixels=0.0).key() != \
        bench.BenchPlan(fine_pixels=0.3).key()


def _double(x: int) -> int:
    return 2 * x


def test_a_build_logs_its_progress_where_stderr_is_no_terminal(capsys) -> None:
    """A bar shows nothing in a log file (nohup, a scheduler's job): a build there says how far
    it is in plain lines, one per tenth done."""
    from medq.data.cache import map_jobs

    assert map_jobs(_double, list(range(25)), 1, True, "test items") == [2 * i for i in range(25)]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[0].startswith("test items: 3/25 (")
    assert lines[-1].startswith("test items: 25/25 (")
    assert map_jobs(_double, [1, 2], 1, False, "quiet") == [2, 4]
    assert capsys.readouterr().err == ""


def test_threads_follow_omp_num_threads_when_the_environment_sets_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's OMP_NUM_THREADS=1 was raised to one thread per core by medq.assess."""
    import torch

    from medq.workers import set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads() == 1
        assert set_threads(2) == 2  # an explicit count still wins
        monkeypatch.setenv("OMP_NUM_THREADS", "lots")
        assert set_threads() == len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(before)



BUILD_SCRIPT = """
import sys, time
from pathlib import Path
from medq.data.cache import map_jobs

def job(k):
    time.sleep(0.5)
    (Path(sys.argv[1]) / f"done-{k}").touch()
    return k

print("started", flush=True)
map_jobs(job, list(range(400)), workers=2, progress=False, label="build", chunksize=1)
"""


def test_two_ctrl_c_during_a_build_stop_it_and_its_workers(tmp_path: Path) -> None:
    """A second Ctrl-C while a cached build ran left `medq train` waiting forever on its
    workers (and they ran on after it was killed); the pool now drops its queued jobs and
    kills its workers as soon as the build is interrupted."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "build.py").write_text(BUILD_SCRIPT)
    proc = subprocess.Popen([sys.executable, "build.py", str(tmp_path)], cwd=tmp_path,
                            start_new_session=True, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().strip() == "started"
    time.sleep(3)  # workers busy, most jobs still queued
    for _ in range(2):  # Ctrl-C twice at the terminal: the whole process group
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.3)
    try:
        proc.wait(timeout=60)  # a guard against the hang, not a speed target
        done = len(list(tmp_path.glob("done-*")))
        time.sleep(1.5)  # a worker left running would go on marking jobs done
        assert len(list(tmp_path.glob("done-*"))) == done < 400
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
