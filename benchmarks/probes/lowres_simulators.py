"""Probe: does `restore-s` super-resolve low-resolution inputs that medq's engine did not make?

Held-out real images (pydicom's CT and MR files, the skull radiograph, a held-out MNI152 PET
slice) at three downsampling factors (1.94, 3.16, 4.61: mild, moderate, severe), each made
low-resolution three ways:

- `engine`: medq's `low_resolution` (Gaussian anti-aliasing, linear interpolation back);
- `zoom`: written here, not in medq: SciPy `zoom` down (after a Gaussian of σ = f/2) and cubic
  spline interpolation back — another resampling code path and kernel;
- `kspace`: written here, not in medq: the central 1/f of the 2D spectrum kept under a Fermi
  filter (transition width 3 % of the kept band), zero-filled — an MR scanner's coarser matrix.

The network is given the true finding (low resolution at the factor's severity), as the
benchmark's `+truth` arm, and applied as `medq restore` applies it (CT padding outside the
reconstruction circle shown as air and kept); columns: the input, the network, the network
followed by the low-pass step `medq restore` takes when noise is also described
(`consistency.back_project`), and by the back-projection step it takes otherwise
(`consistency.consistent`: the acquisition and factor that explain the input, the factor at
most the one it is told: the true one times `--factor-scale`, as the description's estimate is
rarely exact) and the share of planes whose input it explained as `kspace`. PSNR as `medq
bench restore` (CT in the [−160, 240] HU window, others over the clean image's range), mean
over images, per reconstruction and factor. Usage:
    python benchmarks/probes/lowres_simulators.py [--model restore-s] [--factor-scale 1.0]
        [--span 1.5]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage as ndi

FACTORS = (1.94, 3.16, 4.61)


def zoom_lowres(a: np.ndarray, f: float) -> np.ndarray:
    """Gaussian prefilter, SciPy zoom down by f (linear), cubic spline zoom back."""
    small = ndi.zoom(ndi.gaussian_filter(a, f / 2.0), 1.0 / f, order=1)
    up = ndi.zoom(small, (a.shape[0] / small.shape[0], a.shape[1] / small.shape[1]), order=3)
    return up[:a.shape[0], :a.shape[1]]


def kspace_lowres(a: np.ndarray, f: float, magnitude: bool) -> np.ndarray:
    """The central 1/f of the spectrum under a Fermi filter, zero-filled (modulus for MR)."""
    window = np.ones(a.shape)
    for axis, n in enumerate(a.shape):
        k = np.abs(np.fft.fftfreq(n)) * n
        edge = n / f / 2.0
        w = 1.0 / (1.0 + np.exp((k - edge) / max(0.03 * edge, 1e-3)))
        window *= w[:, None] if axis == 0 else w[None, :]
    out = np.fft.ifft2(np.fft.fft2(a) * window)
    return np.abs(out) if magnitude else out.real


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="restore-s")
    parser.add_argument("--factor-scale", type=float, default=1.0,
                        help="the consistency steps are told the true factor times this")
    parser.add_argument("--span", type=float, default=None,
                        help="search the factor from the told one divided by this (default: "
                        "medq's consistency.SPAN)")
    args = parser.parse_args()
    import torch

    from medq.assess.models.blocks import FINDING_TYPES
    from medq.data.sources import sources
    from medq.degrade import get_spec, simulate
    from medq.metrics.fidelity import psnr
    from medq.restore.apply import network_planes, padding_guard
    from medq.restore.benchmark import CT_WINDOW
    from medq.restore.condition import N_FINDINGS, vector
    from medq.restore.consistency import back_project, consistent
    from medq.restore.models import load_restorer
    from medq.restore.normalise import scale_for
    from medq.train.evaluate import held_out_images

    torch.set_num_threads(2)
    if args.span is not None:
        from medq.restore import consistency

        consistency.SPAN = args.span
    images = held_out_images()
    images["mni_pt_test"] = next(s for s in sources("test") if s.name == "mni_pt_test").draw(
        np.random.default_rng(0), "2d")
    model = load_restorer(args.model)[0]
    spec = get_spec("low_resolution")
    rows: dict[tuple[str, float], list[list[float]]] = {}
    for name, image in images.items():
        clean = image.array.astype(np.float64)
        scale = scale_for(clean, image.modality)
        window = CT_WINDOW if image.modality == "CT" else None
        for f in FACTORS:
            made = {"engine": simulate(image, "low_resolution", level=f, seed=0)[0].array,
                    "zoom": zoom_lowres(clean, f),
                    "kspace": kspace_lowres(clean, f, image.modality == "MR")}
            presence = np.zeros(N_FINDINGS, np.float32)
            severity = np.zeros(N_FINDINGS, np.float32)
            i = FINDING_TYPES.index("low_resolution")
            presence[i], severity[i] = 1.0, min(spec.severity_value(f), 3.0) / 3.0
            cond = vector(presence, severity, image.modality)
            def net(planes: list[np.ndarray], cond: np.ndarray = cond) -> list[np.ndarray]:
                return network_planes(model, planes, cond)[0]

            for how, low in made.items():
                x = scale.forward(low)
                y = padding_guard(net, image.modality, scale)([x])[0].astype(np.float64)
                told = f * args.factor_scale
                planes, done = consistent([x.astype(np.float64)], [y],
                                          {"interpolated": told, "kspace": told})
                stepped, acquisition = planes[0], done.get("acquisition", done["step"])
                found = [psnr(scale.inverse(z), clean, window=window)
                         for z in (x, y, back_project(y, x, told), stepped)]
                found.append(float(acquisition == "kspace"))
                rows.setdefault((how, f), []).append(found)
                print(f"{name:12s} {how:7s} f={f:.2f}  input {found[0]:6.2f}  net {found[1]:6.2f}"
                      f"  +low-pass {found[2]:6.2f}  +step {found[3]:6.2f} ({acquisition}, "
                      f"f={done.get('factor', 0.0):.2f})",
                      flush=True)
    print(f"\n{args.model}: mean PSNR over {len(images)} images (dB), factor told = true × "
          f"{args.factor_scale:g}")
    print(f"{'reconstruction':15s} {'factor':>6s} {'input':>7s} {'net':>7s} {'+lowpass':>8s} "
          f"{'+step':>7s} {'kspace':>6s}")
    for how in ("engine", "zoom", "kspace"):
        for f in FACTORS:
            m = np.mean(rows[(how, f)], axis=0)
            print(f"{how:15s} {f:6.2f} {m[0]:7.2f} {m[1]:7.2f} {m[2]:8.2f} {m[3]:7.2f} {m[4]:6.2f}")
        m = np.mean([v for (h, _), vs in rows.items() if h == how for v in vs], axis=0)
        print(f"{how:15s} {'all':>6s} {m[0]:7.2f} {m[1]:7.2f} {m[2]:8.2f} {m[3]:7.2f} {m[4]:6.2f}"
              f"  (− input: net {m[1] - m[0]:+.2f}, low-pass {m[2] - m[0]:+.2f}, "
              f"step {m[3] - m[0]:+.2f})")


if __name__ == "__main__":
    main()
