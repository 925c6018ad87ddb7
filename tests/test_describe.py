"""The description stage on real images: findings, location, text, metrics, CLI and benchmark."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import dicom_testfile
from medq.assess.detector import severity_for
from medq.assess.models.blocks import FINDING_TYPES
from medq.data.samples import export_samples, load_sample
from medq.degrade import simulate
from medq.describe import VERDICTS, Finding, QualityReport, report_from, verdict_for
from medq.describe.metrics import (
    accuracy,
    allowed_verdicts,
    completeness,
    consistency,
    preciseness,
    reference,
    score_description,
)
from medq.describe.schema import score_for
from medq.errors import InvalidParameter
from medq.io import load


@pytest.fixture(scope="module")
def assessor():
    from medq.assess.predictor import Assessor

    return Assessor("mediqa-s")


@pytest.fixture(scope="module")
def ct():
    return load_sample("ct_small")


def _report(assessor, image) -> QualityReport:
    return report_from(assessor.assess(image), image)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=\.)\s+", text.strip()) if s]


# ------------------------------------------------------------------------------- rules and schema
def test_verdict_and_severity_rules() -> None:
    assert [verdict_for(s) for s in (5.0, 3.5, 3.49, 2.5, 2.49, 1.0)] == \
        ["good", "good", "usable", "usable", "reject", "reject"]
    assert [severity_for(v) for v in (0.0, 0.49, 0.5, 1.5, 2.49, 2.5, 3.4)] == \
        ["none", "none", "mild", "moderate", "moderate", "severe", "severe"]
    assert score_for([]) == 5.0
    assert score_for([3.0]) == 1.0
    assert score_for([1.5]) == pytest.approx(3.0)


def test_report_rule_and_score_with_sub_mild_estimates() -> None:
    from medq.assess.detector import decide, findings_score

    prob = np.array([0.9, 0.2, 0.05, 0.6, 0.9])
    sev = np.array([1.8, 0.3, 0.1, 0.7, 2.0])
    allowed = np.array([True, True, True, True, False])
    d = decide(prob, sev, allowed, np.full(5, 0.5), normal_fraction=0.2)
    assert d.reported == {0: 1.8, 3: 0.7}  # type 4 is not made for this modality
    assert d.normal == [2]  # 0.05 < 0.2 · 0.5; type 1 (0.2) is neither reported nor denied
    assert d.below == [0.3]  # type 2's 0.1 is under the floor
    assert decide(prob, sev, allowed, np.full(5, 0.5), 0.0).normal == []
    # sub-mild estimates lower the score, together by at most one more mild finding
    assert findings_score([1.8]) == score_for([1.8])
    assert findings_score([1.8], [0.3]) == pytest.approx(score_for([1.8, 0.3]))
    assert findings_score([], [0.45] * 4) == pytest.approx(score_for([0.5]))
    for below in ([], [0.3], [0.49] * 6):
        verdict = verdict_for(findings_score([0.6], below))
        assert consistency({"noise": "mild"}, verdict) == 2


# ------------------------------------------------------------------------------------- metrics
def test_reference_from_real_engine_records(ct) -> None:
    noisy, rec = simulate(ct, "ct_low_dose", severity="severe", seed=0)
    both, _ = simulate(noisy, "blur", severity="mild", seed=0)
    ref = reference(both.meta["degradations"])
    assert ref["findings"] == {"noise": "severe", "blur": "mild"}
    assert ref["verdict"] == "reject"
    assert reference([])["verdict"] == "good" and reference([])["findings"] == {}


def test_metric_dimensions_follow_their_rules(ct) -> None:
    image, _ = simulate(ct, "ct_low_dose", severity="moderate", seed=0)
    records = image.meta["degradations"]
    ref = reference(records)["findings"]
    assert ref == {"noise": "moderate"}
    assert completeness({"noise": "mild"}, ref) == 2
    assert completeness({"blur": "moderate"}, ref) == 0
    assert completeness({}, {}) == 2
    assert preciseness({"noise": "moderate"}, ["blur"], ref) == 2
    assert preciseness({"noise": "moderate", "blur": "mild"}, [], ref) == 1  # minor false finding
    assert preciseness({"noise": "moderate"}, ["noise"], ref) == 0  # "noise is low": denial
    assert preciseness({"noise": "mild", "streak": "severe"}, [], ref) == 0
    assert preciseness({"noise": "severe"}, [], {"noise": "mild"}) == 0  # two levels apart
    assert allowed_verdicts({}) == ["good"]
    assert allowed_verdicts({"noise": "moderate"}) == ["usable", "reject"]
    assert consistency({"noise": "severe"}, "reject") == 2
    assert consistency({"noise": "severe"}, "usable") == 1
    assert consistency({}, "reject") == 0
    assert accuracy("good", "good") == 2 and accuracy("usable", "good") == 1
    assert accuracy("reject", "good") == 0
    verdict = reference(records)["verdict"]
    assert verdict in allowed_verdicts({"noise": "moderate"})
    row = score_description([Finding("noise", "moderate", 0.9)], ["blur"], verdict, records)
    assert row["total"] == 8 and row["type_hits"] == [("noise", True)]
    assert (row["verdict"], row["reference_verdict"]) == (verdict, verdict)
    worse = score_description([Finding("blur", "severe", 0.9)], ["noise"], "good", records)
    assert (worse["completeness"], worse["preciseness"], worse["consistency"]) == (0, 0, 0)


# ------------------------------------------------------------------------------- the description
def test_clean_ct_report_is_well_formed_and_deterministic(assessor, ct) -> None:
    a = assessor.assess(ct)
    first, second = report_from(a, ct), report_from(a, ct)
    assert first.text == second.text and first.to_dict() == second.to_dict()
    sentences = _sentences(first.text)
    assert 2 <= len(sentences) <= 5
    assert sentences[-1] == f"Overall, the quality of this image is {first.verdict}."
    assert first.verdict in VERDICTS and first.verdict == verdict_for(first.score)
    assert first.modality == "CT" and first.basis == "detector"
    assert first.assess_score == a.score and first.model_score == a.model_score  # as assess's
    data = json.loads(json.dumps(first.to_dict()))
    assert list(data)[0] == "path"
    pred = {f.type: f.severity for f in first.findings}
    assert consistency(pred, first.verdict) == 2
    assert not set(pred) & set(first.normal)


@pytest.mark.parametrize(("kind", "finding"), [("ct_low_dose", "noise"),
                                               ("ct_sparse_view", "streak")])
def test_severe_ct_degradation_is_found_and_verdict_drops(assessor, ct, kind, finding) -> None:
    clean = _report(assessor, ct)
    image, _ = simulate(ct, kind, severity="severe", seed=1)
    report = _report(assessor, image)
    types = {f.type: f for f in report.findings}
    assert finding in types, report.text
    assert types[finding].severity != "none" and finding not in report.normal
    if kind == "ct_low_dose":  # severe streaks on CT_small are graded mild: a known weakness
        assert types[finding].severity in ("moderate", "severe")
    assert VERDICTS.index(report.verdict) > VERDICTS.index(clean.verdict) or \
        report.verdict == "reject"
    f = types[finding]
    assert 0 <= f.confidence <= 1 and f.evidence["probability"] == f.confidence
    assert "head_presence" in f.evidence  # the model's finding head, quoted next to the detector


def test_mr_noise_and_radiograph_noise_are_found(assessor) -> None:
    for name, kind in (("mr_small", "mr_noise"), ("xr_head", "xr_quantum_noise")):
        image, _ = simulate(load_sample(name), kind, severity="severe", seed=0)
        report = _report(assessor, image)
        assert "noise" in {f.type for f in report.findings}, (name, report.text)
        assert report.verdict != "good"


def test_findings_are_restricted_to_the_modality(assessor) -> None:
    from medq.assess.assessment import finding_types_for

    retina = load_sample("retina")
    image, _ = simulate(retina, "fundus_illumination", severity="severe", seed=0)
    report = _report(assessor, image)
    allowed = set(finding_types_for("OP"))
    assert {f.type for f in report.findings} <= allowed
    assert set(report.normal) <= allowed
    assert "streak" not in report.text and "k-space" not in report.text


def test_unknown_modality_gets_generic_findings_only(assessor) -> None:
    from skimage import data

    from medq.assess.assessment import finding_types_for
    from medq.image import MedImage

    generic = ("noise", "blur", "low_resolution", "low_contrast")
    assert finding_types_for("OT") == generic
    # a photograph of a man with a camera: its tripod and coat edges once read as CT streaks,
    # and the prompt classifier (which knows only medical modalities) guesses a modality for it
    photo = MedImage(data.camera().astype("float32"), (), "OT", "unknown")
    assessment = assessor.assess(photo)
    assert {f["type"] for f in assessment.findings} <= set(generic)
    report = report_from(assessment, photo)
    assert {f.type for f in report.findings} <= set(generic), report.text
    assert set(report.normal) <= set(generic)
    assert "streak" not in report.text


def test_the_no_finding_sentence_names_only_what_the_modality_is_checked_for() -> None:
    # a fundus photograph is not checked for artefacts: "No definite … artefact" claimed more
    from medq.describe.text import compose

    assert "No definite noise, blur or uneven illumination is identified." in compose(
        [], [], "good", "OP")
    assert "No definite noise, blur or artefact is identified." in compose([], [], "good", "MR")
    assert "No definite noise or blur is identified." in compose([], [], "good", "PT")
    for other in ("", "NM", "unknown"):  # no finding types known: the general sentence
        assert "No definite noise, blur or artefact" in compose([], [], "good", other)


def test_a_noisy_fundus_photograph_is_described_as_noisy(assessor) -> None:
    """Camera noise is a finding type of fundus photographs: heavy noise of another model than
    the engine's (additive Gaussian on the 8-bit values, σ 40 and 15 of 255) is named and graded,
    the clean photograph gets no noise finding. Before, a fundus photograph was not checked for
    noise and heavy noise read "No definite blur or uneven illumination … good"."""
    from skimage import data

    from medq.describe import report_from
    from medq.io.arrays import from_array

    retina = data.retina()[::4, ::4]  # 353² RGB
    reports = {}
    for sigma in (0, 15, 40):
        noise = np.random.default_rng(0).normal(0, sigma, retina.shape)
        pixels = np.clip(retina + noise, 0, 255).astype(np.uint8)
        image = from_array(pixels, modality="OP")
        reports[sigma] = report_from(assessor.assess(image), image)
    noise = {s: next((f for f in r.findings if f.type == "noise"), None)
             for s, r in reports.items()}
    assert noise[0] is None and reports[0].verdict != "reject"
    assert noise[15] is not None and noise[40] is not None
    assert noise[40].severity in ("moderate", "severe") and reports[40].verdict == "reject"
    assert noise[40].severity_value > noise[15].severity_value
    assert "sensor noise" in reports[40].text or "camera noise" in reports[40].text
    assert reports[0].score > reports[15].score > reports[40].score


def test_every_phrase_names_its_location_once() -> None:
    # "streak artefacts radiate across the image throughout the image" said the place twice
    from medq.describe.text import PHRASES, WHERE

    checked = 0
    for groups in PHRASES.values():
        for options in groups.values():
            for where in WHERE.values():
                for option in options:  # every option, whichever a key would pick
                    clause = option.format(adj="marked", adv="markedly", where=where)
                    assert clause.count("the image") <= 1, clause
                    checked += 1
    assert checked >= len(PHRASES) * len(WHERE)


def test_phrasing_varies_by_finding_type_and_modality() -> None:
    from medq.describe.text import compose

    texts = {compose([Finding(kind, "moderate", 0.9, severity_value=2.0)], [], "usable", mod)
             for kind, mod in (("noise", "CT"), ("noise", "MR"), ("noise", "DX"),
                               ("streak", "CT"), ("aliasing", "MR"), ("blur", "CT"))}
    assert len(texts) == 6
    ct_noise = compose([Finding("noise", "severe", 0.9, "central", severity_value=3.0)], [],
                       "reject", "CT")
    assert "mottle" in ct_noise and "centrally" in ct_noise
    alias = compose([Finding("aliasing", "moderate", 0.9, severity_value=2.0)], [], "usable",
                    "MR")
    assert "phase-encode" in alias
    fine = compose([], ["noise", "blur", "streak"], "good", "CT")
    assert "Noise is low" in fine and "sharp" in fine and "streak" in fine
    many = compose([Finding(k, "mild", 0.9, severity_value=1.0) for k in
                    ("noise", "blur", "streak", "low_contrast", "low_resolution")], [], "usable",
                   "CT", slices=[{"index": i} for i in range(7)], shape=[30, 64, 64])
    assert 2 <= len(_sentences(many)) <= 5
    assert _sentences(many)[-1] == "Overall, the quality of this image is usable."
    gaps = {"spacing_mm": 2.0, "largest_step_mm": 4.0, "smallest_step_mm": 2.0, "gaps": 1,
            "missing_slices": 1}
    noisy = {"slices": [3, 4], "runs": [[3, 4]], "ratio": 2.5, "compared": 40}
    quiet = compose([], ["noise"], "good", "MR", outliers=noisy)
    assert "No definite noise" not in quiet and "Noise is raised on slices 3–4 (2 of 40" in quiet
    assert "Noise is low" not in quiet
    for findings in ([], [Finding(k, "mild", 0.9, severity_value=1.0) for k in
                          ("noise", "blur", "streak", "low_contrast")]):
        text = compose(findings, ["blur"], "usable", "CT", gaps=gaps, outliers=noisy)
        assert 2 <= len(_sentences(text)) <= 5 and "Coverage is incomplete" in text
        assert "Noise is raised on slices 3–4" in text


def test_a_ct_noise_finding_states_its_level_in_hu(assessor) -> None:
    """CT noise is named with the σ a reader would measure in a uniform region (the flat-window
    σ of the classical measures), and the number follows the dose; no HU for MR noise or when
    the measures were not taken."""
    from medq.describe.text import compose

    ct = load_sample("ct_small")
    levels = []
    for severity in ("moderate", "severe"):
        report = report_from(assessor.assess(simulate(ct, "ct_low_dose", severity=severity,
                                                      seed=0)[0]))
        found = re.search(r"σ ≈ (\d+) HU in the flattest tissue", report.text)
        assert found and "noise" in [f.type for f in report.findings], report.text
        levels.append(int(found.group(1)))
    assert levels[0] < levels[1]
    measured = {"noise_sigma_flat": 24.6}
    for modality, evidence, shown in (("CT", measured, True), ("MR", measured, False),
                                      ("CT", {}, False)):
        text = compose([Finding("noise", "moderate", 0.9, evidence=evidence)], [], "usable",
                       modality)
        assert ("σ ≈ 25 HU" in text) is shown, text
    streaky = compose([Finding("streak", "moderate", 0.9),
                       Finding("noise", "mild", 0.9, evidence=measured)], [], "reject", "CT")
    assert "(σ ≈ 25 HU in the flattest tissue, streaks included)" in streaky
    assert "streaks included" not in compose([Finding("noise", "mild", 0.9, evidence=measured)],
                                             [], "usable", "CT")


def test_noise_in_the_upper_half_is_located_superior(ct) -> None:
    from medq.describe.location import locate

    rng = np.random.default_rng(0)
    a = ct.array.copy()
    half = a.shape[0] // 2
    a[:half] += rng.normal(0, 60, a[:half].shape).astype(np.float32)
    assert locate("noise", ct.with_array(a)) == "superior"
    assert locate("low_contrast", ct) == "global"


def test_report_without_image_uses_the_assessed_file(assessor, tmp_path: Path) -> None:
    export_samples(tmp_path, ["ct_small"])
    path = next(tmp_path.glob("ct_small*.dcm"))
    a = assessor.assess(path)
    assert report_from(a).basis == "detector"  # loaded back from assessment.path
    a.path = None
    fallback = report_from(a)
    assert fallback.basis == "finding heads"
    assert fallback.text.endswith(f"Overall, the quality of this image is {fallback.verdict}.")


def test_lossy_file_is_said_so_without_moving_the_score(assessor) -> None:
    path = dicom_testfile("693_J2KI.dcm")  # JPEG 2000 at 339:1, as its header states
    a = assessor.assess(path)
    assert a.lossy_compression["ratio"] == pytest.approx(338.687, abs=1e-3)
    report = report_from(a)
    assert report.lossy_compression == a.lossy_compression
    assert "lossy compression (JPEG 2000) at about 339:1" in report.text
    # its low resolution (the 339:1 wavelet coding smears the anatomy) is put down to it
    assert [f.type for f in report.findings] == ["low_resolution"]
    assert "339:1, which may account for the loss of fine detail." in report.text
    assert 2 <= len(_sentences(report.text)) <= 5
    assert report.text.endswith(f"Overall, the quality of this image is {report.verdict}.")
    # a fact about the file, not the pixels: the same pixels without the flag score the same
    image = load(path)
    plain = image.evolve(meta={k: v for k, v in image.meta.items() if k != "lossy_compression"})
    b = assessor.assess(plain)
    assert b.lossy_compression is None and b.score == a.score
    assert "lossy" not in report_from(b, plain).text


def test_assessment_keeps_raw_finding_scores(assessor, ct) -> None:
    a = assessor.assess(ct)
    assert set(a.finding_scores) == set(FINDING_TYPES)
    for v in a.finding_scores.values():
        assert 0.0 <= v["presence"] <= 1.0 and 0.0 <= v["expected_severity"] <= 3.0


# ------------------------------------------------------------------------------ detector and bench
def test_shipped_detector_is_calibrated_on_training_sources_only() -> None:
    from medq.assess.detector import load_detector
    from medq.assess.evidence import FEATURE_NAMES
    from medq.data.sources import sources

    det = load_detector()
    cal = det.calibration
    assert set(cal["trained_on"]["sources"]) <= {s.name for s in sources("train")}
    assert cal["features"][:len(FEATURE_NAMES)] == list(FEATURE_NAMES)
    assert set(det.thresholds) == set(FINDING_TYPES)
    p, s = det.predict(np.zeros(len(cal["features"])))
    assert p.shape == s.shape == (1, len(FINDING_TYPES))


def test_bench_items_come_from_the_test_sources_and_round_trip(tmp_path: Path,
                                                               monkeypatch) -> None:
    from medq.data.items import degraded_item
    from medq.data.sources import source_named, sources
    from medq.describe.bench import DescribePlan, _make, jobs, load_item

    plan = DescribePlan(per_2d=2, per_3d=1)
    todo = jobs(plan)
    assert todo == jobs(plan)
    assert {name for name, _, _ in todo} == {s.name for s in sources("test")}
    job = next(j for j in todo if j[0] == "retina_right")
    image, header = load_item(_make(job, str(tmp_path)))
    again, _ = load_item(_make(job, str(tmp_path / "again")))
    np.testing.assert_array_equal(image.array, again.array)
    assert header["source"] == "retina_right" and image.modality == "OP"
    # what was stored is the item `degraded_item` makes: pixels, geometry and engine records
    made, records = degraded_item(source_named("retina_right", "test"), job[1], job[2])
    np.testing.assert_array_equal(image.array, made.array)
    assert (image.spacing, image.modality, image.region) == (
        tuple(made.spacing), made.modality, made.region)
    assert records and json.loads(json.dumps(records)) == header["meta"]["degradations"]
    assert image.meta.get("degradations", []) == header["meta"].get("degradations", [])


def test_bench_summary_per_source_names_the_lossy_one(ct) -> None:
    from medq.describe.bench import summary

    records = simulate(ct, "ct_low_dose", severity="moderate", seed=0)[0].meta["degradations"]
    rows = []
    for source, found in (("ct_693", []), ("ct_693", [("noise", "moderate")]),
                          ("ct_small", [("noise", "moderate")]),
                          ("mni_ct_test", [("noise", "moderate"), ("blur", "mild")])):
        verdict = "reject" if found else "good"
        row = score_description([{"type": t, "severity": s} for t, s in found], [], verdict,
                                records)
        assert row["verdict"] == verdict  # the summary reads it from the row (the probes' rows too)
        rows.append(dict(row, source=source, dim="2d", group="CT"))
    out = summary(rows)
    assert reference(records)["verdict"] == "reject"  # moderate dose noise on CT_small
    assert out["contradictions"] == {"CT blur: false finding (minor)": 1}  # where points went
    assert out["verdicts"] == {"CT reject → good": 1}
    assert list(out["lossy_sources"]) == ["ct_693"]  # JPEG 2000 at 339:1 by its header
    assert out["per_source"]["ct_693"]["n"] == 2
    assert out["per_source"]["ct_693"]["total"] == np.mean([r["total"] for r in rows[:2]])
    assert out["per_source"]["ct_small"]["total"] == rows[2]["total"] > rows[0]["total"]
    totals = [r["total"] for r in rows]  # the total's bootstrap interval spans the items' range
    low, high = out["overall"]["total_ci"]
    assert min(totals) <= low <= out["overall"]["total"] <= high <= max(totals)
    assert np.isnan(out["per_source"]["ct_small"]["total_ci"]).all()  # one item: no interval


@pytest.mark.slow
def test_calibration_fits_on_real_training_items(tmp_path: Path, monkeypatch) -> None:
    from medq.assess.detector import HEAD_NAMES, Detector
    from medq.assess.evidence import FEATURE_NAMES
    from medq.describe import calibrate, calibrate_cli, calibration_data

    monkeypatch.setenv("MEDQ_CACHE_DIR", str(tmp_path))
    data = calibration_data.build(28, 0, workers=1)
    assert data["x"].shape[0] == 28 and np.isfinite(data["x"]).all()
    assert set(data["source"]) <= {s.name for s in __import__(
        "medq.data.sources", fromlist=["sources"]).sources("train")}
    cal = calibrate.fit(data, steps=50, ensemble=1)
    assert cal["features"] == list(data["features"]) == list(FEATURE_NAMES)  # columns named
    # a heads calibration of named columns lists the heads after them
    heads = calibrate.fit({**data, "h": np.zeros((28, len(HEAD_NAMES)), np.float32)},
                          "mediqa-s", steps=50, ensemble=1)
    assert heads["features"] == [*FEATURE_NAMES, *HEAD_NAMES]
    totals = cal["validation"]["total_by_normal_fraction"]
    assert set(totals) == {str(f) for f in calibrate.NORMAL_FRACTIONS}
    assert totals[str(cal["normal_fraction"])] == max(totals.values())
    p, s = Detector(cal).predict(data["x"])
    assert p.shape == (28, len(FINDING_TYPES)) and (s >= 0).all()
    # a cached data file refits to the same detector (the fit is deterministic)
    saved = tmp_path / "calibration-data.npz"
    np.savez(saved, **data)
    again = calibrate.fit(calibration_data.read_data(saved), steps=50, ensemble=1)
    assert again["nets"] == cal["nets"] and again["thresholds"] == cal["thresholds"]
    # a wider recipe with dropout: layers of that width, a different fit of the same items
    wide = calibrate.fit(data, steps=50, ensemble=1, hidden=16, dropout=0.3)
    assert [np.shape(layer["w"]) for layer in wide["nets"][0]] == [
        (data["x"].shape[1], 16), (16, 16), (16, 2 * len(FINDING_TYPES))]
    assert not np.allclose(Detector(wide).predict(data["x"])[1], s)
    # cross-fitted: one net per fold, every item predicted out of fold to choose the thresholds
    crossed = calibrate.fit(data, steps=50, ensemble=1, folds=3)
    assert len(crossed["nets"]) == 3 and crossed["folds"] == 3
    assert crossed["validation"]["items"] == crossed["trained_on"]["items"] == 28
    # blended with gradient-boosted trees: the same nets, JSON-ready, outputs halfway between
    blended = json.loads(json.dumps(calibrate.fit(data, steps=50, ensemble=1, trees=0.5)))
    assert blended["nets"] == cal["nets"] and blended["trees"]["weight"] == 0.5
    nets_only = Detector({**blended, "trees": None}).predict(data["x"])
    trees_only = Detector({**blended, "trees": {**blended["trees"], "weight": 1.0}}
                          ).predict(data["x"])
    both = Detector(blended).predict(data["x"])
    assert np.allclose(nets_only[0], p) and np.allclose(both[0], (p + trees_only[0]) / 2)
    with pytest.raises(InvalidParameter, match="one 80/20 split"):
        calibrate.fit(data, steps=50, ensemble=1, folds=3, trees=0.5)
    # the command fits the full planes on central-zoom items unless told otherwise
    out = tmp_path / "detector.json"
    calibrate_cli.main(["--n2d", "12", "--n3d", "0", "--workers", "1", "--output", str(out)])
    central = calibration_data.data_path(12, 0, zoom="central")
    assert json.loads(out.read_text())["data_file"] == central.name and central.exists()
    assert not calibration_data.data_path(12, 0).exists()


def test_heads_calibration_leaves_out_items_the_model_refuses(monkeypatch) -> None:
    """A zoomed training view that holds only air is blank: the quality model refuses it
    (InvalidImage), so a `--heads` calibration leaves the item out instead of failing after
    minutes of work; the evidence-only calibration keeps it, and its view features too."""
    from medq.describe import calibration_data as data

    real = data.degraded_item

    def blank(*args, **kwargs):
        image, records = real(*args, **kwargs)
        return image.evolve(array=np.zeros_like(image.array)), records

    monkeypatch.setattr(data, "degraded_item", blank)
    job = data._jobs(1, 0)[0]
    assert data._row(job, "mediqa-s") is None
    kept = data._row(job, None)
    assert kept is not None and kept["x"].shape == (len(data.FEATURE_NAMES),)
    assert data._row(job, None, view=True)["x"].shape == kept["x"].shape
    extra = data._row(job, None, extras=("spike_contrast",))["x"]
    assert extra.shape == (len(data.FEATURE_NAMES) + 1,) and np.array_equal(extra[:-1], kept["x"])


def test_calibration_data_file_errors_are_clear(tmp_path: Path) -> None:
    from medq.describe import calibrate_cli
    from medq.describe.calibration_data import read_data
    from medq.errors import InvalidParameter, UnreadableImage

    export_samples(tmp_path)
    with pytest.raises(UnreadableImage, match="not a calibration data file"):
        read_data(tmp_path / "ct_small.dcm")
    partial = tmp_path / "partial.npz"
    np.savez(partial, x=np.zeros((2, 3)), y=np.zeros((2, len(FINDING_TYPES))))
    with pytest.raises(InvalidParameter, match="lacks modality, source, dim"):
        read_data(partial)
    narrow = tmp_path / "narrow.npz"
    np.savez(narrow, x=np.zeros((2, 3)), y=np.zeros((2, len(FINDING_TYPES))),
             modality=np.array(["MR", "CT"]), source=np.array(["a", "b"]),
             dim=np.array(["2d", "2d"]))
    with pytest.raises(InvalidParameter, match="has 3 features: medq computes"):
        read_data(narrow)
    with pytest.raises(SystemExit) as stop:  # the extras are full-plane features
        calibrate_cli.main(["--view", "--extras", "spike_contrast", "--output",
                        str(tmp_path / "c.json")])
    assert stop.value.code == 2 and not (tmp_path / "c.json").exists()
    with pytest.raises(SystemExit) as stop:
        calibrate_cli.main(["--data", str(partial), "--output", str(tmp_path / "c.json")])
    assert stop.value.code == 2 and not (tmp_path / "c.json").exists()
    with pytest.raises(SystemExit) as stop:  # a negative count of ladders
        calibrate_cli.main(["--ladders", "-3", "--output", str(tmp_path / "c.json")])
    assert stop.value.code == 2 and not (tmp_path / "c.json").exists()


# ---------------------------------------------------------------------------------------- CLI
def test_cli_describe_json_ct_and_nifti_with_a_bad_file(tmp_path: Path) -> None:
    from conftest import run_medq

    export_samples(tmp_path, ["ct_small", "mni_t1"])
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"not an image")
    ct_path = next(tmp_path.glob("ct_small*.dcm"))
    nii = next(tmp_path.glob("mni_t1*.nii*"))
    res = run_medq("describe", ct_path, bad, nii, "--json")
    assert res.returncode == 2
    rows = json.loads(res.stdout)
    assert [r["path"] for r in rows] == [str(ct_path), str(bad), str(nii)]
    assert rows[1]["error"]["type"] and "broken.dcm" in res.stderr
    for row in (rows[0], rows[2]):
        assert row["verdict"] in VERDICTS
        assert row["text"].endswith(f"Overall, the quality of this image is {row['verdict']}.")
        assert isinstance(row["findings"], list)
    assert "salient slices" in rows[2]["text"]  # coverage of the volume
    assert rows[0]["modality"] == "CT" and rows[2]["modality"] == "MR"


def test_cli_describe_json_says_where_the_modality_came_from(tmp_path: Path) -> None:
    """`modality_source` names the source of `modality` as `medq assess --json`'s prompts do:
    the DICOM header (`tags`), the prompt classifier's sure guess for a bare file (`predicted`),
    `--modality` (`user`), Hounsfield values (`values`), nothing (`default`, OT)."""
    import medq
    from conftest import run_medq

    mr, ct = load_sample("mr_small").array, load_sample("ct_small").array
    t1 = load_sample("mni_t1").array
    np.save(tmp_path / "mr.npy", mr)  # bare: no header, no sidecar
    np.save(tmp_path / "ct.npy", ct)
    np.save(tmp_path / "sagittal.npy", np.ascontiguousarray(t1[:, :, t1.shape[2] // 2]))
    dicom = dicom_testfile("MR_small.dcm")
    res = run_medq("describe", dicom, tmp_path / "mr.npy", tmp_path / "ct.npy",
                   tmp_path / "sagittal.npy", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [(r["modality"], r["modality_source"]) for r in rows] == [
        ("MR", "tags"), ("MR", "predicted"), ("CT", "values"), ("OT", "default")]
    assert list(rows[0])[:3] == ["path", "modality", "modality_source"]
    named = run_medq("describe", tmp_path / "sagittal.npy", tmp_path / "mr.npy", "--modality",
                     "MR", "--json")
    assert named.returncode == 0, named.stderr
    assert [(r["modality"], r["modality_source"]) for r in json.loads(named.stdout)] == [
        ("MR", "user"), ("MR", "user")]
    report = report_from(medq.assess(tmp_path / "mr.npy"))  # the Python API too
    assert report.modality_source == "predicted"
    assert QualityReport.from_dict(report.to_dict()).modality_source == "predicted"


def test_an_extension_answers_for_its_group_and_types_alone(tmp_path: Path, monkeypatch) -> None:
    """`--extend OP:noise` fits nets on photographs' items alone for camera noise, on the
    shipped view calibration's scaling; every other type, and every other modality group, reads
    as before; the extension's threshold is its group's, and bad requests are refused."""
    from scipy.stats import spearmanr

    from medq.assess.detector import VIEW_CALIBRATION_PATH, Detector
    from medq.describe import calibrate_cli, calibration_data
    from medq.describe.extension import extend, parse_extension
    from medq.errors import InvalidParameter

    monkeypatch.setenv("MEDQ_CACHE_DIR", str(tmp_path))
    base = json.loads(VIEW_CALIBRATION_PATH.read_text())
    base = {**base, "extensions": [], "thresholds": {k: v for k, v in base["thresholds"].items()
                                                     if k != "noise@OP"}}
    data = calibration_data.build(60, 0, workers=1, view=True, source_names=("retina_left",))
    assert set(data["source"]) == {"retina_left"} and set(data["modality"]) == {"OP"}
    cal = extend(base, data, "OP", ("noise",), steps=300, ensemble=1)
    assert [e["group"] for e in cal["extensions"]] == ["OP"] and "noise@OP" in cal["thresholds"]
    plain, extended = Detector(base), Detector(json.loads(json.dumps(cal)))
    j = FINDING_TYPES.index("noise")
    for group in ("CT", "MR", "XR"):  # other groups: exactly the calibration's own reading
        assert np.array_equal(plain.predict(data["x"], group)[0], extended.predict(data["x"],
                                                                                  group)[0])
    p0, s0 = plain.predict(data["x"], "OP")
    p1, s1 = extended.predict(data["x"], "OP")
    others = [k for k in range(len(FINDING_TYPES)) if k != j]
    assert np.array_equal(p0[:, others], p1[:, others]) and not np.allclose(s0[:, j], s1[:, j])
    truth = data["y"][:, j]
    assert spearmanr(s1[:, j], truth)[0] > 0.7  # it learned the noise of the items it saw
    # extending again replaces the group's extension; the CLI writes it in place
    out = tmp_path / "view.json"
    out.write_text(json.dumps(cal))
    calibrate_cli.main(["--view", "--extend", "OP:noise", "--sources", "retina_left",
                        "--n2d", "60", "--n3d", "0", "--output", str(out)])
    assert [e["group"] for e in json.loads(out.read_text())["extensions"]] == ["OP"]
    with pytest.raises(InvalidParameter):
        parse_extension("OP:sparkle")
    with pytest.raises(InvalidParameter, match="GROUP:TYPE"):
        parse_extension("noise")
    with pytest.raises(InvalidParameter, match="makes no streak for OP"):
        parse_extension("OP:streak")  # refused before any item is built
    assert parse_extension("op:noise,noise") == ("OP", ("noise",))
    keys = {calibration_data.data_path(60, 0, view=True, source_names=s)
            for s in ((), ("retina_left",), ("body_ct",))}
    assert len(keys) == 3  # each choice of sources its own cache
    with pytest.raises(InvalidParameter, match="no items of CT"):
        extend(base, data, "CT", ("noise",), steps=10, ensemble=1)
    with pytest.raises(InvalidParameter, match="not training sources"):
        calibration_data.build(4, 0, workers=1, source_names=("retina_right",))  # a test source


def test_a_volume_is_read_as_its_slices_are(assessor) -> None:
    """A small MR series with Rician noise: the volume's noise finding is its slices' (a new
    user's 60×50 four-slice series read mild noise as a volume, each slice moderate), and the
    volume gets no finding its slices lack (it had a false mild low contrast)."""
    from skimage.transform import resize

    from medq.assess.detector import load_detector
    from medq.assess.evidence import FEATURE_NAMES
    from medq.describe import report_from
    from medq.io.arrays import from_array

    t1 = load_sample("mni_t1").array
    middle = t1.shape[2] // 2
    planes = [resize(t1[:, :, z], (60, 50), anti_aliasing=True) for z in range(middle - 6,
                                                                                middle + 6, 3)]
    rng = np.random.default_rng(0)
    sigma = 0.1 * max(float(p.max()) for p in planes)
    noisy = [np.hypot(p + rng.normal(0, sigma, p.shape), rng.normal(0, sigma, p.shape))
             for p in planes]

    def noise_of(array: np.ndarray) -> tuple[float, set[str]]:
        image = from_array(array.astype(np.float32), spacing=(3.0, 3.5, 3.5)[-array.ndim:],
                           modality="MR")
        report = report_from(assessor.assess(image), image)
        found = {f.type: f.severity_value for f in report.findings}
        return found.get("noise", 0.0), set(found)

    volume, kinds = noise_of(np.stack(noisy))
    slices = [noise_of(p) for p in noisy]
    assert volume >= 1.5 and abs(volume - np.mean([v for v, _ in slices])) < 0.2  # was 0.5
    assert kinds <= set().union(*(k for _, k in slices))
    volume_x, slice_x = np.zeros((2, 1, len(FEATURE_NAMES)))
    volume_x[0, FEATURE_NAMES.index("is_3d")] = 1.0
    detector = load_detector()  # the nets read a volume's features as a slice's
    assert np.array_equal(detector.standardised(volume_x)[1], detector.standardised(slice_x)[1])
