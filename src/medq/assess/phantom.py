"""Uniform QA phantoms: an image of one flat object (a water cylinder, a uniform sphere).

medq's grades, findings and detectors read anatomy: its noise features are relative to the
body's own tissue contrast, which a uniform phantom does not have, so a water phantom with a
noise σ of 3 HU would read as severe noise and be graded "reject". A QA team scanning its
daily phantom wants that phantom's own numbers instead, so such an image is recognised here
and refused with them (`UniformPhantom`, an `UnsupportedImage`):

- the mean and standard deviation in a centre region of interest (ROI),
- the means of four peripheral ROIs (at 12, 3, 6 and 9 o'clock), and from them
  - for CT, the uniformity: the largest |peripheral mean − centre mean| in HU;
  - otherwise the percent integral uniformity of the five means,
    PIU = 100 · (1 − (max − min) / (max + min)), and the centre's SNR = mean / σ.

Each ROI is a disc whose radius is a tenth of the object's equivalent radius
r = √(area / π), the peripheral ones centred at 0.75·r from the centroid (ACR's CT
accreditation phantom: ROIs of about 400 mm² in a 200 mm cylinder, the peripheral ones about
a centimetre inside the edge). On a water phantom ACR's CT limits are a mean of 0 ± 7 HU and
peripheral − centre within ± 5 HU; the noise has no fixed limit (compare it with the
scanner's own baseline).

What counts as uniform: the body (`masks.body_and_anatomy`) must have background around it
and be convex (area / convex-hull area ≥ `MIN_SOLIDITY`); inside it (2 px from its edge) at
least `MIN_FLAT_SHARE` of the pixels lie within `FLAT_BAND` of the object's contrast to the
background from the interior's median (a phantom's plastic wall is ~120 HU on a 1000 HU
contrast; a skull ring, fat, lung and organs are not); and the interior (farther than a
tenth of r from the edge), smoothed by a Gaussian of σ = max(2, 0.03·r) px and with a
quadratic trend (cupping, an MR coil's shading) taken out, spreads less than
`MAX_STRUCTURE` of that contrast (P99 − P1). A volume is a phantom when every salient plane
is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from medq.errors import UnsupportedImage

MIN_SOLIDITY = 0.95
"""Smallest area / convex-hull area of a phantom's outline (a cylinder's is ≈ 1)."""

FLAT_BAND = 0.25
"""Half-width, as a share of the object's contrast to the background, of the band around the
interior's median that a phantom's pixels lie in."""

MIN_FLAT_SHARE = 0.97
"""Smallest share of the object's pixels (2 px from its edge) inside that band."""

MAX_STRUCTURE = 0.05
"""Largest P99 − P1 of the smoothed, detrended interior, as a share of that contrast."""

MIN_BACKGROUND = 0.1
"""Smallest share of the plane that is background (a phantom lies inside the field)."""

WATER_HU = 7.0
"""ACR's CT accreditation limit on water's CT number: 0 ± 7 HU."""

UNIFORMITY_HU = 5.0
"""ACR's CT accreditation limit on each peripheral ROI's mean minus the centre's: ± 5 HU."""

PHANTOM_MODALITIES = ("CT", "MR", "PT")
"""Modalities whose images are checked (radiograph flat fields and photographs are not)."""


@dataclass(frozen=True)
class PhantomReading:
    """A uniform phantom's ROI measures (in the image's units: HU for CT)."""

    modality: str
    centre_mean: float
    noise_sd: float
    peripheral_means: tuple[float, ...]
    roi_radius_px: float
    planes: int

    @property
    def uniformity(self) -> float:
        """CT: the largest |peripheral − centre| in HU; otherwise PIU in percent."""
        means = np.array([self.centre_mean, *self.peripheral_means])
        if self.modality == "CT":
            return float(np.max(np.abs(means[1:] - means[0])))
        top, low = float(means.max()), float(means.min())
        return 100.0 * (1.0 - (top - low) / (top + low)) if top + low > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the fields, the uniformity and (MR, PET) the centre's SNR."""
        out = asdict(self)
        out["uniformity"] = self.uniformity
        if self.modality != "CT":
            out["snr"] = self.centre_mean / self.noise_sd if self.noise_sd > 0 else float("inf")
        elif self.water_like:
            out["within_acr_water_limits"] = self.within_water_limits
        return {k: _rounded(v) for k, v in out.items()}

    @property
    def water_like(self) -> bool:
        """A CT phantom whose centre reads within 50 HU of water."""
        return self.modality == "CT" and abs(self.centre_mean) < 50

    @property
    def within_water_limits(self) -> bool:
        """Water's CT number within ± `WATER_HU` and every peripheral ROI within
        ± `UNIFORMITY_HU` of the centre (ACR's CT accreditation limits)."""
        return abs(self.centre_mean) <= WATER_HU and self.uniformity <= UNIFORMITY_HU

    def sentence(self) -> str:
        """The reading in one line, for the refusal's message."""
        if self.modality == "CT":
            verdict = "within" if self.within_water_limits else "outside"
            limits = (f", {verdict} ACR's limits for water (0 ± {WATER_HU:g} HU, "
                      f"peripheral − centre ± {UNIFORMITY_HU:g} HU)" if self.water_like else "")
            return (f"centre {self.centre_mean:.1f} HU, noise σ {self.noise_sd:.1f} HU, "
                    f"peripheral − centre up to {self.uniformity:.1f} HU{limits}")
        snr = self.centre_mean / self.noise_sd if self.noise_sd > 0 else float("inf")
        return (f"centre mean {self.centre_mean:.4g}, noise σ {self.noise_sd:.4g}, SNR "
                f"{snr:.1f}, integral uniformity of the five ROIs {self.uniformity:.1f} %")


