"""Evidence features: cheap, contrast-normalised measurements that tell finding types apart.

The description's finding detector (`medq.assess.detector`) reads these, never raw pixels,
and the quality model takes them per slice as its measure input (`evidence_rows`).
Every feature is computed in-plane on a 2D greyscale slice (photographs on luminance; volumes
on their salient slices, averaged) and is, where it can be, independent of the intensity scale
and of which image axis was the phase-encode direction:

- **noise**: the finest Haar diagonal detail σ (MAD), the flattest-window σ and the background σ,
  each divided by the robust contrast C = P99 − P1 of the body; the scale-2/scale-1 σ ratio
  (white noise halves, structure does not) and the detail anisotropy |ln σ_LH/σ_HL|;
- **sharpness**: the radial power spectrum in nine bands (fraction of the power, log), the
  normalised gradient and Laplacian energies and Crété's blur;
- **structured artefacts**: the high-/low-pass autocorrelation peaks along each axis (ghost and
  alias copies), the N/2 peak, the ghosting ratio, the spectral peak (k-space spike), the angular
  irregularity of the high-frequency spectrum and the CT streak index;
- **intensity**: the floor and range relative to the modality's zero (contrast loss lifts the
  floor), for CT the body's median and P99 in HU (calibrated units: contrast loss pulls soft
  tissue and bone towards the image mean) and the span of a smooth (quadratic) field fitted to
  the body (bias, illumination);
- **context**: modality, pixel size, matrix size, 2D/3D.

A full-resolution detector can also read `DETECTOR_EXTRAS` (the MR spike contrast of
`medq.assess.artifacts` and the N4 bias-field spread of `medq.assess.inu`), appended to the
full-plane vector when its calibration lists them (`python -m medq.describe.calibrate
--extras`); the quality model's evidence rows never have them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage as ndi

from medq.assess.artifacts import ghosting_ratio, spike_contrast, streak_index
from medq.assess.filters import shrink
from medq.assess.iqms import blur, laplacian_variance, sharpness
from medq.assess.masks import background_mask, body_and_anatomy, to_gray
from medq.assess.plane_signal import (
    BANDS,
    EPS,
    autocorrelation_peaks,
    body_contrast,
    fine_noise,
    log_floored,
    noise_stats,
    smooth_field,
    spectrum_stats,
)

FEATURES_VERSION = 3
"""Bumped whenever a feature's computation changes (cached calibration data is keyed by it;
3: anatomy outside the main body, such as the arms, is no longer read as ghosting)."""

MODALITY_GROUPS = ("CT", "MR", "PT", "XR", "OP")
"""Modality one-hot of the features (CR/DX are XR; anything else has all zeros)."""

ZERO_LEVEL = {"CT": -1024.0}
"""The value of "no signal" per modality (air in HU for CT; 0 for magnitude images)."""

CT_PADDING_HU = -1500.0
"""CT values below this are padding outside the reconstruction circle (−2000, −3024, …): they
are set to air (−1024 HU) before any feature is computed."""

SLICE_NAMES = (
    "noise_hh", "noise_flat", "noise_bg", "noise_scale_ratio", "detail_anisotropy",
    "detail_hh_ratio", *(f"band_{i}" for i in range(len(BANDS) - 1)), "spectral_anisotropy",
    "angular_cv", "spectral_peak", "sharpness", "laplacian", "crete_blur", "ac_high_max",
    "ac_high_half", "ac_low_max", "ac_low_half", "ghosting", "bg_level", "floor", "span",
    "field_span", "field_cv", "streak", "has_background", "ct_tissue", "ct_top",
)
"""Per-slice features, in vector order."""

CONTEXT_NAMES = (*(f"is_{m.lower()}" for m in MODALITY_GROUPS), "log_spacing", "log_matrix",
                 "is_3d")
"""Image-level context features appended after the slice features."""

FEATURE_NAMES = SLICE_NAMES + CONTEXT_NAMES
"""Every feature of an evidence row (what the quality model and the view detector read), in
vector order."""

DETECTOR_EXTRAS = ("spike_contrast", "inu_range")
"""Full-plane features a full-resolution detector may read besides the evidence features (the
quality model's rows do not have them), in vector order: `artifacts.spike_contrast` and
`inu.inu_range` (inside the body mask) of MR planes, 0 for other modalities. Tried for the
shipped calibration, not shipped: docs/trials.md (description)."""


def _ordered(asked: tuple[str, ...] | list[str], known: tuple[str, ...], what: str
             ) -> tuple[str, ...]:
    """The names asked for, in `known`'s order; ValueError naming `what` for one not known."""
    unknown = sorted(set(asked) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; medq has {known}")
    return tuple(name for name in known if name in asked)


def ordered_extras(extras: tuple[str, ...]) -> tuple[str, ...]:
    """The detector extras asked for, in vector order (`DETECTOR_EXTRAS`'s); ValueError for a
    name medq does not compute."""
    return _ordered(extras, DETECTOR_EXTRAS, "detector extras")


def feature_names(width: int) -> tuple[str, ...]:
    """The feature names of a full-plane vector of this width: the evidence features, then the
    first extras."""
    extra = width - len(FEATURE_NAMES)
    if not 0 <= extra <= len(DETECTOR_EXTRAS):
        raise ValueError(f"{width} features: medq computes {len(FEATURE_NAMES)} evidence features"
                         f" and up to {len(DETECTOR_EXTRAS)} extras")
    return FEATURE_NAMES + DETECTOR_EXTRAS[:extra]


def modality_group(modality: str) -> str:
    """CT, MR, PT, XR (CR/DX) or OP; other modalities map to themselves."""
    return "XR" if modality in ("CR", "DX") else modality


def read_plane(array: np.ndarray, modality: str) -> np.ndarray:
    """A greyscale plane (or volume) as the features and the classical measures read it: float64,
    non-finite pixels set to the median, CT padding outside the reconstruction circle (below
    `CT_PADDING_HU`) set to air."""
    a = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, np.median(a[finite]) if finite.any() else 0.0)
    if modality == "CT":
        a = np.where(a < CT_PADDING_HU, ZERO_LEVEL["CT"], a)
    return a


NOMINAL_RANGE = (2.0 ** -10, 2.0 ** 24)
"""Largest magnitudes (max |x|) of a non-CT plane that the features read as they are; a plane
beyond them (a quantitative map in SI units, ADC at about 1e-9 m²/s; a float export scaled by
1e12) is first scaled by a power of two so its largest magnitude lies in (128, 256]
(`nominal_scale`). No plane or view of the description benchmark, nor of a sample of the
training sources' items, lies outside them (their maxima: 0.028 to about 2,500;
`benchmarks/probes/nominal_range.py`)."""


def nominal_scale(plane: np.ndarray, modality: str) -> tuple[np.ndarray, bool]:
    """A non-CT plane scaled by a power of two (exact: ratios unchanged) into the range the
    features' small-value floors were set for, when its largest magnitude lies outside
    `NOMINAL_RANGE`; and whether it was scaled. CT (calibrated HU) is kept as it is."""
    if modality == "CT":
        return plane, False
    top = max(float(plane.max()), -float(plane.min())) if plane.size else 0.0  # max |x|
    low, high = NOMINAL_RANGE
    if top == 0.0 or low <= top <= high:
        return plane, False
    return np.ldexp(plane, 8 - int(np.ceil(np.log2(top)))), True


SHARED_MEASURES = ("noise_sigma_flat", "sharpness", "laplacian_variance", "blur")
"""Classical measures (`measures.compute_measures`) that are also features of the same plane:
`slice_features` takes them as `measured` instead of computing them again."""


def slice_features(array: np.ndarray, modality: str,
                   measured: Mapping[str, float] | None = None) -> dict[str, float]:
    """The per-slice features of one 2D greyscale slice (see the module docstring), and under
    `streak_index` (not a feature) the raw CT streak index the `streak` feature is the log of.

    `measured`: the plane's classical measures (`measures.compute_measures` of this same
    array), whose `SHARED_MEASURES` are then read, not computed again; they are the same
    computation on the same mask wherever every pixel is finite (else they are recomputed)."""
    a, scaled = nominal_scale(read_plane(array, modality), modality)
    if scaled:
        measured = None  # taken in the plane's own units
    finite = np.isfinite(array)
    fg, anatomy = body_and_anatomy(a, modality)
    if fg.sum() < 64:
        fg = np.ones_like(fg)
        measured = None  # the measures read the small body itself
    if measured is None or not finite.all():
        measured = {}
    known = {k: float(measured[k]) for k in SHARED_MEASURES if measured.get(k) is not None}
    contrast = body_contrast(a[fg])
    zero = ZERO_LEVEL.get(modality, 0.0)
    p_lo, p_hi = np.percentile(a, [0.5, 99.5])
    out: dict[str, float] = noise_stats(a, fg, contrast, known.get("noise_sigma_flat"))
    out.update(spectrum_stats(a, fg))
    bg = background_mask(fg) & finite
    has_bg = bg.sum() >= 64
    out["noise_bg"] = log_floored(a[bg].std() / contrast) if has_bg else log_floored(0.0)
    out["bg_level"] = float((np.median(a[bg]) - zero) / contrast) if has_bg else 0.0
    out["has_background"] = float(has_bg)
    out["sharpness"] = log_floored(known["sharpness"] if "sharpness" in known
                                   else sharpness(a, fg))
    out["laplacian"] = log_floored(known["laplacian_variance"] if "laplacian_variance" in known
                                   else laplacian_variance(a, fg))
    crete = known["blur"] if "blur" in known else blur(a)
    out["crete_blur"] = float(crete) if np.isfinite(crete) else 0.5
    high = a - ndi.gaussian_filter(a, 1.5)
    low = ndi.gaussian_filter(a, 2.0)
    out["ac_high_max"], out["ac_high_half"] = autocorrelation_peaks(high)
    out["ac_low_max"], out["ac_low_half"] = autocorrelation_peaks(low)
    ghost = ghosting_ratio(a, fg, tissue=anatomy) if has_bg else float("nan")
    out["ghosting"] = float(np.clip(ghost, -1, 1)) if np.isfinite(ghost) else 0.0
    span = max(float(p_hi - zero), EPS)
    out["floor"] = float(np.clip((p_lo - zero) / span, -1, 1))
    out["span"] = log_floored((p_hi - p_lo) / span)
    out["field_span"], out["field_cv"] = smooth_field(a, fg, zero)
    out["streak_index"] = streak_index(a) if modality == "CT" else float("nan")
    out["streak"] = log_floored(out["streak_index"]) if np.isfinite(out["streak_index"]) else 0.0
    body = np.percentile(a[fg], [50.0, 99.0]) / 1000.0 if modality == "CT" else (0.0, 0.0)
    out["ct_tissue"], out["ct_top"] = float(body[0]), float(body[1])
    return out


def _planes(image: Any, indices: list[int] | None) -> list[np.ndarray]:
    """The greyscale 2D planes features are computed on (volumes: `indices` or salient)."""
    from medq.assess.slices import salient_slices

    array = to_gray(image.array) if image.is_rgb else np.asarray(image.array, dtype=np.float64)
    if not image.is_volume:
        return [array]
    picked = indices if indices else salient_slices(array, modality=image.modality)
    return [array[i] for i in picked]


def _context(image: Any, plane: np.ndarray) -> list[float]:
    """Image-level context features (CONTEXT_NAMES order)."""
    group = modality_group(image.modality)
    spacing = float(np.mean(image.spacing[-2:]))
    return [*(float(group == m) for m in MODALITY_GROUPS), float(np.log(spacing)),
            float(np.log(min(plane.shape))), float(image.is_volume)]


def feature_vector(image: Any, indices: list[int] | None = None,
                   extras: tuple[str, ...] = (),
                   measured: Sequence[Mapping[str, float]] | None = None,
                   taken: Sequence[Mapping[str, float] | None] | None = None) -> np.ndarray:
    """The full-plane feature vector of a MedImage (FEATURE_NAMES, then the `extras` of
    `DETECTOR_EXTRAS` asked for); volumes on `indices` (salient), each feature the mean over
    the planes. `measured`: each plane's classical measures, when taken (`slice_features`);
    `taken`: each plane's `slice_features` where already taken on the whole plane
    (`EvidencePass.whole`: a plane no larger than its evidence view), else None."""
    wanted = ordered_extras(extras)
    planes = _planes(image, indices)
    if measured is None or len(measured) != len(planes):
        measured = [None] * len(planes)
    if taken is None or len(taken) != len(planes):
        taken = [None] * len(planes)
    rows = [t if t is not None else slice_features(p, image.modality, m)
            for p, m, t in zip(planes, measured, taken, strict=True)]
    slice_part = [float(np.mean([r[k] for r in rows])) for k in SLICE_NAMES]
    extra_part = [_extra(name, planes, image.modality) for name in wanted]
    return np.asarray(slice_part + _context(image, planes[0]) + extra_part, dtype=np.float32)


def _extra(name: str, planes: list[np.ndarray], modality: str) -> float:
    """One detector extra of an image: its mean over the planes (MR only, else 0)."""
    from medq.assess.inu import inu_range

    if modality_group(modality) != "MR":
        return 0.0
    values = []
    for plane in planes:
        a = read_plane(plane, modality)
        values.append(spike_contrast(a) if name == "spike_contrast"
                      else inu_range(a, body_and_anatomy(a, modality)[0]))
    return float(np.mean([v for v in values if np.isfinite(v)] or [0.0]))


EVIDENCE_SIZE = 256
"""Longest side of the view the quality model's measure input is computed on (speed)."""

LARGE_PLANE = 2 * EVIDENCE_SIZE
"""Longest plane side (px) above which the assessment reads an image's evidence on its full
planes too (`reads_full_planes`): the view calibration was fitted on images of at most 512 px, whose
views are shrunk 2× at most, and a view shrunk further averages away what sits at the pixel
level (a 3000-px radiograph's quantum noise falls 12× in its view; at 1000 px, 150 photons per
pixel read as mild noise)."""


def reads_full_planes(image: Any) -> bool:
    """Whether an image's planes are larger than `LARGE_PLANE` on their longer side, so its
    assessment reads the full-plane calibration (as `medq describe` does) beside its views."""
    plane = image.shape[:2] if image.is_rgb else image.shape[-2:]
    return max(plane) > LARGE_PLANE


def _view_efc(view: np.ndarray, modality: str) -> float:
    """MRIQC's entropy focus criterion of a view (`iqms.efc`; CT offset by +1024 HU, as
    `compute_measures` takes it); 1 (fully spread) when undefined."""
    from medq.assess.iqms import efc

    value = efc(view, None, -ZERO_LEVEL["CT"] if modality == "CT" else None)
    return float(value) if np.isfinite(value) else 1.0


ROW_EXTRA_FUNCTIONS = {"efc": _view_efc}
"""Features an evidence row may carry after `FEATURE_NAMES`, for a quality model trained on them
(a benchmark plan's `evidence_extras`, recorded in the checkpoint), each a function of the view
(as `read_plane` gives it) and the modality: `efc`, which rises with ghosts, aliases, blur and
noise alike within one image (`benchmarks/probes/ladder_features.py`). The detectors read the
leading `FEATURE_NAMES` columns (`evidence_features`), so rows with extras serve them unchanged."""

ROW_EXTRAS = tuple(ROW_EXTRA_FUNCTIONS)
"""The names of the row extras, in row order."""


def ordered_row_extras(extras: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The row extras asked for, in `ROW_EXTRAS` order; ValueError for one medq does not take."""
    return _ordered(extras, ROW_EXTRAS, "evidence row extras")


def evidence_features(rows: np.ndarray) -> np.ndarray:
    """The `FEATURE_NAMES` columns of evidence rows `[slices, features (+ extras)]`."""
    return np.asarray(rows)[..., :len(FEATURE_NAMES)]


def view_features(rows: np.ndarray) -> np.ndarray:
    """The feature vector of an image's views: its evidence rows `[slices, features]` averaged
    over the slices (what the view calibration of the finding detector reads; row extras left
    out)."""
    return np.asarray(evidence_features(rows), dtype=np.float64).mean(axis=0).astype(np.float32)


def plane_streak(plane: np.ndarray, longest: int = EVIDENCE_SIZE) -> float:
    """The CT streak index of a plane as its evidence row reads it: `streak_index` of its view
    of at most `longest` px (`read_plane`); `evidence_pass` gives it for free beside the rows."""
    return streak_index(read_plane(shrink(np.asarray(plane, dtype=np.float64), longest), "CT"))


NOISE_GAPS = (-0.5, 0.0)
"""How far a plane's `fine_noise` lies above its view's `noise_hh` (ln) where the assessment
begins to read its noise on the full plane too, and where it reads it there fully
(`EvidencePass.noise_weight`, linear between): a view's anti-aliased resampling removes most
white, pixel-level noise while the finest structure grows sharper per pixel. A clean 512² head
CT reads about 0.9 below its view, with the engine's low-dose noise 0.3–0.4 below, with white
noise of σ 10–80 HU 0.5–1.1 above (where its view read no noise up to σ 40 HU:
`benchmarks/probes/hidden_noise.py`). A ramp, not a switch, so two noise draws of one protocol
near the bound score alike."""


class EvidencePass(NamedTuple):
    """What the evidence pass takes of an image: its `evidence_rows`, each plane's raw CT
    streak index (`plane_streak`, nan for other modalities: `compute_measures(streak=…)` need
    not take it again), for each plane no larger than its view (the view is the plane) its
    `slice_features` (`feature_vector(taken=…)` need not take them again), else None, and for
    each plane its view shrinks (up to `LARGE_PLANE`, beyond which the planes are read whole
    anyway) how far its `fine_noise` lies above its view's (`NOISE_GAPS`), else nan."""

    rows: np.ndarray
    streaks: list[float]
    whole: list[dict[str, float] | None]
    finer: list[float]

    @property
    def gap(self) -> float:
        """The planes' mean `finer` gap; nan where none was taken."""
        gaps = [g for g in self.finer if np.isfinite(g)]
        return float(np.mean(gaps)) if gaps else float("nan")

    @property
    def noise_weight(self) -> float:
        """How fully the assessment reads noise on the full planes too: 0 below, 1 above
        `NOISE_GAPS`, linear between, for the planes' mean `gap`; 0 without one."""
        low, high = NOISE_GAPS
        gap = self.gap
        return float(np.clip((gap - low) / (high - low), 0.0, 1.0)) if np.isfinite(gap) else 0.0


def _finer(plane: np.ndarray, view_noise: float, modality: str) -> float:
    """How far a plane's `fine_noise` lies above its view's `noise_hh`; nan when both sit at
    the features' floor (a plane without measurable fine detail: nothing to compare)."""
    fine = fine_noise(nominal_scale(read_plane(plane, modality), modality)[0], modality)
    return float("nan") if max(fine, view_noise) <= log_floored(0.0) else fine - view_noise


def evidence_pass(image: Any, indices: list[int] | None = None, longest: int = EVIDENCE_SIZE,
                  extras: tuple[str, ...] = (), compare: bool = False) -> EvidencePass:
    """The evidence rows of an image on views of at most `longest` px, with what they took that
    later passes reuse (`EvidencePass`); with `compare`, the `finer` gaps of planes its
    `EVIDENCE_SIZE` views shrink, up to `LARGE_PLANE` (what the assessment reads)."""
    wanted = ordered_row_extras(extras)
    rows, streaks, whole, finer = [], [], [], []
    compare = compare and longest == EVIDENCE_SIZE and not reads_full_planes(image)
    for plane in _planes(image, indices):
        view = shrink(plane, longest)
        found = slice_features(view, image.modality)
        tail = [ROW_EXTRA_FUNCTIONS[name](read_plane(view, image.modality), image.modality)
                for name in wanted]
        rows.append([found[k] for k in SLICE_NAMES] + _context(image, plane) + tail)
        streaks.append(found["streak_index"])
        whole.append(found if view is plane else None)
        finer.append(_finer(plane, found["noise_hh"], image.modality)
                     if compare and view is not plane else float("nan"))
    return EvidencePass(np.asarray(rows, dtype=np.float32), streaks, whole, finer)


def evidence_rows(image: Any, indices: list[int] | None = None,
                  longest: int = EVIDENCE_SIZE, extras: tuple[str, ...] = ()) -> np.ndarray:
    """Per-slice feature rows `[n, len(FEATURE_NAMES) + len(extras)]` on views of at most
    `longest` pixels (`extras`: of `ROW_EXTRAS`, after the features)."""
    return evidence_pass(image, indices, longest, extras).rows
