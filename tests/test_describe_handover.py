"""The detector's features taken by the Assessor's loader (`Assessor(describe=True)`): the same
numbers the description computes itself, so the same reports, and never in the JSON."""

from __future__ import annotations

import numpy as np
import pytest

from medq.assess.detector import load_detector
from medq.assess.evidence import SHARED_MEASURES, feature_vector, reads_full_planes
from medq.assess.loading import plane_measures
from medq.assess.predictor import Assessor
from medq.data.samples import load_sample
from medq.describe import report_from
from medq.io.arrays import as_image
from medq.io.polarity import as_displayed


@pytest.fixture(scope="module")
def images() -> list:
    """2D CT, MR, radiograph and photograph, a 3D volume, a CT slice with NaN pixels and one
    whose body is a few pixels (where the measures' mask and the features' differ)."""
    ct = load_sample("ct_small")
    holed = ct.array.astype(np.float32)
    holed[40:44, 50:60] = np.nan
    speck = np.zeros((64, 64), np.float32)
    speck[30:33, 30:33] = 1000.0
    speck += np.random.default_rng(0).normal(0, 5, speck.shape).astype(np.float32)
    volume = load_sample("mni_t1")
    return [ct, load_sample("mr_small"), load_sample("xr_head"), load_sample("retina"),
            volume.with_array(volume.array[60:100]), ct.with_array(holed),
            ct.with_array(speck)]


def test_loader_features_equal_the_description_s_own(images: list) -> None:
    """Taken by the loader (reading the measures they share) or by the description afresh, the
    features are equal to the bit, and so are the reports; `to_dict` leaves them out. A plain
    assessment takes them only for the planes it reads whole (the 1411-px photograph)."""
    extras = load_detector().extras
    handed = Assessor(describe=True).assess_many(images)
    plain = Assessor().assess_many(images)
    for image, with_features, without in zip(images, handed, plain, strict=True):
        if reads_full_planes(image):
            assert without.detector_features == with_features.detector_features
        else:
            assert without.detector_features is None
        indices = [s["index"] for s in with_features.slices] if with_features.slices else None
        read = as_displayed(as_image(image))  # as the description reads it (NaN replaced)
        fresh = feature_vector(read, indices, extras)
        np.testing.assert_array_equal(np.asarray(with_features.detector_features, np.float32),
                                      fresh)
        assert report_from(with_features, image).to_dict() == \
            report_from(without, image).to_dict()
        assert "detector_features" not in with_features.to_dict()
        assert with_features.to_dict() == without.to_dict()


def test_shared_measures_are_the_features_own_computation(images: list) -> None:
    """Each shared measure, handed over, gives the features computed without it; a wrong value
    handed over changes them (so the hand-over is really read)."""
    ct = as_displayed(images[0])
    measured = plane_measures(ct, [0])
    assert set(SHARED_MEASURES) <= set(measured[0])
    fresh = feature_vector(ct)
    np.testing.assert_array_equal(feature_vector(ct, measured=measured), fresh)
    wrong = [{**measured[0], "blur": 0.99}]
    assert not np.array_equal(feature_vector(ct, measured=wrong), fresh)


def test_features_of_another_image_are_not_used(images: list) -> None:
    """An assessment is not described with an image of another shape than the one assessed
    (refused by name); the detector reads such an image's own features, never the ones handed
    over."""
    from medq.describe.findings import detector_inputs
    from medq.errors import InvalidParameter

    ct = images[0]
    assessment = Assessor(describe=True).assess(ct)
    crop = ct.with_array(ct.array[:100, :90])
    with pytest.raises(InvalidParameter, match="the assessment is of an image of shape"):
        report_from(assessment, crop)
    detector = load_detector()
    x, _ = detector_inputs(assessment, crop, detector)
    own = feature_vector(crop, None, detector.extras)
    np.testing.assert_array_equal(x[:len(own)], own)



def test_a_plane_no_larger_than_its_view_has_its_features_taken_once(
        images: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plane of at most `EVIDENCE_SIZE` px is its own evidence view: the detector's features
    reuse the evidence pass's (one `slice_features` per plane), and equal a fresh computation;
    a larger plane takes both."""
    import medq.assess.evidence as evidence
    from medq.assess.loading import load_measured

    calls: list[tuple[int, ...]] = []
    real = evidence.slice_features
    monkeypatch.setattr(evidence, "slice_features",
                        lambda a, *args: calls.append(a.shape) or real(a, *args))
    extras = load_detector().extras
    small, volume = images[0], images[4]  # 128² CT, a 40-slice MR volume of 197×233
    for image, planes in ((small, 1), (volume, 7)):
        calls.clear()
        loaded = load_measured(image, None, True, features=extras)
        assert len(calls) == planes, image.shape
        monkeypatch.setattr(evidence, "slice_features", real)
        fresh = feature_vector(as_displayed(image), loaded.indices if image.is_volume else None,
                               extras)
        np.testing.assert_array_equal(loaded.features, fresh)
        monkeypatch.setattr(evidence, "slice_features",
                            lambda a, *args: calls.append(a.shape) or real(a, *args))
    calls.clear()
    large = small.with_array(np.kron(small.array, np.ones((3, 3), np.float32)))  # 384²
    load_measured(large, None, True, features=extras)
    assert len(calls) == 2  # its 256-px view, then the plane itself
