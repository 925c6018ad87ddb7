"""Phantoms built from real data: an FDG-like PET brain and digitally reconstructed radiographs.

Both start from nilearn's bundled MNI152 templates (T1, grey- and white-matter probability maps),
which ship inside the nilearn package and are never downloaded. Arrays are `(z, y, x)` with z
inferior → superior, y posterior → anterior, x left → right (the NIfTI axes reversed).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from medq.degrade.ct import MU_WATER, hu_to_mu
from medq.errors import InvalidImage, InvalidParameter
from medq.image import MedImage
from medq.io.nifti import image_from_nifti

GM_UPTAKE, WM_UPTAKE, CSF_UPTAKE, TISSUE_UPTAKE = 10.0, 2.5, 0.3, 1.0
"""FDG-like activity concentrations in kBq/ml (grey matter ≈ 4× white matter)."""

SKULL_HU, SCALP_HU = 1000.0, 20.0
"""HU assigned to the modelled skull and scalp shells around the (skull-stripped) MNI brain."""

BRAIN_HU = {"gm": 40.0, "wm": 25.0, "csf": 5.0}
"""HU of the brain tissue classes used for the head pseudo-CT."""


@lru_cache(maxsize=2)
def mni_maps(resolution: int) -> tuple[dict[str, np.ndarray], tuple[float, ...]]:
    """Bundled MNI152 T1, GM and WM maps (no network access), `(z, y, x)`, cached read-only."""
    from nilearn import datasets

    loaders = {"t1": datasets.load_mni152_template, "gm": datasets.load_mni152_gm_template,
               "wm": datasets.load_mni152_wm_template}
    maps, spacing = {}, ()
    for key, load in loaders.items():
        image = image_from_nifti(load(resolution=resolution))
        maps[key], spacing = image.array, image.spacing
    t1 = maps["t1"] / max(float(maps["t1"].max()), 1e-12)
    tissue = np.clip(maps["gm"], 0, 1) + np.clip(maps["wm"], 0, 1)
    brain = ndimage.binary_fill_holes((t1 > 0.05) | (tissue > 0.05))
    maps["csf"] = np.where(brain, np.clip(1.0 - tissue, 0, 1), 0.0).astype(np.float32)
    maps["brain"] = brain.astype(np.float32)
    for arr in maps.values():
        arr.flags.writeable = False
    return maps, spacing


def pet_activity_from_tissue(gm: np.ndarray, wm: np.ndarray, csf: np.ndarray | None = None,
                             rng: np.random.Generator | None = None) -> np.ndarray:
    """FDG-like activity (kBq/ml) from tissue probability maps: GM 10, WM 2.5, CSF 0.3.

    With an `rng`, grey-matter uptake gets a smooth ±10 % regional variation (Gaussian-smoothed
    noise), as real metabolism is not uniform.
    """
    gm = np.clip(np.asarray(gm, dtype=np.float32), 0, 1)
    wm = np.clip(np.asarray(wm, dtype=np.float32), 0, 1)
    gm_uptake: np.ndarray | float = GM_UPTAKE
    if rng is not None:
        field = ndimage.gaussian_filter(rng.standard_normal(gm.shape), sigma=6)
        field /= max(float(np.abs(field).max()), 1e-12)
        gm_uptake = GM_UPTAKE * (1.0 + 0.1 * field)
    act = gm_uptake * gm + WM_UPTAKE * wm
    if csf is not None:
        act = act + CSF_UPTAKE * np.clip(np.asarray(csf, dtype=np.float32), 0, 1)
    return np.asarray(act, dtype=np.float32)


def pet_brain(resolution: int = 2) -> MedImage:
    """FDG-like PET brain volume (modality PT) from the real MNI152 grey/white-matter maps."""
    maps, spacing = mni_maps(resolution)
    act = pet_activity_from_tissue(maps["gm"], maps["wm"], maps["csf"]) * maps["brain"]
    meta = {"phantom": "pet_brain", "derived_from": "nilearn MNI152 GM/WM tissue maps (real data)",
            "units": "kBq/ml", "uptake_kBq_ml": {"gm": GM_UPTAKE, "wm": WM_UPTAKE,
                                                 "csf": CSF_UPTAKE}}
    return MedImage(act, spacing, "PT", "brain", physics={"radiopharmaceutical": "FDG"},
                    meta=meta)


def _drr_pixels(mu: np.ndarray, spacing: tuple[float, ...], axis: str
                ) -> tuple[np.ndarray, tuple[float, float]]:
    """Line integrals of μ (per mm) through a `(z, y, x)` volume; superior at the top."""
    ax = {"ap": 1, "pa": 1, "lat": 2, "lateral": 2}.get(axis)
    if ax is None:
        raise InvalidParameter(f"unknown radiograph axis {axis!r}; choose 'ap' or 'lat'")
    p = mu.sum(axis=ax) * spacing[ax]
    keep = tuple(s for i, s in enumerate(spacing) if i != ax)
    return np.ascontiguousarray(p[::-1]), (keep[0], keep[1])


def mr_pseudo_attenuation(volume: np.ndarray) -> np.ndarray:
    """Water-equivalent μ inside the Otsu body mask of an MR volume (no bone: documented limit)."""
    from skimage.filters import threshold_otsu

    body = ndimage.binary_fill_holes(volume > threshold_otsu(volume.ravel()))
    return np.where(body, MU_WATER, 0.0).astype(np.float32)


def radiograph_from_volume(volume: MedImage, axis: str = "ap",
                           attenuation: np.ndarray | None = None) -> MedImage:
    """Digitally reconstructed radiograph (DX): p = ∫μ dl through the volume along `axis`.

    μ comes from `attenuation` (per mm) when given, else from HU for CT (μ_water(1 + HU/1000))
    or, for other modalities, a water-equivalent body mask. Values are the line integrals p
    (`meta["xr_domain"] = "line_integral"`): dense or long paths are bright, as on a processed
    radiograph; the detector intensity is I0·e^{−p}, which is what `xr_quantum_noise` samples.
    """
    if not volume.is_volume:
        raise InvalidImage("radiograph_from_volume needs a (z, y, x) volume", volume.source)
    if attenuation is None:
        attenuation = (hu_to_mu(volume.array) if volume.modality == "CT"
                       else mr_pseudo_attenuation(volume.array))
    p, spacing = _drr_pixels(np.asarray(attenuation, dtype=np.float32), volume.spacing, axis)
    region = "head" if volume.region in ("brain", "head") else volume.region
    meta = {"phantom": "drr", "xr_domain": "line_integral", "projection_axis": axis,
            "source_modality": volume.modality, "units": "attenuation line integral"}
    return MedImage(p, spacing, "DX", region, physics={"view_position": axis.upper()[:2]},
                    meta=meta)


def head_pseudo_ct(resolution: int = 1) -> MedImage:
    """Head pseudo-CT (HU) from the real MNI152 tissue maps plus modelled skull and scalp shells."""
    maps, spacing = mni_maps(resolution)
    vox = float(np.mean(spacing))
    brain = maps["brain"] > 0.5
    dist = ndimage.distance_transform_edt(~brain, sampling=spacing)
    hu = np.full(brain.shape, -1000.0, dtype=np.float32)
    hu[(dist > 0) & (dist <= 11.0)] = SCALP_HU
    hu[(dist > 2.0) & (dist <= 8.0)] = SKULL_HU
    brain_hu = (BRAIN_HU["gm"] * maps["gm"] + BRAIN_HU["wm"] * maps["wm"]
                + BRAIN_HU["csf"] * maps["csf"])
    hu[brain] = brain_hu[brain]
    meta = {"phantom": "head_pseudo_ct", "voxel_mm": vox,
            "derived_from": "nilearn MNI152 T1/GM/WM maps; skull 2–8 mm and scalp to 11 mm "
                            "outside the brain are modelled shells"}
    return MedImage(hu, spacing, "CT", "head", meta=meta)


def radiograph_head(axis: str = "ap", resolution: int = 1) -> MedImage:
    """Skull radiograph (DX) as a DRR through the MNI152-derived head pseudo-CT."""
    image = radiograph_from_volume(head_pseudo_ct(resolution), axis)
    image.meta["derived_from"] = "nilearn MNI152 tissue maps (real data) + modelled skull"
    return image


def paint_ellipsoids(shape: tuple[int, ...], shapes: list[tuple[np.ndarray, np.ndarray, float,
                                                                  float]],
                     background: float) -> np.ndarray:
    """Paint ellipsoids `(centre, radii, angle, value)` (normalised [-1, 1] coordinates,
    rotation in the last two axes) onto a `shape` grid, later ones over earlier ones.

    Each is tested only inside its bounding box (`_ellipsoid_box`), on the same grid values, so
    the result equals testing every voxel."""
    grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    out = np.full(shape, background, dtype=np.float32)
    for centre, radii, angle, value in shapes:
        box = _ellipsoid_box(shape, centre, radii, angle)
        d = [g[box] - c for g, c in zip(grids, centre, strict=True)]
        ca, sa = np.cos(angle), np.sin(angle)
        d[-2], d[-1] = ca * d[-2] + sa * d[-1], -sa * d[-2] + ca * d[-1]
        inside = sum((di / r) ** 2 for di, r in zip(d, radii, strict=True)) <= 1.0
        out[box][inside] = value
    return out


def _ellipsoid_box(shape: tuple[int, ...], centre: np.ndarray, radii: np.ndarray, angle: float
                   ) -> tuple[slice, ...]:
    """Index ranges that hold every grid point of an ellipsoid (rotated by `angle` in the last
    two axes), two points of margin on each side against rounding."""
    half = [abs(float(r)) for r in radii]
    ry, rx = half[-2], half[-1]
    ca, sa = abs(np.cos(angle)), abs(np.sin(angle))
    half[-2], half[-1] = float(np.hypot(ry * ca, rx * sa)), float(np.hypot(ry * sa, rx * ca))
    box = []
    for n, c, h in zip(shape, centre, half, strict=True):
        step = (n - 1) / 2.0  # index per normalised unit (linspace(-1, 1, n))
        low = int(np.floor((float(c) - h + 1.0) * step)) - 2
        high = int(np.ceil((float(c) + h + 1.0) * step)) + 3
        box.append(slice(max(0, low), max(0, min(n, high))))
    return tuple(box)


def random_body_ct(rng: np.random.Generator, shape: tuple[int, ...], texture_hu: float = 15.0
                   ) -> np.ndarray:
    """A random chest or abdomen CT phantom in HU, 2D `(y, x)` or 3D `(z, y, x)`.

    Body ellipse (fat rim −100 HU, soft tissue 30–60 HU), then either two lungs (−850 HU) with
    vessels or abdominal organs (40–70 HU) with bowel gas, a vertebra (cortex 900, marrow 250
    HU) and small contrast-filled vessels, plus a smooth tissue texture (`texture_hu` HU std).
    Every size, position and value is drawn from `rng`, so geometry varies from call to call.
    """
    nd = len(shape)
    u = rng.uniform

    def ell(cy: float, cx: float, ry: float, rx: float, value: float, angle: float = 0.0,
            rz: float = 1.2) -> tuple[np.ndarray, np.ndarray, float, float]:
        centre = np.array(([0.0] if nd == 3 else []) + [cy, cx])
        radii = np.array(([rz] if nd == 3 else []) + [ry, rx])
        return centre, radii, angle, value

    by, bx = u(0.55, 0.8), u(0.75, 0.95)
    parts = [ell(0, 0, by, bx, -100.0), ell(0, 0, by - u(0.03, 0.08), bx - u(0.03, 0.08),
                                             u(30, 60))]
    if rng.random() < 0.5:  # chest
        for side in (-1, 1):
            parts.append(ell(u(-0.15, 0.0), side * u(0.35, 0.45), by * u(0.6, 0.8),
                             bx * u(0.3, 0.4), -850.0, u(-0.3, 0.3)))
        for _ in range(rng.integers(4, 12)):
            parts.append(ell(u(-0.5, 0.3), u(-0.7, 0.7), u(0.01, 0.03), u(0.01, 0.03), 40.0))
        parts.append(ell(u(-0.1, 0.15), u(-0.15, 0.15), u(0.15, 0.25), u(0.15, 0.25), 45.0))
    else:  # abdomen
        parts.append(ell(u(-0.2, 0.1), u(-0.6, -0.3), u(0.25, 0.4), u(0.25, 0.4), u(55, 70)))
        for side in (-1, 1):
            parts.append(ell(u(0.2, 0.35), side * u(0.3, 0.45), u(0.08, 0.12), u(0.06, 0.1),
                             u(30, 40)))
        for _ in range(rng.integers(2, 7)):
            parts.append(ell(u(-0.4, 0.2), u(-0.2, 0.6), u(0.03, 0.1), u(0.03, 0.1), -900.0))
    spine_y = by * u(0.55, 0.7)
    parts += [ell(spine_y, 0, u(0.1, 0.14), u(0.1, 0.14), 900.0),
              ell(spine_y, 0, u(0.07, 0.09), u(0.07, 0.09), 250.0),
              ell(spine_y - 0.2, 0, 0.05, 0.05, u(150, 300))]
    hu = paint_ellipsoids(tuple(shape), parts, -1000.0)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 2.0)
    texture *= texture_hu / max(float(texture.std()), 1e-6)
    return np.where(hu > -950, hu + texture, hu).astype(np.float32)


def pseudo_mr(image: MedImage, rng: np.random.Generator) -> MedImage:
    """A CT image recast as an MR-like magnitude image with a random tissue contrast.

    HU are mapped piecewise-linearly (air → 0; fat, water, soft tissue, bone to random
    intensities in 0.1–1), then scaled to a random maximum: T1-, T2- or PD-like contrasts of
    body anatomy. Only the intensities change; the MR engine degrades the result.
    """
    hu = np.array([-1000.0, -300.0, -100.0, 0.0, 60.0, 300.0, 2000.0])
    values = np.r_[0.0, rng.uniform(0.02, 0.3), rng.uniform(0.1, 1.0, 5)]
    array = np.interp(image.array, hu, values) * float(rng.uniform(100, 2000))
    return image.evolve(array=array.astype(np.float32), modality="MR", physics={})
