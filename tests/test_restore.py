"""Restoration building blocks on real images: normalisation, conditioning, network, classical
methods, engine pairs, and the gated pipeline with the shipped network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medq.data.samples import load_sample
from medq.degrade import simulate
from medq.metrics.fidelity import nrmse, psnr
from medq.restore import condition
from medq.restore.models import build_model
from medq.restore.normalise import network_input, scale_for


@pytest.mark.parametrize("name", ["ct_small", "mr_small", "pet_brain", "xr_head"])
def test_normalisation_is_exactly_invertible(name: str) -> None:
    image = load_sample(name)
    scale = scale_for(image.array, image.modality)
    back = scale.inverse(scale.forward(image.array))
    assert np.allclose(back, image.array, rtol=1e-5, atol=1e-3 * float(np.ptp(image.array)))
    norm = network_input(scale.forward(image.array))
    assert norm.min() >= -0.5 and norm.max() <= 4.0
    if image.modality == "CT":  # fixed HU map: water 1, air 0
        assert scale.forward(np.array([0.0, -1000.0])).tolist() == [1.0, 0.0]


def test_conditioning_from_engine_records_and_findings() -> None:
    ct = load_sample("ct_small")
    noisy, record = simulate(ct, "ct_low_dose", severity="severe", seed=0)
    presence, severity = condition.truth(noisy.meta["degradations"])
    i = condition.FINDING_TYPES.index("noise")
    assert presence[i] == 1.0 and presence.sum() == 1.0
    assert 0.8 < severity[i] <= 1.0  # severe ≈ 2.5–3 of 3
    vec = condition.vector(presence, severity, "CT")
    assert vec.shape == (condition.COND_DIM,)
    assert vec[2 * condition.N_FINDINGS] == 1.0  # description given
    assert vec[2 * condition.N_FINDINGS + 1 + condition.MODALITY_GROUPS.index("CT")] == 1.0
    blind = condition.vector(None, None, "DX")
    assert blind[:2 * condition.N_FINDINGS + 1].sum() == 0
    assert blind[2 * condition.N_FINDINGS + 1 + condition.MODALITY_GROUPS.index("XR")] == 1.0
    p, s = condition.from_findings([{"type": "blur", "severity": "moderate", "confidence": 0.8,
                                     "evidence": {"expected_severity": 2.1}}])
    j = condition.FINDING_TYPES.index("blur")
    assert p[j] == pytest.approx(0.8) and s[j] == pytest.approx(0.7)
    rng = np.random.default_rng(0)
    corrupted = np.stack([condition.perturb(vec, rng) for _ in range(200)])
    dropped = corrupted[:, 2 * condition.N_FINDINGS] == 0
    assert 0.15 < dropped.mean() < 0.45  # the description is sometimes withheld
    assert (corrupted[:, :2 * condition.N_FINDINGS] >= 0).all()
    assert (corrupted[:, :2 * condition.N_FINDINGS] <= 1).all()
    modality = corrupted[:, 2 * condition.N_FINDINGS + 1:]
    hidden = modality[:, -1] == 1.0  # modality withheld as "other" now and then
    assert 0.02 < hidden.mean() < 0.35
    assert np.allclose(modality[~hidden], vec[2 * condition.N_FINDINGS + 1:])


@pytest.mark.parametrize("shape", [(1, 1, 37, 53), (2, 1, 64, 64), (1, 1, 128, 91)])
def test_network_is_fully_convolutional_and_starts_as_identity(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = build_model("restore-unet-tiny").eval()
    x = torch.rand(shape)
    with torch.no_grad():
        out = net(x, torch.zeros(shape[0], condition.COND_DIM))
    assert out["image"].shape == x.shape
    assert torch.equal(out["image"], x)  # zero-initialised residual: identity before training
    assert out["prior_logits"].shape == (shape[0], condition.N_FINDINGS)
    plain = build_model("restore-unet-tiny", conditioning=False)
    assert "prior_logits" not in plain(x)


@pytest.mark.parametrize("method", ["bm3d", "nlm", "tv"])
def test_classical_methods_denoise_a_real_mr_slice(method: str) -> None:
    from medq.restore.apply import apply_planes
    from medq.restore.classical import classical_plane

    mr = load_sample("mni_t1")
    plane = mr.evolve(array=np.ascontiguousarray(mr.array[mr.shape[0] // 2]),
                      spacing=mr.spacing[1:])
    noisy, _ = simulate(plane, "mr_noise", severity="moderate", seed=1)
    out = apply_planes(noisy, lambda ps: [classical_plane(method, p) for p in ps])
    assert out.shape == plane.shape
    assert psnr(out, plane.array) > psnr(noisy.array, plane.array) + 1.5


def test_noise_estimate_of_an_empty_slice_is_the_floor() -> None:
    """The MNI T1's slices above the head hold no detail: the blind σ estimate is its floor,
    not nan (which NumPy warned about on the user's terminal), and NLM returns such a slice as
    it is."""
    import warnings

    from medq.restore.classical import SIGMA_FLOOR, estimate_sigma, nlm_plane

    mr = load_sample("mni_t1")
    empty = next(p for p in mr.array if not np.any(p))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert estimate_sigma(empty) == SIGMA_FLOOR
        assert np.array_equal(nlm_plane(empty), empty)
    assert estimate_sigma(mr.array[mr.shape[0] // 2]) > SIGMA_FLOOR


def test_the_blind_noise_estimate_reads_most_of_cts_coarse_grained_noise() -> None:
    """Low-dose CT noise after filtered back-projection is coarser than a pixel: the wavelet
    estimate alone read under a fifth of its std (blind BM3D then left the image as it was);
    the estimate reads over half of it, and white noise as it is."""
    from skimage.restoration import estimate_sigma as wavelet_sigma

    from medq.degrade import simulate
    from medq.restore.classical import estimate_sigma

    y, x = np.indices((256, 256))
    water = np.where((y - 128) ** 2 + (x - 128) ** 2 < 110 ** 2, 0.0, -1000.0).astype(np.float32)
    noisy, _ = simulate(water, "ct_low_dose", level=1.5e4, modality="CT", spacing=(0.7, 0.7),
                        seed=1)
    inside = (y - 128) ** 2 + (x - 128) ** 2 < 80 ** 2
    truth = float((noisy.array - water)[inside].std())
    assert wavelet_sigma(noisy.array.astype(float)) < 0.2 * truth
    assert 0.5 * truth < estimate_sigma(noisy.array) < 1.1 * truth
    white = np.random.default_rng(0).normal(0.0, 0.05, (128, 128))
    assert estimate_sigma(white) == pytest.approx(0.05, rel=0.05)


def test_pairs_are_deterministic_and_come_from_the_split() -> None:
    from medq.data.pairs import PairPlan, make_pair
    from medq.data.sources import sources

    plan = PairPlan(split="test", tasks=("mr_noise",), max_side=128)
    a, b = make_pair("mr_noise", 7, plan), make_pair("mr_noise", 7, plan)
    assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"])
    assert a["source"] in {s.name for s in sources("test")}
    assert a["records"][0]["name"] == "mr_noise"
    assert not np.array_equal(a["x"], a["y"])
    assert max(a["x"].shape) <= 128 and all(n % 8 == 0 for n in a["x"].shape)
    clean = make_pair("clean", 3, PairPlan(split="train", max_side=128))
    assert np.array_equal(clean["x"], clean["y"]) and not clean["records"]
    assert clean["source"] in {s.name for s in sources("train")}
    fixed = make_pair("blur", 5, plan, severity=2.0)
    from medq.degrade import get_spec

    assert get_spec("blur").severity_value(fixed["level"]) == pytest.approx(2.0, abs=1e-6)


def test_unknown_method_and_missing_weights_are_clear_errors() -> None:
    from medq.errors import InvalidParameter
    from medq.restore.models import load_restorer
    from medq.restore.pipeline import restore

    with pytest.raises(InvalidParameter, match="choose from auto, net, bm3d, nlm, tv"):
        restore(load_sample("ct_small"), "median")
    named = restore(load_sample("mr_small"), "BM3D", reassess=False, force=True)  # as the docs
    assert named.method == "bm3d" and named.changed  # write it
    with pytest.raises(InvalidParameter, match="no restoration network weights called"):
        load_restorer("no-such-restorer")
    with pytest.raises(InvalidParameter, match="a shipped quality model, not a restoration"):
        load_restorer("mediqa-s")
    with pytest.raises(InvalidParameter, match="mediqa-s.pt: a quality model, not a restoration"):
        load_restorer(Path(__file__).parents[1] / "src" / "medq" / "weights" / "mediqa-s.pt")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ct_small", "mr_small", "mni_t1", "retina", "pet_brain",
                                  "xr_head"])
def test_quality_gate_leaves_every_bundled_sample_nearly_unchanged(name: str) -> None:
    """CT_small, whose own quantum mottle the description reports as moderate noise, opens the
    gate; the network's restoration took out far more than that noise and is returned as it
    was (`checks.removed_share`), so it too stays unchanged."""
    from medq.restore.pipeline import restore

    image = load_sample(name)
    result = restore(image, "auto", reassess=False)
    change = nrmse(result.image.array, image.array)
    assert change < 0.005, (name, change, result.note)
    assert result.image.shape == image.shape
    if not result.changed:
        assert np.array_equal(result.image.array, image.array)
        assert "unchanged" in result.note


def test_gate_keeps_mild_detail_findings_alone_from_restoration() -> None:
    from types import SimpleNamespace

    from medq.describe.schema import Finding
    from medq.restore.gate import mild_detail_only, to_repair

    def report(*found: tuple[str, str]) -> SimpleNamespace:
        return SimpleNamespace(findings=[Finding(t, s, 0.9) for t, s in found])

    assert to_repair(report(("low_resolution", "mild"))) == []
    assert to_repair(report(("blur", "mild"), ("motion", "mild"))) == []
    assert to_repair(report(("low_resolution", "moderate"))) == ["low_resolution"]
    assert to_repair(report(("blur", "mild"), ("noise", "mild"))) == ["blur", "noise"]
    assert to_repair(report(("streak", "mild"))) == ["streak"]
    assert to_repair(report(("low_contrast", "moderate"), ("blur", "mild"))) == []
    assert not mild_detail_only(report()) and not mild_detail_only(report(("noise", "mild")))


@pytest.mark.slow
def test_clean_real_head_ct_described_mildly_soft_is_returned_unchanged() -> None:
    from medq.data.sources import sources
    from medq.restore.pipeline import restore

    head = next(s for s in sources("test") if s.name == "ct_head_j2k")
    image = head.draw(np.random.default_rng(0), "2d")
    result = restore(image, "auto", reassess=False)
    assert not result.changed and np.array_equal(result.image.array, image.array)
    assert result.note.startswith("Only mild"), result.note
    forced = restore(image, "auto", reassess=False, force=True)
    assert forced.changed and not forced.findings_addressed  # --force still restores
    assert "(forced: the description found mild" in forced.note, forced.note
    assert "the gate leaves mild detail findings alone)" in forced.note
    rescored = forced.rescored(4.2)  # as `medq restore` scores the file it wrote
    assert rescored.after == 4.2 and "to 4.20" in rescored.note and "(forced:" in rescored.note


def test_a_ct_result_goes_no_lower_than_air_where_its_input_did_not() -> None:
    from medq.io.polarity import CT_FLOOR_HU, physical_floor

    ct = load_sample("ct_small")
    low = float(ct.array.min())
    undershot = physical_floor(ct.array - 200.0, ct)  # its lowest air, −896 HU, to −1096
    assert low > CT_FLOOR_HU and undershot.min() == CT_FLOOR_HU
    padded = ct.with_array(np.where(np.arange(128)[None] < 4, -3024.0, ct.array))
    assert physical_floor(padded.array - 200.0, padded).min() == -3024.0  # its padding's floor
    mr = load_sample("mr_small")
    assert physical_floor(mr.array - 1000.0, mr).min() == 0.0  # a magnitude stays ≥ 0


def test_a_medimage_with_nan_pixels_is_restored_as_its_array_is() -> None:
    """NaN pixels of a MedImage handed to the Python API stay where they were and spread
    nowhere: the network's and BM3D's outputs are NaN at those pixels only, as for the array."""
    import medq

    noisy, _ = simulate(load_sample("ct_small"), "ct_low_dose", 2.5, seed=0)
    holed = noisy.array.copy()
    holed[10:20, 10:20] = np.nan
    image = noisy.evolve(array=holed)
    assert medq.assess(image).nonfinite_fraction == pytest.approx(100 / holed.size)
    for method in ("net", "bm3d"):
        result = medq.restore(image, method=method, reassess=False)
        assert result.changed
        assert np.array_equal(np.isnan(result.array), np.isnan(holed)), method
    as_array = medq.restore(holed, method="net", modality="CT", reassess=False)
    assert np.array_equal(np.isnan(as_array.array), np.isnan(holed))
    from medq.restore.pipeline import restore

    direct = restore(image, "tv", reassess=False)  # the pipeline called as it is
    assert direct.changed and np.array_equal(np.isnan(direct.image.array), np.isnan(holed))


def test_restore_reports_each_plane_of_a_volume_as_it_is_done() -> None:
    """`progress(done, total)` counts a volume's planes up to all of them: one at a time on a
    classical method (BM3D takes seconds a plane), a batch of four at a time on the network
    (BM3D's slices where `auto` takes it: `test_restore_sure`)."""
    from medq.restore.pipeline import restore

    t1 = load_sample("mni_t1")
    small = t1.evolve(array=np.ascontiguousarray(t1.array[84:90, ::3, ::3]),
                      spacing=(1.0, 3.0, 3.0))
    noisy, _ = simulate(small, "blur", severity="severe", seed=0)  # the network, no SURE
    seen: dict[str, list[tuple[int, int]]] = {"tv": [], "net": []}
    for method, calls in seen.items():
        result = restore(noisy, method, reassess=False, force=True,
                         progress=lambda done, total, c=calls: c.append((done, total)))
        assert result.changed and calls and calls[-1] == (6, 6), method
        assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:], strict=False)), method
    assert seen["tv"] == [(k, 6) for k in range(1, 7)] and seen["net"] == [(4, 6), (6, 6)]


