"""Uniform QA phantoms: an image of one flat object (a water cylinder, a uniform sphere).

medq's grades, findings and detectors read anatomy: its noise features are relative to the
body's own tissue contrast, which a uniform phantom does not have, so a water phantom with a
noise σ of 3 HU would read as severe noise and be graded "reject". A QA team scanning its
daily phantom wants that phantom's own numbers instead, so such an image is recognised here
and refused with them (`UniformPhantom`, an `UnsupportedImage`):

- the mean and standard deviation (n − 1) in a centre region of interest (ROI),
- the means of four peripheral ROIs (at 12, 3, 6 and 9 o'clock), and from them
  - for CT, the uniformity: the largest |peripheral mean − centre mean| in HU;
  - otherwise the integral uniformity of the five means, 100 · (1 − (max − min) / (max + min))
    (not ACR's MR PIU, which searches the extremes of small ROIs within one large ROI, and reads
    lower), and the centre's mean / σ (not NEMA's two-acquisition SNR).

The ROIs lie in the phantom's fill (its *core*: the body's pixels within the fill's material
band of its level, `CT_MATERIAL_HU` for CT, so a PMMA wall is left out): discs of radius
r/10, r = √(core area / π) (314 mm² in a 200 mm cylinder; ACR's CT phantom asks for about
400 mm²); the centre one on the core's centroid, each peripheral one on its ray as far out as
keeps the disc one ROI radius inside the core's edge (ACR: about a centimetre in). On a water
phantom ACR's CT accreditation limits are a mean of 0 ± 7 HU and peripheral − centre within
± 5 HU; the noise has no fixed limit (compare it with the scanner's own baseline).

What counts as uniform (checked on every k-th pixel, k = shorter side // `CHECK_SIDE`): the
body (`masks.body_and_anatomy`) has background around it, is convex (area / convex hull ≥
`MIN_SOLIDITY`) and close to its moment ellipse (intersection over union ≥ `MIN_ELLIPSE`);
≥ `MIN_FLAT_SHARE` of its pixels 2 px inside its edge lie within `FLAT_BAND` of its contrast
to the background from its interior's median (a skull ring, fat or lung do not); the core
covers at least half of it; and the core's interior, smoothed by a Gaussian of σ = max(2,
0.03 r) px and with a quadratic trend taken out (cupping, an MR coil's shading), spreads
(P99 − P1) less than `MAX_STRUCTURE` of that contrast and at most `NOISE_EXCESS` times what
the plane's own white noise leaves after that smoothing, or less than `MIN_SPREAD` of the
contrast — the rest is structure (a skull-stripped CT brain's grey and white matter and
ventricles, flat against its contrast to air). A volume is a phantom when every salient plane
is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from medq.assess.plane_signal import quadratic_design
from medq.errors import UnsupportedImage
from medq.image import MedImage
from medq.jsonsafe import plain

MIN_SOLIDITY = 0.95
"""Smallest area / convex-hull area of a phantom's outline (a cylinder's is ≈ 1)."""

MIN_ELLIPSE = 0.98
"""Smallest intersection over union of the outline with its moment ellipse (same centroid and
second moments): a cylinder's or an elliptical body phantom's is ≈ 1, a skull-stripped brain's
0.94–0.97."""

FLAT_BAND = 0.25
"""Half-width, as a share of the object's contrast to the background, of the band around the
interior's median that a phantom's pixels lie in."""

MIN_FLAT_SHARE = 0.97
"""Smallest share of the object's pixels (2 px from its edge) inside that band."""

CT_MATERIAL_HU = 60.0
"""A CT phantom's fill lies within this of its level (lightly smoothed); its PMMA wall, about
120 HU from water, does not."""

MATERIAL_SHARE = 0.3
"""MR and PET: the fill's band, as a share of the contrast (a coil's shading stays in it)."""

MAX_STRUCTURE = 0.05
"""Largest P99 − P1 of the core's smoothed, detrended interior (σ₁), as a share of the
contrast."""

MIN_SPREAD = 0.005
"""A spread below this share of the contrast passes whatever the noise (a quiet phantom's
residual cupping or rings)."""

NOISE_EXCESS = 2.0
"""Otherwise the spread may be at most this many times what the plane's own white noise
leaves after the smoothing: the rest is structure."""

MIN_BACKGROUND = 0.1
"""Smallest share of the plane that is background (a phantom lies inside the field)."""

