"""Probe: uniform QA phantoms (`medq.assess.phantom`). Prints `medq.describe` on a 512² CT
water cylinder (radius 200 px, 0.7 mm pixels) at rising noise σ — refused with its ROI numbers,
or graded as medq graded it before the check — and the check's cost on a 512² CT slice that
is no phantom; with `--noise`, how often the check recognises the cylinder over four noise
draws per σ; with `--sweep`, how many patient images
it reads as phantoms: the training and test sources in 2D and 3D, clean and with each of their
modality's degradations at mild and severe (about 3 minutes on 2 cores).
Usage:
    python benchmarks/probes/phantom.py [--noise] [--sweep]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

KINDS = {"CT": ("ct_low_dose", "ct_sparse_view", "blur", "low_contrast", "low_resolution"),
         "MR": ("mr_noise", "mr_undersample", "mr_motion", "mr_bias_field", "blur",
                "low_contrast"),
         "PT": ("pet_low_count", "blur")}
"""The degradations the sweep applies per modality."""


def cylinder(sigma: float, seed: int = 0) -> np.ndarray:
    """The water cylinder in air with white noise of σ `sigma` HU inside."""
    yy, xx = np.mgrid[:512, :512]
    body = (yy - 256) ** 2 + (xx - 256) ** 2 < 200 ** 2
    noise = np.random.default_rng(seed).normal(0, sigma, (512, 512))
    return (np.where(body, 0.0, -1000.0) + noise * body).astype(np.float32)


def ladder() -> None:
    """`medq.describe` on the cylinder at each σ."""
    import medq
    from medq.errors import MedqError
    from medq.image import MedImage

    for sigma in (0, 3, 6, 12, 25, 50):
        try:
            report = medq.describe(MedImage(cylinder(sigma), (0.7, 0.7), "CT"))
            print(f"σ {sigma:2d} HU: graded {report.score} {report.verdict}",
                  [(f.type, f.severity) for f in report.findings])
        except MedqError as e:
            print(f"σ {sigma:2d} HU: {type(e).__name__}: {e.reason}")


def cost(repeats: int = 20) -> None:
    """Milliseconds the check takes on a 512² CT slice that is no phantom (pydicom's 693_J2KI,
    what `medq assess` pays per slice)."""
    import time

    from medq.assess.phantom import plane_reading
    from medq.data.sources import sources

    source = next(s for s in sources("test") if s.name == "ct_693")
    plane = source.draw(np.random.default_rng(0), "2d").array
    assert plane_reading(plane, "CT") is None
    t0 = time.perf_counter()
    for _ in range(repeats):
        plane_reading(plane, "CT")
    print(f"check on a 512² CT slice: {(time.perf_counter() - t0) / repeats * 1000:.2f} ms")


def noise_limit() -> None:
    """Noise draws per σ on which the cylinder is recognised."""
    from medq.assess.phantom import plane_reading

    for sigma in (40, 60, 70, 80, 90, 100):
        hits = sum(plane_reading(cylinder(sigma, seed), "CT") is not None for seed in range(4))
        print(f"σ {sigma:3d} HU: recognised on {hits} of 4 draws")


def sweep() -> None:
    """Patient images read as phantoms, over the sources and their degradations."""
    from medq.assess.phantom import phantom_reading
    from medq.assess.slices import input_indices
    from medq.data.sources import sources
    from medq.degrade import simulate

    checked = found = 0
    for split in ("train", "test"):
        for source in sources(split):
            for dim in ("2d", "3d"):
                if dim not in source.dims:
                    continue
                image = source.draw(np.random.default_rng(1), dim)
                variants = [image] + [simulate(image, kind, severity=level, seed=2)[0]
                                      for kind in KINDS.get(image.modality, ())
                                      for level in ("mild", "severe")]
                for variant in variants:
                    checked += 1
                    if phantom_reading(variant, input_indices(variant)) is not None:
                        found += 1
                        print("read as a phantom:", split, source.name, dim)
    print(f"patient images checked {checked}, read as phantoms {found}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--noise", action="store_true", help="the noise limit of the check")
    parser.add_argument("--sweep", action="store_true", help="patient images read as phantoms")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    ladder()
    cost()
    if args.noise:
        noise_limit()
    if args.sweep:
        sweep()


if __name__ == "__main__":
    main()
