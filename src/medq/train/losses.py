"""The loss terms of a quality model's training batch, and which items a stage draws from.

`physics` (MSE on the normalised log levels of the engine's records) and `findings` (BCE on
finding presence + CORAL BCE on ordinal severity) train on engine-labelled items only, `score`
(MSE on the 1–5 score) on scored items, `acquisition` (MSE on what DICOM headers state,
`medq.train.acquisition`) on the targets a header states, `rank` on severity ladders.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medq.assess.models.blocks import IQAModel, coral_targets
from medq.train.evaluate import ladder_hinge

ENGINE_LOSSES = ("physics", "findings", "rank")
"""Terms that need the engine's record of an item."""


def stage_items(data: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Which items a stage with loss `weights` draws its batches from: those with a target for
    one of its terms (a stage of the acquisition loss alone skips the engine's items, which
    state none; a score stage skips unscored tagged images)."""
    n = len(data["score"])
    useful = np.zeros(n, bool)
    if weights.get("score"):
        useful |= data.get("scored", np.ones(n, bool))
    if any(weights.get(k) for k in ENGINE_LOSSES):
        useful |= data.get("labelled", np.ones(n, bool))
    if weights.get("acquisition") and "acq_known" in data:
        useful |= data["acq_known"].any(1)
    return useful


def model_outputs(model: IQAModel, batch: dict[str, torch.Tensor], use_prompts: bool) -> Any:
    """The model's outputs on a batch, every tensor in float32 (they may be bfloat16)."""
    out = model.run(batch["x"], batch["prompt"] if use_prompts else None, batch.get("m"))
    return dataclasses.replace(out, **{f.name: getattr(out, f.name).float()
                                       for f in dataclasses.fields(out)
                                       if isinstance(getattr(out, f.name), torch.Tensor)})


def losses(model: IQAModel, batch: dict[str, torch.Tensor], weights: dict[str, float],
           use_prompts: bool) -> dict[str, torch.Tensor]:
    """Weighted loss terms of one batch, each on the items that have its target (computed in
    float32 from outputs that may be bfloat16)."""
    out = model_outputs(model, batch, use_prompts)
    terms: dict[str, torch.Tensor] = {}
    lab = batch["labelled"]
    scored = batch.get("scored", torch.ones_like(lab))
    if weights.get("score") and scored.any():
        terms["score"] = F.mse_loss(out.score[scored], batch["score"][scored])
    if weights.get("physics") and out.physics is not None and lab.any():
        terms["physics"] = F.mse_loss(out.physics[lab], batch["physics"][lab])
    if weights.get("findings") and out.finding_logits is not None and lab.any():
        sev = batch["severity"][lab]
        presence = F.binary_cross_entropy_with_logits(out.finding_logits[lab],
                                                      (sev > 0).float())
        ordinal = F.binary_cross_entropy_with_logits(out.severity_logits[lab],
                                                     coral_targets(sev))
        terms["findings"] = presence + ordinal
    known = batch.get("acq_known")
    if weights.get("acquisition") and out.acquisition is not None and known is not None \
            and known.any():
        terms["acquisition"] = F.mse_loss(out.acquisition[known], batch["acquisition"][known])
    return terms


def rank_loss(model: IQAModel, batch: dict[str, torch.Tensor], rungs: int, margin: float,
              use_prompts: bool) -> torch.Tensor:
    """Hinge on neighbouring rungs of the severity ladders in `batch` (`rungs` items per
    ladder, in order): the same image one rung worse must score lower by at least `margin`
    times the fall of its reference score."""
    found = model_outputs(model, batch, use_prompts).score.reshape(-1, rungs)
    return ladder_hinge(-found, -batch["score"].reshape(-1, rungs), margin)