CHECK_SIDE = 128
"""A plane is checked on every k-th pixel along each axis, k = its shorter side // this (the
check costs about a millisecond then, whatever the matrix); the ROIs are read on every pixel."""

WATER_HU = 7.0
"""ACR's CT accreditation limit on water's CT number: 0 ± 7 HU."""

UNIFORMITY_HU = 5.0
"""ACR's CT accreditation limit on each peripheral ROI's mean minus the centre's: ± 5 HU."""

WATER_LIKE_HU = 20.0
"""A CT phantom whose centre reads within this of 0 HU is judged against water's limits."""

PHANTOM_MODALITIES = ("CT", "MR", "PT")
"""Modalities whose images are checked (radiograph flat fields and photographs are not)."""


@dataclass(frozen=True)
class PhantomReading:
    """A uniform phantom's ROI measures (in the image's units: HU for CT)."""

    modality: str
    centre_mean: float
    noise_sd: float
    peripheral_means: tuple[float | None, ...]
    roi_radius_px: float
    planes: int = 1

    @property
    def measured_rim(self) -> list[float]:
        """The peripheral ROIs' means that were read (None: no room for that ROI)."""
        return [m for m in self.peripheral_means if m is not None]

    @property
    def uniformity(self) -> float:
        """CT: the largest |peripheral − centre| in HU; otherwise the integral uniformity of
        the ROI means in percent (nan without peripheral ROIs)."""
        if not self.measured_rim:
            return float("nan")
        means = np.array([self.centre_mean, *self.measured_rim])
        if self.modality == "CT":
            return float(np.max(np.abs(means[1:] - means[0])))
        top, low = float(means.max()), float(means.min())
        return 100.0 * (1.0 - (top - low) / (top + low)) if top + low > 0 else float("nan")

    @property
    def snr(self) -> float:
        """The centre ROI's mean over its σ."""
        return self.centre_mean / self.noise_sd if self.noise_sd > 0 else float("inf")

    @property
    def water_like(self) -> bool:
        """A CT phantom whose centre reads within `WATER_LIKE_HU` of water."""
        return self.modality == "CT" and abs(self.centre_mean) < WATER_LIKE_HU

    @property
    def within_water_limits(self) -> bool | None:
        """Water's CT number within ± `WATER_HU` and every peripheral ROI within
        ± `UNIFORMITY_HU` of the centre (ACR's CT accreditation limits); None when no
        peripheral ROI was read and the centre is within its limit (not judged)."""
        if abs(self.centre_mean) > WATER_HU:
            return False
        return None if not self.measured_rim else self.uniformity <= UNIFORMITY_HU

    def to_dict(self) -> dict[str, Any]:
        """JSON form (`EXPORT_NAMES`, less `phantom_`): the centre, the four peripheral means
        by clock position (null: no room), the uniformity, the water verdict (CT, water-like)
        and the SNR (MR, PET); numbers that are not finite are null (`jsonsafe.plain`)."""
        out: dict[str, Any] = {"modality": self.modality, "centre_mean": self.centre_mean,
                               "noise_sd": self.noise_sd}
        out.update({f"peripheral_{clock}": m for clock, m in zip(CLOCK, self.peripheral_means,
                                                                 strict=True)})
        out.update(uniformity=self.uniformity, roi_radius_px=self.roi_radius_px,
                   planes=self.planes,
                   within_acr_water_limits=self.within_water_limits if self.water_like else None,
                   snr=self.snr if self.modality != "CT" else None)
        return plain({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()})

    def sentence(self) -> str:
        """The reading in one line, for the refusal's message."""
        rim = len(self.measured_rim)
        if self.modality == "CT":
            verdict = {True: "within", False: "outside", None: "centre within"}[
                self.within_water_limits]
            limits = (f", {verdict} ACR's limits for water (0 ± {WATER_HU:g} HU, "
                      f"peripheral − centre ± {UNIFORMITY_HU:g} HU)" if self.water_like else "")
            spread = (f"peripheral − centre up to {self.uniformity:.1f} HU over {rim} ROIs"
                      if rim else "no room for peripheral ROIs, uniformity not measured")
            return (f"centre {self.centre_mean:.1f} HU, noise σ {self.noise_sd:.1f} HU, "
                    f"{spread}{limits}")
        spread = (f", integral uniformity of the {rim + 1} ROI means {self.uniformity:.1f} %"
                  if rim else "")
        return (f"centre mean {self.centre_mean:.4g}, noise σ {self.noise_sd:.4g}, mean/σ "
                f"{self.snr:.1f}{spread}")


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


