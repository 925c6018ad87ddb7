"""Run a restoration method over an image's 2D planes in normalised units and back.

Every method is 2D: a volume is restored slice by slice (planes `array[z]`, or across its thick
axis when another axis holds the thick slices: `plane_axis`), a colour photograph channel by
channel. The image (each channel of a photograph) is normalised once
(`medq.restore.normalise.scale_for`), each plane restored, and the result mapped back exactly to
physical units, so the caller gets an array of the input's shape and units. CT padding outside
the reconstruction circle is shown to the method as air and returned unchanged (`keep_padding`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import torch

from medq.image import MedImage
from medq.restore.normalise import Scale, network_input, scale_for

PlaneFn = Callable[[list[np.ndarray]], list[np.ndarray]]

AIR_HU = -1000.0
"""What a restoration method sees where a CT image holds padding."""


def keep_padding(fn: PlaneFn, level: float, air: float) -> PlaneFn:
    """`fn` with padding (values below `level`) shown to it as `air` and returned unchanged.

    CT scanners fill the corners outside the reconstruction circle with −2000, −3024 HU or so
    (sometimes not even constant, after lossy compression); a method that saw that cliff would
    "repair" it and bleed the repair into the body. Levels are in the planes' units.
    """
    def wrapped(planes: list[np.ndarray]) -> list[np.ndarray]:
        masks = [p < level for p in planes]
        outs = fn([np.where(m, np.float32(air), p) for p, m in zip(planes, masks, strict=True)])
        return [np.where(m, p, o) for p, m, o in zip(planes, masks, outs, strict=True)]

    return wrapped


def padding_guard(fn: PlaneFn, modality: str, scale: Scale) -> PlaneFn:
    """`keep_padding` for CT (below `CT_PADDING_HU`, in the planes' normalised units); `fn`
    itself for other modalities, whose values have no padding convention."""
    from medq.assess.evidence import CT_PADDING_HU

    if modality != "CT":
        return fn
    level, air = scale.forward(np.array([CT_PADDING_HU, AIR_HU]))
    return keep_padding(fn, float(level), float(air))


THICK = 1.5
"""How many times every other axis's spacing a volume's axis must have for its planes to be
restored across it rather than across the first axis (`plane_axis`)."""


def plane_axis(image: MedImage) -> int:
    """The axis a volume's planes are taken across: the first (its slices), unless another's
    spacing is over `THICK` times every other's (thick sagittal or coronal slices stored along
    another axis, as reslicing to a standard orientation leaves them): planes in the fine
    directions, as the network was trained on (across the thick axis it lost 2.9 dB)."""
    if not image.is_volume or image.is_rgb:
        return 0
    spacing = list(image.spacing)
    k = int(np.argmax(spacing))
    rest = spacing[:k] + spacing[k + 1:]
    return k if spacing[k] > THICK * max(rest) else 0


def plane_spacing(image: MedImage) -> tuple[float, ...]:
    """The pixel size (mm) of the planes `apply_planes` restores (the image's spacing without
    `plane_axis`'s)."""
    axis = plane_axis(image)
    spacing = tuple(image.spacing)
    return spacing[:axis] + spacing[axis + 1:] if image.is_volume and not image.is_rgb \
        else spacing


def _groups(image: MedImage) -> list[tuple[np.ndarray, Scale]]:
    """The image as stacks of planes `[n, y, x]` (across `plane_axis`), one stack per
    normalisation (RGB: 3)."""
    arr = image.array
    if image.is_rgb:
        return [(arr[None, :, :, c], scale_for(arr[..., c], image.modality)) for c in range(3)]
    stack = np.moveaxis(arr, plane_axis(image), 0) if image.is_volume else arr[None]
    return [(stack, scale_for(arr, image.modality))]


def normalised_planes(image: MedImage) -> list[np.ndarray]:
    """Every normalised 2D plane of an image (slices, or channels of a photograph)."""
    return [p for stack, scale in _groups(image) for p in scale.forward(stack)]


def apply_planes(image: MedImage, fn: PlaneFn) -> np.ndarray:
    """Restore every plane with `fn` (normalised planes in, restored planes out) → array."""
    outs = []
    for stack, scale in _groups(image):
        restored = padding_guard(fn, image.modality, scale)(list(scale.forward(stack)))
        outs.append(scale.inverse(np.stack(restored)))
    if image.is_rgb:
        return np.stack([o[0] for o in outs], axis=-1).astype(np.float32)
    if image.is_volume:
        return np.ascontiguousarray(np.moveaxis(outs[0], 0, plane_axis(image)), np.float32)
    return outs[0][0].astype(np.float32)


@torch.no_grad()
def network_planes(model: torch.nn.Module, planes: list[np.ndarray], cond: np.ndarray | None,
                   batch: int = 4, tick: Callable[[int], None] | None = None
                   ) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Restore planes with a network (residual on unclipped values) and its other outputs;
    `tick(n)` after each batch of n planes.

    Returns the restored planes and a dict: for a conditioned network `presence` (mean prior
    probability per finding type) and `severity` (mean prior severity 0–1); for a network that
    also segments (its output has `labels`, class logits `[B, C, y, x]`), `labels`: one int16
    label map (argmax over the classes) per plane, of what the network saw (CT padding as air).
    """
    model.eval()
    out_planes: list[np.ndarray] = []
    presence, severity, labels = [], [], []
    c = torch.from_numpy(np.asarray(cond, np.float32))[None] if cond is not None else None
    for start in range(0, len(planes), batch):
        chunk = planes[start:start + batch]
        x = torch.from_numpy(np.stack([network_input(p) for p in chunk]))[:, None]
        out = model(x, c.expand(len(chunk), -1) if c is not None else None)
        residual = out["residual"][:, 0].numpy()
        out_planes += [p + r for p, r in zip(chunk, residual, strict=True)]
        if "prior_logits" in out:
            presence.append(torch.sigmoid(out["prior_logits"]).numpy())
            severity.append(out["prior_severity"].numpy())
        if "labels" in out:
            labels += list(out["labels"].argmax(dim=1).to(torch.int16).numpy())
        if tick is not None:
            tick(len(chunk))
    extra: dict[str, Any] = {}
    if presence:
        extra = {"presence": np.concatenate(presence).mean(0),
                 "severity": np.concatenate(severity).mean(0)}
    if labels:
        extra["labels"] = labels
    return out_planes, extra


@torch.no_grad()
def prior_of(model: torch.nn.Module, planes: list[np.ndarray], max_planes: int = 16
             ) -> dict[str, np.ndarray]:
    """The degradation prior's mean presence/severity over (up to `max_planes` evenly spaced)
    planes; empty for a network without a prior."""
    if getattr(model, "prior", None) is None:
        return {}
    idx = np.unique(np.linspace(0, len(planes) - 1, min(len(planes), max_planes)).astype(int))
    presence, severity = [], []
    for i in idx:
        x = torch.from_numpy(network_input(planes[i]))[None, None]
        logits, sev = model.prior(x)
        presence.append(torch.sigmoid(logits)[0].numpy())
        severity.append(sev[0].numpy())
    return {"presence": np.mean(presence, axis=0), "severity": np.mean(severity, axis=0)}


CHOSEN_DENOISER = "bm3d"
"""The classical denoiser `as_restored` weighs against the network for MR noise (`compare`)."""


class Restored(NamedTuple):
    """A network's restoration of normalised planes as `medq restore` makes it (`as_restored`)."""

    planes: list[np.ndarray]
    consistency: dict[str, Any]
    """What the consistency step did (`consistency.consistent`), empty when it did nothing."""
    alphas: list[float | None]
    """SURE's scale of each plane's correction (`medq.restore.sure`; None where it could not be
    estimated), empty when not scaled."""
    extra: dict[str, Any]
    """The network's other outputs (`network_planes`)."""
    denoiser: str | None = None
    """"bm3d" where SURE read BM3D's denoising closer to the clean image than the network's
    scaled correction, so the planes are BM3D's inside the body (`compare`, `sure.in_body`);
    None where they are the network's."""


def as_restored(model: torch.nn.Module, planes: list[np.ndarray], cond: np.ndarray | None,
                acquisitions: dict[str, float], noisy: bool, scaled: bool,
                compare: bool = False, tick: Callable[[int], None] | None = None) -> Restored:
    """The network's restoration of normalised planes, then SURE's scale of the correction where
    it applies (`scaled`: `sure.applies`), then the consistency step onto the described
    `acquisitions` (`consistency.consistent`; `noisy`: the description reports noise).

    `compare` (with `scaled`): BM3D's planes inside the body instead, before the consistency
    step, where SURE reads them closer to the clean image than the scaled correction
    (`sure.classical_choice`; planes SURE cannot read stay the network's); `tick(n)` is
    called as planes are done: the network's batches, or where SURE and BM3D's choice follow,
    BM3D's planes (the caller counts the rest)."""
    from medq.restore import sure
    from medq.restore.classical import classical_planes
    from medq.restore.consistency import consistent

    # the network's batches count as planes done unless SURE and BM3D's choice follow
    restored, extra = network_planes(model, planes, cond, tick=None if scaled else tick)
    alphas: list[float | None] = []
    chosen: dict[int, np.ndarray] | None = None
    if scaled:
        fits = sure.sure_fits(planes, restored, lambda qs: network_planes(model, qs, cond)[0])
        restored, alphas = sure.scaled_by(planes, restored, fits)

        classical = partial(classical_planes, CHOSEN_DENOISER)
        chosen = sure.classical_choice(planes, fits, classical) if compare else None
        if chosen is not None:  # on the planes SURE reads (others: noise alone, the network's)
            rest = [i for i, fit in enumerate(fits) if fit is not None and i not in chosen]
            chosen.update(zip(rest, classical([planes[i] for i in rest], tick), strict=True))
            for i, fit in enumerate(fits):
                if fit is not None:
                    restored[i] = sure.in_body(planes[i], chosen[i], restored[i])
    out, info = consistent(planes, restored, acquisitions, noisy)
    return Restored(out, info or {}, alphas, extra, None if chosen is None else CHOSEN_DENOISER)
