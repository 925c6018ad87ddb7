"""`compute_measures`: the applicable classical measures of one image, as one flat dict."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from medq.assess.artifacts import STREAK_VIEW, ghosting_ratio, qi_1, spike_contrast
from medq.assess.evidence import plane_streak, read_plane
from medq.assess.inu import inu_range
from medq.assess.iqms import (
    CT_OFFSET_HU,
    _f64,
    _mask,
    _mean_std,
    blur,
    cjv,
    clipping_fraction,
    cnr,
    dynamic_range,
    efc,
    fber,
    laplacian_variance,
    noise_sigma_flat,
    noise_sigma_wavelet,
    sharpness,
    snr,
    snr_dietrich,
    snr_tissue,
    wm2max,
)
from medq.assess.masks import air_mask, body_and_anatomy, is_rgb, to_gray
from medq.assess.slices import salient_slices
from medq.errors import InvalidImage, InvalidParameter
from medq.image import MODALITIES, modality_code

MEASURE_NAMES = ("foreground_fraction", "noise_sigma", "noise_sigma_flat", "snr", "efc", "fber",
                 "sharpness", "laplacian_variance", "blur", "dynamic_range", "clipping_fraction",
                 "snr_dietrich", "ghosting_ratio", "qi_1", "spike_contrast", "inu_range",
                 "streak_index")
"""Every measure `compute_measures` gives without tissue masks (MR's and CT's own included), in
its order: `medq qc export` writes one column each, whatever the modalities of a database."""


def _tissue_measures(a: np.ndarray, tissue: Mapping[str, np.ndarray],
                     sigma_air: float) -> dict[str, float]:
    """snr_<name> per tissue; cnr/cjv for (wm, gm) or the first two masks; wm2max with a wm mask."""
    out = {f"snr_{name}": snr_tissue(a, m) for name, m in tissue.items()}
    names = ["wm", "gm"] if {"wm", "gm"} <= set(tissue) else list(tissue)[:2]
    if len(names) == 2:
        first, second = (tissue[n] for n in names)
        out["cnr"] = cnr(a, first, second, sigma_air if np.isfinite(sigma_air) else 0.0)
        out["cjv"] = cjv(a, first, second)
    if "wm" in tissue:
        out["wm2max"] = wm2max(a, tissue["wm"])
    return out


def _ct_streak(array: np.ndarray, fg: np.ndarray) -> float:
    """`plane_streak` of a plane; of a volume, the median over its salient slices (nan when no
    slice holds the body)."""
    if array.ndim == 2:
        return plane_streak(array, STREAK_VIEW)
    found = [plane_streak(array[i], STREAK_VIEW) for i in salient_slices(array, fg, modality="CT")]
    return float(np.median(found)) if found else float("nan")


def compute_measures(array: np.ndarray, modality: str, mask: np.ndarray | None = None,
                     tissue_masks: Mapping[str, np.ndarray] | None = None,
                     value_range: tuple[float, float] | None = None,
                     streak: float | None = None) -> dict[str, float]:
    """Return the applicable classical measures as `{name: float}`.

    Always: foreground_fraction, noise_sigma, noise_sigma_flat, snr, efc, fber, sharpness,
    laplacian_variance, blur, dynamic_range, clipping_fraction. MR adds snr_dietrich,
    ghosting_ratio, qi_1, spike_contrast (k-space spikes) and inu_range (the N4 bias field's
    spread, `medq.assess.inu`); CT adds streak_index
    (`evidence.plane_streak`: on a view of at most `STREAK_VIEW` = 256 px, padding outside the
    reconstruction circle read as air; of a volume the median over its salient slices; `streak`
    gives it when the caller has it already, as
    `medq assess` does from the evidence).
    `tissue_masks` (name → mask; "wm"/"gm" as in MRIQC) add snr_<name>, cnr and cjv (for wm/gm
    or the first two) and wm2max (with "wm").
    The background measures (fber, snr_dietrich, qi_1, the cnr's air σ) read the air outside
    every piece of anatomy (`masks.air_mask`): the arms beside an abdomen are not background.
    RGB photographs are measured on luminance. Non-finite pixels are excluded from every mask
    (and set to the median for filtering); CT padding outside the reconstruction circle (below
    `evidence.CT_PADDING_HU`: −2000, −3024, …) is read as air, as the evidence rows read it (else
    EFC is undefined and the padding's energy counts as background in FBER). `value_range`
    defaults to (0, 1) for photographs.
    """
    modality = modality_code(modality)  # "ct", "MRI" as CT, MR
    if modality not in MODALITIES:
        raise InvalidParameter(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    rgb = is_rgb(array, modality)
    a = to_gray(array) if rgb else _f64(array)
    finite = np.isfinite(a)
    if not finite.any():
        raise InvalidImage("image has no finite pixel value")
    a = read_plane(a, modality)  # non-finite pixels → the median, CT padding → air
    if mask is None:
        fg, anatomy = body_and_anatomy(a, modality)
        fg &= finite
    else:
        fg = anatomy = _mask(a, mask) & finite
    bg = air_mask(fg, anatomy) & finite
    if value_range is None and rgb:
        value_range = (0.0, 1.0)
    offset = CT_OFFSET_HU if modality == "CT" else None
    sigma = noise_sigma_wavelet(a, fg)
    out = {
        "foreground_fraction": float(fg.mean()),
        "noise_sigma": sigma,
        "noise_sigma_flat": noise_sigma_flat(a, fg),
        "snr": snr(a, fg, sigma, offset),
        "efc": efc(a, finite, offset),
        "fber": fber(a, fg, bg, offset),
        "sharpness": sharpness(a, fg),
        "laplacian_variance": laplacian_variance(a, fg),
        "blur": blur(a),
        "dynamic_range": dynamic_range(a, fg, value_range),
        "clipping_fraction": clipping_fraction(a, fg, value_range),
    }
    if modality == "MR":
        out["snr_dietrich"] = snr_dietrich(a, fg, bg)
        out["ghosting_ratio"] = ghosting_ratio(a, fg, tissue=anatomy)
        out["qi_1"] = qi_1(a, bg)
        out["spike_contrast"] = spike_contrast(a)
        out["inu_range"] = inu_range(a, fg)
    if modality == "CT":
        out["streak_index"] = _ct_streak(to_gray(array) if rgb else array, fg) if (
            streak is None) else streak
    if tissue_masks:
        tissue = {name: _mask(a, m) & finite for name, m in tissue_masks.items()}
        out.update(_tissue_measures(a, tissue, _mean_std(a, bg)[1]))
    return {k: float(v) for k, v in out.items()}
