"""MedIQA: MANIQA-style prompt-driven quality model (multi-layer ViT → TAB → Swin → two branches).

Pipeline for a batch `[B, 3, H, W]` in [0, 1] (see `blocks` for the input convention):

1. ViT encoder trained from scratch: patch embedding (stride = patch size; `stem="conv"`, the
   mediqa-s default, uses 3×3 stride-2 convolutions instead of one linear projection), learned
   position embedding (interpolated for other sizes: any H, W divisible by the patch size
   work), pre-norm transformer blocks; the outputs of the `taps` blocks are concatenated
   along channels.
2. Stages (one per Swin stage): Linear reduction to the stage width → `n_tab` transposed
   attention blocks (channel attention) → prompt injection `x + FC_i(p)` with the stage's own
   Linear(prompt_dim → width) → Swin blocks (window attention, every second block shifted).
   MANIQA applies TAB before the reduction; here it follows it so TAB costs width² parameters.
3. Heads on the last stage's tokens: per-patch score s_i and weight w_i = sigmoid(·), image
   score `q = Σ w_i s_i / Σ w_i` (MANIQA), mapped to (1, 5) by `1 + 4·sigmoid(q)` after the
   pooling (mapping each patch first saturates and stalls training); `patch_scores` are the
   s_i mapped the same way. The ViT stem sees `2x − 1` so that flat [0, 1] input does not
   put a large common term in every token (that made training collapse). On the mean token: physics
   regression (stage-1 pretraining), finding logits and CORAL severity logits.
4. Volumes: `forward_volume` scores the (salient) slices and weights them with a softmax over a
   small MLP of the slice features: `Q = Σ w̄_i q_i`.
5. Measures (`n_measures` > 0, mediqa-s): the slice's classical evidence features
   (`medq.assess.evidence.evidence_rows`: noise, spectrum, blur, ghosting, streak, field, context)
   are clipped and standardised with training statistics, embedded by a small MLP and added at
   every stage by the stage's own Linear, like the prompts. They carry what a from-scratch ViT on
   a resized 224² view learns slowly or loses: the pixel-level noise and sharpness of the scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medq.assess.models import register_model
from medq.assess.models.attention import SwinBlock, TransformerBlock, TransposedAttention
from medq.assess.models.blocks import (
    AuxHeads,
    HeadConfig,
    IQAModel,
    MeasureEncoder,
    ModelOutput,
    SliceAggregator,
    make_config,
    mlp,
    prepare_input,
    prompt_tensor,
    to_score_range,
    weighted_mean,
)
from medq.assess.prompts import PROMPT_DIM
from medq.errors import ModelError


@dataclass
class MedIQAConfig(HeadConfig):
    """Sizes of a MedIQA model; the named presets are `mediqa-tiny`, `mediqa-s`, `mediqa-b`."""

    image_size: int = 224
    patch_size: int = 16
    embed_dim: int = 128
    depth: int = 6
    heads: int = 4
    taps: tuple[int, ...] = (1, 3, 5)
    mlp_ratio: float = 4.0
    n_tab: int = 1
    stage_dims: tuple[int, ...] = (128, 64)
    stage_depths: tuple[int, ...] = (2, 2)
    stage_heads: tuple[int, ...] = (4, 2)
    window_size: int = 7
    prompt_dim: int = PROMPT_DIM
    dropout: float = 0.0
    stem: str = "patch"
    n_measures: int = 0
    measure_dim: int = 64

    def validate(self) -> None:
        """Raise ModelError when the sizes do not fit together."""
        super().validate()
        taps = tuple(self.taps)
        if not taps or list(taps) != sorted(set(taps)) or taps[0] < 0 or taps[-1] != self.depth - 1:
            raise ModelError(f"taps {taps} must be increasing block indices ending at the last "
                             f"block ({self.depth - 1}); later blocks would never train")
        if self.image_size % self.patch_size:
            raise ModelError(f"image_size {self.image_size} is not a multiple of patch_size "
                             f"{self.patch_size}")
        n = len(self.stage_dims)
        if n == 0 or len(self.stage_depths) != n or len(self.stage_heads) != n:
            raise ModelError("stage_dims, stage_depths and stage_heads need one entry per stage")
        if self.stem not in ("patch", "conv"):
            raise ModelError(f"stem must be 'patch' or 'conv', got {self.stem!r}")
        if self.stem == "conv" and self.patch_size & (self.patch_size - 1):
            raise ModelError(f"a conv stem needs a power-of-two patch size, got {self.patch_size}")
        if self.n_measures < 0 or (self.n_measures and self.measure_dim < 1):
            raise ModelError("n_measures must be ≥ 0 and measure_dim ≥ 1")
        if self.window_size < 1 or self.prompt_dim < 1:
            raise ModelError("window_size and prompt_dim must be ≥ 1")


def conv_stem(dim: int, patch: int) -> nn.Sequential:
    """Convolutional patch embedding: 3×3 stride-2 conv–BN–ReLU blocks down to `patch`, then 1×1.

    Early convolutions make a ViT trained from scratch far easier to optimise than one linear
    16×16 projection, and they see the pixel-level statistics (noise, edges) that quality
    depends on. Widths double from dim/8 up to dim. The closing BatchNorm standardises each
    embedding channel over images and positions: without it the ReLU features share one large
    common direction, every token looks alike after LayerNorm and training stalls.
    """
    layers: list[nn.Module] = []
    ch, n = 3, patch.bit_length() - 1
    for k in range(n):
        width = max(16, dim >> (n - 1 - k))
        layers += [nn.Conv2d(ch, width, 3, stride=2, padding=1, bias=False),
                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        ch = width
    return nn.Sequential(*layers, nn.Conv2d(ch, dim, 1, bias=False), nn.BatchNorm2d(dim))


class ViTEncoder(nn.Module):
    """Plain ViT from scratch returning the concatenated outputs of the tapped blocks."""

    def __init__(self, cfg: MedIQAConfig) -> None:
        super().__init__()
        self.patch = cfg.patch_size
        self.embed = (conv_stem(cfg.embed_dim, cfg.patch_size) if cfg.stem == "conv"
                      else nn.Conv2d(3, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size))
        grid = cfg.image_size // cfg.patch_size
        self.pos = nn.Parameter(torch.zeros(1, cfg.embed_dim, grid, grid))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(cfg.embed_dim, cfg.heads, cfg.mlp_ratio,
                                                     cfg.dropout) for _ in range(cfg.depth))
        self.taps = tuple(cfg.taps)
        self.norm = nn.LayerNorm(cfg.embed_dim * len(self.taps))
        self.out_dim = cfg.embed_dim * len(self.taps)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """`[B, 3, H, W]` → tokens `[B, N, len(taps)·D]` and the token grid `(H/p, W/p)`."""
        if x.shape[-1] % self.patch or x.shape[-2] % self.patch:
            raise ModelError(f"image size {tuple(x.shape[-2:])} is not a multiple of the "
                             f"patch size {self.patch}")
        f = self.embed(x * 2.0 - 1.0)  # [0, 1] → [-1, 1]: no large DC term in every token
        pos = self.pos
        if pos.shape[-2:] != f.shape[-2:]:
            pos = F.interpolate(pos, size=f.shape[-2:], mode="bicubic", align_corners=False)
        grid = (f.shape[-2], f.shape[-1])
        t = (f + pos).flatten(2).transpose(1, 2)
        taps = []
        for i, block in enumerate(self.blocks):
            t = block(t)
            if i in self.taps:
                taps.append(t)
        return self.norm(torch.cat(taps, dim=-1)), grid


class Stage(nn.Module):
    """Reduce (Linear + LayerNorm) → TAB × n → add the stage's prompt projection → Swin blocks.

    The LayerNorm keeps the reduced tokens at unit scale: without it the small-init reduction
    leaves them so small that Adam's bias steps soon swamp the image signal (features collapse).
    """

    def __init__(self, dim_in: int, dim: int, depth: int, heads: int, cfg: MedIQAConfig) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Linear(dim_in, dim), nn.LayerNorm(dim))
        self.tabs = nn.ModuleList(TransposedAttention(dim, heads) for _ in range(cfg.n_tab))
        self.prompt = nn.Linear(cfg.prompt_dim, dim)
        self.measure = nn.Linear(cfg.measure_dim, dim) if cfg.n_measures else None
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, cfg.window_size, shift=bool(i % 2), mlp_ratio=cfg.mlp_ratio,
                      dropout=cfg.dropout) for i in range(depth))

    def forward(self, x: torch.Tensor, grid: tuple[int, int], prompts: torch.Tensor,
                measures: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens `[B, N, dim_in]`, prompts `[B, prompt_dim]` (and the measure embedding
        `[B, measure_dim]`) → tokens `[B, N, dim]`."""
        x = self.reduce(x)
        for tab in self.tabs:
            x = tab(x)
        x = x + self.prompt(prompts)[:, None]
        if self.measure is not None and measures is not None:
            x = x + self.measure(measures)[:, None]
        for block in self.blocks:
            x = block(x, grid)
        return x


