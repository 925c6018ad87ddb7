"""Model inputs: the view every model reads and the native-resolution channel a plan can ask for."""

from __future__ import annotations

import numpy as np
import pytest

from medq.assess.preprocess import DEFAULT_WINDOWS, image_inputs, native_crop, normalise
from medq.image import MedImage


def test_the_native_channel_is_the_image_at_its_own_pixels(ct_slice: MedImage) -> None:
    x, _ = image_inputs(ct_slice, 224, native=True)
    plain, _ = image_inputs(ct_slice, 224)
    grey = normalise(ct_slice.array, "CT", DEFAULT_WINDOWS["ct_soft_tissue"])
    assert x.shape == plain.shape == (1, 3, 224, 224)
    np.testing.assert_array_equal(x[0, 0], plain[0, 0])  # the view is unchanged
    np.testing.assert_array_equal(x[0, 2], plain[0, 0])
    np.testing.assert_array_equal(x[0, 1, 48:176, 48:176], grey)  # 128² centred, zero around
    assert not x[0, 1, :48].any() and not x[0, 1, :, 176:].any()


def test_the_native_window_follows_the_anatomy_and_stays_inside(ct_slice: MedImage) -> None:
    grey = normalise(ct_slice.array, "CT", DEFAULT_WINDOWS["ct_soft_tissue"])
    rows, cols = np.nonzero(grey > 0.1)  # the anatomy's box (NATIVE_LEVEL)
    centre = ((rows.min() + rows.max()) // 2, (cols.min() + cols.max()) // 2)
    canvas = np.zeros((600, 600), np.float32)
    canvas[200:328, 300:428] = grey  # off-centre in a large field of view
    top, left = 200 + centre[0] - 112, 300 + centre[1] - 112
    np.testing.assert_array_equal(native_crop(canvas, 224)[0],
                                  canvas[top:top + 224, left:left + 224])
    corner = np.zeros((600, 600), np.float32)
    corner[472:, :128] = grey  # in a corner: the window is held inside the image
    np.testing.assert_array_equal(native_crop(corner, 224)[0], corner[376:, :224])
    np.testing.assert_array_equal(native_crop(np.zeros((300, 300), np.float32), 224)[0],
                                  np.zeros((224, 224), np.float32))


def test_photographs_keep_their_colours(retina: MedImage) -> None:
    x, _ = image_inputs(retina, 224, native=True)
    np.testing.assert_array_equal(x, image_inputs(retina, 224)[0])
    assert x.shape == (1, 3, 224, 224)
    means = [float(x[0, c].mean()) for c in range(3)]
    photo = [float(retina.array[..., c].mean()) for c in range(3)]
    assert means == pytest.approx(photo, abs=0.03)  # red 0.63, green 0.25, blue 0.18: not grey


def test_a_window_stated_as_an_array_reads_its_first_values() -> None:
    """Window values kept as NumPy arrays (a caller's meta) are read by their first value, as
    lists are; the shared number reader compared them with "" and raised."""
    import numpy as np

    from medq.assess.preprocess import ct_window

    meta = {"window_center": np.array([40.0, -600.0]), "window_width": np.array([400.0, 1500.0])}
    assert ct_window(meta) == (40.0, 400.0)
    assert ct_window({"window_center": np.array(50.0), "window_width": [350.0]}) == (50.0, 350.0)
