"""MR slices marked by a k-space spike that the slices around them lack.

A spike — one corrupt k-space sample from an RF discharge — lays herringbone stripes over the
whole of the slices acquired while it lasted, often one or a few of a volume, which the 7
salient slices then miss. In a slice's power spectrum it is one isolated peak, and anatomy and
noise change little from one slice to the next. So each slice's power spectrum (of the slice on
every other pixel, its mean removed) is divided, frequency by frequency, by the median spectrum
of the compared slices, leaving out the lowest `LOW_BINS` frequencies along each axis, where
anatomy lives; the largest of these ratios over their median in the slice (so noise raised
evenly over a slice does not count) is its peak, and a slice whose peak reaches `SPIKE_RATIO`
is spiked.

`benchmarks/probes/noisy_slices.py` finds medq's moderate and severe `mr_spike` on three slices
of the MNI152 T1 (peaks 10^2.4 and 10^3.3) and flags no slice of the volume degraded whole; its
mild spike is missed. A script run while this was written (not in the repository) read, on
slices 10–179 of the same volume with medq's mild MR noise: clean slices peak at 10^1.6 at most,
slices of the whole volume degraded by medq's severe MR motion, ghosting, undersampling, bias
field or noise at 10^1.9, three slices with 3–10 times more noise at 10^1.5, two with TorchIO's
spikes (intensity 0.25–1) at 10^3.5–10^5.2 and two with medq's mild spike at 10^1.7. A spike in
every slice is in the median too, and is left to the finding heads, which read it on the
salient slices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import fft as sp_fft

SPIKE_RATIO = 10 ** 2.3
"""A slice is spiked when its peak (module docstring) reaches this: twice the largest seen on
slices without a spike."""

TYPICAL_FLOOR = 0.1
"""Least median power of a frequency, as a share of the median over frequencies (a template
without noise has next to none at the highest)."""

LOW_BINS = 2
"""Lowest frequencies (bins from 0 along each axis) left out: anatomy's, which slices differ in."""


def spike_ratios(planes: np.ndarray) -> np.ndarray:
    """Each plane's peak: its largest ratio of power to the planes' median power at the same
    frequency (outside the lowest `LOW_BINS`), over its median such ratio; read on every other
    pixel of the (n, y, x) `planes`."""
    v = np.nan_to_num(np.asarray(planes, dtype=np.float32)[:, ::2, ::2])
    v = v - v.mean(axis=(1, 2), keepdims=True)
    spectrum = sp_fft.rfft2(v, axes=(1, 2))
    power = spectrum.real ** 2 + spectrum.imag ** 2
    ny, nx = power.shape[1:]
    fy = np.minimum(np.arange(ny), ny - np.arange(ny))[:, None]
    outside = (fy > LOW_BINS) | (np.arange(nx)[None, :] > LOW_BINS)
    typical = np.median(power[:, outside], axis=0)  # floored: a noise-free template's spectrum
    floor = TYPICAL_FLOOR * float(np.median(typical))  # falls by decades, noise added to a
    typical = np.maximum(typical, max(floor, float(np.finfo(np.float32).tiny)))  # slice does not
    ratios = power[:, outside] / typical
    return ratios.max(axis=1) / np.maximum(np.median(ratios, axis=1), 1e-30)


def spiked_slices(volume: np.ndarray, compared: np.ndarray) -> dict[str, Any]:
    """The spiked ones of the `compared` slices (indices into the volume's first axis) of an MR
    volume: `slices`, `runs` and `peak` (the largest ratio, when some is spiked)."""
    from medq.assess.noisy_slices import runs_of

    ratios = spike_ratios(np.asarray(volume)[compared])
    hit = ratios >= SPIKE_RATIO
    slices = [int(z) for z in np.asarray(compared)[hit]]
    out: dict[str, Any] = {"slices": slices, "runs": runs_of(slices)}
    if slices:
        out["peak"] = float(f"{float(ratios[hit].max()):.3g}")
    return out