class UniformPhantom(UnsupportedImage):
    """A uniform QA phantom, not a patient image: refused, with its ROI measures."""

    def __init__(self, reason: str, path: Any = None,
                 reading: PhantomReading | None = None) -> None:
        super().__init__(reason, path)
        self.reading = reading

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        """Pickle with the reading (errors cross from assessment worker processes)."""
        return type(self), (self.reason, self.path, self.reading)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: `{"type", "message", "phantom"}`."""
        out: dict[str, Any] = dict(super().to_dict())
        if self.reading is not None:
            out["phantom"] = self.reading.to_dict()
        return out


def _rounded(value: Any) -> Any:
    """Floats (and floats in tuples or lists) to 3 decimals, for JSON."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def _disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """Pixels within `radius` of `centre`."""
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def _convex_share(body: np.ndarray) -> float:
    """Area over convex-hull area of a 2D mask."""
    from skimage.morphology import convex_hull_image

    hull = convex_hull_image(body)
    return float(body.sum() / max(int(hull.sum()), 1))


CHECK_SIDE = 128
"""A plane is checked on every k-th pixel along each axis, k = its shorter side // this (the
check costs about 1 ms then, whatever the matrix); the ROIs are read on every pixel."""


def plane_reading(plane: np.ndarray, modality: str) -> PhantomReading | None:
    """The ROI measures of one 2D plane when it shows a uniform phantom, else None."""
    a = np.asarray(plane, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 32 or not np.isfinite(a).all():
        return None
    step = max(1, min(a.shape) // CHECK_SIDE)
    if not _uniform(a[::step, ::step], modality):
        return None
    return _rois(a, modality)


def _body(a: np.ndarray, modality: str) -> np.ndarray:
    """The main body's mask (`masks.body_and_anatomy`)."""
    from medq.assess.masks import body_and_anatomy

    return body_and_anatomy(a, modality)[0]


def _uniform(a: np.ndarray, modality: str) -> bool:
    """Whether a plane shows one convex, flat object with background around it."""
    body = _body(a, modality)
    area = int(body.sum())
    if area < 200 or (~body).mean() < MIN_BACKGROUND:
        return False
    distance = ndi.distance_transform_edt(body)
    radius = float(np.sqrt(area / np.pi))
    interior = distance > max(2.0, 0.1 * radius)
    level = float(np.median(a[interior])) if interior.sum() >= 100 else float("nan")
    contrast = abs(level - float(np.median(a[~body])))
    if not np.isfinite(level) or contrast <= 0:
        return False
    inner = distance > 2.0
    if np.mean(np.abs(a[inner] - level) <= FLAT_BAND * contrast) < MIN_FLAT_SHARE:
        return False
    if _convex_share(body) < MIN_SOLIDITY:
        return False
    sigma = max(2.0, 0.03 * radius)
    weights = ndi.gaussian_filter(body.astype(np.float64), sigma)
    smooth = ndi.gaussian_filter(np.where(body, a, 0.0), sigma) / np.maximum(weights, 1e-6)
    ys, xs = np.nonzero(interior)
    y, x = ys / a.shape[0] - 0.5, xs / a.shape[1] - 0.5
    design = np.stack([np.ones_like(y), y, x, y * y, x * x, y * x], axis=1)
    values = smooth[ys, xs]
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    low, high = np.percentile(values - design @ coef, [1, 99])
    return bool(high - low <= MAX_STRUCTURE * contrast)


def _rois(a: np.ndarray, modality: str) -> PhantomReading:
    """The centre and four peripheral ROIs of a phantom plane."""
    body = _body(a, modality)
    radius = float(np.sqrt(body.sum() / np.pi))
    cy, cx = ndi.center_of_mass(body)
    r_roi = max(3.0, 0.1 * radius)
    centre = _disc(a.shape, (cy, cx), r_roi)
    rim = []
    for dy, dx in ((-1, 0), (0, 1), (1, 0), (0, -1)):  # 12, 3, 6 and 9 o'clock
        roi = _disc(a.shape, (cy + dy * 0.75 * radius, cx + dx * 0.75 * radius), r_roi) & body
        rim.append(float(a[roi].mean()) if roi.any() else float(a[centre].mean()))
    return PhantomReading(modality, float(a[centre].mean()), float(a[centre].std(ddof=1)),
                          tuple(rim), r_roi, 1)


def phantom_reading(image: Any, indices: list[int] | None = None) -> PhantomReading | None:
    """A MedImage's reading when every plane it is graded on (`indices`, a volume's salient
    planes) shows a uniform phantom, else None (the reading of the middle such plane)."""
    if image.modality not in PHANTOM_MODALITIES or image.is_rgb:
        return None
    planes = [image.array] if not image.is_volume else [image.array[i] for i in indices or []]
    readings = []
    for plane in planes:
        reading = plane_reading(plane, image.modality)
        if reading is None:
            return None
        readings.append(reading)
    if not readings:
        return None
    middle = readings[len(readings) // 2]
    return PhantomReading(middle.modality, middle.centre_mean, middle.noise_sd,
                          middle.peripheral_means, middle.roi_radius_px, len(readings))


def refuse_phantom(image: Any, indices: list[int] | None = None) -> None:
    """Raise `UniformPhantom`, with its measures, when the image shows a uniform phantom."""
    reading = phantom_reading(image, indices)
    if reading is None:
        return
    where = f" ({reading.planes} planes)" if reading.planes > 1 else ""
    raise UniformPhantom(f"a uniform QA phantom, not a patient image{where}: "
                         f"{reading.sentence()}; medq grades anatomy, so it gives a phantom no "
                         "score (compare these numbers with the scanner's own baseline)",
                         image.source, reading)