CLOCK = (12, 3, 6, 9)
"""Clock positions of the peripheral ROIs, in `peripheral_means` order."""

EXPORT_NAMES = ("phantom_centre_mean", "phantom_noise_sd",
                *(f"phantom_peripheral_{c}" for c in CLOCK), "phantom_uniformity",
                "phantom_roi_radius_px", "phantom_planes", "phantom_within_acr_water_limits",
                "phantom_snr")
"""`medq qc`'s measure names of a phantom's reading (`to_dict` with `phantom_` before each
key but the modality), a fixed set in every flat export."""


def _body(a: np.ndarray, modality: str) -> np.ndarray:
    """The main body's mask (`masks.body_and_anatomy`)."""
    from medq.assess.masks import body_and_anatomy

    return body_and_anatomy(a, modality)[0]


def _ellipse_fit(body: np.ndarray) -> float:
    """Intersection over union of a mask with its moment ellipse."""
    ys, xs = np.nonzero(body)
    cy, cx = ys.mean(), xs.mean()
    cov = np.cov(np.stack([ys - cy, xs - cx]))
    if not np.all(np.isfinite(cov)) or np.linalg.det(cov) <= 0:
        return 0.0
    inverse = np.linalg.inv(cov) / 4.0  # a uniform ellipse's semi-axes are 2√λ
    yy, xx = np.mgrid[:body.shape[0], :body.shape[1]]
    d = np.stack([yy - cy, xx - cx], axis=-1)
    ellipse = np.einsum("...i,ij,...j->...", d, inverse, d) <= 1.0
    return float((body & ellipse).sum() / max(int((body | ellipse).sum()), 1))


def _convex_share(body: np.ndarray) -> float:
    """Area over convex-hull area of a 2D mask (scikit-image's solidity)."""
    from skimage.measure import regionprops

    return float(regionprops(body.astype(np.uint8))[0].solidity)


def _core(a: np.ndarray, body: np.ndarray, level: float, contrast: float,
          modality: str) -> np.ndarray:
    """The phantom's fill: body pixels within the material band of `level` (lightly smoothed),
    holes filled, the largest piece."""
    band = CT_MATERIAL_HU if modality == "CT" else MATERIAL_SHARE * contrast
    near = body & (np.abs(ndi.gaussian_filter(a, 1.0) - level) <= band)
    labels, count = ndi.label(ndi.binary_fill_holes(near))
    if count == 0:
        return near
    sizes = np.bincount(labels.ravel())[1:]
    return labels == 1 + int(np.argmax(sizes))


def _spread(a: np.ndarray, core: np.ndarray, inside: np.ndarray, sigma: float) -> float:
    """P99 − P1 over `inside` of `a` smoothed within `core` (normalised Gaussian) and detrended
    by a quadratic."""
    weights = ndi.gaussian_filter(core.astype(np.float64), sigma)
    smooth = ndi.gaussian_filter(np.where(core, a, 0.0), sigma) / np.maximum(weights, 1e-6)
    ys, xs = np.nonzero(inside)
    design = quadratic_design(ys, xs, a.shape)
    values = smooth[ys, xs]
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    low, high = np.percentile(values - design @ coef, [1, 99])
    return float(high - low)


def _level(a: np.ndarray, body: np.ndarray) -> tuple[float, float, np.ndarray]:
    """The body's level (median deeper than a tenth of its radius), its contrast to the
    background and its distance-to-edge map."""
    distance = ndi.distance_transform_edt(body)
    radius = float(np.sqrt(body.sum() / np.pi))
    deep = distance > max(2.0, 0.1 * radius)
    if deep.sum() < 50 or body.all():
        return float("nan"), 0.0, distance
    level = float(np.median(a[deep]))
    return level, abs(level - float(np.median(a[~body]))), distance


def _uniform(a: np.ndarray, modality: str) -> bool:
    """Whether a plane shows one convex, elliptical, flat object with background around it."""
    body = _body(a, modality)
    if body.sum() < 200 or (~body).mean() < MIN_BACKGROUND:
        return False
    level, contrast, distance = _level(a, body)
    if not contrast > 0:
        return False
    inner = distance > 2.0
    if np.mean(np.abs(a[inner] - level) <= FLAT_BAND * contrast) < MIN_FLAT_SHARE:
        return False
    if _convex_share(body) < MIN_SOLIDITY or _ellipse_fit(body) < MIN_ELLIPSE:
        return False
    core = _core(a, body, level, contrast, modality)
    if core.sum() < 0.5 * body.sum():
        return False
    room = ndi.distance_transform_edt(core)
    radius = float(np.sqrt(core.sum() / np.pi))
    filled, inside = room > 2.0, room > 2.0 + max(2.0, 0.1 * radius)  # off its partial rim
    if inside.sum() < 50:
        return False
    sigma = max(2.0, 0.03 * radius)
    fine = _spread(a, filled, inside, sigma)
    allowed = max(MIN_SPREAD * contrast, NOISE_EXCESS * _noise_spread(a, inside, sigma))
    return fine <= min(MAX_STRUCTURE * contrast, allowed)


