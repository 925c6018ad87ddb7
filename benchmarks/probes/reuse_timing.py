"""Probe: seconds to describe and to restore one image, as `medq describe` and `medq.restore` run.

Times, best of three, an Assessor with the detector's features (`describe=True`) assessing and
describing each bundled sample (the MNI T1 volume, the PET volume, MR_small, CT_small, the
radiograph), and `medq.restore.pipeline.restore` (assess, describe, restore, re-assess) of a
512² CT at moderate low dose and of a 40-slice MNI T1 block with moderate Rician noise, best of
two, with the scores each gives. Run it on two checkouts (`PYTHONPATH=<checkout>/src`) to see
what a change to the shared work saves; the scores must not move. Usage:
    python benchmarks/probes/reuse_timing.py
"""

from __future__ import annotations

import time

import numpy as np


def best_of(repeats: int, call) -> tuple[float, object]:
    """(fewest seconds of `repeats` calls, the last call's result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    """Print one line per image."""
    import medq
    from medq.assess.predictor import Assessor
    from medq.data.samples import load_sample
    from medq.data.sources import sources
    from medq.describe import report_from
    from medq.restore.pipeline import restore

    assessor = Assessor(describe=True)
    for name in ("mni_t1", "pet_brain", "mr_small", "ct_small", "xr_head"):
        image = load_sample(name)
        assessor.assess(image)  # warm
        seconds, report = best_of(3, lambda i=image: report_from(assessor.assess(i), i))
        print(f"describe {name:10s} {seconds:6.2f} s  score {report.score}")
    ct = next(s for s in sources("test") if s.name == "ct_693").draw(
        np.random.default_rng(0), "2d")
    mr = load_sample("mni_t1")
    cases = {"ct 512² low dose": medq.simulate(ct, "ct_low_dose", severity="moderate",
                                               seed=1)[0],
             "mr 40-slice noise": medq.simulate(mr.with_array(mr.array[70:110]), "mr_noise",
                                                severity="moderate", seed=1)[0]}
    restore(cases["ct 512² low dose"])  # warm
    for label, image in cases.items():
        seconds, result = best_of(2, lambda i=image: restore(i))
        print(f"restore  {label:18s} {seconds:6.2f} s  before {result.before} "
              f"after {result.after}")


if __name__ == "__main__":
    main()
