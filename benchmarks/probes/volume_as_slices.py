"""Probe: is a volume's noise read as its slices' is? (`detector.FIXED_FEATURES`)

A small MR series as a new user had one: four 60×50 planes of the MNI T1 template with Rician
noise (σ 3 % and 10 % of the brightest plane's maximum), described as a volume and each plane alone,
with the shipped calibrations as they are and with their `fixed` features released (the nets
then read `is_3d` as fitted, as before they held it at 0). Prints the noise finding's severity
(0 none … 3 severe) and the other findings of each. Usage:
    python benchmarks/probes/volume_as_slices.py
"""

from __future__ import annotations

import numpy as np


def series(fraction: float) -> list[np.ndarray]:
    """The four planes with Rician noise of σ `fraction` × the brightest plane's maximum."""
    from skimage.transform import resize

    from medq.data.samples import load_sample

    t1 = load_sample("mni_t1").array
    middle = t1.shape[2] // 2
    planes = [resize(t1[:, :, z], (60, 50), anti_aliasing=True)
              for z in range(middle - 6, middle + 6, 3)]
    rng = np.random.default_rng(0)
    sigma = fraction * max(float(p.max()) for p in planes)
    return [np.hypot(p + rng.normal(0, sigma, p.shape), rng.normal(0, sigma, p.shape))
            for p in planes]


def main() -> None:
    """Describe the series and its planes with `fixed` held, then released."""
    from medq.assess import detector
    from medq.assess.predictor import Assessor
    from medq.describe import report_from
    from medq.io.arrays import from_array

    assessor = Assessor("mediqa-s")

    def read(array: np.ndarray) -> str:
        image = from_array(array.astype(np.float32), spacing=(3.0, 3.5, 3.5)[-array.ndim:],
                           modality="MR")
        found = {f.type: f.severity_value
                 for f in report_from(assessor.assess(image), image).findings}
        noise = found.pop("noise", 0.0)
        return f"noise {noise:.2f}" + (f", also {found}" if found else "")

    for held in (True, False):
        if not held:  # the calibrations as fitted: is_3d read as each item had it
            for path in (detector.CALIBRATION_PATH, detector.VIEW_CALIBRATION_PATH):
                detector._load(str(path)).fixed = {}
        for fraction in (0.03, 0.1):
            planes = series(fraction)
            print(f"fixed {'held' if held else 'released'}, σ {fraction:.0%}")
            print(f"  volume: {read(np.stack(planes))}")
            for k, plane in enumerate(planes):
                print(f"  plane {k}: {read(plane)}")


if __name__ == "__main__":
    main()