def _noise_spread(a: np.ndarray, inside: np.ndarray, sigma: float) -> float:
    """P99 − P1 that white noise of the plane's σ (the finest Haar diagonal's MAD over
    `inside`) keeps after a Gaussian of `sigma` px: 2·2.326 σ / (2√π sigma)."""
    from medq.assess.iqms import haar_diagonal, inner_blocks

    detail = haar_diagonal(a)[inner_blocks(inside)]
    noise = float(np.median(np.abs(detail)) / 0.6745) if detail.size else 0.0
    return 2 * 2.326 * noise / (2.0 * np.sqrt(np.pi) * sigma)


def _disc(shape: tuple[int, ...], centre: tuple[float, float], radius: float) -> np.ndarray:
    """Pixels within `radius` of `centre`."""
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def _rois(a: np.ndarray, modality: str) -> PhantomReading | None:
    """The centre and peripheral ROIs of a phantom plane, in its core (None without room for
    a centre ROI)."""
    body = _body(a, modality)
    level, contrast, _ = _level(a, body)
    if not contrast > 0:
        return None
    core = _core(a, body, level, contrast, modality)
    radius = float(np.sqrt(core.sum() / np.pi))
    r_roi = max(3.0, 0.1 * radius)
    room = ndi.distance_transform_edt(core)  # a ROI centred here fits when room ≥ 2 r_roi
    cy, cx = ndi.center_of_mass(core)
    if room[int(round(cy)), int(round(cx))] < 2 * r_roi:
        return None
    centre = _disc(a.shape, (cy, cx), r_roi)
    rim: list[float | None] = []
    for dy, dx in ((-1, 0), (0, 1), (1, 0), (0, -1)):  # 12, 3, 6 and 9 o'clock (CLOCK)
        steps = np.arange(0.0, 2.0 * radius)
        ys, xs = np.rint(cy + dy * steps).astype(int), np.rint(cx + dx * steps).astype(int)
        keep = (ys >= 0) & (ys < a.shape[0]) & (xs >= 0) & (xs < a.shape[1])
        fits = np.flatnonzero(room[ys[keep], xs[keep]] >= 2 * r_roi)
        gaps = np.flatnonzero(np.diff(fits) > 1)  # stay on the stretch from the centre out
        last = fits[gaps[0]] if gaps.size else fits[-1]
        if last * 1.0 < 2 * r_roi:  # no room beside the centre ROI: not read
            rim.append(None)
            continue
        roi = _disc(a.shape, (cy + dy * steps[last], cx + dx * steps[last]), r_roi)
        rim.append(float(a[roi].mean()))
    return PhantomReading(modality, float(a[centre].mean()), float(a[centre].std(ddof=1)),
                          tuple(rim), r_roi)


def plane_reading(plane: np.ndarray, modality: str) -> PhantomReading | None:
    """The ROI measures of one 2D plane when it shows a uniform phantom, else None."""
    a = np.asarray(plane, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 32 or not np.isfinite(a).all():
        return None
    step = max(1, min(a.shape) // CHECK_SIDE)
    if not _uniform(a[::step, ::step], modality):
        return None
    return _rois(a, modality)


def phantom_reading(image: MedImage, indices: list[int] | None = None) -> PhantomReading | None:
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
    return replace(readings[len(readings) // 2], planes=len(readings))


def refuse_phantom(image: MedImage, indices: list[int] | None = None) -> None:
    """Raise `UniformPhantom`, with its measures, when the image shows a uniform phantom."""
    reading = phantom_reading(image, indices)
    if reading is None:
        return
    where = f" ({reading.planes} planes)" if reading.planes > 1 else ""
    raise UniformPhantom(f"a uniform QA phantom, not a patient image{where}: "
                         f"{reading.sentence()}; medq grades anatomy, so it gives a phantom no "
                         "score (compare these numbers with the scanner's own baseline)",
                         image.source, reading)
