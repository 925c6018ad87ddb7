"""Seed ensembles: several runs of one recipe, averaged, behind the quality-model interface.

The same recipe trained with different seeds lands in different minima whose errors on unseen
scans differ a lot (mediqa-s: held-out SRCC 0.49 with seed 0, 0.63 with seed 1). Averaging the
members' outputs keeps what they agree on. Each member scores a volume with its own slice
weights; scores, finding logits and slice weights are averaged over members.

Checkpoint: `{"model": "SeedEnsemble", "members": [member checkpoint, …], "medq": record}`,
where each member checkpoint is what `IQAModel.save_checkpoint` writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from medq.assess.models.blocks import IQAModel, ModelOutput, VolumeOutput
from medq.errors import ModelError


def _mean(values: list[torch.Tensor | None]) -> torch.Tensor | None:
    """Element-wise mean of tensors, or None when any is None."""
    if any(v is None for v in values):
        return None
    return torch.stack(values).mean(0)  # type: ignore[arg-type]


def average_outputs(outputs: list[ModelOutput]) -> ModelOutput:
    """Member outputs for the same batch → one output (means; features concatenated)."""
    return ModelOutput(
        score=torch.stack([o.score for o in outputs]).mean(0),
        features=torch.cat([o.features for o in outputs], dim=-1),
        physics=_mean([o.physics for o in outputs]),
        finding_logits=_mean([o.finding_logits for o in outputs]),
        severity_logits=_mean([o.severity_logits for o in outputs]),
        acquisition=_mean([o.acquisition for o in outputs]))


class SeedEnsemble(nn.Module):
    """Quality models of one recipe and different seeds whose outputs are averaged."""

    def __init__(self, members: list[IQAModel]) -> None:
        super().__init__()
        if not members:
            raise ModelError("a seed ensemble needs at least one member")
        if len({m.uses_measures for m in members}) > 1:
            raise ModelError("ensemble members must all take measures, or none")
        self.members = nn.ModuleList(members)

    @property
    def n_measures(self) -> int:
        """Classical measures (evidence row columns) the members take per slice; 0 for none."""
        return int(self.members[0].n_measures)

    @property
    def uses_measures(self) -> bool:
        """Whether the members take classical measures (evidence rows) beside the pixels."""
        return bool(self.members[0].uses_measures)

    def run(self, x: torch.Tensor, prompts: Any = None, measures: Any = None) -> ModelOutput:
        """Every member's `run`, averaged."""
        return average_outputs([m.run(x, prompts, measures) for m in self.members])

    def forward_volume(self, slices: torch.Tensor, prompts: Any = None, measures: Any = None
                       ) -> VolumeOutput:
        """Every member scores the volume with its own slice weights; the results are averaged."""
        vols = [m.forward_volume(slices, prompts, measures) for m in self.members]
        return VolumeOutput(score=torch.stack([v.score for v in vols]).mean(0),
                            slice_scores=torch.stack([v.slice_scores for v in vols]).mean(0),
                            slice_weights=torch.stack([v.slice_weights for v in vols]).mean(0),
                            slices=average_outputs([v.slices for v in vols]))

    findings = staticmethod(IQAModel.findings)

    def save_checkpoint(self, path: str | Path, **extra: Any) -> None:
        """Write `{"model": "SeedEnsemble", "members": [...], **extra}` with torch.save
        (atomically)."""
        from medq.io.atomic import atomic_path

        members = [m.to_dict() for m in self.members]
        with atomic_path(path) as tmp:
            torch.save({"model": type(self).__name__, "members": members, **extra}, tmp)

    @classmethod
    def from_dict(cls, ckpt: dict[str, Any]) -> SeedEnsemble:
        """Rebuild an ensemble (eval mode) from what `save_checkpoint` wrote; raises KeyError/…"""
        return cls([member_from_dict(c) for c in ckpt["members"]]).eval()


def member_from_dict(ckpt: dict[str, Any]) -> IQAModel:
    """Rebuild one member (any registered quality-model class) from its checkpoint dictionary."""
    from medq.assess.models import checkpoint_class

    return checkpoint_class(ckpt["model"]).from_dict(ckpt)
