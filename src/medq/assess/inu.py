"""Intensity non-uniformity (INU, bias field) of an MR image, estimated by SimpleITK's N4.

MRIQC reports the N4 bias field's summary statistics as `inu_*`; medq reports `inu_range`, the
spread P95 − P5 of the field inside the body, after normalising the field to median 1 there (N4's
overall scale is arbitrary, so the median itself carries nothing). 0 is a flat field; 0.3 is a
30 % spread of the signal across the body.
"""

from __future__ import annotations

import numpy as np

from medq.assess.iqms import _f64, _mask
from medq.errors import InvalidImage

N4_LONGEST = 64
"""Longest side of the shrunk plane N4 fits on (the field is smooth: a coarse grid suffices,
and the fit's cost grows with the pixels)."""

N4_ITERATIONS = (20, 20, 20)
"""N4 iterations per fitting level."""


def bias_field(plane: np.ndarray, mask: np.ndarray, longest: int = N4_LONGEST,
               iterations: tuple[int, ...] = N4_ITERATIONS) -> np.ndarray:
    """N4's multiplicative bias field of a 2D plane (same shape), fitted inside `mask` on the
    plane shrunk to at most `longest` pixels per side; the signal is floored at a small positive
    value first (N4 works on the log of the image)."""
    import SimpleITK as sitk

    a = _f64(plane)
    image = sitk.GetImageFromArray(np.maximum(a, 1e-3 * max(float(a.max()), 1e-6))
                                   .astype(np.float32))
    factor = [max(1, int(np.ceil(max(a.shape) / longest)))] * 2
    fitter = sitk.N4BiasFieldCorrectionImageFilter()
    fitter.SetMaximumNumberOfIterations(list(iterations))
    fitter.Execute(sitk.Shrink(image, factor),
                   sitk.Shrink(sitk.GetImageFromArray(mask.astype(np.uint8)), factor))
    return np.exp(sitk.GetArrayFromImage(fitter.GetLogBiasFieldAsImage(image)))


def inu_range(array: np.ndarray, mask: np.ndarray, max_slices: int = 7,
              min_pixels: int = 64) -> float:
    """INU range = P95 − P5 of B / median(B) inside `mask`, B the N4 bias field (`bias_field`).

    Volumes: the mean over at most `max_slices` salient slices, each fitted in-plane (as the
    other measures; a multi-slice acquisition's coil field is mostly in-plane). nan when the
    mask holds fewer than `min_pixels` pixels of a plane. N4 cannot tell a smooth field from
    anatomy that fills the whole field of view: on pydicom's 64² MR_small, whose body covers the
    image, it reads 0.35 on the clean image and no more with a field added.
    """
    from medq.assess.slices import measured_planes

    a = _f64(array)
    if a.ndim not in (2, 3):
        raise InvalidImage(f"inu_range takes a 2D plane or a 3D volume, got shape {a.shape}")
    m = _mask(a, mask)
    values = []
    for index in measured_planes(a, max_slices):
        plane, inside = a[index], m[index]
        if inside.sum() < min_pixels:
            continue
        field = bias_field(plane, inside)[inside]
        field = field / np.median(field)
        values.append(float(np.percentile(field, 95) - np.percentile(field, 5)))
    return float(np.mean(values)) if values else float("nan")