class MedIQA(IQAModel):
    """Prompt-driven MANIQA-style quality model (see the module docstring)."""

    config_class = MedIQAConfig

    def __init__(self, config: MedIQAConfig | None = None) -> None:
        super().__init__(config or MedIQAConfig())
        cfg: MedIQAConfig = self.config
        self.encoder = ViTEncoder(cfg)
        dims = (self.encoder.out_dim, *cfg.stage_dims)
        self.stages = nn.ModuleList(
            Stage(dims[i], dims[i + 1], cfg.stage_depths[i], cfg.stage_heads[i], cfg)
            for i in range(len(cfg.stage_dims)))
        dim = dims[-1]
        self.norm = nn.LayerNorm(dim)
        self.score_branch = mlp(dim, dim, 1, cfg.dropout)
        self.weight_branch = mlp(dim, dim, 1, cfg.dropout)
        self.heads = AuxHeads(dim, cfg)
        self.slice_head = SliceAggregator(dim, cfg.slice_hidden)
        self.measures = (MeasureEncoder(cfg.n_measures, cfg.measure_dim) if cfg.n_measures
                         else None)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor, prompts: Any = None,
                measures: torch.Tensor | None = None) -> ModelOutput:
        """Score a batch `[B, 1|3, H, W]` in [0, 1]; prompts `[B, prompt_dim]`, `[prompt_dim]`;
        measures `[B, n_measures]` (evidence rows; required when `n_measures` > 0)."""
        x = prepare_input(x)
        p = prompt_tensor(prompts, x.shape[0], self.config.prompt_dim, x)
        m = None
        if self.measures is not None:
            if measures is None or measures.shape != (x.shape[0], self.config.n_measures):
                got = None if measures is None else tuple(measures.shape)
                raise ModelError(f"measures must be [{x.shape[0]}, {self.config.n_measures}], "
                                 f"got {got}")
            m = self.measures(measures)
        tokens, grid = self.encoder(x)
        for stage in self.stages:
            tokens = stage(tokens, grid, p, m)
        tokens = self.norm(tokens)
        raw = self.score_branch(tokens).squeeze(-1)
        patch_weights = torch.sigmoid(self.weight_branch(tokens).squeeze(-1))
        features = tokens.mean(1)
        score = to_score_range(weighted_mean(raw, patch_weights))
        return ModelOutput(score=score, features=features, patch_scores=to_score_range(raw),
                           patch_weights=patch_weights,
                           **self.heads(features))


