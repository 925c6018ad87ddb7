"""Slices of a volume noisier than the slices around them (noise confined to some slices).

The model and the evidence read a volume's 7 salient slices (`medq.assess.slices`), so a
problem confined to a few slices — a burst of RF interference during some slices, a slice
acquired with the wrong coil, a spike in one of them — is missed when no salient slice falls on
it. This check reads every slice with body, cheaply, for that:

1. A slice's noise σ is Donoho's MAD of its decimated finest Haar diagonal detail,
   median(|HH|) / 0.6745, over the 2×2 blocks lying above the volume's body threshold
   (`masks.body_threshold`, read on every other voxel; at most `MAX_BLOCKS` of them, evenly
   strided). Slices with fewer than `MIN_BLOCKS` such blocks, or under `MIN_SHARE` of the
   median compared slice's, are not compared: noise at the very ends of the anatomy goes unseen.
2. Its reference is the median σ of the compared slices within `window(m)` slices of it in the
   order of the m compared slices, floored at `FLOOR` of the body's median intensity (so a
   quantised, nearly noise-free template never reads as noisy). A slow change of noise along the
   volume — CT noise rising at the shoulders, PET noise following the activity — moves the
   reference with it; a run of noisy slices shorter than the window does not.
3. A slice whose σ is at least `RATIO` times its reference is an outlier.

The result (`noisy_slices`) names the outlying slices, their runs, the largest ratio and the
reference; None when no slice departs or the volume has fewer than `MIN_SLICES` compared
slices. Slices are indexed along the volume's first axis from 0, as the Assessment's `slices`.
It is a fact read from the pixels beside the score, as `slice_gaps` is one read from the header:
the score and findings still come from the salient slices.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medq.assess.masks import body_threshold

MAD_TO_SIGMA = 0.6745
"""median(|N(0, 1)|): divides a MAD into a Gaussian σ."""

RATIO = 2.0
"""A slice is an outlier when its σ is at least this multiple of its reference."""

FLOOR = 0.01
"""Smallest reference σ, as a share of the body's median intensity."""

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
    """Half-width (in compared slices) of the neighbourhood whose median is a slice's reference."""
    return max(4, m // 4)


def slice_sigmas(volume: np.ndarray, threshold: float) -> np.ndarray:
    """Noise σ of every slice of a (z, y, x) volume over its 2×2 blocks above `threshold`; NaN
    where a slice has fewer than `MIN_BLOCKS` of them (step 1 of the module's rule)."""
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"slice_sigmas needs a (z, y, x) volume, got shape {vol.shape}")
    ny, nx = (vol.shape[1] // 2) * 2, (vol.shape[2] // 2) * 2
    dtype = np.float32 if vol.dtype.itemsize <= 4 else np.float64
    out = np.full(vol.shape[0], np.nan)
    counts = np.zeros(vol.shape[0], dtype=np.int64)
    for start in range(0, vol.shape[0], CHUNK):
        part = vol[start:start + CHUNK, :ny, :nx].astype(dtype, copy=False)
        p, q = part[:, 0::2, 0::2], part[:, 0::2, 1::2]
        r, s = part[:, 1::2, 0::2], part[:, 1::2, 1::2]
        inside = np.minimum(np.minimum(p, q), np.minimum(r, s)) > threshold  # NaN is never
        hh = np.abs(p - q - r + s)
        for k, (plane_in, plane_hh) in enumerate(zip(inside, hh, strict=True)):
            count = counts[start + k] = int(np.count_nonzero(plane_in))
            if count >= MIN_BLOCKS:
                taken = plane_hh[plane_in][:: max(1, count // MAX_BLOCKS)]
                out[start + k] = float(np.median(taken)) / (2.0 * MAD_TO_SIGMA)
    read = np.isfinite(out)
    if read.any():  # the caps of the anatomy: thin body, σ read mostly on its edges
        out[counts < MIN_SHARE * np.median(counts[read])] = np.nan
    return out


def _body_level(volume: np.ndarray, modality: str | None) -> tuple[float, float]:
    """(body threshold, median body intensity) read on every other voxel along each axis."""
    sample = volume[::2, ::2, ::2]
    threshold = body_threshold(sample, modality)
    body = sample[sample > threshold]
    return threshold, abs(float(np.median(body))) if body.size else 0.0


def noisy_slices(volume: np.ndarray, modality: str | None = None) -> dict[str, Any] | None:
    """The slices of a volume noisier than those around them (module rule), or None.

    Keys: `slices` (indices of the outlying slices), `runs` ([first, last] of each run of
    consecutive ones), `ratio` (the largest σ over its reference), `sigma` (that slice's σ),
    `reference` (the median reference of the compared slices), `compared` (how many slices
    were compared).
    """
    vol = np.asarray(volume)
    if vol.ndim != 3 or vol.shape[0] < MIN_SLICES:
        return None
    threshold, level = _body_level(vol, modality)
    sigmas = slice_sigmas(vol, threshold)
    read = np.flatnonzero(np.isfinite(sigmas))
    m = read.size
    if m < MIN_SLICES:
        return None
    values = sigmas[read]
    floor = FLOOR * level
    half = window(m)
    refs = np.array([np.median(values[max(0, k - half): k + half + 1]) for k in range(m)])
    refs = np.maximum(refs, max(floor, np.finfo(np.float64).tiny))
    ratios = values / refs
    hit = ratios >= RATIO
    if not hit.any():
        return None
    slices = [int(z) for z in read[hit]]
    worst = int(np.argmax(np.where(hit, ratios, -np.inf)))
    return {"slices": slices, "runs": _runs(slices), "ratio": round(float(ratios[worst]), 2),
            "sigma": round(float(values[worst]), 4),
            "reference": round(float(np.median(refs)), 4), "compared": int(m)}


def _runs(slices: list[int]) -> list[list[int]]:
    """[first, last] of each run of consecutive indices in sorted `slices`."""
    runs: list[list[int]] = []
    for z in slices:
        if runs and z == runs[-1][1] + 1:
            runs[-1][1] = z
        else:
            runs.append([z, z])
    return runs


def runs_text(outliers: dict[str, Any]) -> str:
    """The outlying slices in short, e.g. "slices 63–67 (5 of 127 compared)"."""
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in outliers["runs"]]
    shown = ", ".join(parts[:4]) + (f" and {len(parts) - 4} more runs" if len(parts) > 4 else "")
    n = len(outliers["slices"])
    return f"slice{'s' * (n != 1)} {shown} ({n} of {outliers['compared']} compared)"


def outliers_cell(outliers: dict[str, Any]) -> str:
    """A results table's words for them, e.g. "noisy slices 63–67 (5 of 127 compared), up to
    3.1×"."""
    return f"noisy {runs_text(outliers)}, up to {outliers['ratio']:.1f}×"
