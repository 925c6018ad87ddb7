"""Modality-agnostic degradations (blur, low resolution, low contrast, fundus illumination).

Also home of `smooth_field`, the smooth random field shared by the MR bias field, the MR
background phase and fundus illumination.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from skimage.transform import resize

from medq.degrade.registry import register
from medq.errors import InvalidParameter, UnsupportedImage
from medq.image import MODALITIES, MedImage

ALL = tuple(m for m in MODALITIES)
"""Every modality, photographs (OP) included."""

GREY = tuple(m for m in MODALITIES if m != "OP")
"""Every greyscale modality."""

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def spatial_shape(image: MedImage) -> tuple[int, ...]:
    """Shape of the spatial axes (the colour axis of RGB photographs dropped)."""
    return image.shape[:-1] if image.is_rgb else image.shape


def smooth_field(shape: tuple[int, ...], rng: np.random.Generator, degree: int = 3
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Random polynomial field of total `degree` on [−1, 1]^d, rescaled to span [−0.5, 0.5].

    Returns the field and the coefficients drawn (uniform in [−1, 1], damped by 1/(1 + order)).
    """
    axes = np.meshgrid(*[np.linspace(-1.0, 1.0, n) for n in shape], indexing="ij")
    powers = [p for p in np.ndindex(*(degree + 1,) * len(shape)) if 0 < sum(p) <= degree]
    coefs = rng.uniform(-1.0, 1.0, len(powers)) / (1.0 + np.array([sum(p) for p in powers]))
    field = np.zeros(shape)
    for c, p in zip(coefs, powers, strict=True):
        field += c * np.prod([a ** e for a, e in zip(axes, p, strict=True)], axis=0)
    span = field.max() - field.min()
    field = (field - field.min()) / span - 0.5 if span > 0 else field
    return field, coefs


def _per_channel(image: MedImage, fn: Any) -> np.ndarray:
    """Apply `fn` to each colour channel of an RGB image, or once to a grey image."""
    if not image.is_rgb:
        return fn(image.array)
    return np.stack([fn(image.array[..., c]) for c in range(3)], axis=-1)


BLUR_WIDEST = 8
"""A blur's σ in pixels may reach this many times the image's largest side (beyond, the
stated pixel size is taken to be wrong: a kernel that size does not fit in memory)."""


@register("blur", unit="PSF FWHM in mm", worse="higher", bounds=(1.0, 2.5, 5.0),
          levels={"mild": 1.5, "moderate": 3.5, "severe": 7.0}, modalities=ALL, finding="blur",
          domain=(0.0, 200.0))
def blur(image: MedImage, level: float, rng: np.random.Generator
         ) -> tuple[MedImage, dict[str, Any]]:
    """Gaussian point-spread function of FWHM `level` mm along every spatial axis.

    σ per axis = FWHM / 2.355 / spacing (pixels); volumes are blurred in 3D, RGB per channel.
    The kernel is the sampled Gaussian, whose width falls short of σ below about 0.7 px (a blur
    narrower than 1.6 pixels): the record's `fwhm_applied_mm` gives per axis the FWHM the image
    got (0 where it got none).
    Level: FWHM in mm, worse higher; none < 1 ≤ mild < 2.5 ≤ moderate < 5 ≤ severe
    (1.5 / 3.5 / 7 mm representative).
    """
    sigma = tuple(float(level) / FWHM_PER_SIGMA / s for s in image.spacing)
    shape = spatial_shape(image)
    if max(sigma) > BLUR_WIDEST * max(shape):  # a pixel size stated far too small (µm as mm):
        raise InvalidParameter(  # its kernel would not fit in memory
            f"a blur of {level:g} mm is {max(sigma):.3g} pixels wide at the stated pixel size "
            f"({min(image.spacing):.3g} mm), many times the image: check the spacing",
            image.source)
    out = _per_channel(image, lambda a: ndimage.gaussian_filter(a, sigma, mode="nearest"))
    applied = [round(float(FWHM_PER_SIGMA * sampled_sigma(s) * d), 4)
               for s, d in zip(sigma, image.spacing, strict=True)]
    return image.with_array(out), {"psf": "gaussian", "fwhm_mm": float(level),
                                   "sigma_px": [round(s, 4) for s in sigma],
                                   "fwhm_applied_mm": applied}


