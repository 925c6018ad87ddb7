"""MR degradations: undersampling, Rician noise, motion, ghosting, spikes and bias field.

The k-space kinds treat the magnitude image as complex with a smooth random background phase
(recorded), corrupt its 2D Cartesian k-space (`medq.degrade.kspace`: phase encode along y, readout
along x) and return the magnitude. Volumes are multi-slice 2D acquisitions: every slice gets the
same corruption (same mask, trajectory, spikes). The bias field is 3D for volumes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from medq.degrade import kspace
from medq.degrade.generic import smooth_field
from medq.degrade.registry import register
from medq.errors import InvalidImage
from medq.image import MedImage

PHASE_MAX_RAD = np.pi / 2
"""Peak amplitude of the smooth background phase given to magnitude inputs."""

KCorruption = Callable[[np.ndarray], tuple[np.ndarray, dict[str, Any]]]


def otsu_foreground(a: np.ndarray) -> np.ndarray:
    """Pixels above the Otsu threshold (all of them for a constant image); any shape, a
    3-slice volume not taken for colour."""
    return a > threshold_otsu(a.ravel()) if np.ptp(a) > 0 else np.ones(a.shape, bool)


def robust_max(array: np.ndarray) -> float:
    """99th percentile of the foreground (pixels above the Otsu threshold)."""
    a = np.asarray(array, dtype=np.float32)
    fg = a[otsu_foreground(a)]
    return float(np.percentile(fg if fg.size else a, 99)) + 0.0  # a blank image's −0 as 0


def _through_kspace(image: MedImage, rng: np.random.Generator, corrupt: KCorruption
                    ) -> tuple[MedImage, dict[str, Any]]:
    """Complex image (magnitude × smooth phase) → k-space → `corrupt` → magnitude image."""
    mag = image.array[None] if image.array.ndim == 2 else image.array
    phase, _ = smooth_field(mag.shape[-2:], rng, degree=2)
    cplx = mag * np.exp(2j * PHASE_MAX_RAD * phase)
    k, params = corrupt(kspace.fft2c(cplx))
    out = np.abs(kspace.ifft2c(k)).astype(np.float32).reshape(image.shape)
    params.update(background_phase="polynomial degree 2", background_phase_max_rad=PHASE_MAX_RAD,
                  phase_encode_axis="y", slicewise=image.is_volume)
    return image.with_array(out), params


@register("mr_undersample", unit="acceleration factor R", worse="higher", bounds=(1.15, 2.0, 4.0),
          levels={"mild": 1.3, "moderate": 2.5, "severe": 6.0}, modalities=("MR",),
          finding="aliasing", domain=(0.5, 64.0))  # R < 1: every line kept (the "none" end)
def mr_undersample(image: MedImage, level: float, rng: np.random.Generator
                   ) -> tuple[MedImage, dict[str, Any]]:
    """Cartesian undersampling by R with a fully sampled centre, zero-filled reconstruction.

    fastMRI semantics: phase-encode lines kept with a centre fraction 0.08 (0.32/R above R = 4)
    plus either equispaced lines or random lines at probability (N/R − centre)/(N − centre); the
    mask type is drawn from the rng. Missing lines are zero → coherent (equispaced) or
    incoherent (random) aliasing. Level: R, worse higher; none < 1.15 ≤ mild < 2 ≤ moderate < 4
    ≤ severe (1.3 / 2.5 / 6: without parallel imaging, zero-filled R = 2 already aliases clearly).
    """
    mask_type = str(rng.choice(kspace.MASK_TYPES))
    cf = kspace.centre_fraction_for(level)

    def corrupt(k: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        mask, info = kspace.undersampling_mask(k.shape[-2], level, cf, mask_type, rng)
        return k * mask[:, None], {**info, "acceleration": float(level), "recon": "zero-filled"}

    return _through_kspace(image, rng, corrupt)


@register("mr_noise", unit="noise sigma / robust max", worse="higher", bounds=(0.01, 0.04, 0.1),
          levels={"mild": 0.02, "moderate": 0.06, "severe": 0.15}, modalities=("MR",),
          finding="noise", domain=(0.0, 10.0))
def mr_noise(image: MedImage, level: float, rng: np.random.Generator
             ) -> tuple[MedImage, dict[str, Any]]:
    """Rician noise: complex Gaussian of σ in both channels, then the magnitude.

    σ = level × robust max (99th percentile of the Otsu foreground); the zero-signal background
    becomes Rayleigh with mean σ·√(π/2). Level: σ fraction, worse higher; none < 0.01 ≤ mild
    < 0.04 ≤ moderate < 0.1 ≤ severe (0.02 / 0.06 / 0.15).
    """
    ref = robust_max(image.array)
    if ref < 0:  # σ is a fraction of the brightest tissue: none (a blank image stays blank)
        raise InvalidImage(f"mr_noise scales its noise to the image's bright tissue, but its "
                           f"robust maximum is {ref:g}: not a magnitude MR image", image.source)
    sigma = float(level) * ref
    real = image.array + rng.normal(0.0, sigma, image.shape)
    imag = rng.normal(0.0, sigma, image.shape)
    out = np.hypot(real, imag)
    return image.with_array(out), {"sigma": sigma, "sigma_fraction": float(level),
                                   "reference": "p99 of Otsu foreground", "reference_value": ref,
                                   "distribution": "rician"}


def motion_trajectory(n_lines: int, onset: float, amp: np.ndarray, freq: np.ndarray,
                      phase: np.ndarray, translation_mm: float, rotation_deg: float
                      ) -> np.ndarray:
    """Pose per phase-encode line `(3, n_lines)`: y and x translation (mm), rotation (degrees).

    Per degree of freedom the sum of 3 sinusoids (`amp`, `freq` in cycles per scan and `phase`,
    each `(3 dof, 3)`), still before `onset` (fraction of the scan), scaled so its peak is
    `translation_mm` (y, x) or `rotation_deg`, and taken relative to the pose at the k-space
    centre line. `mr_motion` records the arguments, so its trajectory can be rebuilt.
    """
    t = np.linspace(0.0, 1.0, n_lines)
    waves = (amp[..., None] * np.sin(2 * np.pi * freq[..., None] * t + phase[..., None]))
    traj = waves.sum(axis=1)  # (3 dof, lines)
    start = min(int(np.searchsorted(t, onset)), n_lines - 1)  # an image of one line too
    traj = np.where(t >= onset, traj - traj[:, [start]], 0.0)
    traj /= max(float(np.abs(traj).max()), 1e-12)
    traj *= np.array([translation_mm, translation_mm, rotation_deg])[:, None]
    return traj - traj[:, [n_lines // 2]]  # relative to the pose at the k-space centre


@register("mr_motion", unit="motion amplitude in mm", worse="higher", bounds=(0.5, 2.0, 5.0),
          levels={"mild": 1.0, "moderate": 3.0, "severe": 8.0}, modalities=("MR",),
          finding="motion", domain=(0.0, 200.0))
def mr_motion(image: MedImage, level: float, rng: np.random.Generator
              ) -> tuple[MedImage, dict[str, Any]]:
    """Rigid in-plane motion during a sequential (linear-order) phase-encode acquisition.

    The object follows a smooth random trajectory (per degree of freedom a sum of 3 sinusoids of
    0.5–3 cycles per scan) that starts at a random onset in [10 %, 50 %] of the scan, scaled so
    its largest excursion from the resting pose is `level` mm in y or x translation (capped at
    10 % of the FOV, only relevant for tiny FOVs) or `level` degrees of rotation (1°/mm,
    quantised to 9 angles). Each line takes the k-space of its
    pose (translation = phase ramp); poses are relative to the pose at the k-space centre, so
    the result shows ghosting/blurring rather than a global shift; the peak translation from
    that pose (recorded as `max_translation_mm`) is then about 0.5–1.6 × `level` by draw (the
    grade follows the nominal level). Level: amplitude in mm,
    worse higher; none < 0.5 ≤ mild < 2 ≤ moderate < 5 ≤ severe (1 / 3 / 8).
    """
    onset = float(rng.uniform(0.1, 0.5))
    amp, freq, phase = rng.uniform(0, 1, (3, 3)), rng.uniform(0.5, 3, (3, 3)), \
        rng.uniform(0, 2 * np.pi, (3, 3))
    sy, sx = image.spacing[-2:]
    cap = 0.1 * min(sy * image.shape[-2], sx * image.shape[-1])

    def corrupt(k: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        n = k.shape[-2]
        traj = motion_trajectory(n, onset, amp, freq, phase, min(level, cap), level)
        angles = np.round(traj[2] / max(np.ptp(traj[2]) / 8, 1e-9)) * max(np.ptp(traj[2]) / 8,
                                                                          1e-9)
        img = kspace.ifft2c(k)
        out = k.copy()
        for angle in np.unique(angles):
            lines = angles == angle
            moved = img
            if abs(angle) > 1e-6:
                moved = (ndimage.rotate(img.real, angle, axes=(-1, -2), reshape=False, order=1)
                         + 1j * ndimage.rotate(img.imag, angle, axes=(-1, -2), reshape=False,
                                               order=1))
            out[..., lines, :] = kspace.fft2c(moved)[..., lines, :]
        ky, kx = kspace.kcoords(n)[:, None], kspace.kcoords(k.shape[-1])[None, :]
        out *= np.exp(-2j * np.pi * (ky * traj[0][:, None] / sy + kx * traj[1][:, None] / sx))
        return out, {"amplitude_mm": float(level), "ordering": "sequential",
                     "trajectory": "sum of 3 sinusoids per dof", "onset_fraction": onset,
                     "frequencies_cycles_per_scan": freq, "amplitudes": amp, "phases_rad": phase,
                     "max_translation_mm": float(np.abs(traj[:2]).max()),
                     "max_rotation_deg": float(np.abs(angles).max()),
                     # every line but the centre's sits off the reference pose (the lines
                     # before the onset too), so the record counts those acquired in motion
                     "fraction_lines_in_motion": float(np.mean(
                         np.linspace(0.0, 1.0, n) >= onset)),
                     "reference_pose": "k-space centre", "rotation_deg_per_mm": 1.0,
                     "translation_cap_mm": cap}

    return _through_kspace(image, rng, corrupt)


@register("mr_ghosting", unit="ghost intensity fraction", worse="higher",
          bounds=(0.02, 0.06, 0.15), levels={"mild": 0.04, "moderate": 0.1, "severe": 0.25},
          modalities=("MR",), finding="ghosting", domain=(0.0, 1.0))
def mr_ghosting(image: MedImage, level: float, rng: np.random.Generator
                ) -> tuple[MedImage, dict[str, Any]]:
    """N/2 ghosting: alternate phase-encode lines modulated by 1 ± g·e^{iφ}.

    Even/odd line inconsistency (as from EPI or periodic motion) adds a copy of the object of
    relative amplitude g shifted by half the field of view along y, with a random phase φ.
    Level: g, worse higher; none < 0.02 ≤ mild < 0.06 ≤ moderate < 0.15 ≤ severe
    (0.04 / 0.1 / 0.25).
    """
    phi = float(rng.uniform(0, 2 * np.pi))

    def corrupt(k: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        sign = np.where(np.arange(k.shape[-2]) % 2 == 0, 1.0, -1.0)[:, None]
        mod = 1.0 + level * np.exp(1j * phi) * sign
        return k * mod, {"ghost_fraction": float(level), "period_lines": 2, "ghost_phase_rad": phi,
                         "ghost_shift": "N/2"}

    return _through_kspace(image, rng, corrupt)


@register("mr_spike", unit="spike amplitude / k-space max", worse="higher",
          bounds=(0.02, 0.1, 0.25), levels={"mild": 0.05, "moderate": 0.15, "severe": 0.4},
          modalities=("MR",), finding="spike", domain=(0.0, 100.0))
def mr_spike(image: MedImage, level: float, rng: np.random.Generator
             ) -> tuple[MedImage, dict[str, Any]]:
    """k-space spikes (herringbone): 1–2 corrupted k-space samples of amplitude a·max|k|.

    Spikes sit at a random radius of 15–45 % of the k-space half-width with a random phase; each
    adds a stripe pattern of amplitude ≈ a × the image mean. Level: a, worse higher; none < 0.02
    ≤ mild < 0.1 ≤ moderate < 0.25 ≤ severe (0.05 / 0.15 / 0.4).
    """
    n_spikes = int(rng.integers(1, 3))
    radii, angles = rng.uniform(0.15, 0.45, n_spikes), rng.uniform(0, 2 * np.pi, n_spikes)
    phases = rng.uniform(0, 2 * np.pi, n_spikes)

    def corrupt(k: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        ny, nx = k.shape[-2:]
        kmax = np.abs(k).reshape(k.shape[0], -1).max(axis=1)
        out, spikes = k.copy(), []
        for r, a, ph in zip(radii, angles, phases, strict=True):
            iy = int(ny // 2 + round(r * ny / 2 * np.sin(a))) % ny
            ix = int(nx // 2 + round(r * nx / 2 * np.cos(a))) % nx
            out[:, iy, ix] += level * kmax * np.exp(1j * ph)
            spikes.append({"ky": iy - ny // 2, "kx": ix - nx // 2, "phase_rad": float(ph)})
        return out, {"amplitude": float(level), "spikes": spikes, "n_spikes": n_spikes}

    return _through_kspace(image, rng, corrupt)


@register("mr_bias_field", unit="field peak-to-peak fraction", worse="higher",
          bounds=(0.05, 0.2, 0.45), levels={"mild": 0.1, "moderate": 0.3, "severe": 0.6},
          modalities=("MR",), finding="bias_field", domain=(0.0, 1.9))
def mr_bias_field(image: MedImage, level: float, rng: np.random.Generator
                  ) -> tuple[MedImage, dict[str, Any]]:
    """Smooth multiplicative RF-inhomogeneity field 1 + b·u, u a random cubic spanning [−½, ½].

    u is a random 3rd-order polynomial over the field of view (3D for volumes), rescaled so it
    spans [−½, ½] over the Otsu foreground: the gain there ranges over 1 ± b/2 (peak-to-peak b;
    clipped at ≥ 0.05 in the background). Level: b, worse higher; none < 0.05 ≤ mild < 0.2
    ≤ moderate < 0.45 ≤ severe (0.1 / 0.3 / 0.6).
    """
    u, coefs = smooth_field(image.shape, rng, degree=3)
    a = image.array
    fg = otsu_foreground(a)
    lo, hi = float(u[fg].min()), float(u[fg].max())
    u = (u - lo) / (hi - lo) - 0.5 if hi > lo else u
    field = np.clip(1.0 + float(level) * u, 0.05, None).astype(np.float32)
    return image.with_array(image.array * field), {
        "peak_to_peak": float(level), "model": "polynomial degree 3", "coefficients": coefs,
        "normalised_over": "otsu foreground", "min_gain": float(field[fg].min()),
        "max_gain": float(field[fg].max())}
