"""Planes over `evidence.LARGE_PLANE` (512 px: beyond the sizes the view calibration was fitted
on) are assessed on the full planes: a full-size radiograph's quantum noise, which its 256-px
view averages away, is found by `medq assess` as `medq describe` finds it. Planes its views
shrink less (257–512 px) are read whole for noise alone, as far as their views average noise
away (a 512² CT's white noise)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from medq.assess.evidence import LARGE_PLANE, reads_full_planes
from medq.assess.predictor import Assessor
from medq.data.samples import load_sample
from medq.degrade.registry import simulate
from medq.describe import report_from
from medq.image import MedImage

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks" / "probes"))
from large_planes import resampled  # noqa: E402 - the probe's radiograph at a width

PHOTONS = (6000.0, 1000.0, 150.0)
"""Detector photons per pixel: the engine's mild, moderate and severe quantum noise."""


def detector_sized() -> MedImage:
    """The bundled radiograph resampled to a detector's matrix (1300 px wide, pixels alike in
    mm), as `benchmarks/probes/large_planes.py` resamples it."""
    return resampled(1300)


@pytest.fixture(scope="module")
def radiographs() -> list:
    """The detector-sized radiograph with quantum noise at each of `PHOTONS`."""
    clean = detector_sized()
    return [simulate(clean, "xr_quantum_noise", p, seed=0)[0] for p in PHOTONS]


@pytest.fixture(scope="module")
def assessed(radiographs: list) -> list:
    """Their assessments, with the features the description reads handed over."""
    return Assessor(describe=True).assess_many(radiographs)


def test_which_planes_are_read_whole() -> None:
    """The bound is on the longer side of a plane (a photograph's without its channels, a
    volume's without its slices); every bundled sample but the fundus photograph is under it."""
    for name in ("ct_small", "mr_small", "mni_t1", "pet_brain", "xr_head"):
        assert not reads_full_planes(load_sample(name))
    retina = load_sample("retina")
    assert retina.is_rgb and max(retina.shape[:2]) > LARGE_PLANE and reads_full_planes(retina)
    wide = MedImage(np.zeros((3, 40, LARGE_PLANE + 1), np.float32), (1.0, 1.0, 1.0), "CT")
    assert wide.is_volume and reads_full_planes(wide)
    deep = MedImage(np.zeros((LARGE_PLANE + 9, 40, 40), np.float32), (1.0, 1.0, 1.0), "CT")
    assert not reads_full_planes(deep)


def test_quantum_noise_of_a_full_size_radiograph_is_found(assessed: list) -> None:
    """Every dose is reported as quantum noise, the lowest as severe and recalled, and the score
    falls as the dose does (the 256-px views read these as noise-free and graded the lowest
    dose "good")."""
    noise = [{f["type"]: f["severity"] for f in a.findings}.get("noise") for a in assessed]
    assert noise[0] is not None and noise[1] is not None
    assert noise[2] == "severe"
    scores = [a.score for a in assessed]
    assert scores[0] > scores[1] > scores[2], scores
    assert assessed[2].recall and not assessed[0].recall


def test_assess_and_describe_name_the_same_findings(radiographs: list, assessed: list) -> None:
    """On a large plane the assessment reads the description's own calibration and features, so
    both name the same finding types at the same severities."""
    for image, a in zip(radiographs, assessed, strict=True):
        report = report_from(a, image)
        assert {(f.type, f.severity) for f in report.findings} == \
            {(f["type"], f["severity"]) for f in a.findings}


