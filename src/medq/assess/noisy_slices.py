"""Slices of a volume noisier than the slices around them (noise confined to some slices).

The model and the evidence read a volume's 7 salient slices (`medq.assess.slices`), so a
problem confined to a few slices — a burst of RF interference during some slices, a slice
acquired with the wrong coil, interleaved slices from a noisier pass — is missed when no salient
slice falls on it. This check reads every slice with body, cheaply, for that:

1. A slice's noise σ is Donoho's MAD of its decimated finest Haar diagonal detail,
   median(|HH|) / 0.6745, over the 2×2 blocks lying above the volume's body threshold
   (`masks.body_threshold`, read on every other voxel; at most `MAX_BLOCKS` of them, evenly
   strided). Fine anatomy adds to it as noise does, so on a detailed MR slice the noise must
   rise somewhat more than `RATIO` times for the reading to. Slices with fewer than
   `MIN_BLOCKS` such blocks, or under `MIN_SHARE` of the median compared slice's, are not
   compared: noise at the very ends of the anatomy goes unseen.
2. σ is floored at `HU_FLOOR` for a CT in Hounsfield units (so rounding to whole HU never
   reads as noise) and otherwise at `FLOOR` of the median slice level, the level being the
   median of a slice's body blocks (a quantised, nearly noise-free template), or of the P2–P98
   spread of a volume whose body is centred on 0 (z-scored), for which step 4's level test is
   left out.
3. Its reference is the lower quartile of the σ of the compared slices within `window(m)`
   slices of it, in the order of the m compared slices. A slow change along the volume — CT noise
   rising at the shoulders, PET noise following the activity — moves the reference with it;
   interleaved noisy slices and a run of them up to about a third of the window do not.
4. A slice whose σ is at least `RATIO` times its reference is noisy — outside CT in HU, only
   when its σ over its level is also at least `LEVEL_RATIO` times the same reference of that
   ratio (a slab brightened by a gain change has both its σ and its level raised).

`noisy_slices` returns, for a volume of at least `MIN_SLICES` compared slices, the noisy slices
(none: an empty list), their runs, the largest ratio with that slice's value and reference, and
how many slices were compared; None when it could not compare (a 2D image, too few slices).
Slices are indexed from 0 along the volume's first axis as medq reads it (a DICOM series in
order of position along its normal, a NIfTI file along its third voxel axis k), as the
Assessment's `slices` are; `located` adds a DICOM series' InstanceNumbers and files. It is a
fact read from the pixels beside the score, as `slice_gaps` is one read from the header: the
score and findings still come from the salient slices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medq.assess.iqms import MAD_TO_SIGMA
from medq.assess.masks import CT_BODY_HU, body_threshold

RATIO = 2.0
"""A slice is an outlier when its σ is at least this multiple of its reference."""

FLOOR = 0.01
"""Smallest σ of a slice not in Hounsfield units, as a share of the median slice level."""

HU_FLOOR = 1.0
"""Smallest σ of a CT slice in Hounsfield units: scanners' noise is several times more,
rounding to whole HU a fraction of it."""

LEVEL_RATIO = 1.5
"""Outside CT in HU, a noisy slice's σ over its level must also be at least this multiple of
its neighbours' (a slab made brighter by a gain change, noise and all, is not noisier)."""

QUANTILE = 25.0
"""The percentile of the neighbours' values taken as a slice's reference (the lower quartile)."""

MIN_BLOCKS = 256
"""Fewest body blocks (2×2) a slice needs to be compared (a 32×32 patch)."""

MIN_SHARE = 0.25
"""A slice is compared only when its body blocks are at least this share of the median compared
slice's (a slice near the end of the anatomy, whose thin body is mostly edge, is not)."""

MAX_BLOCKS = 16384
"""Most body blocks read per slice (evenly strided): the median needs no more."""

MIN_SLICES = 8
"""Fewest compared slices for a comparison between them."""

CHUNK = 16
"""Slices read at once."""


