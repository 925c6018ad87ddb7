"""Probe: which modality does `medq assess` give held-out scans saved as bare NIfTI files (no
modality stated anywhere), degraded by a simulator of their own (not medq's engine)?

Bases, all held out from the prompt classifier's training: MNI152 T1 axial planes at 50, 58 and
66 % of the head's height (the test zone), pydicom's MR_small and abdominal MR, its three CTs,
MNI PET-like planes at the same heights and the skull radiograph. Each base is written clean and
with noise (Rician for MR, Gaussian in HU for CT, Poisson counts for PET and the radiograph, at
two levels), Gaussian blur (σ 1.5 px), and for MR k-space undersampling (every third line, 8 %
of the centre kept) and rigid motion (a random shift of up to 4 px on 30 % of the phase lines),
each laid out as stored (the array turned as NIfTI's voxel axes turn it) and on a canvas padded
by 30 %, in file units (MR scaled to 0–1000, CT as HU + 1024, PET ×5000, the radiograph as 12
bits). The file is read by `medq.load` and its modality guessed as `medq assess` guesses it
(`load_classifier`). Prints, per true modality, the share read right, read wrong and left as
`other`. `--weights FILE` reads another classifier's `model.pt` in place of the shipped one.
Usage:
    python benchmarks/probes/bare_files.py [--weights runs/prompt-classifier/model.pt]
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi


def _rician(a: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    s = share * float(np.percentile(a, 99))
    return np.hypot(a + rng.normal(0, s, a.shape), rng.normal(0, s, a.shape))


def _kspace(a: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    k = np.fft.fftshift(np.fft.fft2(a))
    n = a.shape[0]
    if kind == "undersample":
        keep = np.zeros(n, bool)
        keep[::3] = True
        c = max(1, int(0.04 * n))
        keep[n // 2 - c:n // 2 + c] = True
        k = k * keep[:, None]
    else:  # rigid motion on 30 % of the phase lines
        fy = np.fft.fftshift(np.fft.fftfreq(n))[:, None]
        fx = np.fft.fftshift(np.fft.fftfreq(a.shape[1]))[None, :]
        for line in np.flatnonzero(rng.random(n) < 0.3):
            dy, dx = rng.uniform(-4, 4, 2)
            k[line] *= np.exp(-2j * np.pi * (fy[line] * dy + fx[0] * dx))
    return np.abs(np.fft.ifft2(np.fft.ifftshift(k)))


def _bases() -> list[tuple[str, str, np.ndarray]]:
    """(name, modality, plane in its native units) of each held-out base."""
    from medq.data.sources import _mni_volume, _pydicom

    out = []
    for modality in ("MR", "PT"):
        vol = _mni_volume(modality, 1).array
        for at in (0.50, 0.58, 0.66):
            out.append((f"mni_{modality.lower()}_{at:.2f}", modality,
                        vol[int(at * vol.shape[0])].astype(np.float64)))
    for name, file, modality in (("mr_small", "MR_small.dcm", "MR"),
                                 ("mr_abdomen", "examples_overlay.dcm", "MR"),
                                 ("ct_small", "CT_small.dcm", "CT"),
                                 ("ct_693", "693_J2KI.dcm", "CT"),
                                 ("ct_head_j2k", "J2K_pixelrep_mismatch.dcm", "CT")):
        out.append((name, modality, _pydicom(file)().array.astype(np.float64)))
    from medq.data.samples import load_sample

    out.append(("xr_head", "DX", load_sample("xr_head").array.astype(np.float64)))
    return out


def _variants(a: np.ndarray, modality: str, rng: np.random.Generator
              ) -> dict[str, np.ndarray]:
    """The base clean and degraded, in its own units."""
    out = {"clean": a, "blur": ndi.gaussian_filter(a, 1.5)}
    if modality == "MR":
        out |= {"noise_3": _rician(a, 0.03, rng), "noise_8": _rician(a, 0.08, rng),
                "undersample": _kspace(a, rng, "undersample"),
                "motion": _kspace(a, rng, "motion")}
    elif modality == "CT":
        out |= {f"noise_{s}": a + rng.normal(0, s, a.shape) for s in (20, 60)}
    else:  # counts: PET and the radiograph
        top = float(np.percentile(a, 99)) or 1.0
        for counts in (200, 30):
            out[f"noise_{counts}"] = rng.poisson(np.clip(a, 0, None) / top * counts) * top / counts
    return out


def _file_units(a: np.ndarray, modality: str) -> np.ndarray:
    if modality == "MR":
        return a / max(float(a.max()), 1e-6) * 1000.0
    if modality == "CT":
        return np.clip(a + 1024.0, 0, None)
    if modality == "PT":
        return a / max(float(a.max()), 1e-6) * 5000.0
    return np.round((a - a.min()) / max(float(np.ptp(a)), 1e-6) * 4095.0)


def main() -> None:
    """Print the shares per true modality and the misread files."""
    import nibabel as nib
    import torch

    import medq
    from medq.assess import prompt_classifier as pc
    from medq.assess.prompts import prompts_from_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="a prompt classifier's model.pt (default: the shipped one)")
    args = ap.parse_args()
    if args.weights:
        net = pc.PromptNet()
        net.load_state_dict(torch.load(args.weights, weights_only=True)["state_dict"])
        pc._shipped.cache_clear()
        pc._shipped = lambda: net.eval()  # noqa: E731  (the probe's classifier)
    guess = pc.load_classifier()
    rng = np.random.default_rng(0)
    tally: dict[str, Counter] = {}
    wrong = []
    with tempfile.TemporaryDirectory() as folder:
        for name, modality, base in _bases():
            for kind, a in _variants(base, modality, rng).items():
                for layout in ("stored", "padded"):
                    x = _file_units(a, modality)
                    if layout == "padded":
                        x = np.pad(x, [(int(0.15 * n),) * 2 for n in x.shape],
                                   constant_values=float(x.min()))
                    path = Path(folder) / f"{name}_{kind}_{layout}.nii.gz"
                    nib.save(nib.Nifti1Image(np.rot90(x, -1)[:, :, None].astype(np.float32),
                                             np.eye(4)), path)
                    got = prompts_from_image(medq.load(path), guess).modality
                    truth = "XR" if modality == "DX" else modality
                    verdict = "right" if got == truth else "other" if got == "other" else "wrong"
                    tally.setdefault(truth, Counter())[verdict] += 1
                    if verdict != "right":
                        wrong.append(f"{path.name}: {got}")
    print("modality  files  right  wrong  other")
    for truth, c in tally.items():
        n = sum(c.values())
        shares = " ".join(f"{c[v] / n:6.2f}" for v in ("right", "wrong", "other"))
        print(f"{truth:8s} {n:6d} {shares}")
    n = sum(sum(c.values()) for c in tally.values())
    right = sum(c["right"] for c in tally.values()) / n
    wrong_share = sum(c["wrong"] for c in tally.values()) / n
    print(f"all      {n:6d} {right:6.2f} {wrong_share:6.2f} {1 - right - wrong_share:6.2f}")
    print("not read right:", ", ".join(wrong))


if __name__ == "__main__":
    main()
