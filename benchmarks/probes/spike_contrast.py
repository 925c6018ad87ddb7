"""Probe: a local-contrast k-space spike measure against the evidence's `spectral_peak`.

The full-plane detector finds few spikes (validation recall 0.49 in `detector-full.json`; 2 of 5
on `medq bench describe`'s MR items). Its `spectral_peak` compares the largest power of the
body-masked, Hann-windowed spectrum with the median of all far frequencies, so the natural
spectrum's own slope and the mask's leakage decide it as much as a spike does. A spike is one
k-space sample: this measure takes the log power spectrum of the whole plane, subtracts its 7×7
median (the local background) and keeps the largest excess beyond 0.06 cycles/pixel, away from
the two axes (where a plane's edges put their own line). It prints both numbers for every MR item
of `medq bench describe` (cached; volumes on their salient slices), with the item's degradations,
the spike items last per source. Usage:
    python benchmarks/probes/spike_contrast.py
"""

from __future__ import annotations

import numpy as np


def spike_contrast(plane: np.ndarray) -> float:
    """Largest excess (natural log) of the plane's power spectrum over its 7×7 median."""
    from medq.assess.evidence import read_plane
    from medq.assess.filters import median_filter

    a = read_plane(plane, "MR")
    power = np.log(np.abs(np.fft.fftshift(np.fft.fft2(a - a.mean()))) ** 2 + 1e-12)
    ny, nx = power.shape
    fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(ny)), np.fft.fftshift(np.fft.fftfreq(nx)),
                         indexing="ij")
    far = (np.hypot(fy, fx) > 0.06) & (np.abs(fy) * ny > 1.5) & (np.abs(fx) * nx > 1.5)
    return float((power - median_filter(power.astype(np.float32), 7))[far].max())


def main() -> None:
    """Print spike contrast and spectral peak of every MR item of the description benchmark."""
    from medq.assess.evidence import FEATURE_NAMES, feature_vector
    from medq.assess.slices import salient_slices
    from medq.describe.bench import DescribePlan, build_items, load_item

    rows = []
    for path in build_items(DescribePlan(), progress=False):
        image, header = load_item(path)
        if image.modality != "MR":
            continue
        kinds = [r["name"] for r in image.meta.get("degradations", [])]
        planes = ([image.array] if image.array.ndim == 2 else
                  [image.array[i] for i in salient_slices(image.array, modality="MR")])
        rows.append((header["source"], "mr_spike" in kinds,
                     float(np.mean([spike_contrast(p) for p in planes])),
                     float(feature_vector(image)[FEATURE_NAMES.index("spectral_peak")]), kinds))
    for source, spike, contrast, peak, kinds in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
        print(f"{source:12s} spike {'yes' if spike else 'no ':3s}  contrast {contrast:5.2f}  "
              f"spectral_peak {peak:5.2f}  {', '.join(kinds) or 'clean'}")
    for source in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == source]
        for i, name in ((2, "contrast"), (3, "spectral_peak")):
            clean = [r[i] for r in mine if not r[1]]
            spikes = [r[i] for r in mine if r[1]]
            print(f"{source:12s} {name:13s} without a spike ≤ {max(clean):5.2f}; with one: "
                  + ", ".join(f"{v:.2f}" for v in sorted(spikes)))


if __name__ == "__main__":
    main()
