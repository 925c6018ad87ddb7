"""Probe: where do real CT scans' own noise levels fall on the engine's low-dose severity scale?

For each CT source (pydicom's real held-out slices, the MNI pseudo-CT, a body phantom) this
prints the flat-region noise σ inside the body (HU, `iqms.noise_sigma_flat` within
`masks.foreground_mask`, so clipped air and padding do not count) of the clean image and after
`ct_low_dose` at the severity boundaries mild (0.5), moderate (1.5) and severe (2.5), the noise
the engine adds there (√(σ² − σ₀²)) and the incident photon count I0 at which the engine would
add as much noise as the scan already carries (`I0_s · (σ_added(s) / σ₀)²`, Poisson noise
σ ∝ 1/√I0): a real scan whose own noise equals the engine's moderate-or-worse dose is one a
detector trained on the engine reads as a noisy image. About 30 s. Usage:
    python benchmarks/probes/ct_noise_scale.py
"""

from __future__ import annotations

import numpy as np

SEVERITIES = (0.5, 1.5, 2.5)


def main() -> None:
    """Print clean and degraded noise σ per CT source and the engine dose matching its noise."""
    from medq.assess.iqms import noise_sigma_flat
    from medq.assess.masks import foreground_mask
    from medq.data.sources import sources
    from medq.degrade import get_spec, simulate

    spec = get_spec("ct_low_dose")
    names = ("ct_small", "ct_head_j2k", "ct_693", "mni_ct_test", "body_ct")
    found = {s.name: s for s in sources() if s.name in names}
    print(f"{'source':12s} {'pixel mm':>8s} {'σ0 HU':>7s}  " + "  ".join(
        f"σ@{s} (+added)" for s in SEVERITIES) + "  I0 matching σ0 (severity)")
    for name in names:
        image = found[name].draw(np.random.default_rng(0), "2d")
        body = foreground_mask(image.array, "CT")
        sigma0 = noise_sigma_flat(image.array, body)
        cells, matches = [], []
        for s in SEVERITIES:
            level = spec.level_at(s)
            degraded = simulate(image, "ct_low_dose", level=level, seed=0)[0].array
            sigma = noise_sigma_flat(degraded, body)
            added = float(np.sqrt(max(sigma**2 - sigma0**2, 0.0)))
            cells.append(f"{sigma:6.1f} (+{added:5.1f})")
            if added > 0 and sigma0 > 0:
                matches.append(level * (added / sigma0) ** 2)
        match = float(np.median(matches)) if matches else float("nan")
        where = spec.severity_value(match) if np.isfinite(match) else float("nan")
        print(f"{name:12s} {image.spacing[-1]:8.2f} {sigma0:7.1f}  " + "  ".join(cells)
              + f"  {match:10.3g} ({where:.1f})")


if __name__ == "__main__":
    main()