def sampled_sigma(sigma: float) -> float:
    """The std (pixels) of the sampled Gaussian kernel `ndimage.gaussian_filter` applies for σ:
    σ itself from about 0.7 px up, less below (a kernel of 1.5 mm FWHM on 4 mm pixels has weights
    of 1e-12 beside its centre, so it leaves the image as it was)."""
    if sigma <= 0:
        return 0.0
    x = np.arange(-int(4.0 * sigma + 0.5), int(4.0 * sigma + 0.5) + 1, dtype=float)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return float(np.sqrt(np.sum(w * x * x) / np.sum(w)))


@register("low_resolution", unit="downsampling factor", worse="higher", bounds=(1.5, 2.5, 4.0),
          levels={"mild": 2.0, "moderate": 3.0, "severe": 6.0}, modalities=ALL,
          finding="low_resolution", domain=(1.0, 64.0))
def low_resolution(image: MedImage, level: float, rng: np.random.Generator
                   ) -> tuple[MedImage, dict[str, Any]]:
    """Acquisition at a coarser in-plane matrix: anti-aliased downsampling by `level`, back up.

    The in-plane axes (y, x) shrink by the factor with a Gaussian anti-aliasing filter, then
    return to the original grid by linear interpolation (volumes keep z; RGB per channel).
    Level: factor, worse higher; none < 1.5 ≤ mild < 2.5 ≤ moderate < 4 ≤ severe (2 / 3 / 6).
    """
    shape = spatial_shape(image)
    out = _per_channel(image, lambda a: coarse_matrix(a, float(level)))
    return image.with_array(out), {"factor": float(level), "low_shape": list(_coarse(shape, level)),
                                   "anti_aliasing": "gaussian", "upsampling": "linear"}


RECONSTRUCTIONS = ("linear", "cubic", "kspace")
"""Ways `coarse_matrix` brings a coarse matrix back to the grid (the engine uses `linear`)."""


def _coarse(shape: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """The shape with its last two (in-plane) axes divided by `factor` (at least 2 each)."""
    return tuple(shape[:-2]) + tuple(max(2, int(round(n / float(factor)))) for n in shape[-2:])


def coarse_matrix(array: np.ndarray, factor: float, reconstruction: str = "linear",
                  taper: float = 0.0, magnitude: bool = False) -> np.ndarray:
    """A grey plane or volume as acquired on an in-plane matrix `factor` times coarser, on its
    own grid again.

    `linear` (the engine's `low_resolution`) and `cubic`: Gaussian anti-aliased downsampling,
    then linear or cubic interpolation back. `kspace`: only the central 1/`factor` of the
    in-plane spatial frequencies kept (what a scanner's coarser acquisition matrix measures),
    their outer `taper` fraction rolled off by a raised cosine (0: a hard edge, full Gibbs
    ringing), zero-filled back to the grid: the real part, or the modulus for `magnitude`
    images (MR).
    """
    if reconstruction not in RECONSTRUCTIONS:
        raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction}")
    a = np.asarray(array)
    if reconstruction != "kspace":
        small = resize(a, _coarse(a.shape, factor), order=1, anti_aliasing=float(factor) > 1,
                       preserve_range=True)
        return resize(small, a.shape, order=1 if reconstruction == "linear" else 3,
                      anti_aliasing=False, preserve_range=True)
    window = np.ones(a.shape[-2:])
    for axis, n in enumerate(a.shape[-2:]):
        keep = min(n, max(2, int(round(n / float(factor)))))
        f = np.abs(np.fft.fftfreq(n)) * n  # distance from the centre, in samples
        edge = keep / 2.0
        ramp = max(float(taper) * edge, 1e-9)
        w = np.clip((edge - f) / ramp, 0.0, 1.0)
        w = 0.5 - 0.5 * np.cos(np.pi * w) if taper > 0 else (f < edge).astype(float)
        window *= w[:, None] if axis == 0 else w[None, :]
    out = np.fft.ifft2(np.fft.fft2(a, axes=(-2, -1)) * window, axes=(-2, -1))
    return (np.abs(out) if magnitude else out.real).astype(a.dtype)