def test_blur_of_a_full_size_radiograph_is_read_on_its_views_too() -> None:
    """Blur far wider than a pixel shows on the views, not on the full planes: each finding type
    is the worse of the two readings, in the assessment and the description alike, so scores
    fall with the blur and the severe rung is severe blur in both (the full planes alone read
    it as moderate, and a 2500-px radiograph's as no blur at all)."""
    clean = detector_sized()
    images = [clean] + [simulate(clean, "blur", severity=s, seed=0)[0]
                        for s in ("mild", "moderate", "severe")]
    assessed = Assessor(describe=True).assess_many(images)
    reports = [report_from(a, image) for a, image in zip(assessed, images, strict=True)]
    for scores in ([a.score for a in assessed], [r.score for r in reports]):
        assert all(x > y for x, y in zip(scores[:-1], scores[1:], strict=True)), scores
    assert {f["type"]: f["severity"] for f in assessed[-1].findings}["blur"] == "severe"
    assert {f.type: f.severity for f in reports[-1].findings}["blur"] == "severe"


def test_the_worse_of_two_readings_scores_what_its_findings_say() -> None:
    """A type one reading reports as mild and the other weights as moderate without reporting
    it is reported at the moderate severity, so the score (of the weighted severities) and the
    findings agree; a type absent from both stays stated absent."""
    from medq.assess.detector import Decision, Evidence, worse_of
    from medq.assess.models.blocks import FINDING_TYPES
    from medq.data.bench import reference_score

    blur, noise = FINDING_TYPES.index("blur"), FINDING_TYPES.index("noise")
    zeros = np.zeros(len(FINDING_TYPES))
    views = Evidence(0.0, zeros.copy(), Decision({blur: 1.0}, [noise], []), zeros.copy())
    views.weighted[blur] = 1.0
    full = Evidence(0.0, zeros.copy(), Decision({}, [noise], []), zeros.copy())
    full.weighted[blur] = 2.4
    merged = worse_of(views, full, "DX")
    assert merged.decision.reported == {blur: 2.4} and merged.decision.normal == [noise]
    assert merged.score == pytest.approx(reference_score([2.4]))  # one moderate finding


def test_the_worse_of_two_readings_moves_each_type_by_its_weight() -> None:
    """With a weight per type, a type of weight 0 keeps the first reading whatever the second
    says, and one moved part of the way has its severity, probability and score in between: the
    evidence score falls steadily with the weight (no jump where the second reading begins to
    count), a type only the second reports is reported once its weight reaches a half, and one
    the first states absent stays so until then."""
    from medq.assess.detector import Decision, Evidence, worse_of
    from medq.assess.models.blocks import FINDING_TYPES

    blur, noise = FINDING_TYPES.index("blur"), FINDING_TYPES.index("noise")
    zeros = np.zeros(len(FINDING_TYPES))
    views = Evidence(4.0, zeros.copy(), Decision({blur: 1.0}, [noise], []), zeros.copy())
    views.weighted[blur] = 1.0
    full = Evidence(0.0, zeros + 0.9, Decision({blur: 2.4, noise: 2.0}, [], []), zeros.copy())
    full.weighted[[blur, noise]] = 2.4, 2.0
    steps = []
    for w in np.linspace(0.0, 1.0, 11):
        weight = np.zeros(len(FINDING_TYPES))
        weight[noise] = w
        steps.append(worse_of(views, full, "CT", weight))
    assert all(e.decision.reported[blur] == 1.0 and e.weighted[blur] == 1.0
               and e.prob[blur] == 0.0 for e in steps)
    falls = -np.diff([e.score for e in steps])
    assert (falls > 0).all() and falls.max() < 0.5, falls
    assert noise not in steps[4].decision.reported and steps[4].decision.normal == [noise]
    assert steps[5].decision.reported[noise] == pytest.approx(1.0)
    assert steps[5].decision.normal == [] and steps[5].prob[noise] == pytest.approx(0.45)
    assert steps[-1].decision.reported == {blur: 1.0, noise: 2.0}
    faint = Evidence(0.0, zeros.copy(), Decision({noise: 0.6}, [], []), zeros.copy())
    faint.weighted[noise] = 0.6
    halfway = np.where(np.arange(len(FINDING_TYPES)) == noise, 0.5, 0.0)
    assert worse_of(views, faint, "CT", halfway).decision.reported[noise] == 0.5  # mild at least


