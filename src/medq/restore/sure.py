"""How much of a network's noise removal to keep: Stein's unbiased risk estimate (SURE).

For an input y = x + n with white Gaussian noise of σ per pixel and a denoiser f, the mean square
error against the unknown clean x is estimated without it (Stein 1981):

    SURE(f) = ‖y − f(y)‖²/N − σ² + 2σ² · div f(y)/N,

where div f = Σᵢ ∂fᵢ/∂yᵢ is taken by one more pass of the network on a perturbed input
(Monte-Carlo SURE, Ramani, Blu & Unser 2008): div f ≈ bᵀ(f(y + εb) − f(y))/ε for a random ±1
vector b. Scaling the network's correction, f_α = y − α(y − f(y)), gives the risk as a quadratic
in α whose minimum is

    α* = σ² (1 − div f/N) / (‖y − f(y)‖²/N), clipped to [0, 1]:

α* ≈ 1 when the network took out noise alone, less when it also took out (or put in) structure,
0 when what it changed is not noise at all. medq applies it to MR restorations for noise alone
(`applies`): MR thermal noise is white in the image (k-space samples with independent noise),
and inside the body, where the signal is well above the noise, the magnitude image's Rician
noise is close to Gaussian. σ is Donoho's MAD estimate and the sums run over the body
(`masks.foreground_mask`, eroded by `BODY_EROSION` px), not over the background, where the
magnitude noise is Rayleigh and reads σ low. CT, radiograph and PET noise is correlated in the
image (reconstruction filters, detector blur), which this SURE does not model; those keep the
network's full correction (and `checks.removed_share`'s check).

The same estimate compares denoisers (`classical_choice`): the risk of the scaled correction,
SURE(α) = α²‖y − f(y)‖²/N − σ² + 2σ²((1 − α) + α·div f/N) (`Fit.risk`), against BM3D's, with
the same σ over the same body. `medq restore`'s `auto` takes BM3D's output where its risk is
the lower, inside the body only (`in_body`): outside, the magnitude noise is Rayleigh, SURE
reads nothing there, and the network (trained on magnitude images) removes the noise floor
that BM3D leaves.
`benchmarks/probes/sure_scale.py` measures both on training and held-out sources.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

BODY_EROSION = 2
"""Pixels the body mask is eroded by (its rim mixes signal and Rayleigh background)."""

MIN_BODY = 64
"""Fewest body pixels SURE is taken over; below, the correction is kept whole (α = 1)."""

SIGNAL_SNR = 3.0
"""Least median of the body, in units of the noise σ, for α to be estimated: below it the body
is the magnitude image's Rayleigh noise, not Gaussian noise on anatomy (a slice past the end of
the anatomy is such noise alone, and its "body" collapsed α to 0.2, leaving it noisy)."""

EPSILON = 1e-3
"""Size of the divergence probe's perturbation, as a fraction of the plane's P1–P99 range."""

PlanesFn = Callable[[list[np.ndarray]], list[np.ndarray]]
"""Normalised planes in, a denoiser's (the network's, BM3D's) restored planes out."""


def applies(modality: str, addressed: list[str]) -> bool:
    """Whether a restoration's correction is scaled by SURE: an MR image restored for noise
    alone (see the module docstring)."""
    from medq.assess.evidence import modality_group
    from medq.restore.checks import for_noise_alone

    return modality_group(modality) == "MR" and for_noise_alone(addressed)


def body_of(plane: np.ndarray) -> np.ndarray:
    """The eroded body mask of a normalised MR plane, where SURE's sums run."""
    from medq.assess.masks import foreground_mask

    return ndi.binary_erosion(foreground_mask(plane, "MR"), iterations=BODY_EROSION)


SIGMA_SLACK = 0.25
"""Relative error allowed in σ² when SURE compares two denoisers (`classical_choice`). Their
risks differ by ‖y − g‖²/N − ‖y − f‖²/N + 2σ²(div g − div f)/N, so an error in σ² shifts the
difference towards the smoother denoiser when σ is read high and away from it when read low.
Donoho's MAD over the body reads some anatomy as noise (on the held-out 64² head MR with white
noise of σ 0.02 and 0.05 of its range it read 0.033 and 0.061:
`benchmarks/probes/sure_bm3d.py`), so the classical denoiser is taken only where it wins for
every σ² within this share of the estimate."""


