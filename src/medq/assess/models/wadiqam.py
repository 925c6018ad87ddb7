"""WaDIQaM-NR (Bosse et al., IEEE TIP 2018): VGG-like CNN on 32×32 patches, weighted average.

Each non-overlapping 32×32 patch (the image is cropped to a whole number of patches) goes
through ten 3×3 conv layers (32-32, 64-64, 128-128, 256-256, 512-512 with 2×2 max pooling after
each pair) to a 512-d feature. Two branches (FC 512 → FC 1) give the patch quality y_i and the
patch weight α_i = ReLU(·) + ε; the image score is `Σ α_i y_i / Σ α_i` (y_i mapped to 1…5).
Prompts are accepted and ignored. Physics/finding heads use the weighted mean patch feature.
Convolutions start from He (Kaiming) normal weights, as plain deep ReLU stacks need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
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
    weighted_mean,
)
from medq.errors import ModelError


@dataclass
class WaDIQaMConfig(HeadConfig):
    """WaDIQaM-NR sizes (defaults: the paper's)."""

    patch_size: int = 32
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    hidden: int = 512
    dropout: float = 0.5
    eps: float = 1e-6

    def validate(self) -> None:
        """Raise ModelError when the pooling would shrink a patch below one pixel."""
        super().validate()
        if not self.widths or self.patch_size < 2 ** len(self.widths):
            raise ModelError(f"patch {self.patch_size} is too small for {len(self.widths)} "
                             "pooling steps")


def _branch(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """FC → ReLU → Dropout → FC(1), the paper's regression/weight branch."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, 1))


class WaDIQaM(IQAModel):
    """Bosse et al.'s WaDIQaM-NR with medq's common output."""

    config_class = WaDIQaMConfig

    def __init__(self, config: WaDIQaMConfig | None = None) -> None:
        super().__init__(config or WaDIQaMConfig())
        cfg: WaDIQaMConfig = self.config
        layers: list[nn.Module] = []
        ch = 3
        for width in cfg.widths:
            layers += [nn.Conv2d(ch, width, 3, padding=1), nn.ReLU(inplace=True),
                       nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            ch = width
        for layer in layers:  # He init: with PyTorch's default the ten plain ReLU convs shrink
            if isinstance(layer, nn.Conv2d):  # activations ~20× from first to last block
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        self.backbone = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.quality = _branch(ch, cfg.hidden, cfg.dropout)
        self.weight = _branch(ch, cfg.hidden, cfg.dropout)
        self.heads = AuxHeads(ch, cfg)
        self.slice_head = SliceAggregator(ch, cfg.slice_hidden)

    def forward(self, x: torch.Tensor, prompts: Any = None) -> ModelOutput:
        """Score a batch `[B, 1|3, H, W]` in [0, 1] (prompts are ignored)."""
        x = prepare_input(x)
        b = x.shape[0]
        patches, n = extract_patches(x, self.config.patch_size)
        feat = self.backbone(patches)
        patch_scores = to_score_range(self.quality(feat).view(b, n))
        weights = torch.relu(self.weight(feat).view(b, n)) + self.config.eps
        features = (feat.view(b, n, -1) * weights[..., None]).sum(1) / weights.sum(1,
                                                                                   keepdim=True)
        return ModelOutput(score=weighted_mean(patch_scores, weights), features=features,
                           patch_scores=patch_scores, patch_weights=weights,
                           **self.heads(features))


@register_model("wadiqam")
def build_wadiqam(**config: Any) -> WaDIQaM:
    """Build WaDIQaM-NR; keyword arguments override `WaDIQaMConfig` fields."""
    return WaDIQaM(make_config(WaDIQaMConfig, "wadiqam", **config))
