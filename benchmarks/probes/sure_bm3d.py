"""Probe: how well SURE reads BM3D's error (`medq.restore.sure`), and how far Donoho's MAD σ
over the body is from the noise added. White Gaussian noise of σ 0.02 and 0.05 (normalised
units) on the held-out MR files (pydicom's abdominal and 64² head MR) and a draw of each MR
training source; prints σ̂ (`sure_fit`'s estimate) and SURE's risk of BM3D's output over the
true mean square error over the body, with σ̂ (what `classical_choice` uses) and with the true σ.
Usage:
    python benchmarks/probes/sure_bm3d.py
"""

from __future__ import annotations

import numpy as np


def main() -> None:
    """Print σ̂ and SURE / true error of BM3D per image and noise level."""
    from medq.data.sources import sources
    from medq.restore import sure
    from medq.restore.classical import bm3d_plane
    from medq.restore.normalise import scale_for
    from medq.train.evaluate import held_out_images

    held = held_out_images()
    images = {name: held[name] for name in ("mr_abdomen", "mr_small")}
    rng = np.random.default_rng(5)
    images.update({s.name: s.draw(rng, "2d") for s in sources("train") if s.modality == "MR"})

    def denoise(qs: list[np.ndarray]) -> list[np.ndarray]:
        return [bm3d_plane(q) for q in qs]

    for name, image in images.items():
        a = np.asarray(image.array, np.float64)
        clean = scale_for(a, "MR").forward(a[None])[0].astype(np.float64)
        for sigma in (0.02, 0.05):
            noisy = (clean + sigma * np.random.default_rng(1).standard_normal(clean.shape)
                     ).astype(np.float32)
            out = denoise([noisy])
            fit = sure.sure_fits([noisy], out, denoise)[0]
            if fit is None:
                print(f"{name:14s} σ {sigma:.2f}: SURE cannot read this plane")
                continue
            body = sure.body_of(noisy)
            true = float(np.mean((out[0].astype(np.float64) - clean)[body] ** 2))
            exact = fit._replace(sigma=sigma).risk()
            print(f"{name:14s} σ {sigma:.2f}: σ̂ {fit.sigma:.4f}   SURE / true error: with σ̂ "
                  f"{fit.risk() / true:5.2f}, with the true σ {exact / true:5.2f}")


if __name__ == "__main__":
    main()
