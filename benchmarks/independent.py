"""Severity ranking under independent simulators (`make bench`).

`benchmarks/ranking.py` degrades the held-out real images with medq's own engine, which also
made the training data. Here the same images (pydicom's CT and MR files, the skull radiograph,
none of them ever trained on) are degraded by code medq has never trained on: scikit-image's
Radon transform for CT sinogram noise, MONAI's fastMRI-style k-space masks and Rician noise,
TorchIO's motion (Shaw et al.), ghosting, k-space spike, bias field and Gaussian blur in mm,
and Poisson noise on a radiograph's transmitted counts. Each image is scored clean and at four
rising strengths of each kind; Spearman(strength, falling score) is averaged per kind and over
kinds, for `medq assess`'s score and for its two parts (the model's score and the evidence
score), and how often `medq describe`'s findings name the kind on the three stronger rungs.
Writes benchmarks/results/independent.json (with each rung's findings and suspected types).
Usage:
    python benchmarks/independent.py [FILE ...] [--modality M] [--model M] [--seed 0] [--seeds 4]
Each ladder is one random draw of the simulators, so they are drawn with `--seeds` seeds from
`--seed` on; the means are over all of them (each seed's own in `per_seed`).
FILE: your own clean CT, MR or radiograph files instead of the held-out images (each degraded
ladder is cached like the others; the results go to independent_files.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"

MU_WATER_PER_MM = 0.0192
"""Linear attenuation of water at about 70 keV (1/mm): HU ↔ μ for the CT simulation."""


def _tio_image(image: Any) -> Any:
    """A 2D MedImage as a TorchIO image: tensor (1, 1, y, x), affine with its pixel spacing (the
    plane's rows and columns are TorchIO's 2nd and 3rd axes, so that its motion, which splits
    k-space along the 3rd axis, acts in-plane)."""
    import torch
    import torchio as tio

    sy, sx = image.spacing[-2:]
    affine = np.diag([1.0, float(sy), float(sx), 1.0])
    data = torch.from_numpy(np.asarray(image.array, dtype=np.float32)[None, None].copy())
    return tio.ScalarImage(tensor=data, affine=affine)


def _apply_tio(image: Any, transform: Any) -> Any:
    """`image` with a TorchIO transform applied to its 2D plane."""
    out = transform(_tio_image(image))
    return image.with_array(out.data[0, 0].numpy().astype(np.float32))


def tio_blur(image: Any, sigma_mm: float, seed: int) -> Any:
    """TorchIO Gaussian blur of σ = `sigma_mm` in-plane (mm, as the image's spacing)."""
    import torchio as tio

    return _apply_tio(image, tio.Blur(std=(0.0, sigma_mm, sigma_mm)))


MOTION_FOV_CAP = 0.05
"""Largest translation of `tio_motion` as a fraction of the field of view (a 1 mm move is
small on a head, not on a 20 mm crop)."""


def tio_motion(image: Any, amplitude: float, seed: int) -> Any:
    """TorchIO rigid motion (k-space segments of moved copies, Shaw et al.; phase encoding along
    the columns): the object moves twice, first at `motion_onset(amplitude)` of the acquisition
    (after the k-space centre) and again halfway from there to the end, by in-plane rotations of
    `amplitude` and −0.6 × `amplitude` degrees and translations of up to `amplitude` mm (at most
    `MOTION_FOV_CAP` of the field of view) in directions drawn from `seed`."""
    import torchio as tio

    rng = np.random.default_rng(seed)
    direction = rng.uniform(-1.0, 1.0, (2, 2))
    direction /= np.abs(direction).max(axis=1, keepdims=True)
    fov = min(float(s) * n for s, n in zip(image.spacing[-2:], image.shape[-2:], strict=True))
    turn = np.array([[1.0, 0.0, 0.0], [-0.6, 0.0, 0.0]]) * amplitude
    shift = np.concatenate([np.zeros((2, 1)), direction], axis=1) * min(amplitude,
                                                                         MOTION_FOV_CAP * fov)
    onset = motion_onset(amplitude)
    return _apply_tio(image, tio.Motion(degrees=turn, translation=shift,
                                        times=np.array([onset, (onset + 1.0) / 2.0]),
                                        image_interpolation="linear"))


def motion_onset(amplitude: float) -> float:
    """When `tio_motion` first moves, as a fraction of the acquisition: later for small moves
    (0.85 at 1 mm), earlier for large ones, never before the k-space centre (0.52 from 7.6 mm).
    A moved k-space segment loses its detail whatever the size of the move, so the corrupted
    share of k-space has to grow with the amplitude for the strength to rise."""
    return float(max(0.52, 0.9 - 0.05 * amplitude))


def tio_ghosting(image: Any, intensity: float, seed: int) -> Any:
    """TorchIO discrete ghosts: every 4th phase-encode line (along the columns) attenuated by
    `intensity`, the k-space centre line kept (4 ghost copies of about `intensity`/4)."""
    import torchio as tio

    return _apply_tio(image, tio.Ghosting(num_ghosts=4, axis=2, intensity=intensity,
                                          restore=None))


def tio_spike(image: Any, intensity: float, seed: int) -> Any:
    """TorchIO k-space spike (herringbone stripes of about `intensity` × the image mean): one
    spike of `intensity` × the spectrum's maximum, 10–40 % of the half-width off the centre per
    axis, at a place drawn from `seed`."""
    import torchio as tio

    rng = np.random.default_rng(seed)
    offset = rng.uniform(0.05, 0.2, 2) * rng.choice([-1.0, 1.0], 2)
    return _apply_tio(image, tio.Spike(spikes_positions=np.array([[0.0, *(0.5 + offset)]]),
                                       intensity=intensity))


def tio_bias_field(image: Any, strength: float, seed: int) -> Any:
    """TorchIO multiplicative bias field: exp of a cubic polynomial over the plane whose
    coefficients, drawn once from `seed` in [−1, 1], are scaled by `strength`."""
    import torchio as tio

    coefficients = np.random.default_rng(seed).uniform(-1.0, 1.0, 20) * strength
    return _apply_tio(image, tio.BiasField(coefficients=coefficients.tolist(), order=3))


def monai_undersample(image: Any, acceleration: float, seed: int) -> Any:
    """MONAI's fastMRI-style random k-space mask (8 % of the lines kept at the centre, the rest
    at random for `acceleration` overall), zero-filled magnitude reconstruction."""
    import torch
    from monai.apps.reconstruction.transforms.array import RandomKspaceMask
    from monai.data.fft_utils import fftn_centered

    plane = torch.from_numpy(np.asarray(image.array, dtype=np.float32))
    complex_plane = torch.stack([plane, torch.zeros_like(plane)], dim=-1)[None]  # (1, y, x, 2)
    kspace = fftn_centered(complex_plane, spatial_dims=2, is_complex=True)
    mask = RandomKspaceMask(center_fractions=[0.08], accelerations=[acceleration],
                            spatial_dims=2, is_complex=True)
    mask.set_random_state(seed=seed)
    _, magnitude = mask(kspace)
    return image.with_array(magnitude.reshape(plane.shape).numpy().astype(np.float32))


def monai_rician(image: Any, relative_std: float, seed: int) -> Any:
    """MONAI's Rician noise of σ = `relative_std` × the image's standard deviation."""
    from monai.transforms import RandRicianNoise

    noise = RandRicianNoise(prob=1.0, std=relative_std, relative=True, sample_std=False)
    noise.set_random_state(seed=seed)
    out = noise(np.asarray(image.array, dtype=np.float32)[None])
    return image.with_array(np.asarray(out)[0].astype(np.float32))


def _square(a: np.ndarray, fill: float) -> tuple[np.ndarray, tuple[slice, slice]]:
    """`a` padded with `fill` to a centred square, and the slices that crop it back."""
    n = max(a.shape)
    top, left = (n - a.shape[0]) // 2, (n - a.shape[1]) // 2
    out = np.full((n, n), fill, dtype=np.float64)
    out[top:top + a.shape[0], left:left + a.shape[1]] = a
    return out, (slice(top, top + a.shape[0]), slice(left, left + a.shape[1]))


def ct_sinogram_noise(image: Any, photons: float, seed: int) -> Any:
    """CT dose reduction by noise insertion with scikit-image's Radon transform: the slice's
    line integrals (HU → μ of water at 70 keV, padding as air; one view per pixel over 180°),
    Poisson counts of `photons` per ray, and the filtered back-projection of the change of the
    log-transformed counts added to the slice (its resolution and texture kept)."""
    from skimage.transform import iradon, radon

    rng = np.random.default_rng(seed)
    hu = np.asarray(image.array, dtype=np.float64)
    mu, crop = _square(MU_WATER_PER_MM * (1.0 + np.maximum(hu, -1000.0) / 1000.0), 0.0)
    pixel_mm = float(np.mean(image.spacing[-2:]))
    theta = np.linspace(0.0, 180.0, mu.shape[0], endpoint=False)
    line = radon(mu, theta=theta, circle=False) * pixel_mm
    counts = np.maximum(rng.poisson(photons * np.exp(-line)), 1.0)
    change = -np.log(counts / photons) - line
    delta_mu = iradon(change, theta=theta, filter_name="ramp", circle=False,
                      output_size=mu.shape[0]) / pixel_mm
    out = hu + (1000.0 / MU_WATER_PER_MM) * delta_mu[crop]
    return image.with_array(np.where(hu < -1000.0, hu, out).astype(np.float32))


def xr_poisson(image: Any, photons: float, seed: int) -> Any:
    """Radiograph quantum noise: pixel values read as line integrals (the darkest pixel 0, the
    brightest 4, i.e. 2 % transmission), Poisson counts of `photons` per unattenuated pixel,
    back to pixel values through the log."""
    rng = np.random.default_rng(seed)
    a = np.asarray(image.array, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    line = 4.0 * (a - lo) / max(hi - lo, 1e-12)
    counts = np.maximum(rng.poisson(photons * np.exp(-line)), 1.0)
    return image.with_array((lo + (hi - lo) * -np.log(counts / photons) / 4.0).astype(np.float32))


Simulator = Callable[[Any, float, int], Any]

LADDERS: dict[str, dict[str, tuple[Simulator, tuple[float, ...]]]] = {
    "CT": {"ct_sinogram_noise": (ct_sinogram_noise, (2e5, 5e4, 1.5e4, 5e3)),
           "blur": (tio_blur, (0.6, 1.2, 2.0, 3.0))},
    "MR": {"mr_kspace_undersampling": (monai_undersample, (2.0, 3.0, 4.0, 6.0)),
           "mr_rician_noise": (monai_rician, (0.03, 0.06, 0.1, 0.16)),
           "mr_motion": (tio_motion, (1.0, 2.5, 5.0, 8.0)),
           "mr_ghosting": (tio_ghosting, (0.15, 0.3, 0.5, 0.8)),
           "mr_spike": (tio_spike, (0.03, 0.06, 0.12, 0.25)),
           "mr_bias_field": (tio_bias_field, (0.1, 0.2, 0.35, 0.5)),
           "blur": (tio_blur, (0.6, 1.2, 2.0, 3.0))},
    "XR": {"xr_quantum_noise": (xr_poisson, (3e4, 1e4, 3e3, 1e3)),
           "blur": (tio_blur, (0.6, 1.2, 2.0, 3.0))},
}
"""Per modality group (`evidence.modality_group`), each kind's simulator and its four strengths,
mildest first (photons fall, the rest rise). Blur σ in mm, motion in degrees and mm, Rician σ
relative to the image's SD."""


EXPECTED_FINDINGS = {"ct_sinogram_noise": {"noise"}, "blur": {"blur"},
                     "mr_kspace_undersampling": {"aliasing"}, "mr_rician_noise": {"noise"},
                     "mr_motion": {"motion", "ghosting"}, "mr_ghosting": {"ghosting"},
                     "mr_spike": {"spike"}, "mr_bias_field": {"bias_field"},
                     "xr_quantum_noise": {"noise"}}
"""The finding types of medq's description that name each kind right (TorchIO's motion shows
as ghosts as much as blur, so either motion finding counts)."""

DESCRIBED_RUNGS = (2, 3, 4)
"""The rungs whose description is checked for the kind's finding (the mildest may be too mild
to report)."""


CACHE_VERSION = 1
"""Bumped whenever a simulator or a ladder changes (part of every cached ladder's key)."""


def _ladder_key(name: str, kind: str, image: Any, strengths: tuple[float, ...], seed: int) -> str:
    """Cache key of one ladder: the image's pixels and spacing, the kind, its strengths, the
    seed, `CACHE_VERSION` and the versions of the libraries that simulate."""
    import hashlib
    from importlib.metadata import version

    digest = hashlib.sha256(np.ascontiguousarray(image.array).tobytes())
    digest.update(repr((name, kind, tuple(image.spacing), strengths, seed, CACHE_VERSION,
                        *(version(p) for p in ("torchio", "monai", "scikit-image")))).encode())
    return digest.hexdigest()[:16]


def independent_ladders(images: dict[str, Any], seed: int = 0, cache: bool = True
                        ) -> Iterator[tuple[str, str, list[Any]]]:
    """(image name, kind, ladder) for each held-out image and each kind of its modality: the
    image clean, then at each strength of `LADDERS` (one seed per ladder). The degraded rungs
    are deterministic and kept under medq's cache folder (`independent/`) unless `cache` is
    False."""
    from medq.assess.evidence import modality_group
    from medq.data.cache import cache_dir, read_npz, write_npz

    for name, image in images.items():
        for kind, (simulate, strengths) in LADDERS.get(modality_group(image.modality), {}).items():
            path = cache_dir() / "independent" / f"{name}-{kind}-" \
                f"{_ladder_key(name, kind, image, strengths, seed)}.npz"
            stored = read_npz(path) if cache else None
            if stored is None:
                rungs = [simulate(image, s, seed) for s in strengths]
                if cache:
                    write_npz(path, {f"rung_{k}": r.array for k, r in enumerate(rungs)})
            else:
                rungs = [image.with_array(stored[f"rung_{k}"]) for k in range(len(strengths))]
            yield name, kind, [image] + rungs


def own_images(paths: list[str], modality: str | None = None) -> dict[str, Any]:
    """Your own clean images by file name, each as one 2D plane (a volume's middle salient
    slice; `modality` for files that do not state theirs); a file that cannot be read, or whose
    modality no simulator here serves, is reported on stderr (`medq: error: <file>: <reason>`)
    and left out."""
    from medq.assess.evidence import modality_group
    from medq.assess.slices import salient_slices
    from medq.errors import MedqError, UnsupportedImage
    from medq.io import load

    images = {}
    for path in paths:
        try:
            image = load(path, modality=modality)
            if modality_group(image.modality) not in LADDERS:
                raise UnsupportedImage(f"no independent simulator for modality {image.modality}"
                                       f" (these serve {', '.join(LADDERS)})", path)
            if image.is_rgb:
                raise UnsupportedImage("a colour image; the simulators take greyscale", path)
            if image.is_volume:
                middle = salient_slices(image.array, n=1, modality=image.modality)[0]
                image = image.evolve(array=np.ascontiguousarray(image.array[middle]),
                                     spacing=tuple(image.spacing[-2:]))
            images[Path(path).name] = image
        except MedqError as error:
            print(f"medq: error: {error.message}", file=sys.stderr)
    return images


def ladder_images(paths: list[str], modality: str | None = None) -> dict[str, Any]:
    """The images to degrade: `own_images(paths, modality)`, or without paths the held-out real
    images of `benchmarks/ranking.py`; exits with code 2 when none is left."""
    from medq.train.evaluate import held_out_images

    images = own_images(paths, modality) if paths else held_out_images()
    if not images:
        sys.exit(2)
    return images


def ladder_parser(description: str) -> argparse.ArgumentParser:
    """A command line taking the images to degrade (`ladder_images`): FILE ..., --modality and
    --seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("images", nargs="*",
                        help="your own clean CT, MR or radiograph files (default: the held-out "
                             "real images); a volume gives its middle salient slice")
    parser.add_argument("--modality", help="modality of files that do not state it (CT, MR, DX)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def results_file(stem: str, own_files: bool) -> Path:
    """Where a benchmark writes its JSON: `results/<stem>.json`, or `<stem>_files.json` for a
    run on your own files (the folder is created)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{stem}{'_files' if own_files else ''}.json"


def score_seed(assessor: Any, images: dict[str, Any], seed: int
               ) -> tuple[dict[str, dict[str, Any]], dict[str, list[bool]]]:
    """Every ladder of one seed scored: per part of the score (`medq assess`'s, the model's, the
    evidence score) the per-ladder scores and Spearman, and per kind whether `medq describe`
    names it on each of the stronger rungs."""
    from medq.describe import report_from
    from medq.train.evaluate import ladder_spearman

    parts: dict[str, dict[str, Any]] = {"score": {}, "model_score": {}, "evidence_score": {}}
    named: dict[str, list[bool]] = defaultdict(list)
    for name, kind, ladder in independent_ladders(images, seed):
        found = assessor.assess_many(ladder)
        failed = [r for r in found if isinstance(r, Exception)]
        if failed:
            sys.exit(f"{name}/{kind}: {failed[0]}")
        key = f"{name}/{kind}"
        for part, pairs in parts.items():
            scores = [float(getattr(r, part)) for r in found]
            pairs[key] = {"scores": scores, "spearman": ladder_spearman(scores)}
        entry = parts["score"][key]
        entry["findings"] = [
            [f"{f['type']} ({f['severity']})" for f in r.findings]
            + [f"suspected {d['type']} ({d['confidence']:.2f})" for d in r.suspected]
            for r in found]
        described = [report_from(found[k], ladder[k]).findings for k in DESCRIBED_RUNGS]
        named[kind] += [bool({f.type for f in fs} & EXPECTED_FINDINGS[kind]) for fs in described]
        entry["described"] = [sorted(f"{f.type} ({f.severity})" for f in fs) for fs in described]
        scores = " ".join(f"{s:.2f}" for s in entry["scores"])
        print(f"seed {seed} {key:36s} ρ={entry['spearman']:+.2f}  scores clean→severe: {scores}",
              flush=True)
    return parts, named


def main() -> None:
    """Score every ladder of every seed; print the scores and the per-kind means over seeds."""
    parser = ladder_parser(__doc__)
    parser.add_argument("--model", default="mediqa-s")
    parser.add_argument("--seeds", type=int, default=4,
                        help="draw the ladders with seeds SEED … SEED+N−1 (default 4)")
    args = parser.parse_args()
    from medq.assess.predictor import Assessor
    from medq.train.evaluate import ranking_over_seeds, ranking_summary

    assessor = Assessor(args.model, measures=False)
    images = ladder_images(args.images, args.modality)
    per_seed: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    named: dict[str, list[bool]] = defaultdict(list)
    for seed in range(args.seed, args.seed + max(1, args.seeds)):
        parts, hits = score_seed(assessor, images, seed)
        for part, pairs in parts.items():
            per_seed[part][seed] = ranking_summary(pairs)
        for kind, v in hits.items():
            named[kind] += v
    results = {part: ranking_over_seeds(seeds) for part, seeds in per_seed.items()}
    print(f"{'kind':26s} {'medq assess':>12s} {'model':>8s} {'evidence':>9s} {'described':>10s}")
    for kind in results["score"]["per_kind"]:
        row = [results[p]["per_kind"][kind] for p in results]
        print(f"{kind:26s} {row[0]:12.3f} {row[1]:8.3f} {row[2]:9.3f} "
              f"{sum(named[kind]):6d}/{len(named[kind])}")
    means = [results[p]["mean"] for p in results]
    hits = [h for v in named.values() for h in v]
    print(f"{'mean over kinds':26s} {means[0]:12.3f} {means[1]:8.3f} {means[2]:9.3f} "
          f"{sum(hits):6d}/{len(hits)}")
    seeds = results["score"]["per_seed"]
    print("medq assess per seed: " + ", ".join(f"{s} {r['mean']:.3f}" for s, r in seeds.items()))
    print(f"described: rungs {DESCRIBED_RUNGS} whose `medq describe` findings name the kind "
          f"(EXPECTED_FINDINGS); means over the ladders of seeds {results['score']['seeds']}")
    out = {"model": args.model, "seeds": results["score"]["seeds"],
           "ladders": {m: {k: list(v[1]) for k, v in kinds.items()}
                       for m, kinds in LADDERS.items()},
           **results,
           "described": {k: {"named": sum(v), "rungs": len(v)} for k, v in named.items()}}
    results_file("independent", bool(args.images)).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
