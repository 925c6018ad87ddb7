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
        raise ValueError(f"unknown radiograph axis {axis!r}; choose 'ap' or 'lat'")
    p = mu.sum(axis=ax) * spacing[ax]
    keep = tuple(s for i, s in enumerate(spacing) if i != ax)
    return np.ascontiguousarray(p[::-1]), (keep[0], keep[1])


def mr_pseudo_attenuation(volume: np.ndarray) -> np.ndarray:
    """Water-equivalent μ inside the Otsu body mask of an MR volume (no bone: documented limit)."""
    from skimage.filters import threshold_otsu

    body = ndimage.binary_fill_holes(volume > threshold_otsu(volume))
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
        raise ValueError("radiograph_from_volume needs a (z, y, x) volume")
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