def test_restoring_a_lossy_file_says_what_it_cannot_recover() -> None:
    from medq.data.sources import sources
    from medq.restore.pipeline import restore

    source = {s.name: s for s in sources("test")}
    lossy = source["ct_693"].draw(np.random.default_rng(0), "2d")  # JPEG 2000 at 339:1
    result = restore(lossy, "auto", reassess=False)
    assert result.changed and result.findings_addressed == ["low_resolution"]
    assert "The input file is lossy compressed at 339:1: detail the compression discarded is " \
           "not recovered" in result.note
    head = source["ct_head_j2k"].draw(np.random.default_rng(0), "2d")  # lossless J2K
    forced = restore(head, "auto", reassess=False, force=True)
    assert forced.changed and "lossy" not in forced.note


def test_a_denoiser_does_not_claim_what_it_cannot_repair_nor_the_gate_hide_what_was_found(
        ) -> None:
    """BM3D on an image described as low-resolution said "Restored with BM3D for low
    resolution" and changed next to nothing; an image with severe ghosting (which medq does not
    restore) was said to have nothing to repair."""
    from types import SimpleNamespace

    from medq.data.sources import sources
    from medq.restore.notes import unchanged_note, why_forced
    from medq.restore.pipeline import restore

    lossy = {s.name: s for s in sources("test")}["ct_693"].draw(np.random.default_rng(0), "2d")
    result = restore(lossy, "bm3d", reassess=False)  # described as low resolution, not noise
    assert not result.changed and result.findings_addressed == []
    assert result.note.startswith("BM3D removes noise, and the description reports low "
                                  "resolution, which it does not address"), result.note
    ghost = SimpleNamespace(findings=[SimpleNamespace(type="ghosting", severity="severe")])
    assert unchanged_note(ghost, "auto", set()) == (
        "Severe ghosting was found, which medq does not restore; the image is returned "
        "unchanged.")
    forced = restore(lossy, "bm3d", reassess=False, force=True)  # forced, its note says why
    assert "(forced: the description found moderate low resolution, which BM3D does not " \
        "repair)" in forced.note, forced.note
    assert why_forced(ghost, "auto", set()) == (
        "the description found severe ghosting, which medq does not restore")


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "margin"), [("xr_quantum_noise", 3.0), ("mr_noise", 3.0),
                                              ("mr_undersample", 0.5)])
