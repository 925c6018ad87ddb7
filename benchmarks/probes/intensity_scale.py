"""Probe: does `medq assess` depend on a grey image's absolute intensity scale?

Scores the MNI T1's slices 60–99 (as a 3D MR array, 1 mm) multiplied by factors from 1e-20 to
1e20, the range of quantitative maps stored in SI units (an ADC map is about 1e-9 m²/s) and of
float exports. Scores and findings should not move with the factor (`medq.assess.evidence.
nominal_scale`). Usage:
    python benchmarks/probes/intensity_scale.py
"""

from __future__ import annotations

import numpy as np

FACTORS = (1.0, 1e-6, 1e-9, 1e-12, 1e-20, 1e6, 1e20)


def main() -> None:
    """Print each factor's score and findings."""
    from medq.assess.predictor import Assessor
    from medq.data.samples import load_sample
    from medq.io import from_array

    base = np.asarray(load_sample("mni_t1").array[60:100], dtype=np.float64)
    images = [from_array((base * f).astype(np.float32), spacing=(1, 1, 1), modality="MR")
              for f in FACTORS]
    for factor, result in zip(FACTORS, Assessor("mediqa-s", threads=2).assess_many(images),
                              strict=True):
        found = result.to_dict()
        words = ", ".join(f"{f['type']} ({f['severity']})" for f in found["findings"]) or "none"
        print(f"× {factor:<7g} score {found['score']:.2f}   findings: {words}")


if __name__ == "__main__":
    main()