def probe_of(plane: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """The divergence probe of a plane: a random ±1 field b (fixed `seed`: deterministic) and
    the step ε (`EPSILON` of its P1–P99 range)."""
    rng = np.random.default_rng(seed)
    low, high = np.percentile(plane, [1.0, 99.0])
    return rng.choice(np.array([-1.0, 1.0]), size=plane.shape), EPSILON * max(float(high - low),
                                                                               1e-6)


class Fit(NamedTuple):
    """SURE's sums of one plane's correction over its body: the noise σ (Donoho's MAD), the mean
    square correction ‖y − f(y)‖²/N and the mean divergence div f/N."""

    sigma: float
    removed: float
    divergence: float

    def alpha(self) -> float:
        """α* = σ²(1 − div f/N) / (‖y − f(y)‖²/N), clipped to [0, 1] (module docstring)."""
        return float(np.clip(self.sigma ** 2 * (1.0 - self.divergence) / self.removed, 0.0, 1.0))

    def risk(self, alpha: float = 1.0) -> float:
        """SURE per pixel of the correction scaled by α, y − α(y − f(y)), whose divergence per
        pixel is (1 − α) + α·div f/N: α²‖y − f(y)‖²/N − σ² + 2σ²((1 − α) + α·div f/N)."""
        s2 = self.sigma ** 2
        return float(alpha ** 2 * self.removed - s2
                     + 2.0 * s2 * ((1.0 - alpha) + alpha * self.divergence))


def sure_fit(noisy: np.ndarray, restored: np.ndarray, perturbed: np.ndarray,
             probe: np.ndarray, eps: float, body: np.ndarray) -> Fit | None:
    """SURE's sums of one plane (`Fit`): `restored` = f(y), `perturbed` = f(y + ε·`probe`), the
    sums over `body`; None when they cannot be estimated: too small a body, one whose median
    is under `SIGNAL_SNR` σ (noise alone), a nil correction, a σ or divergence that is not
    finite."""
    from medq.assess.iqms import noise_sigma_wavelet

    if body.sum() < MIN_BODY:
        return None
    y, f = np.asarray(noisy, np.float64), np.asarray(restored, np.float64)
    sigma = noise_sigma_wavelet(y, body)
    if not np.median(y[body]) >= SIGNAL_SNR * sigma:  # a "body" of noise alone (no anatomy)
        return None
    removed = float(np.mean(((y - f) ** 2)[body]))
    divergence = float(np.mean((probe * (np.asarray(perturbed, np.float64) - f))[body]) / eps)
    if not (removed > 0 and np.isfinite(sigma) and np.isfinite(divergence)):
        return None
    return Fit(float(sigma), removed, divergence)


def sure_fits(planes: list[np.ndarray], restored: list[np.ndarray], denoiser: PlanesFn
              ) -> list[Fit | None]:
    """Each plane's `Fit` of a denoiser's output `restored` (`denoiser` run once more, on the
    planes plus their divergence probes)."""
    probes = [probe_of(p) for p in planes]
    perturbed = denoiser([p + eps * b.astype(p.dtype) for p, (b, eps) in zip(planes, probes,
                                                                             strict=True)])
    return [sure_fit(p, f, g, b, eps, body_of(p))
            for p, f, g, (b, eps) in zip(planes, restored, perturbed, probes, strict=True)]


def scaled_by(planes: list[np.ndarray], restored: list[np.ndarray], fits: list[Fit | None]
              ) -> tuple[list[np.ndarray], list[float | None]]:
    """The planes with each correction scaled by its α* (a plane without a `Fit` keeps its whole
    correction), and the α of each plane (None where not estimated)."""
    alphas = [None if fit is None else fit.alpha() for fit in fits]
    out = [p - (1.0 if a is None else a) * (p - f)
           for p, f, a in zip(planes, restored, alphas, strict=True)]
    return out, alphas


COMPARED_PLANES = 3
"""Most planes of a volume on which the network's scaled correction and the classical denoiser
are compared (`classical_choice`), evenly spaced among those SURE can read."""


def classical_choice(planes: list[np.ndarray], fits: list[Fit | None], classical: PlanesFn
                     ) -> dict[int, np.ndarray] | None:
    """The classical denoiser's outputs on the compared planes (by index) where SURE reads them
    closer to the clean image than the network's correction scaled by its α (`fits`: the
    network's, `sure_fits`), else None. The risks are summed over up to `COMPARED_PLANES`
    planes the network's fit read; the denoiser runs there twice, on the planes and on the
    perturbed planes, and the same σ and body serve both; it must win at both ends of
    `SIGMA_SLACK` (the network's α kept as estimated). None when no plane is read by both."""
    readable = [i for i, fit in enumerate(fits) if fit is not None]
    if not readable:
        return None
    picked = sorted({readable[int(round(k))] for k in np.linspace(
        0, len(readable) - 1, min(COMPARED_PLANES, len(readable)))})
    sub = [planes[i] for i in picked]
    outputs = classical(sub)
    theirs = sure_fits(sub, outputs, classical)
    pairs = [(fit, other) for fit, other in zip((fits[i] for i in picked), theirs, strict=True)
             if fit is not None and other is not None]
    if pairs and all(sum(t._replace(sigma=t.sigma * k).risk()
                         - f._replace(sigma=f.sigma * k).risk(f.alpha()) for f, t in pairs) < 0
                     for k in np.sqrt([1.0 - SIGMA_SLACK, 1.0 + SIGMA_SLACK])):
        return dict(zip(picked, outputs, strict=True))
    return None


def in_body(plane: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """`inside` over the plane's body (its foreground) and `outside` beyond, where the magnitude
    noise is Rayleigh and SURE reads nothing; blended across the body's edge by the foreground
    smoothed by a Gaussian of `BODY_EROSION` px: `inside`'s weight is ½ on the edge, about 0.8
    on the edge of the eroded body SURE compared on and 1 deeper in."""
    from medq.assess.masks import foreground_mask

    weight = ndi.gaussian_filter(foreground_mask(plane, "MR").astype(np.float64), BODY_EROSION)
    return (weight * inside + (1.0 - weight) * outside).astype(np.asarray(inside).dtype)