def _init_weights(module: nn.Module) -> None:
    """ViT-style init: truncated normal linear weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


PRESETS: dict[str, dict[str, Any]] = {
    "mediqa-tiny": dict(image_size=32, patch_size=8, embed_dim=32, depth=2, heads=2, taps=(0, 1),
                        stage_dims=(32, 16), stage_depths=(2, 1), stage_heads=(2, 2),
                        window_size=2, slice_hidden=16),
    "mediqa-s": dict(image_size=224, patch_size=16, embed_dim=128, depth=6, heads=4,
                     taps=(1, 3, 5), stage_dims=(128, 64), stage_depths=(2, 2),
                     stage_heads=(4, 2), window_size=7, stem="conv"),
    "mediqa-b": dict(image_size=224, patch_size=8, embed_dim=768, depth=10, heads=12,
                     taps=(6, 7, 8, 9), n_tab=2, stage_dims=(768, 384), stage_depths=(2, 2),
                     stage_heads=(4, 4), window_size=4, dropout=0.1, slice_hidden=128),
}
"""Named sizes: tiny for tests, s (CPU default), b (MANIQA-like: ViT-B/8 taps 6–9, GPU)."""


def _factory(name: str) -> None:
    """Register the preset `name`; keyword arguments override its fields."""

    @register_model(name)
    def build(**overrides: Any) -> MedIQA:
        return MedIQA(make_config(MedIQAConfig, name, **{**PRESETS[name], **overrides}))

    build.__doc__ = f"Build MedIQA with the {name!r} preset."


for _name in PRESETS:
    _factory(_name)