def head_ct() -> MedImage:
    """pydicom's J2K head CT (512², in HU), read by medq."""
    from pydicom.data import get_testdata_file

    from medq.io import load

    return load(get_testdata_file("J2K_pixelrep_mismatch.dcm"))


def test_white_noise_a_512_view_averages_away_is_read_on_the_full_plane() -> None:
    """A 512² head CT's white noise halves in its 256-px view: there the views read σ 40 HU as
    no noise at all and graded it "acceptable". Its whole plane reads finer noise than its view,
    so the assessment reads noise there too: σ 20 HU is moderate noise, σ 40 HU severe and
    recalled, at the severity `medq describe` names; the clean file, whose view reads finer
    structure than the plane, pays no full-plane pass, and the engine's low-dose noise only a
    part of one."""
    from medq.assess.evidence import evidence_pass
    from medq.assess.loading import load_measured

    clean = head_ct()
    rng = np.random.default_rng(0)
    noisy = [clean.with_array(clean.array + rng.normal(0, s, clean.shape).astype(np.float32))
             for s in (20.0, 40.0)]
    low_dose = simulate(clean, "ct_low_dose", severity="moderate", seed=1)[0]
    weights = [evidence_pass(im, compare=True).noise_weight
               for im in (clean, *noisy, low_dose)]
    assert weights[:3] == [0.0, 1.0, 1.0] and 0.0 < weights[3] < 1.0, weights
    assert load_measured(clean, None, False).features is None
    assessed = Assessor().assess_many([clean, *noisy])
    noise = [{f["type"]: f["severity"] for f in a.findings}.get("noise") for a in assessed]
    assert noise == [None, "moderate", "severe"], noise
    scores = [a.score for a in assessed]
    assert scores[0] > scores[1] > scores[2] and assessed[2].recall, scores
    report = report_from(assessed[2], noisy[1])
    assert {f.type: f.severity for f in report.findings}.get("noise") == "severe"


def test_two_noise_draws_of_one_soft_kernel_protocol_score_alike() -> None:
    """Soft-kernel noise (white noise smoothed by 0.7 px) sits where the full plane only partly
    counts: four draws at σ 40 HU get like weights and evidence scores within 0.15 (a switch at
    one gap scored two such draws 0.4–0.5 apart)."""
    from scipy import ndimage

    from medq.assess.detector import assessed_evidence
    from medq.assess.loading import load_measured

    clean = head_ct()
    weights, scores = [], []
    for seed in range(4):
        noise = ndimage.gaussian_filter(np.random.default_rng(seed).normal(0, 1, clean.shape), 0.7)
        loaded = load_measured(clean.with_array(clean.array + 40.0 * noise / noise.std()),
                               None, False)
        weights.append(loaded.noise_weight)
        scores.append(assessed_evidence(loaded.rows, loaded.features, loaded.image,
                                        loaded.noise_weight).score)
    assert min(weights) > 0.0 and max(weights) < 1.0, weights
    assert max(weights) - min(weights) < 0.1 and max(scores) - min(scores) < 0.15, scores


def test_a_finding_is_named_from_the_severity_it_shows() -> None:
    """The assessment names a finding's severity from the value it shows (two decimals), as the
    description names its own: 1.4971 shows as 1.5 and is moderate in both, where the
    assessment called it mild."""
    from medq.assess.assessment import findings_from
    from medq.assess.detector import Decision, Evidence
    from medq.assess.models.blocks import FINDING_TYPES

    noise = FINDING_TYPES.index("noise")
    zeros = np.zeros(len(FINDING_TYPES))
    (found,) = findings_from(Evidence(3.0, zeros + 0.9, Decision({noise: 1.4971}, [], []),
                                      zeros), {})
    assert (found["severity"], found["evidence"]["severity_value"]) == ("moderate", 1.5)
