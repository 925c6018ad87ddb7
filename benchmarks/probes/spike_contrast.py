"""Probe: a local-contrast k-space spike measure against the evidence's `spectral_peak`.

The full-plane detector finds few spikes (validation recall 0.49 in `detector-full.json`; 2 of 5
on `medq bench describe`'s MR items). Its `spectral_peak` compares the largest power of the
body-masked, Hann-windowed spectrum with the median of all far frequencies, so the natural
spectrum's own slope and the mask's leakage decide it as much as a spike does. A spike is one
k-space sample: this measure takes the log power spectrum of the whole plane, subtracts its 7×7
median (the local background) and keeps the largest excess beyond 0.06 cycles/pixel, away from
the two axes (where a plane's edges put their own line): `medq.assess.artifacts.spike_contrast`.
It prints both numbers for every MR item
of `medq bench describe` (cached; volumes on their salient slices), with the item's degradations,
the spike items last per source; then the measure (`medq.assess.artifacts.spike_contrast`, a
classical measure of `medq assess` for MR) on the held-out real MR images with the engine's
spikes. Usage:
    python benchmarks/probes/spike_contrast.py
"""

from __future__ import annotations

import numpy as np


def spike_contrast(plane: np.ndarray) -> float:
    """`artifacts.spike_contrast` of the plane as the evidence features read it."""
    from medq.assess.artifacts import spike_contrast as measure
    from medq.assess.evidence import read_plane

    return measure(read_plane(plane, "MR"))


def engine_spikes() -> None:
    """`spike_contrast` as `medq assess` reports it, of each held-out real MR image clean and
    with the engine's spike at its mild, moderate and severe levels (seeds 0 and 1)."""
    from medq.assess.artifacts import spike_contrast as measure
    from medq.degrade import get_spec, simulate
    from medq.train.evaluate import held_out_images

    levels = get_spec("mr_spike").levels
    for name, image in held_out_images().items():
        if image.modality != "MR":
            continue
        spiked = {sev: [measure(simulate(image, "mr_spike", level=lvl, seed=seed)[0].array)
                        for seed in (0, 1)] for sev, lvl in levels.items()}
        print(f"{name:12s} clean {measure(image.array):5.2f}  " + "  ".join(
            f"{sev} {a:5.2f} / {b:5.2f}" for sev, (a, b) in spiked.items()))


def main() -> None:
    """Print spike contrast and spectral peak of every MR item of the description benchmark,
    then the measure on the held-out real MR images with the engine's spikes."""
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
    engine_spikes()


if __name__ == "__main__":
    main()
