"""Severity ladders in the detector's fit: a worse rung of the same image must read worse.

The calibration items teach the finding detector each degradation's severity one image at a
time; nothing in them says that the *same* image with more noise, blur or motion must read
worse, and on held-out images the evidence score did not always fall along a severity ladder
(a mild noise hiding a suspected ghost, a severe motion read as a milder one). A severity
ladder (`medq.data.items.severity_ladder`: one training image clean, then one degradation at
rising severities) gives that order directly. `ladder_loss` is a hinge on neighbouring rungs
of the badness the net's outputs imply (`badness`: −ln of the reference score's product, so
the evidence score 1 + 4·e^−B falls exactly when B rises), added to the fit's loss by
`medq.describe.calibrate` (`--ladders`), and `held_out_spearman` measures on held-out ladders
how often the evidence score falls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import torch

LADDERS = 0
"""Severity ladders a calibration fits on by default (`--ladders`;
`calibration_data.build_ladders`): none, as the shipped calibrations were fitted. 1,000 view
ladders were tried and not shipped (docs/trials.md, assessment)."""
RANK_WEIGHT = 3.0
"""Weight of the ladder term (`ladder_loss`) beside the items' loss."""
RANK_MARGIN = 0.1
"""Fraction of the true rise in badness between rungs that the predicted badness must rise by."""
LADDER_BATCH = 64
"""Ladders per step of the ladder term."""


class Rungs(NamedTuple):
    """Ladders as one fit takes them, and the weight and margin of their term."""

    z: np.ndarray
    """Features `[n, rungs, features]`, clipped and standardised as the items'."""
    y: np.ndarray
    """True continuous severities `[n, rungs, types]`."""
    allowed: np.ndarray
    """The types each ladder's modality can have `[n, types]`."""
    weight: float = RANK_WEIGHT
    margin: float = RANK_MARGIN


def badness(weighted: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """−ln of the reference score's product, Σ_j −ln(1 − min(s_j, 2.9)/3) over the allowed
    types: 0 for a clean image, rising with every severity (`reference_score` = 1 + 4·e^−B)."""
    import torch

    return (allowed * -torch.log1p(-weighted.clamp(0.0, 2.9) / 3.0)).sum(-1)


def ladder_loss(net: Any, z: torch.Tensor, y: torch.Tensor, allowed: torch.Tensor,
                margin: float = RANK_MARGIN) -> torch.Tensor:
    """Hinge on each pair of neighbouring rungs of ladders `z [n, rungs, features]`: the
    badness of the net's probability-weighted severities must rise by at least `margin` times
    the rise of the true severities' badness (`y [n, rungs, types]`), so a worse rung of the
    same image never reads as better."""
    import torch

    from medq.train.evaluate import ladder_hinge

    n, rungs, width = z.shape
    out = net(z.reshape(-1, width)).reshape(n, rungs, -1)
    types = y.shape[-1]
    weighted = torch.sigmoid(out[..., :types]) * out[..., types:]
    return ladder_hinge(badness(weighted, allowed[:, None]), badness(y, allowed[:, None]), margin)


def held_out_spearman(calib: dict[str, Any], fold_nets: list[list[dict]],
                      ladders: dict[str, np.ndarray], lmasks: list[np.ndarray]) -> float:
    """Mean Spearman(rung, falling evidence score) (`train.evaluate.ladder_spearman`) over the
    validation ladders, each scored by the nets fitted without it (a ladder whose scores all
    tie counts 0)."""
    from medq.assess.detector import Detector, evidence_of
    from medq.train.evaluate import ladder_spearman

    rhos = []
    for nets, held in zip(fold_nets, lmasks, strict=True):
        detector = Detector({**calib, "nets": nets})
        for i in np.flatnonzero(held):
            modality = str(ladders["modality"][i])
            scores = [evidence_of(detector, rung, modality).score for rung in ladders["x"][i]]
            rhos.append(0.0 if np.ptp(scores) == 0 else ladder_spearman(scores))
    return float(np.mean(rhos)) if rhos else float("nan")
