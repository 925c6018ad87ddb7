"""Probe: does `medq assess` find a radiograph's quantum noise (or blur) at every matrix size, and
does it name what `medq describe` names?

The bundled skull radiograph resampled to widths of 256–1300 px (pixels alike in mm), each with
the engine's mild (6,000 photons per pixel) and severe (150) quantum noise (`--kind blur`: clean
and with mild, moderate and severe blur, a PSF of 1.5, 3.5 and 7 mm FWHM), assessed together
(`Assessor(describe=True)`, as `medq describe` runs) and described. Prints, per width and dose,
the assessment's score and findings, whether it read the planes whole
(`evidence.reads_full_planes`), and the description's verdict and findings. Run it with another
checkout's `src` on `PYTHONPATH` to see that code's answers. Usage:
    python benchmarks/probes/large_planes.py [--widths 256,512,513,800,1000,1300] [--kind blur]
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from medq.image import MedImage

PHOTONS = (6000.0, 150.0)
"""The engine's mild and severe quantum noise (detector photons per unattenuated pixel)."""


def resampled(width: int) -> MedImage:
    """The bundled radiograph at `width` px (its aspect ratio and physical size kept)."""
    from skimage.transform import resize

    from medq.data.samples import load_sample

    xr = load_sample("xr_head")
    f = width / xr.shape[1]
    big = resize(xr.array.astype(np.float64), (round(xr.shape[0] * f), width), order=1,
                 preserve_range=True).astype(np.float32)
    return xr.evolve(array=big, spacing=tuple(s / f for s in xr.spacing))


def main() -> None:
    """Assess and describe each width at each dose; print one line per image."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--widths", default="256,512,513,800,1000,1300")
    parser.add_argument("--kind", choices=("noise", "blur"), default="noise")
    args = parser.parse_args()
    from medq.assess import evidence
    from medq.assess.predictor import Assessor
    from medq.degrade.registry import simulate
    from medq.describe import report_from

    widths = [int(v) for v in args.widths.split(",")]
    if args.kind == "noise":
        images = [(w, f"{p:6.0f} photons", simulate(resampled(w), "xr_quantum_noise", p,
                                                    seed=0)[0]) for w in widths for p in PHOTONS]
    else:
        images = [(w, f"{s:>8s} blur", resampled(w) if s == "no" else simulate(
            resampled(w), "blur", severity=s, seed=0)[0])
            for w in widths for s in ("no", "mild", "moderate", "severe")]
    assessed = Assessor(describe=True).assess_many([im for _, _, im in images])
    whole = getattr(evidence, "reads_full_planes", lambda image: False)
    for (width, rung, image), a in zip(images, assessed, strict=True):
        report = report_from(a, image)
        found = ", ".join(f"{f['type']} {f['severity']}" for f in a.findings) or "none"
        said = ", ".join(f"{f.type} {f.severity}" for f in report.findings) or "none"
        print(f"{width:5d} px {rung}  assess {a.score:.2f} {a.grade:15s} "
              f"[{found}]{' (full planes)' if whole(image) else ''}  |  describe "
              f"{report.verdict} [{said}]")


if __name__ == "__main__":
    main()
