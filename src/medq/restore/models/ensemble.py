"""An ensemble of restoration networks whose outputs are averaged.

`medq train` builds one from a config with `member_pairs` (`medq.train.restore_ensemble`): the same
network trained on differently prepared pairs (e.g. with and without softened clean images).
Averaging members that err differently on scans unlike their training data steadies the result
(`medq bench restore` shows the gain). The ensemble behaves like one network: `forward` returns
the same dict, `conditioning` and `prior` mean what they mean for a member.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class RestoreEnsemble(nn.Module):
    """Averages the outputs (image, residual, prior) of member restoration networks."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.conditioning = bool(members[0].conditioning)
        self.args = {"members": [dict(m.args) for m in members]}

    @property
    def prior(self) -> Any:
        """The members' mean degradation prior (a function of x), or None without one."""
        if self.members[0].prior is None:
            return None

        def mean_prior(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            outs = [m.prior(x) for m in self.members]
            return (torch.stack([o[0] for o in outs]).mean(0),
                    torch.stack([o[1] for o in outs]).mean(0))

        return mean_prior

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """Every member's output dict, averaged key by key."""
        outs = [m(x, cond) for m in self.members]
        return {k: torch.stack([o[k] for o in outs]).mean(0) for k in outs[0]}