def window(m: int) -> int:
    """Half-width (in compared slices) of the neighbourhood whose lower quartile is a slice's
    reference."""
    return max(4, m // 4)


def slice_values(volume: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Every slice's σ and level (step 1 of the module's rule: over its blocks above
    `threshold`; the level is their median mean); NaN for a slice not compared."""
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"slice_values needs a (z, y, x) volume, got shape {vol.shape}")
    ny, nx = (vol.shape[1] // 2) * 2, (vol.shape[2] // 2) * 2
    dtype = np.float32 if vol.dtype.itemsize <= 4 else np.float64
    sigma, level = np.full(vol.shape[0], np.nan), np.full(vol.shape[0], np.nan)
    counts = np.zeros(vol.shape[0], dtype=np.int64)
    for start in range(0, vol.shape[0], CHUNK):
        part = vol[start:start + CHUNK, :ny, :nx].astype(dtype, copy=False)
        p, q = part[:, 0::2, 0::2], part[:, 0::2, 1::2]
        r, s = part[:, 1::2, 0::2], part[:, 1::2, 1::2]
        inside = np.minimum(np.minimum(p, q), np.minimum(r, s)) > threshold  # NaN is never
        # each corner taken a quarter first (exact): sums of values near float32's largest
        # overflowed to inf, and the check reported no noisy slice
        p, q, r, s = (c * dtype(0.25) for c in (p, q, r, s))
        hh, mean = np.abs(p - q - r + s), p + q + r + s  # a quarter of HH and of the sum
        for k in range(part.shape[0]):
            count = counts[start + k] = int(np.count_nonzero(inside[k]))
            if count >= MIN_BLOCKS:
                step = max(1, count // MAX_BLOCKS)
                sigma[start + k] = float(np.median(hh[k][inside[k]][::step])) * 2 / MAD_TO_SIGMA
                level[start + k] = abs(float(np.median(mean[k][inside[k]][::step])))
    read = np.isfinite(sigma)
    if read.any():  # the caps of the anatomy: thin body, σ read mostly on its edges
        sigma[counts < MIN_SHARE * np.median(counts[read])] = np.nan
    return sigma, level


def _ratios(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each compared slice's value over its reference (step 3; NaN where the reference is 0),
    and the references."""
    half = window(values.size)
    refs = np.array([np.percentile(values[max(0, k - half): k + half + 1], QUANTILE)
                     for k in range(values.size)])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(refs > 0, values / np.where(refs > 0, refs, 1.0), np.nan)
    return ratios, refs


def _in_hu(volume: np.ndarray, modality: str | None) -> tuple[float, bool]:
    """(body threshold read on every other voxel along each axis, whether the volume is a CT
    in Hounsfield units: its threshold is the HU one)."""
    threshold = body_threshold(volume[::2, ::2, ::2], modality)
    return threshold, str(modality).upper() == "CT" and threshold == CT_BODY_HU


def noisy_slices(volume: np.ndarray, modality: str | None = None) -> dict[str, Any] | None:
    """The slices of a volume noisier than those around them (module rule); None when it
    cannot compare them.

    Keys: `slices` (indices of the noisy slices; [] when none), `runs` ([first, last] of each
    run of consecutive ones), `compared` (how many slices were compared) and, when some slice
    is noisy, `ratio` (the largest σ over its reference among them), `sigma` and `reference`
    (that slice's, in the image's units); for MR also `spiked`, the compared slices marked by
    a k-space spike (`medq.assess.spiked_slices`: `slices`, `runs`, `peak`).
    """
    vol = np.asarray(volume)
    if vol.ndim != 3 or vol.shape[0] < MIN_SLICES:
        return None
    threshold, hu = _in_hu(vol, modality)
    sigma_all, level_all = slice_values(vol, threshold)
    read = np.flatnonzero(np.isfinite(sigma_all))
    m = read.size
    if m < MIN_SLICES:
        return None
    level = level_all[read]
    typical = float(np.median(level))
    floor = HU_FLOOR if hu else FLOOR * (typical if typical > 0 else _spread(vol))
    sigma = np.maximum(sigma_all[read], floor)
    ratios, refs = _ratios(sigma)
    hit = ratios >= RATIO  # NaN (a reference of 0) is never
    if not hu and typical > 0:  # not a gain change: the noise rises against its level too
        hit &= _ratios(sigma / np.maximum(level, FLOOR * typical))[0] >= LEVEL_RATIO
    slices = [int(z) for z in read[hit]]
    out: dict[str, Any] = {"slices": slices, "runs": runs_of(slices), "compared": int(m)}
    if slices:
        worst = int(np.argmax(np.where(hit, ratios, -np.inf)))
        out.update(ratio=round(float(ratios[worst]), 2), sigma=_figures(sigma[worst], 4),
                   reference=_figures(refs[worst], 4))
    if str(modality).upper() == "MR":  # a k-space spike: MR's alone
        from medq.assess.spiked_slices import spiked_slices

        spikes, peak = spiked_slices(vol, read)
        out["spiked"] = {"slices": spikes, "runs": runs_of(spikes),
                         **({"peak": _figures(peak, 3)} if spikes else {})}
    return out


def _spread(volume: np.ndarray) -> float:
    """P98 − P2 of the volume's finite values on every other voxel: the scale of a volume
    whose body is centred on 0 (z-scored), where the level says nothing."""
    sample = volume[::2, ::2, ::2]
    values = sample[np.isfinite(sample)]
    if values.size == 0:
        return 0.0
    low, high = np.percentile(values, [2.0, 98.0])
    return float(high - low)


def _figures(value: float, digits: int) -> float:
    """`value` to `digits` significant figures (σ in any unit, 1e-5 as much as 1e3)."""
    return float(f"{float(value):.{digits}g}")


def found(result: dict[str, Any] | None) -> bool:
    """Whether a `noisy_slices` result names noisy or spiked slices (not None, not empty)."""
    return bool(result and (result.get("slices") or spiked(result)))


def spiked(result: dict[str, Any] | None) -> list[int]:
    """The spiked slices of a `noisy_slices` result ([] for none, or none read)."""
    return list(((result or {}).get("spiked") or {}).get("slices") or [])


def located(result: dict[str, Any] | None, meta: dict[str, Any]) -> dict[str, Any] | None:
    """`result` with, for a volume read from a DICOM series (`meta` holds its files in slice
    order), the InstanceNumbers (`instances`) and file names within the series folder (`files`)
    of its noisy slices, and of its spiked ones in `spiked`."""
    files = meta.get("dicom_files") or []
    if not found(result) or len(files) < 2:
        return result
    numbers = meta.get("instance_numbers") or [None] * len(files)
    if len(numbers) != len(files):
        return result

    def named(part: dict[str, Any]) -> dict[str, Any]:
        slices = part.get("slices") or []
        if not slices or max(slices) >= len(files):
            return part
        return {**part, "instances": [numbers[z] for z in slices],
                "files": [_name(files[z]) for z in slices]}

    out = dict(named(result))  # a new dict: the caller's result stays as it was
    if result.get("spiked"):
        out["spiked"] = named(result["spiked"])
    return out


def _name(path: str) -> str:
    """A file's name within its series folder, as text any JSON writer takes (an undecodable
    byte of the name as its escape)."""
    return Path(path).name.encode("utf-8", "backslashreplace").decode("utf-8")


def runs_of(slices: list[int]) -> list[list[int]]:
    """[first, last] of each run of consecutive indices in sorted `slices`."""
    runs: list[list[int]] = []
    for z in slices:
        if runs and z == runs[-1][1] + 1:
            runs[-1][1] = z
        else:
            runs.append([z, z])
    return runs


def _spans(values: list[int], limit: int | None) -> str:
    """Sorted integers as runs, "3–5, 9", the first `limit` runs then "…"."""
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in runs_of(sorted(values))]
    if limit is not None and len(parts) > limit:
        return ", ".join(parts[:limit]) + ", …"
    return ", ".join(parts)


