"""Checks that a restoration took out what it was meant to: for noise alone, noise and not
anatomy (`removed_share`, `took_anatomy`); `medq restore` returns an image that fails them as it
was."""

from __future__ import annotations

import numpy as np

DENOISED = ("noise",)
"""The findings the classical methods (denoisers) address."""

REMOVED_LIMIT = 1.5
"""Most a restoration for noise alone may take out, in units of the input's own noise σ (the
std of input − output inside the body over `iqms.noise_sigma_flat`): restorations that removed
noise took out 0.86–1.35 of it on held-out CT, those that smeared CT_small's bone into blobs
1.65–1.91 (`removed_share`; `benchmarks/probes/removed_share.py`)."""


def removed_share(before: np.ndarray, after: np.ndarray, modality: str) -> float:
    """The std of what a restoration took out (`before − after`, physical values) inside the
    body (`masks.foreground_mask`), over the noise σ of `before` in its flattest windows there:
    about 1 when it took out noise, more when it took out anatomy too; nan where either is
    undefined (no body, no noise) and for PET, whose count noise is blotchy and correlated: its
    flattest windows read next to none of it (a severe low-count restoration that gained 8.4 dB
    read as taking out many times the noise)."""
    from medq.assess.iqms import noise_sigma_flat
    from medq.assess.masks import foreground_mask

    if modality == "PT":
        return float("nan")
    body = foreground_mask(before, modality)
    if not body.any():
        return float("nan")
    sigma = noise_sigma_flat(before, body)
    return float(np.std((before - after)[body]) / sigma) if sigma > 0 else float("nan")


def for_noise_alone(addressed: list[str]) -> bool:
    """Whether a restoration addresses noise and nothing else (`DENOISED`)."""
    return list(addressed) == list(DENOISED)


def took_anatomy(addressed: list[str], before: np.ndarray, after: np.ndarray,
                 modality: str) -> float | None:
    """`removed_share` of a network's restoration for noise alone when it is over
    `REMOVED_LIMIT` (`medq restore` then returns the image as it was), else None."""
    if not for_noise_alone(addressed):
        return None
    share = removed_share(before, after, modality)
    return share if share > REMOVED_LIMIT else None
