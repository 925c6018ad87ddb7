"""CNNIQA (Kang et al., CVPR 2014): a one-layer CNN on 32×32 patches, baseline of the paper.

Each non-overlapping 32×32 patch (the image is cropped to a whole number of patches) is local
contrast normalised (3×3 window, as in the paper; part of the method, switchable), convolved
with 50 7×7 filters, reduced by global max and min pooling to 100 values, then passed through
two fully connected layers of 800 units and a linear score. The image score is the mean of the
patch scores (each mapped to 1…5). Prompts are accepted and ignored. The physics and finding
heads sit on the mean 800-d patch feature (cheap; set their sizes to 0 to drop them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medq.assess.models import register_model
from medq.assess.models.blocks import (
    AuxHeads,
    HeadConfig,
    IQAModel,
    ModelOutput,
    SliceAggregator,
    extract_patches,
    make_config,
    prepare_input,
    to_score_range,
)
from medq.errors import ModelError


@dataclass
class CNNIQAConfig(HeadConfig):
    """CNNIQA sizes (defaults: the paper's)."""

    patch_size: int = 32
    kernel_size: int = 7
    n_filters: int = 50
    hidden: int = 800
    dropout: float = 0.5
    lcn: bool = True

    def validate(self) -> None:
        """Raise ModelError when the kernel does not fit in a patch."""
        super().validate()
        if self.kernel_size > self.patch_size:
            raise ModelError(f"kernel {self.kernel_size} is larger than patch {self.patch_size}")


def local_contrast_norm(x: torch.Tensor, window: int = 3, c: float = 1e-2) -> torch.Tensor:
    """Kang et al.'s LCN: `(x − μ_local) / (σ_local + c)` over a `window`² neighbourhood."""
    pad = window // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    mu = F.avg_pool2d(padded, window, stride=1)
    var = F.avg_pool2d(padded * padded, window, stride=1) - mu * mu
    return (x - mu) / (var.clamp_min(0).sqrt() + c)


class CNNIQA(IQAModel):
    """Kang et al.'s CNNIQA with medq's common output."""

    config_class = CNNIQAConfig

    def __init__(self, config: CNNIQAConfig | None = None) -> None:
        super().__init__(config or CNNIQAConfig())
        cfg: CNNIQAConfig = self.config
        self.conv = nn.Conv2d(3, cfg.n_filters, cfg.kernel_size)
        self.fc = nn.Sequential(
            nn.Linear(2 * cfg.n_filters, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.score_head = nn.Linear(cfg.hidden, 1)
        self.heads = AuxHeads(cfg.hidden, cfg)
        self.slice_head = SliceAggregator(cfg.hidden, cfg.slice_hidden)

    def forward(self, x: torch.Tensor, prompts: Any = None) -> ModelOutput:
        """Score a batch `[B, 1|3, H, W]` in [0, 1] (prompts are ignored)."""
        x = prepare_input(x)
        b = x.shape[0]
        patches, n = extract_patches(x, self.config.patch_size)
        if self.config.lcn:
            patches = local_contrast_norm(patches)
        h = self.conv(patches).flatten(2)
        feat = self.fc(torch.cat([h.amax(-1), h.amin(-1)], dim=1))
        patch_scores = to_score_range(self.score_head(feat).view(b, n))
        features = feat.view(b, n, -1).mean(1)
        return ModelOutput(score=patch_scores.mean(1), features=features,
                           patch_scores=patch_scores, **self.heads(features))


@register_model("cnniqa")
def build_cnniqa(**config: Any) -> CNNIQA:
    """Build CNNIQA; keyword arguments override `CNNIQAConfig` fields."""
    return CNNIQA(make_config(CNNIQAConfig, "cnniqa", **config))
