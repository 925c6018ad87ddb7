"""Probe: what `medq.assess.noisy_slices` finds on real volumes. Each volume (nilearn's MNI152
T1 at 1 mm, medq's head pseudo-CT and brain PET phantoms at 2 mm) is degraded whole by medq's
engine (MR noise and spike, CT low dose and sparse view, PET low count; mild, moderate and
severe) and by MONAI's Rician noise (σ 3, 6 and 10 % of the volume's std), then:
- `whole`: the whole degraded volume, where no slice should be flagged (the slices it calls
  noisy / spiked);
- `3 slices`: the clean volume with three middle slices taken from the degraded one, where
  exactly those three should be, as noisy and (MR) as spiked (`hit`: exactly, `part`: some,
  `miss`: none, `more`: others too).
Prints one row per degradation and the time per volume of the check.
Usage:
    python benchmarks/probes/noisy_slices.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from independent import monai_rician  # noqa: E402

ENGINE = {"MR": ("mr_noise", "mr_spike"), "CT": ("ct_low_dose", "ct_sparse_view"),
          "PT": ("pet_low_count",)}
RICIAN = (0.03, 0.06, 0.1)


def volumes() -> dict[str, object]:
    """The probe's clean volumes, by name."""
    from medq.data import phantoms
    from medq.data.samples import load_sample

    return {"mni_t1": load_sample("mni_t1"), "pseudo_ct": phantoms.head_pseudo_ct(2),
            "pet_brain": phantoms.pet_brain(2)}


def verdict(found: dict | None, expected: list[int]) -> str:
    """hit / part / miss / more, for the slices `found` against `expected`."""
    got = set(found["slices"]) if found else set()  # a result, or its `spiked`
    if got == set(expected):
        return "hit"
    if not got & set(expected):
        return "miss" if not got else "more"
    return "part" if got < set(expected) else "more"


def _flagged(result: dict | None) -> str:
    """"noisy/spiked" slice counts of a result ("-" for spiked where not read)."""
    if not result:
        return "0/-"
    spikes = result.get("spiked")
    return f"{len(result['slices'])}/{len(spikes['slices']) if spikes else '-'}"


def main() -> None:
    """Print the probe's table."""
    from medq.assess.noisy_slices import noisy_slices
    from medq.degrade import simulate

    times = []
    print(f"{'volume':10} {'degradation':24} {'whole: noisy/spiked':>20} {'3 slices: noisy':>16} "
          f"{'spiked':>7}")
    for name, image in volumes().items():
        clean = np.asarray(image.array, dtype=np.float32)
        start = time.perf_counter()
        found = noisy_slices(clean, image.modality)
        times.append((name, time.perf_counter() - start))
        print(f"{name:10} {'none (clean)':24} {_flagged(found):>20}")
        made = [(f"{kind} {severity}", simulate(image, kind, severity=severity)[0])
                for kind in ENGINE[image.modality]
                for severity in ("mild", "moderate", "severe")]
        if image.modality == "MR":
            made += [(f"MONAI Rician {share:.0%}", monai_rician(image, share, seed=0))
                     for share in RICIAN]
        z = image.shape[0] // 2
        for label, degraded in made:
            whole = noisy_slices(np.asarray(degraded.array, np.float32), image.modality)
            mixed = clean.copy()
            mixed[z:z + 3] = degraded.array[z:z + 3]
            part = noisy_slices(mixed, image.modality)
            spikes = verdict(part.get("spiked"), [z, z + 1, z + 2]) if "spiked" in part else "-"
            if part.get("spiked", {}).get("peak"):
                spikes += f" (peak 10^{np.log10(part['spiked']['peak']):.1f})"
            print(f"{name:10} {label:24} {_flagged(whole):>20} "
                  f"{verdict(part, [z, z + 1, z + 2]):>16} {spikes:>7}")
    for name, seconds in times:
        print(f"{name}: {seconds * 1000:.0f} ms per volume")


if __name__ == "__main__":
    main()
