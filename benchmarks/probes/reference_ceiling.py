"""Probe: how well do full-reference measures, which see the clean image, follow the references?

The benchmark's reference score is physics-derived (`medq.data.bench.reference_score` of the
applied degradations' severities), not what an image looks like. This rebuilds every held-out
test item beside its clean base (same seeds as `medq bench iqa`) and ranks the items by
full-reference measures of degraded against clean — SSIM and PSNR on the clean image's P0.5–P99.5
range, volumes in 3D, photographs on luminance — and prints their SRCC with the references per
subset. A no-reference model cannot be expected to rank better than an oracle that sees the
clean image, so these numbers bound what the acceptance goal (SRCC ≥ 0.90) asks of one. Usage:
    python benchmarks/probes/reference_ceiling.py
"""

from __future__ import annotations

import numpy as np


def _measures(job: tuple[str, str, int]) -> tuple[float, float, float, str, str]:
    """(reference score, SSIM, PSNR, modality, dim) of one test item against its clean base."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from skimage.transform import resize

    from medq.assess.masks import to_gray
    from medq.data.bench import targets
    from medq.data.items import degraded_item
    from medq.data.sources import sources

    name, dim, seed = job
    source = next(s for s in sources() if s.name == name)
    clean = source.draw(np.random.default_rng(seed), dim)  # degraded_item's first draw
    image, records = degraded_item(source, dim, seed)
    score = targets([r for r in records if not r.get("baseline")])["score"]
    a, b = (to_gray(i.array) if i.is_rgb else i.array.astype(np.float64) for i in (clean, image))
    if b.shape != a.shape:
        b = resize(b, a.shape, order=1, preserve_range=True)
    lo, hi = np.percentile(a, [0.5, 99.5])
    span = max(float(hi - lo), 1e-6)
    a, b = np.clip((a - lo) / span, -0.2, 1.2), np.clip((b - lo) / span, -0.2, 1.2)
    ssim = structural_similarity(a, b, data_range=1.4)
    psnr = peak_signal_noise_ratio(a, b, data_range=1.4) if not np.array_equal(a, b) else 99.0
    return score, float(ssim), float(psnr), source.modality, dim


def main() -> None:
    """Rebuild the test split beside its clean bases and print the oracles' SRCC per subset."""
    from medq.data.bench import BenchPlan, build, ordered_jobs
    from medq.metrics.correlation import srcc
    from medq.workers import worker_pool

    jobs = ordered_jobs(BenchPlan(), "test")
    with worker_pool(2) as pool:
        rows = list(pool.map(_measures, jobs, chunksize=4))
    score = np.array([r[0] for r in rows])
    if not np.allclose(score, build(BenchPlan(), "test")["score"], atol=1e-4):
        raise SystemExit("the rebuilt items do not match the cached test split")
    ssim, psnr = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    group = np.array([{"CR": "XR", "DX": "XR"}.get(r[3], r[3]) for r in rows])
    dim = np.array([r[4] for r in rows])
    subsets = {"overall": np.ones(len(rows), bool)}
    subsets.update({g: group == g for g in ("CT", "MR", "PT", "XR", "OP")})
    subsets.update({d.upper(): dim == d for d in ("2d", "3d")})
    print(f"{len(rows)} held-out test items; SRCC with the physics-derived reference score")
    print(f"{'subset':8s} {'n':>4s} {'SSIM':>7s} {'PSNR':>7s}")
    for name, keep in subsets.items():
        if keep.sum() > 2:
            print(f"{name:8s} {keep.sum():4d} {srcc(ssim[keep], score[keep]):7.3f} "
                  f"{srcc(psnr[keep], score[keep]):7.3f}")


if __name__ == "__main__":
    main()
