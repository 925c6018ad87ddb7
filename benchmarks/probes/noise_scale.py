"""Probe: where do real scans' own noise levels fall on the engine's noise severity scales?

The benchmarks count every base image as clean (score 5). For each source of a modality (the
real held-out files, the MNI-derived test images, a phantom) this prints the flat-region noise σ
inside the body (`iqms.noise_sigma_flat` within `masks.foreground_mask`, so clipped air and
padding do not count) of the clean image and after the modality's noise kind at the severity
boundaries mild (0.5), moderate (1.5) and severe (2.5): CT `ct_low_dose`, MR `mr_noise`,
radiographs `xr_quantum_noise`. From the noise the engine adds there (√(σ² − σ₀²)) it gives the
level at which the engine would add as much noise as the image already carries (CT and
radiograph Poisson noise σ ∝ level^−½, MR noise σ ∝ level) and that level's severity: a base
image whose own noise sits at mild or worse is one that a detector trained on the engine reads
as noisy, and that the benchmark's reference still calls clean. About 30 s. Usage:
    python benchmarks/probes/noise_scale.py
"""

from __future__ import annotations

import numpy as np

SEVERITIES = (0.5, 1.5, 2.5)

KINDS = {"ct_low_dose": (-0.5, ("ct_small", "ct_head_j2k", "ct_693", "mni_ct_test", "body_ct")),
         "mr_noise": (1.0, ("mr_small", "mr_abdomen", "mni_mr_test", "body_mr")),
         "xr_quantum_noise": (-0.5, ("xr_head", "body_xr"))}
"""Noise kind → (exponent e of σ ∝ level^e, sources)."""


def matched_level(levels: list[float], added: list[float], sigma0: float, exponent: float
                  ) -> float:
    """The level at which the engine adds σ₀ of noise (median over the boundaries measured)."""
    found = [lv * (sigma0 / a) ** (1.0 / exponent) for lv, a in zip(levels, added, strict=True)
             if a > 0 and sigma0 > 0]
    return float(np.median(found)) if found else float("nan")


def main() -> None:
    """Print clean and degraded noise σ per source and the engine level matching its noise."""
    from medq.assess.iqms import noise_sigma_flat
    from medq.assess.masks import foreground_mask
    from medq.data.sources import sources
    from medq.degrade import get_spec, simulate

    found = {s.name: s for s in sources()}
    for kind, (exponent, names) in KINDS.items():
        spec = get_spec(kind)
        print(f"\n{kind} ({spec.unit})")
        print(f"{'source':12s} {'pixel mm':>8s} {'σ0':>8s}  "
              + "  ".join(f"{'σ@' + str(s) + ' (+added)':>19s}" for s in SEVERITIES)
              + "   level matching σ0 (severity)")
        for name in names:
            image = found[name].draw(np.random.default_rng(0), "2d")
            body = foreground_mask(image.array, image.modality)
            sigma0 = noise_sigma_flat(image.array, body)
            levels = [spec.level_at(s) for s in SEVERITIES]
            cells, added = [], []
            for level in levels:
                degraded = simulate(image, kind, level=level, seed=0)[0].array
                sigma = noise_sigma_flat(degraded, body)
                added.append(float(np.sqrt(max(sigma**2 - sigma0**2, 0.0))))
                cells.append(f"{sigma:9.4g} (+{added[-1]:7.3g})")
            match = matched_level(levels, added, sigma0, exponent)
            where = spec.severity_value(match) if np.isfinite(match) else float("nan")
            print(f"{name:12s} {image.spacing[-1]:8.2f} {sigma0:8.4g}  " + "  ".join(cells)
                  + f"   {match:10.3g} ({where:.1f})")


if __name__ == "__main__":
    main()
