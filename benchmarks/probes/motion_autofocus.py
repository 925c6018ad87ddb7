"""Probe: can rigid-motion autofocus repair MR motion on magnitude images? (tried, not shipped)

`medq bench restore`'s MR motion items are where medq restores least (the network does not
beat the input; the gate mostly leaves them alone). The engine's motion is rigid: per phase-encode
line a pose, a translation being a linear phase ramp on that line's k-space. Autofocus undoes
such ramps by searching the per-line translations (piecewise linear over `--knots` knots along the
phase-encode axis, L-BFGS) that minimise an image sharpness cost: the entropy of the gradient
magnitude (`gradient`) or of the image (`image`). A DICOM or NIfTI file holds only the magnitude,
so the search runs on the k-space of the magnitude image, not the scanner's complex data. This
prints, per motion item of the benchmark (same plan and items), the PSNR of the input, of the
oracle (the engine's own recorded translations undone on the magnitude image: the best a
translation-only correction can do), and of each autofocus cost, and the PSNR each method leaves
on the item's *clean* image (a safe method leaves a clean image nearly as it is). Usage:
    python benchmarks/probes/motion_autofocus.py [--knots 16] [--iters 100]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch


def _fft2c(a: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(a, dim=(-2, -1)), norm="ortho"),
                              dim=(-2, -1))


def _ifft2c(a: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(a, dim=(-2, -1)), norm="ortho"),
                              dim=(-2, -1))


def entropy(img: torch.Tensor, cost: str) -> torch.Tensor:
    """Entropy of the gradient magnitude (`gradient`) or of the image (`image`)."""
    if cost == "image":
        b = img.abs() / torch.sqrt((img ** 2).sum())
        return -(b * torch.log(b + 1e-12)).sum()
    gy, gx = img[1:, :-1] - img[:-1, :-1], img[:-1, 1:] - img[:-1, :-1]
    g = torch.sqrt(gy ** 2 + gx ** 2 + 1e-12)
    p = g / g.sum()
    return -(p * torch.log(p + 1e-12)).sum()


def undo_translation(x: np.ndarray, shift_px: torch.Tensor) -> torch.Tensor:
    """The magnitude image with per-line translations `shift_px` `(2, lines)` (y, x in pixels,
    lines along the phase-encode axis y) undone in its k-space."""
    k = _fft2c(torch.as_tensor(x, dtype=torch.complex128))
    ny, nx = x.shape
    ky = (torch.arange(ny, dtype=torch.float64) - ny // 2) / ny
    kx = (torch.arange(nx, dtype=torch.float64) - nx // 2) / nx
    ramp = 2 * np.pi * (ky[:, None] * shift_px[0][:, None] + kx[None, :] * shift_px[1][:, None])
    return _ifft2c(k * torch.exp(1j * ramp)).abs()


def autofocus(x: np.ndarray, cost: str, knots: int, iters: int) -> np.ndarray:
    """Per-line translations (piecewise linear, zero at the k-space centre) minimising `cost`."""
    n = x.shape[0]
    params = torch.zeros(2, knots, dtype=torch.float64, requires_grad=True)
    pos = torch.linspace(0, knots - 1, n, dtype=torch.float64)
    lo = pos.floor().long().clamp(max=knots - 2)
    w = pos - lo

    def image() -> torch.Tensor:
        t = params[:, lo] * (1 - w) + params[:, lo + 1] * w
        return undo_translation(x, t - t[:, [n // 2]])

    opt = torch.optim.LBFGS([params], lr=1, max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = entropy(image(), cost)
        value.backward()
        return value

    opt.step(closure)
    with torch.no_grad():
        return image().numpy()


def oracle_shift(record: dict[str, Any], n: int, spacing: np.ndarray) -> torch.Tensor:
    """The engine's recorded translations of an `mr_motion` record, in pixels `(2, n)`."""
    from medq.degrade.mri import motion_trajectory

    p = record["params"]
    traj = motion_trajectory(n, p["onset_fraction"], np.asarray(p["amplitudes"]),
                             np.asarray(p["frequencies_cycles_per_scan"]),
                             np.asarray(p["phases_rad"]),
                             min(p["amplitude_mm"], p["translation_cap_mm"]), p["amplitude_mm"])
    return torch.as_tensor(traj[:2] / np.asarray(spacing)[:, None], dtype=torch.float64)


def repaired(plane: np.ndarray, method: str, shift: torch.Tensor, args: argparse.Namespace
             ) -> np.ndarray:
    """A plane as `method` repairs it: `input` (as it is), `oracle` (the recorded `shift`
    undone) or autofocus with the `gradient` or `image` entropy cost."""
    if method == "input":
        return plane
    if method == "oracle":
        return undo_translation(plane, shift).numpy()
    return autofocus(plane, method, args.knots, args.iters)


def main() -> None:
    """Print input, oracle and autofocus PSNR per motion item, on the item and its clean image."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--knots", type=int, default=16)
    parser.add_argument("--iters", type=int, default=100)
    args = parser.parse_args()
    from medq.data.pairs import _jobs, build_pairs, make_pair, pair_arrays
    from medq.restore.benchmark import fidelity, test_plan
    from medq.restore.normalise import Scale
    from medq.workers import set_threads

    set_threads()
    plan = test_plan(2)
    data, jobs = build_pairs(plan, progress=False), _jobs(plan)
    methods = ("input", "oracle", "gradient", "image")
    rows = []
    for i, (task, seed, level) in enumerate(jobs):
        if task != "mr_motion":
            continue
        record = next(r for r in make_pair(task, seed, plan, level)["records"]
                      if r["name"] == "mr_motion")
        x, y = (a.astype(np.float64) for a in pair_arrays(data, i))
        scale, shift = Scale(*data["scale"][i]), oracle_shift(record, x.shape[0],
                                                              data["spacing"][i])

        def score(plane: np.ndarray, scale: Scale = scale, y: np.ndarray = y) -> float:
            return fidelity(scale.inverse(plane), scale.inverse(y), False)["psnr"]

        row = {m: score(repaired(x, m, shift, args)) for m in methods}
        clean = {m: score(repaired(y, m, shift, args)) for m in methods[2:]}
        rows.append(row)
        print(f"{data['source'][i]:12s} {record['level']:5.2f} mm  "
              + "  ".join(f"{m} {row[m]:6.2f}" for m in methods)
              + "   clean through: " + "  ".join(f"{m} {clean[m]:6.2f}" for m in clean),
              flush=True)
    for label, chosen in (("BM3D's 4 items", rows[:4]), ("all items", rows)):
        print(f"mean over {label}: " + "  ".join(
            f"{m} {np.mean([r[m] for r in chosen]):6.2f}" for m in methods))


if __name__ == "__main__":
    main()