def test_shipped_network_repairs_degraded_samples(kind: str, margin: float) -> None:
    from medq.restore.pipeline import restore

    image = load_sample("xr_head" if kind.startswith("xr") else "mni_t1")
    if image.is_volume:
        image = image.evolve(array=np.ascontiguousarray(image.array[image.shape[0] // 2]),
                             spacing=image.spacing[1:])
    degraded, _ = simulate(image, kind, severity="moderate", seed=3)
    result = restore(degraded, "auto")
    assert result.changed and result.findings_addressed, result.note
    window = (-160.0, 240.0) if image.modality == "CT" else None
    before = psnr(degraded.array, image.array, window=window)
    after = psnr(result.image.array, image.array, window=window)
    assert after > before + margin, (before, after)
    assert result.before is not None and result.after is not None
    assert result.image.meta["history"][-1]["step"] == "restore"
    assert "Restored with the network, conditioned on the description (auto)" in result.note
    assert str(round(result.before, 2)) in result.note


def test_restore_assesses_once_described_and_rescores_without_measures(monkeypatch) -> None:
    """The first assessment takes the detector's features (the description reads them), the
    second only the score, whose value the classical measures never change; a user's Assessor
    keeps its own settings."""
    import medq
    import medq.assess.loading as loading
    from medq.assess.predictor import Assessor
    from medq.restore.pipeline import restore

    image = load_sample("xr_head")
    degraded, _ = simulate(image, "xr_quantum_noise", severity="moderate", seed=3)
    asked: list[tuple[bool, bool]] = []
    real = loading.load_measured
    monkeypatch.setattr(loading, "load_measured", lambda item, modality, measures, extras=(),
                        features=None: asked.append((measures, features is not None))
                        or real(item, modality, measures, extras, features))
    mine = Assessor()
    result = restore(degraded, "auto", assessor=mine)
    assert result.changed and asked == [(True, True), (False, False)]
    assert mine.measures and mine.features is None
    monkeypatch.setattr(loading, "load_measured", real)
    assert result.after == medq.assess(result.image).score  # measured: the same score
    assert result.before == medq.assess(degraded).score


def test_a_restoration_of_an_image_without_negative_values_makes_none() -> None:
    """A denoiser's undershoot is no activity: a restored PET (all values ≥ 0) has none below 0
    (the shipped network's gave −0.15 here)."""
    from medq.restore.pipeline import restore

    image = load_sample("pet_brain")
    image = image.evolve(array=np.ascontiguousarray(image.array[image.shape[0] // 2]),
                         spacing=image.spacing[1:])
    degraded, _ = simulate(image, "pet_low_count", severity="moderate", seed=3)
    assert degraded.array.min() >= 0
    result = restore(degraded, "auto", reassess=False)
    assert result.changed and result.image.array.min() >= 0


def test_pseudo_mr_pairs_and_joined_pair_sets() -> None:
    from medq.data.pairs import PairPlan, concat, make_pair, pack, pair_arrays
    from medq.restore.condition import MODALITY_GROUPS

    plan = PairPlan(tasks=("mr_noise",), pseudo_mr=True, source_names=("body_ct",), max_side=96)
    pair = make_pair("mr_noise", 11, plan)
    assert pair["source"] == "body_ct" and MODALITY_GROUPS[pair["modality"]] == "MR"
    assert pair["records"][0]["name"] == "mr_noise"  # the MR engine accepted the recast image
    assert 0.0 <= float(np.percentile(pair["y"].astype(np.float32), 50)) <= 1.0
    assert plan.key() != PairPlan(tasks=("mr_noise",), source_names=("body_ct",),
                                  max_side=96).key()
    other = make_pair("clean", 2, PairPlan(max_side=64))
    a, b = pack([pair]), pack([other, pair])
    joined = concat(a, b)
    for k, (src, i) in enumerate([(a, 0), (b, 0), (b, 1)]):
        for got, want in zip(pair_arrays(joined, k), pair_arrays(src, i), strict=True):
            assert np.array_equal(got, want)


def test_ct_padding_is_shown_as_air_and_returned_unchanged() -> None:
    from medq.restore.apply import apply_planes

    image = load_sample("ct_small")
    a = image.array.astype(np.float32).copy()
    yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
    outside = (yy - a.shape[0] / 2) ** 2 + (xx - a.shape[1] / 2) ** 2 > (0.48 * a.shape[0]) ** 2
    a[outside] = -2000.0  # a scanner's fill outside the reconstruction circle
    padded = image.evolve(array=a)
    seen = []

    def shift(planes: list[np.ndarray]) -> list[np.ndarray]:
        seen.extend(planes)
        return [p + 0.1 for p in planes]  # +100 HU everywhere it is applied

    out = apply_planes(padded, shift)
    assert np.array_equal(out[outside], a[outside])  # padding kept exactly
    assert np.allclose(out[~outside], a[~outside] + 100.0, atol=1e-2)
    assert np.all(seen[0][outside] == 0.0)  # the method saw air (−1000 HU) there
    mr = load_sample("mr_small")  # no padding convention outside CT: every pixel is restored
    step = 0.1 * scale_for(mr.array, mr.modality).scale
    assert np.allclose(apply_planes(mr, shift), mr.array + step, rtol=1e-5, atol=1e-2)


def test_soft_pairs_blur_the_clean_image_without_recording_it() -> None:
    from scipy import ndimage

    from medq.assess.models.blocks import FINDING_TYPES
    from medq.data.pairs import SOFT_FWHM_PX, PairPlan, make_pair

    common = {"tasks": ("ct_low_dose",), "source_names": ("body_ct",), "combo_fraction": 0.0}
    soft, plain = PairPlan(soft=1.0, **common), PairPlan(**common)
    a, b = make_pair("ct_low_dose", 3, soft), make_pair("ct_low_dose", 3, plain)
    ya, yb = a["y"].astype(np.float32), b["y"].astype(np.float32)
    assert ya.shape == yb.shape and a["source"] == b["source"]
    assert np.square(np.diff(ya, axis=1)).mean() < 0.8 * np.square(np.diff(yb, axis=1)).mean()
    # the same anatomy through a PSF inside the stated FWHM range (σ = FWHM / 2.355 px)
    sigmas = np.linspace(SOFT_FWHM_PX[0], SOFT_FWHM_PX[1], 11) / 2.355
    errors = [np.abs(ndimage.gaussian_filter(yb, s, mode="nearest") - ya).mean() for s in sigmas]
    assert min(errors) < 0.1 * np.abs(yb - ya).mean()
    # the softening is part of the clean image: only the task is recorded and described
    assert [r["name"] for r in a["records"]] == ["ct_low_dose"]
    assert a["cond"][FINDING_TYPES.index("blur")] == 0.0
    again = make_pair("ct_low_dose", 3, soft)
    assert np.array_equal(a["x"], again["x"]) and soft.key() != plain.key()
    # a task in soft_skip keeps its clean image as it is (CT's fixed scale: the very target)
    skip = PairPlan(soft=1.0, soft_skip=("ct_low_dose", "mr_noise"), **common)
    assert np.array_equal(make_pair("ct_low_dose", 3, skip)["y"], b["y"])
    assert skip.key() not in (soft.key(), plain.key())


def test_fine_ct_pairs_have_finer_pixels_of_the_same_anatomy() -> None:
    from medq.data.pairs import PairPlan, make_pair

    common = {"tasks": ("ct_low_dose",), "max_side": 512, "source_names": ("body_ct",)}
    fine, plain = PairPlan(fine_ct=1.0, **common), PairPlan(**common)
    a, b = make_pair("ct_low_dose", 7, fine), make_pair("ct_low_dose", 7, plain)
    factor = float(b["spacing"][0] / a["spacing"][0])
    assert 1.6 <= factor <= 2.4 and a["source"] == b["source"] == "body_ct"
    assert a["y"].shape[0] == pytest.approx(min(b["y"].shape[0] * factor, 512), abs=8)
    assert a["records"][0]["name"] == "ct_low_dose"  # degraded after the upsampling
    again = make_pair("ct_low_dose", 7, fine)
    assert np.array_equal(a["x"], again["x"]) and np.array_equal(a["y"], again["y"])
    assert fine.key() != plain.key()
    mr = make_pair("mr_noise", 7, PairPlan(tasks=("mr_noise",), fine_ct=1.0, max_side=512,
                                            source_names=("mni_mr_train",)))
    assert mr["spacing"][0] == pytest.approx(make_pair(
        "mr_noise", 7, PairPlan(tasks=("mr_noise",), max_side=512,
                                source_names=("mni_mr_train",)))["spacing"][0])


def test_back_projection_keeps_what_the_low_resolution_input_measured() -> None:
    """The consistency step takes the low-pass part from the input: a perfect super-resolution
    of a real CT keeps part of its gain (the input's attenuated frequencies below the coarse
    Nyquist come back with the low-pass: the price of the step), and a restoration that shifted
    the mean or smoothed broad structure is pulled back to what the input shows."""
    from scipy import ndimage as ndi

    from medq.data.sources import sources
    from medq.degrade import simulate
    from medq.metrics.fidelity import psnr
    from medq.restore.consistency import HALF_POWER, back_project

    # the Gaussian's transfer is one half at the coarse matrix's Nyquist, 1/(2f)
    sigma, f = HALF_POWER * 3.0, 3.0
    assert np.exp(-2 * np.pi ** 2 * sigma ** 2 / (2 * f) ** 2) == pytest.approx(0.5)
    head = next(s for s in sources("test") if s.name == "ct_head_j2k")
    clean = head.draw(np.random.default_rng(0), "2d").array.astype(np.float64)
    low = simulate(head.draw(np.random.default_rng(0), "2d"), "low_resolution", level=3.0,
                   seed=0)[0].array.astype(np.float64)
    window = (-160.0, 240.0)
    kept = back_project(clean, low, 3.0)
    assert psnr(kept, clean, window=window) > psnr(low, clean, window=window) + 1.0
    shifted = back_project(clean + 40.0, low, 3.0)
    assert abs(float(np.mean(shifted - clean))) < 1.0  # the 40 HU offset is gone
    smoothed = ndi.gaussian_filter(clean, 6.0)  # broad structure lost
    assert psnr(back_project(smoothed, low, 3.0), clean, window=window) > \
        psnr(smoothed, clean, window=window) + 3.0


def test_back_projection_step_makes_the_restoration_give_the_input_again() -> None:
    """One step y + (x − A(y)): a perfect restoration of a real CT is kept (acquired again it
    is the input), a restoration with a halo of broad errors is pulled back to what the input
    measured; `explain` finds the acquisition and parameter of an interpolated coarse matrix, a
    k-space truncation (another roll-off than medq's) and a Gaussian blur, never a parameter
    above the one it is told; with noise described, or when no coarse matrix of the output
    explains the input, the step only low-passes a low-resolution input (`back_project`), and
    with noise it leaves a blurred one alone."""
    from medq.data.sources import sources
    from medq.degrade import simulate
    from medq.degrade.generic import coarse_matrix
    from medq.metrics.fidelity import psnr
    from medq.restore.consistency import (
        LOW_PASS,
        back_project,
        back_project_step,
        consistent,
        explain,
    )

    head = next(s for s in sources("test") if s.name == "ct_head_j2k")
    image = head.draw(np.random.default_rng(0), "2d")
    clean = image.array.astype(np.float64)
    yy, xx = np.mgrid[:clean.shape[0], :clean.shape[1]]
    halo = clean + 30.0 * np.sin(2 * np.pi * yy / 128.0) * np.cos(2 * np.pi * xx / 160.0)
    window = (-160.0, 240.0)
    sigma = 3.5 / 2.355 / image.spacing[-1]  # the engine's moderate blur, 3.5 mm FWHM
    made = {"interpolated": (simulate(image, "low_resolution", level=3.0, seed=0)[0].array, 3.0),
            "kspace": (coarse_matrix(clean, 3.0, reconstruction="kspace", taper=0.05), 3.0),
            "psf": (simulate(image, "blur", level=3.5, seed=0)[0].array, sigma)}
    told = {"interpolated": 3.6, "kspace": 3.6, "psf": 1.2 * sigma}
    for acquisition, (low, parameter) in made.items():
        low = low.astype(np.float64)
        found, value = explain(low, clean, told)
        assert found == acquisition and value == pytest.approx(parameter, rel=0.1)
        assert explain(low, clean, {acquisition: 0.8 * parameter})[1] <= 0.8 * parameter
        kept = back_project_step(clean, low, parameter, acquisition)
        assert psnr(kept, clean, window=window) > psnr(low, clean, window=window) + 5.0
        pulled = back_project_step(halo, low, parameter, acquisition)
        assert psnr(pulled, clean, window=window) > psnr(halo, clean, window=window) + 5.0
    low = made["interpolated"][0].astype(np.float64)
    planes, done = consistent([low, low], [halo, clean], {"interpolated": 4.0})
    assert done["acquisition"] == "interpolated" and done["factor"] <= 4.0
    assert psnr(planes[0], clean, window=window) > psnr(halo, clean, window=window) + 3.0
    planes, done = consistent([low], [halo], {"interpolated": 3.0, "kspace": 3.0}, noisy=True)
    assert done["step"] == LOW_PASS
    assert np.array_equal(planes[0], back_project(halo, low, 3.0))
    assert consistent([low], [halo], {"psf": sigma}, noisy=True) == ([halo], None)
    assert consistent([low], [halo], {}) == ([halo], None)
    # an output no coarse matrix explains (here the network changed nothing: the closest
    # acquisition is the gentlest one tried) gets the low-pass step only
    planes, done = consistent([low], [low], {"interpolated": 3.0, "kspace": 3.0})
    assert done["step"] == LOW_PASS and np.allclose(planes[0], low)


def test_a_description_names_the_acquisitions_that_could_explain_its_image() -> None:
    """Low resolution: the interpolated and k-space coarse matrices at the factor its severity
    implies on the engine's scale; blur: a Gaussian PSF whose σ is the implied FWHM over the
    in-plane pixel size; other findings: none."""
    from medq.degrade import get_spec
    from medq.describe.schema import Finding, QualityReport
    from medq.restore.consistency import described

    def report(*found: tuple[str, float]) -> QualityReport:
        findings = [Finding(t, "moderate", 0.9, severity_value=v) for t, v in found]
        return QualityReport("CT", "head", 2.0, "usable", findings, "")

    both = described(report(("low_resolution", 2.0), ("blur", 2.0), ("noise", 1.0)),
                     (2.0, 0.5, 0.5))
    factor = get_spec("low_resolution").level_at(2.0)
    fwhm = get_spec("blur").level_at(2.0)
    assert both == pytest.approx({"interpolated": factor, "kspace": factor,
                                  "psf": fwhm / 2.3548 / 0.5}, rel=1e-3)
    assert 2.5 <= factor < 4.0 and 2.5 <= fwhm < 5.0  # moderate on the engine's scale
    assert described(report(("streak", 2.0), ("noise", 2.0)), (0.5, 0.5)) == {}


def test_resampled_low_resolution_pairs_keep_the_record_and_vary_the_reconstruction() -> None:
    """`resampling` pairs: the engine's finding and factor, another way back to the grid (cubic,
    or MR k-space), the same clean target; plans without it keep their pairs and cache key."""
    from medq.data.pairs import PairPlan, make_pair

    common = {"tasks": ("low_resolution",), "combo_fraction": 0.0, "max_side": 256,
              "source_names": ("mni_mr_train",)}
    plan, plain = PairPlan(resampling=1.0, **common), PairPlan(**common)
    seen = set()
    for seed in range(6):
        a, b = make_pair("low_resolution", seed, plan), make_pair("low_resolution", seed, plain)
        rec, engine = a["records"][-1], b["records"][-1]
        assert rec["name"] == engine["name"] == "low_resolution"
        clean = [p["y"].astype(np.float64) * p["scale"][1] + p["scale"][0] for p in (a, b)]
        assert np.allclose(*clean, atol=2e-3 * np.abs(clean[1]).max())  # normalised as float16
        assert np.array_equal(a["cond"], b["cond"])
        assert engine["params"]["upsampling"] == "linear"
        seen.add(rec["params"]["upsampling"])
        assert not np.array_equal(a["x"], b["x"])
        again = make_pair("low_resolution", seed, plan)
        assert np.array_equal(a["x"], again["x"])
    assert seen == {"cubic", "kspace"}
    assert plan.key() != plain.key() and plain.key() == PairPlan(resampling=0.0, **common).key()


def test_ringing_pairs_band_limit_the_clean_mr_image_without_recording_it() -> None:
    """`ringing` pairs: the clean MR image (target and input alike) is a zero-filled
    reconstruction of a coarser matrix, so it holds almost no energy above the coarsest kept
    frequency; nothing is recorded; CT pairs and plans without it are unchanged."""
    from medq.data.items import RING_MATRIX
    from medq.data.pairs import PairPlan, make_pair

    def outer_energy(y: np.ndarray) -> float:
        power = np.abs(np.fft.fft2(y - y.mean())) ** 2
        fy, fx = np.abs(np.fft.fftfreq(y.shape[0]))[:, None], np.abs(np.fft.fftfreq(y.shape[1]))
        return float(power[(fy > 0.5 / RING_MATRIX[0]) | (fx > 0.5 / RING_MATRIX[0])].sum()
                     / power.sum())

    common = {"tasks": ("mr_noise",), "combo_fraction": 0.0, "max_side": 256,
              "pseudo_mr": True, "source_names": ("body_ct",)}
    ring, plain = PairPlan(ringing=1.0, **common), PairPlan(**common)
    for seed in range(3):
        a, b = make_pair("mr_noise", seed, ring), make_pair("mr_noise", seed, plain)
        assert a["y"].shape == b["y"].shape and a["source"] == b["source"]
        ya, yb = a["y"].astype(np.float64), b["y"].astype(np.float64)
        assert outer_energy(ya) < 0.1 * outer_energy(yb)
        assert [r["name"] for r in a["records"]] == ["mr_noise"]
        assert np.array_equal(a["x"], make_pair("mr_noise", seed, ring)["x"])
    ct = {"tasks": ("ct_low_dose",), "combo_fraction": 0.0, "source_names": ("body_ct",)}
    first, second = make_pair("ct_low_dose", 1, PairPlan(ringing=1.0, **ct)), \
        make_pair("ct_low_dose", 1, PairPlan(**ct))
    assert np.array_equal(first["x"], second["x"]) and np.array_equal(first["y"], second["y"])
    assert ring.key() != plain.key() and plain.key() == PairPlan(ringing=0.0, **common).key()


def test_coarse_mr_pairs_shrink_the_clean_mr_image_and_its_pixels_alike() -> None:
    """`coarse_mr` pairs: the clean MR image is shrunk 2–4× (at least 48 px a side) with its
    pixel size multiplied alike; nothing is recorded; CT pairs and plans without
    it are unchanged."""
    from medq.data.pairs import COARSE_MIN_SIDE, PairPlan, make_pair

    common = {"tasks": ("mr_noise",), "combo_fraction": 0.0, "max_side": 256,
              "pseudo_mr": True, "source_names": ("body_ct",)}
    coarse, plain = PairPlan(coarse_mr=1.0, **common), PairPlan(**common)
    for seed in range(3):
        a, b = make_pair("mr_noise", seed, coarse), make_pair("mr_noise", seed, plain)
        shrink = np.array(b["y"].shape) / np.array(a["y"].shape)
        assert min(a["y"].shape) >= COARSE_MIN_SIDE - 8 and shrink.min() > 1.5, shrink
        assert a["spacing"] == pytest.approx(b["spacing"] * shrink, rel=0.15)
        assert [r["name"] for r in a["records"]] == ["mr_noise"]
    ct = {"tasks": ("ct_low_dose",), "combo_fraction": 0.0, "source_names": ("body_ct",)}
    first, second = make_pair("ct_low_dose", 1, PairPlan(coarse_mr=1.0, **ct)), \
        make_pair("ct_low_dose", 1, PairPlan(**ct))
    assert np.array_equal(first["x"], second["x"]) and np.array_equal(first["y"], second["y"])
    assert coarse.key() != plain.key() and plain.key() == PairPlan(coarse_mr=0.0, **common).key()


def test_training_leaves_out_pairs_that_are_not_finite() -> None:
    from medq.data.pairs import pack
    from medq.train.restore_loop import finite_pairs

    good = np.zeros((8, 8), np.float16)
    bad = good.copy()
    bad[3, 3] = np.inf
    pairs = [{"x": x, "y": y, "cond": np.zeros(3), "modality": 0, "scale": np.zeros(2),
              "spacing": np.ones(2), "task": "t", "level": 0.0, "source": "s"}
             for x, y in ((good, good), (bad, good), (good, bad), (good, good))]
    assert finite_pairs(pack(pairs)).tolist() == [0, 3]


class _DenserThanWater(torch.nn.Module):
    """A restorer that also segments, as a joint restoration + segmentation model will: the
    tiny preset's restoration plus class logits for "denser than water" (normalised CT above
    1, i.e. above 0 HU) against the rest."""

    def __init__(self, **args: object) -> None:
        super().__init__()
        self.inner = build_model("restore-unet-tiny", **args)
        self.args = dict(self.inner.args)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> dict:
        out = self.inner(x, cond)
        out["labels"] = torch.cat([1.0 - x, x - 1.0], dim=1)
        return out


def test_a_network_that_also_segments_hands_back_its_label_map(tmp_path, monkeypatch) -> None:
    from medq.data.sources import sources
    from medq.restore import models
    from medq.restore.pipeline import restore

    monkeypatch.setitem(models.MODELS, "_DenserThanWater", _DenserThanWater)
    path = tmp_path / "joint.pt"
    models.save_checkpoint(_DenserThanWater(), path, {"task": "test"})
    image = load_sample("ct_small")
    a = image.array.astype(np.float32).copy()
    yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
    outside = (yy - a.shape[0] / 2) ** 2 + (xx - a.shape[1] / 2) ** 2 > (0.48 * a.shape[0]) ** 2
    a[outside] = -2000.0  # a scanner's fill outside the reconstruction circle: seen as air
    slice_ = image.evolve(array=a)
    result = restore(slice_, "net", model=path, force=True, reassess=False)
    assert result.labels is not None and result.labels.dtype == np.int16
    assert np.array_equal(result.labels, ((a > 0) & ~outside).astype(np.int16))
    assert 0 < result.labels.mean() < 0.5  # bone and soft tissue of a thoracic spine slice
    summary = result.to_dict()["labels"]
    assert summary["shape"] == [128, 128] and sum(summary["pixels"].values()) == a.size
    head = next(s for s in sources("test") if s.name == "mni_ct_test")
    volume = head.draw(np.random.default_rng(0), "3d")  # a head CT slab
    labels = restore(volume, "net", model=path, force=True, reassess=False).labels
    assert labels.shape == volume.shape
    assert np.array_equal(labels, (volume.array > 0).astype(np.int16))
    # nothing to hand back: a classical method, a network without labels, a photograph
    assert restore(slice_, "tv", model=path, force=True, reassess=False).labels is None
    plain = tmp_path / "plain.pt"
    models.save_checkpoint(build_model("restore-unet-tiny"), plain, {"task": "test"})
    assert restore(slice_, "net", model=plain, force=True, reassess=False).labels is None
    retina = load_sample("retina")
    assert restore(retina, "net", model=path, force=True, reassess=False).labels is None


def test_a_volume_stored_with_its_thick_axis_last_is_restored_across_it() -> None:
    """Thick slices stored along another axis (a sagittal stack resliced to a standard
    orientation) were restored in planes holding the thick axis (2.9 dB worse); the planes now
    run across it, so both storage orders restore alike, and the output keeps the input's
    layout."""
    from medq.image import MedImage
    from medq.restore.pipeline import restore

    t1 = load_sample("mni_t1")
    thick = t1.array[40:140:5, 40:140, 30:130]  # 20 slices 5 mm apart, 1 mm in-plane
    noisy, _ = simulate(MedImage(np.ascontiguousarray(thick), (5.0, 1.0, 1.0), "MR"), "mr_noise",
                        severity="moderate", seed=2)
    last = MedImage(np.ascontiguousarray(np.moveaxis(noisy.array, 0, -1)), (1.0, 1.0, 5.0), "MR")
    first = restore(noisy, "tv", force=True, reassess=False).image.array
    across = restore(last, "tv", force=True, reassess=False).image.array
    assert across.shape == last.shape
    np.testing.assert_allclose(np.moveaxis(across, -1, 0), first, rtol=1e-5, atol=1e-3)


def test_a_noise_restoration_that_takes_out_anatomy_is_returned_unchanged() -> None:
    """CT_small restored for its noise came back with its bone smeared into blobs (PSNR 27.3 →
    22.6 dB) while the note said the score rose; a restoration for noise alone that takes out
    well over the image's own noise is refused, one that takes out noise is kept."""
    from medq.data.sources import sources
    from medq.restore.checks import REMOVED_LIMIT, removed_share
    from medq.restore.pipeline import restore

    ct = load_sample("ct_small")
    noisy, _ = simulate(ct, "ct_low_dose", severity="moderate", seed=0)
    result = restore(noisy, "auto", reassess=False)
    assert not result.changed and np.array_equal(result.image.array, noisy.array)
    assert "times the image's own noise" in result.note and "--force" in result.note
    assert restore(noisy, "auto", reassess=False, force=True).changed
    head = {s.name: s for s in sources("test")}["mni_ct_test"].draw(np.random.default_rng(0),
                                                                    "2d")
    noisy, _ = simulate(head, "ct_low_dose", severity="moderate", seed=0)
    kept = restore(noisy, "auto", reassess=False)
    assert kept.changed and kept.findings_addressed == ["noise"]
    assert removed_share(noisy.array, kept.image.array, "CT") < REMOVED_LIMIT
    assert np.isnan(removed_share(noisy.array, kept.image.array, "PT"))  # no flat noise to read
    assert psnr(kept.image.array, head.array, window=(-160.0, 240.0)) > \
        psnr(noisy.array, head.array, window=(-160.0, 240.0)) + 3


def test_a_forced_run_on_a_description_without_findings_gives_no_reason() -> None:
    """A forced restoration whose findings came from the network's prior alone (`gate_on_prior`)
    while the description found nothing has no description to quote: no reason, where choosing
    the gate's reason once for both notes made it raise IndexError; the gate's own note still
    names what the prior found."""
    from types import SimpleNamespace

    from medq.restore.notes import unchanged_note, why_forced

    empty = SimpleNamespace(findings=[])
    assert why_forced(empty, "bm3d", {"blur"}) == ""
    assert "reports blur" in unchanged_note(empty, "bm3d", {"blur"})