def runs_text(part: dict[str, Any], compared: int, limit: int | None = 4) -> str:
    """Slices in short (of a result, or of its `spiked`), e.g. "slices 63–67 (5 of 127
    compared)", with a DICOM series' images: "slices 48–50 (images 10–12; 3 of 58 compared)";
    `limit` runs at most."""
    n = len(part["slices"])
    images = [v for v in part.get("instances") or [] if isinstance(v, int)]
    shown = f"images {_spans(images, limit)}; " if len(images) == n else ""
    return (f"slice{'s' * (n != 1)} {_spans(part['slices'], limit)} "
            f"({shown}{n} of {compared} compared)")


def outliers_cell(result: dict[str, Any], limit: int | None = 4) -> str:
    """A results table's words for them, e.g. "noisy slices 63–67 (5 of 127 compared), up to
    3.1×; spike on slice 94 (1 of 127 compared)"; "none of 127 compared" when none is."""
    if not found(result):
        return f"none of {result['compared']} compared"
    parts = []
    if result["slices"]:
        parts.append(f"noisy {runs_text(result, result['compared'], limit)}, up to "
                     f"{result['ratio']:.1f}×")
    if spiked(result):
        parts.append(f"spike on {runs_text(result['spiked'], result['compared'], limit)}")
    return "; ".join(parts)
