"""MR slices marked by a k-space spike that the slices around them lack.

A spike — one corrupt k-space sample from an RF discharge — lays herringbone stripes over the
whole of the slices acquired while it lasted, often one or a few of a volume, which the 7
salient slices then miss. In a slice's power spectrum it is one isolated peak, and anatomy and
noise change little from one slice to the next. So each slice's power spectrum (of the slice on
every other pixel, its mean removed) is divided, frequency by frequency, by the median spectrum
of the compared slices, leaving out the frequencies within `LOW_BINS` bins of 0 along both
axes, where anatomy lives. A slice is spiked when the largest of these ratios is at least
`SPIKE_RATIO` times their median in the slice (noise raised evenly over a slice raises every
frequency and does not count) and at most `SPIKE_BINS` frequencies reach a tenth of it (a bar,
grid or edge burnt into one slice spreads over many). Reading every other pixel folds a spike
near the highest frequencies onto others, or onto the lowest, which are left out: such a spike
may be missed (the slice may then read as noisy).

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

import numpy as np

from medq.assess.filters import power_spectrum

SPIKE_RATIO = 10 ** 2.3
"""A slice is spiked when its peak (module docstring) reaches this: 2.5 times the largest seen
on slices without a spike (10^1.9)."""

SPIKE_BINS = 16
"""…and when at most this many frequencies of the slice reach a tenth of its largest ratio: a
spike is one frequency with some leakage (medq's moderate spike on the noise-free MNI T1: 10 to
13), where a bar, a grid or an edge burnt into a slice spreads over tens to hundreds (20 for a
phantom's 10-px grid, 80 and more for a bar or rows cut out)."""

TYPICAL_FLOOR = 0.1
"""Least median power of a frequency, as a share of the median over frequencies (a template
without noise has next to none at the highest)."""

LOW_BINS = 2
"""Frequencies left out: those within this many bins of 0 along both axes (anatomy's, which
slices differ in)."""

CHUNK = 16
"""Slices transformed at once."""


def _finite(part: np.ndarray) -> np.ndarray:
    """`part` in float64 with its non-finite pixels read as 0."""
    return np.nan_to_num(np.asarray(part, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _powers(planes: np.ndarray) -> np.ndarray:
    """Power spectra (n, y, x//2 + 1) of (n, y, x) planes, each with its mean removed, scaled
    by the planes' largest finite magnitude (non-finite pixels read as 0), in float32; `CHUNK`
    planes at a time."""
    n, ny, nx = planes.shape
    chunks = range(0, n, CHUNK)
    scale = max((float(np.abs(_finite(planes[i:i + CHUNK])).max()) for i in chunks), default=0.0)
    out = np.empty((n, ny, nx // 2 + 1), dtype=np.float32)
    for start in chunks:
        part = (_finite(planes[start:start + CHUNK]) / (scale or 1.0)).astype(np.float32)
        part -= part.mean(axis=(1, 2), keepdims=True)
        out[start:start + CHUNK] = power_spectrum(part, half=True)
    return out


def spike_ratios(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each plane's peak and how many of its frequencies reach a tenth of its largest ratio
    (module docstring), for (n, y, x) planes already taken on every other pixel."""
    power = _powers(planes)
    ny, nx = power.shape[1:]
    fy = np.minimum(np.arange(ny), ny - np.arange(ny))[:, None]
    outside = (fy > LOW_BINS) | (np.arange(nx)[None, :] > LOW_BINS)
    power = power[:, outside]
    typical = np.median(power, axis=0)  # floored: a noise-free template's spectrum falls by
    floor = TYPICAL_FLOOR * float(np.median(typical))  # decades, noise added to a slice does not
    ratios = power / np.maximum(typical, max(floor, float(np.finfo(np.float32).tiny)))
    largest = ratios.max(axis=1)
    near = (ratios >= largest[:, None] / 10.0).sum(axis=1)
    return largest / np.maximum(np.median(ratios, axis=1), 1e-30), near


def spiked_slices(volume: np.ndarray, compared: np.ndarray) -> tuple[list[int], float]:
    """The spiked ones of the `compared` slices (indices into the volume's first axis) of an MR
    volume, and the largest peak among them (0 when none is spiked)."""
    peaks, near = spike_ratios(np.asarray(volume)[np.asarray(compared), ::2, ::2])
    hit = (peaks >= SPIKE_RATIO) & (near <= SPIKE_BINS)
    return [int(z) for z in np.asarray(compared)[hit]], float(peaks[hit].max(initial=0.0))