@register("low_contrast", unit="contrast reduction fraction", worse="higher",
          bounds=(0.1, 0.3, 0.55), levels={"mild": 0.2, "moderate": 0.45, "severe": 0.7},
          modalities=GREY, finding="low_contrast", domain=(0.0, 0.99))
def low_contrast(image: MedImage, level: float, rng: np.random.Generator
                 ) -> tuple[MedImage, dict[str, Any]]:
    """Contrast compressed around the image mean: out = m + (1 − c)(x − m).

    Models veiling glare / scatter / poor windowing: every difference shrinks by (1 − c), the
    floor rises and the ceiling falls towards the mean m (deterministic). Level: c in [0, 1),
    worse higher; none < 0.1 ≤ mild < 0.3 ≤ moderate < 0.55 ≤ severe (0.2 / 0.45 / 0.7).
    """
    c = float(np.clip(level, 0.0, 1.0))
    m = float(image.array.mean())
    out = m + (1.0 - c) * (image.array - m)
    return image.with_array(out), {"reduction": c, "centre": m, "gain": 1.0 - c}


@register("fundus_illumination", unit="illumination falloff fraction", worse="higher",
          bounds=(0.1, 0.3, 0.55), levels={"mild": 0.2, "moderate": 0.45, "severe": 0.75},
          modalities=("OP",), finding="illumination", domain=(0.0, 1.0))
def fundus_illumination(image: MedImage, level: float, rng: np.random.Generator
                        ) -> tuple[MedImage, dict[str, Any]]:
    """Uneven fundus illumination: off-centre vignetting plus a gradient, and a mild defocus.

    Gain g = 1 − f·u with u ∈ [0, 1] a mix of an off-centre radial r² falloff and a linear ramp
    (random centre, direction and mix), so the darkest point keeps 1 − f of its light; defocus is
    a Gaussian of σ = f·0.4 % of the image diagonal. Level: f, worse higher; none < 0.1 ≤ mild
    < 0.3 ≤ moderate < 0.55 ≤ severe (0.2 / 0.45 / 0.75).
    """
    if image.is_volume:
        raise UnsupportedImage("fundus_illumination applies to 2D photographs, not a volume",
                               image.source)
    f = float(np.clip(level, 0.0, 1.0))
    ny, nx = spatial_shape(image)[:2]
    cy, cx = rng.uniform(-0.25, 0.25, 2)
    angle, mix = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.5)
    yy, xx = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    radial = (yy - cy) ** 2 + (xx - cx) ** 2
    ramp = yy * np.sin(angle) + xx * np.cos(angle)
    u = (1 - mix) * radial / radial.max() + mix * (ramp - ramp.min()) / np.ptp(ramp)
    gain = (1.0 - f * u / u.max()).astype(np.float32)
    sigma = f * 0.004 * float(np.hypot(ny, nx))
    blurred = _per_channel(image, lambda a: ndimage.gaussian_filter(a, sigma, mode="nearest"))
    out = blurred * (gain[..., None] if image.is_rgb else gain)
    params = {"falloff": f, "centre_offset": [float(cy), float(cx)], "gradient_angle_rad":
              float(angle), "gradient_mix": float(mix), "defocus_sigma_px": sigma,
              "min_gain": float(gain.min())}
    return image.with_array(out), params
