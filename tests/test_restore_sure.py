"""SURE's scale of the network's noise correction (`medq.restore.sure`) on real MR images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from medq.data.samples import load_sample
from medq.degrade import get_spec, simulate
from medq.metrics.fidelity import psnr
from medq.restore import sure


def _mni_plane() -> np.ndarray:
    """The MNI T1's middle axial plane, scaled to 0–1 (a real MR slice, large enough)."""
    t1 = load_sample("mni_t1").array
    plane = np.asarray(t1[t1.shape[0] // 2], dtype=np.float64)
    return plane / plane.max()


@pytest.mark.parametrize("width", [0.7, 1.5, 3.0])
def test_sure_finds_the_scale_a_clean_reference_would_choose(width: float) -> None:
    """A Gaussian smoother of white noise on a real MR slice: the α SURE picks without the clean
    slice is within 0.1 of the α that minimises the true error against it, and its error is
    within 5 % of that best one (a light smoother should be kept nearly whole, an oversmoothing
    one scaled well down)."""
    clean = _mni_plane()
    rng = np.random.default_rng(1)
    noisy = clean + 0.03 * rng.standard_normal(clean.shape)
    smooth = ndi.gaussian_filter(noisy, width)
    b, eps = sure.probe_of(noisy)
    body = sure.body_of(noisy)
    alpha = sure.sure_fit(noisy, smooth, ndi.gaussian_filter(noisy + eps * b, width), b, eps,
                          body).alpha()

    def error(a: float) -> float:
        return float(np.mean(((noisy - a * (noisy - smooth)) - clean)[body] ** 2))

    grid = np.linspace(0.0, 1.0, 101)
    best = grid[int(np.argmin([error(a) for a in grid]))]
    assert abs(alpha - best) < 0.1
    assert error(alpha) <= 1.05 * error(best)
    assert (alpha > 0.8) if width == 0.7 else True
    assert (alpha < 0.6) if width == 3.0 else True


def test_sure_leaves_what_it_cannot_estimate_whole() -> None:
    """Too few body pixels, a network that changed nothing, a plane with a NaN (its whole plane
    came out NaN): no α (None), and the correction is kept whole."""
    plane = _mni_plane()
    b, eps = sure.probe_of(plane)
    body = sure.body_of(plane)
    assert sure.sure_fit(plane, plane, plane + eps * b, b, eps, body) is None
    tiny = np.zeros(plane.shape, dtype=bool)
    tiny[:4, :4] = True
    assert sure.sure_fit(plane, 0.5 * plane, 0.5 * plane, b, eps, tiny) is None
    holed = plane.copy()
    holed[body.nonzero()[0][0], body.nonzero()[1][0]] = np.nan
    fits = sure.sure_fits([holed], [0.5 * holed], lambda qs: [0.5 * q for q in qs])
    out, alphas = sure.scaled_by([holed], [0.5 * holed], fits)
    assert alphas == [None] and np.array_equal(out[0], 0.5 * holed, equal_nan=True)


def test_sure_applies_to_mr_restored_for_noise_alone() -> None:
    """MR noise is white in the image; CT, PET and radiograph noise is not, and other findings'
    corrections are not noise."""
    assert sure.applies("MR", ["noise"])
    assert not sure.applies("MR", ["noise", "aliasing"])
    assert not sure.applies("MR", ["blur"])
    assert not any(sure.applies(m, ["noise"]) for m in ("CT", "PT", "DX", "CR", "OP"))


def test_mild_mr_noise_is_no_longer_restored_into_a_worse_image(monkeypatch) -> None:
    """The 64² MR with the engine's mildest noise: the network's whole correction took 5.7 dB off
    the input's PSNR (it smooths a small, detailed slice); scaled by SURE the loss is a fraction
    of that, the result's JSON says how much was kept, and a strongly noisy abdominal MR keeps
    nearly all of its gain (`net`: the network alone, which `auto` may set aside for BM3D)."""
    from medq.assess.predictor import Assessor
    from medq.restore import pipeline

    assessor = Assessor(measures=False)

    def restored(name: str, severity: float, scaled: bool) -> tuple[float, float | None]:
        image = _held_out(name)
        noisy, _ = simulate(image, "mr_noise", level=get_spec("mr_noise").level_at(severity),
                            seed=0)
        monkeypatch.setattr(sure, "applies", _applies if scaled else (lambda *a: False))
        result = pipeline.restore(noisy, "net", assessor=assessor, reassess=False)
        top = float(np.ptp(image.array))
        gain = psnr(result.image.array, image.array, data_range=top) - psnr(
            noisy.array, image.array, data_range=top)
        assert result.to_dict()["sure_scale"] == result.sure_scale
        if result.sure_scale is not None and result.sure_scale < 1:
            assert f"keeping {result.sure_scale:.0%} of its correction" in result.note
        else:
            assert "keeping" not in result.note
        return gain, result.sure_scale

    _applies = sure.applies
    scaled, alpha = restored("mr_small", 0.6, True)
    whole, none = restored("mr_small", 0.6, False)
    assert none is None and 0.0 < alpha < 0.8
    assert whole < -3.0 and scaled > whole + 3.0
    scaled, alpha = restored("mr_abdomen", 2.0, True)
    whole, _ = restored("mr_abdomen", 2.0, False)
    assert alpha > 0.8 and scaled > whole - 0.5 and scaled > 5.0


def _held_out(name: str):
    """A held-out MR file (pydicom's 64² head, MR_small, or abdominal MR2) as the test split
    draws it."""
    from medq.train.evaluate import held_out_images

    return held_out_images()[name]


def test_a_correction_sure_keeps_none_of_is_no_restoration(monkeypatch) -> None:
    """When SURE keeps none of the network's correction on every plane, the output is the input:
    it was reported as "Restored with the network"; now the image is returned unchanged and the
    note says why (`net`, the network alone; `auto` may take BM3D's output instead)."""
    from medq.restore import pipeline

    image = _held_out("mr_small")
    noisy, _ = simulate(image, "mr_noise", level=get_spec("mr_noise").level_at(2.0), seed=0)
    monkeypatch.setattr(sure.Fit, "alpha", lambda self: 0.0)
    result = pipeline.restore(noisy, "net", reassess=False)
    assert not result.changed and np.array_equal(result.image.array, noisy.array)
    assert result.sure_scale == 0.0 and "SURE kept none of it" in result.note


@pytest.mark.parametrize("width", [0.7, 2.0])
def test_sure_reads_the_error_of_a_scaled_correction_without_the_clean_image(width: float
                                                                            ) -> None:
    """`Fit.risk(α)`, SURE's error of the correction scaled by α, reads the true mean square
    error against the clean slice (over the body) to within 10 % of that error or of the noise
    variance, whichever is larger, for α = 0 (the input), ½, 1 and α*."""
    clean = _mni_plane()
    noisy = clean + 0.03 * np.random.default_rng(2).standard_normal(clean.shape)
    smooth = ndi.gaussian_filter(noisy, width)
    b, eps = sure.probe_of(noisy)
    body = sure.body_of(noisy)
    fit = sure.sure_fit(noisy, smooth, ndi.gaussian_filter(noisy + eps * b, width), b, eps, body)
    assert fit is not None
    for alpha in (0.0, 0.5, 1.0, fit.alpha()):
        true = float(np.mean(((noisy - alpha * (noisy - smooth)) - clean)[body] ** 2))
        assert abs(fit.risk(alpha) - true) < 0.1 * max(true, 0.03 ** 2), (alpha, true)


def _rician(image, relative: float, seed: int):
    """A magnitude image with Rician noise of σ = `relative` × the image's std (complex Gaussian
    noise added to the real image; not medq's engine)."""
    a = np.asarray(image.array, dtype=np.float64)
    rng = np.random.default_rng(seed)
    sigma = relative * a.std()
    noisy = np.abs(a + sigma * (rng.standard_normal(a.shape) + 1j * rng.standard_normal(a.shape)))
    return image.with_array(noisy.astype(np.float32))


def test_auto_takes_bm3d_for_mr_noise_where_sure_reads_it_closer_to_the_clean_image() -> None:
    """Rician noise on the held-out 64² head MR: the network's SURE-scaled correction gains
    little or loses, BM3D gains; `auto` compares the two by SURE, takes BM3D's output inside
    the body and says so (note, JSON, step log), while `net` keeps the network's. On the
    engine's strong noise on a slice of the MNI template (a training source), where the
    network is the better denoiser, `auto` keeps the network."""
    from medq.assess.predictor import Assessor
    from medq.restore import pipeline

    assessor = Assessor(measures=False)
    image = _held_out("mr_small")
    noisy = _rician(image, 0.1, seed=4)
    top = float(np.ptp(image.array))

    def gain(result) -> float:
        return psnr(result.image.array, image.array, data_range=top) - psnr(
            noisy.array, image.array, data_range=top)

    auto = pipeline.restore(noisy, "auto", assessor=assessor, reassess=False)
    net = pipeline.restore(noisy, "net", assessor=assessor, reassess=False)
    assert auto.findings_addressed == ["noise"] and net.denoiser is None
    assert auto.denoiser == "bm3d" and auto.to_dict()["denoiser"] == "bm3d"
    assert auto.model == net.model and auto.sure_scale == net.sure_scale  # outside the body
    assert auto.image.meta["history"][-1]["denoiser"] == "bm3d"
    assert "Restored with BM3D for noise inside the body (auto: SURE read it closer" in auto.note
    assert gain(auto) > gain(net) + 0.5 and gain(auto) > 1.0
    from medq.data.sources import sources

    template = next(s for s in sources("train") if s.name == "mni_mr_train")
    plane = template.draw(np.random.default_rng(0), "2d")
    strong, _ = simulate(plane, "mr_noise", level=get_spec("mr_noise").level_at(2.0), seed=0)
    kept = pipeline.restore(strong, "auto", assessor=assessor, reassess=False)
    assert kept.findings_addressed == ["noise"]
    assert kept.denoiser is None and kept.model is not None and kept.sure_scale is not None


def test_a_slice_of_noise_alone_keeps_the_whole_correction() -> None:
    """A volume's slices past the end of the anatomy are Rayleigh noise alone, whose "body" is
    noise: α collapsed to about 0.2 there and a restored MNI volume kept bands of noisy slices
    (29.3 dB where the whole correction gave 36.5); no α is estimated on such a slice, while a
    slice with anatomy under the same noise still gets one."""
    rng = np.random.default_rng(3)
    clean = _mni_plane()

    def rician(a: np.ndarray) -> np.ndarray:
        noise = 0.05 * (rng.standard_normal(a.shape) + 1j * rng.standard_normal(a.shape))
        return np.abs(a + noise)

    for plane, estimated in ((rician(np.zeros_like(clean)), False), (rician(clean), True)):
        smooth = ndi.gaussian_filter(plane, 1.0)
        b, eps = sure.probe_of(plane)
        body = sure.body_of(plane)
        fit = sure.sure_fit(plane, smooth, ndi.gaussian_filter(plane + eps * b, 1.0), b, eps,
                            body)
        assert (fit is not None) == estimated, fit


def test_a_volume_keeps_the_network_on_slices_past_the_anatomy() -> None:
    """Twelve MNI T1 slices, the last six past the head, with Rician noise: where `auto` takes
    BM3D it does so only on slices SURE can read (with anatomy). The slices of noise alone keep
    the network's output exactly (BM3D there had covered 91–93 % of each plane, as a body of
    noise, and gave +1.7 dB where the network gives +14), and the volume gains more than the
    network's alone."""
    from medq.restore import pipeline

    t1 = load_sample("mni_t1")
    clean = np.ascontiguousarray(t1.array[list(range(130, 178, 4))], dtype=np.float32)
    sigma = 0.012 * float(np.percentile(t1.array, 99))
    rng = np.random.default_rng(5)
    noisy = t1.evolve(array=np.abs(clean + sigma * (rng.standard_normal(clean.shape) + 1j
                                                    * rng.standard_normal(clean.shape))
                                   ).astype(np.float32), meta={})
    calls: list[tuple[int, int]] = []
    auto = pipeline.restore(noisy, "auto", reassess=False,
                            progress=lambda done, total: calls.append((done, total)))
    net = pipeline.restore(noisy, "net", reassess=False)
    assert auto.denoiser == "bm3d" and auto.findings_addressed == ["noise"]
    # progress: BM3D's slices one by one, then the rest at once; never back, never twice
    assert calls[-1] == (12, 12) and len(calls) >= 3
    assert all(b[0] > a[0] for a, b in zip(calls, calls[1:], strict=False)), calls
    empty = [k for k in range(len(clean)) if (clean[k] > 0.1 * clean.max()).mean() < 0.01]
    assert len(empty) >= 5
    assert all(np.array_equal(auto.image.array[k], net.image.array[k]) for k in empty)
    top = float(np.ptp(clean))
    assert psnr(auto.image.array, clean, data_range=top) > psnr(net.image.array, clean,
                                                                 data_range=top)


def test_bm3d_is_chosen_only_where_it_wins_for_every_sigma_within_the_slack(monkeypatch) -> None:
    """`classical_choice` with the classical denoiser's SURE sums fixed: the two risks differ by
    a term in σ², so a denoiser that wins at the estimated σ but not at σ² 25 % lower is not
    taken; one that wins at both ends is, with its compared planes' outputs; no readable plane,
    or no classical sum, chooses nothing."""
    network = sure.Fit(sigma=0.05, removed=0.002, divergence=0.3)  # α* = 0.875
    planes = [np.full((4, 4), float(k)) for k in range(3)]

    def choice(removed: float | None, fits=(network, None, network)):
        theirs = None if removed is None else sure.Fit(0.05, removed, 0.05)
        monkeypatch.setattr(sure, "sure_fits", lambda sub, outputs, fn: [theirs] * len(sub))
        return sure.classical_choice(planes, list(fits), lambda qs: [q + 1.0 for q in qs])

    at_sigma = sum(sure.Fit(0.05, 0.003, 0.05).risk() - network.risk(network.alpha())
                   for _ in range(2))
    assert at_sigma < 0 and choice(0.003) is None  # wins at σ̂², loses at 0.75 σ̂²
    chosen = choice(0.0025)
    assert sorted(chosen) == [0, 2] and np.array_equal(chosen[2], planes[2] + 1.0)
    assert choice(0.0025, fits=(None, None, None)) is None
    assert choice(None) is None


def test_the_note_says_where_bm3d_and_the_network_restored() -> None:
    """The note of an `auto` restoration that took BM3D's body: the share of the network's
    correction kept outside it, or, when none was kept, that the outside was left as it was."""
    from medq.restore.notes import restored_note

    partly = restored_note("auto", ["noise"], 2.1, 2.5, kept=0.45, denoiser="bm3d")
    assert partly.startswith("Restored with BM3D for noise inside the body (auto: SURE read it")
    assert "and with the network outside it, keeping 45% of the network's correction there" \
        in partly
    none = restored_note("auto", ["noise"], 2.1, 2.5, kept=0.0, denoiser="bm3d")
    assert "and left as it was outside it;" in none and "keeping" not in none
    alone = restored_note("net", ["noise"], 2.1, 2.5, kept=0.45)
    assert "keeping 45% of its correction" in alone and "BM3D" not in alone


def test_the_benchmark_runs_the_described_network_as_auto_does(monkeypatch) -> None:
    """`medq bench restore`'s described column asks for SURE's choice of BM3D wherever it asks
    for SURE's scale, as `medq restore`'s `auto` does."""
    from types import SimpleNamespace

    from medq.restore import benchmark

    seen = {}

    def fake(model, planes, cond, acquisitions, noisy, scaled, compare=False):
        seen.update(scaled=scaled, compare=compare)
        return SimpleNamespace(planes=planes)

    monkeypatch.setattr(benchmark, "as_restored", fake)
    described = {"cond": None, "acquisitions": {}, "noisy": True, "scaled": True}
    benchmark._as_described(None, described)(np.zeros((8, 8)))
    assert seen == {"scaled": True, "compare": True}
    benchmark._as_described(None, dict(described, scaled=False))(np.zeros((8, 8)))
    assert seen == {"scaled": False, "compare": False}
