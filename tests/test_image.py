"""MedImage: validation, immutability and provenance."""

from __future__ import annotations

import numpy as np
import pytest

from medq.errors import InvalidImage, InvalidParameter, MedqError, UnreadableImage
from medq.image import MedImage


def test_array_becomes_float32_and_spacing_defaults_to_1mm() -> None:
    img = MedImage(np.arange(12, dtype=np.int16).reshape(3, 4), modality="ct")
    assert img.array.dtype == np.float32
    assert img.spacing == (1.0, 1.0)
    assert img.modality == "CT"
    assert not img.is_volume and not img.is_rgb


def test_rgb_only_for_photographs() -> None:
    rgb = MedImage(np.zeros((5, 6, 3)), (0.1, 0.1), "OP", "retina")
    assert rgb.is_rgb and not rgb.is_volume
    vol = MedImage(np.zeros((5, 6, 3)), (1, 1, 1), "MR")
    assert vol.is_volume and not vol.is_rgb


@pytest.mark.parametrize("shape", [(5,), (0, 4), (2, 3, 4, 5)])
def test_bad_shapes_are_invalid_images(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidImage):
        MedImage(np.zeros(shape))


def test_bad_spacing_modality_region_are_rejected() -> None:
    with pytest.raises(InvalidParameter):
        MedImage(np.zeros((4, 4)), spacing=(1.0,))
    with pytest.raises(InvalidParameter):
        MedImage(np.zeros((4, 4)), spacing=(1.0, -1.0))
    with pytest.raises(InvalidParameter, match="modality"):
        MedImage(np.zeros((4, 4)), modality="XX")
    with pytest.raises(InvalidParameter, match="region"):
        MedImage(np.zeros((4, 4)), region="elbowish")


def test_with_array_records_history_and_never_shares_meta() -> None:
    img = MedImage(np.zeros((4, 4)), meta={"history": [{"step": "load"}]}, physics={"kvp": 120})
    new = img.with_array(np.ones((4, 4)), step={"step": "x"})
    assert [h["step"] for h in new.meta["history"]] == ["load", "x"]
    assert [h["step"] for h in img.meta["history"]] == ["load"]
    new.physics["kvp"] = 80
    assert img.physics["kvp"] == 120
    assert img.array.sum() == 0


def test_errors_are_one_line_and_name_the_file() -> None:
    exc = UnreadableImage("bad\nheader\tbytes", "/x/y.dcm")
    assert str(exc) == "/x/y.dcm: bad header bytes"
    assert exc.to_dict() == {"type": "UnreadableImage", "message": "/x/y.dcm: bad header bytes"}
    assert isinstance(exc, MedqError)
