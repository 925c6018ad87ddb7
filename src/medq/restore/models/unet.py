"""`RestoreUNet`: one residual, fully convolutional restoration network for every task.

Structure (FFDNet-style entry, U-Net body):

- the normalised image is split into its four 2×2 sub-images (pixel unshuffle), so the body
  runs at half resolution (4× cheaper on a CPU), and is merged back at the end;
- a U-Net body of residual blocks over `len(channels)` scales, no normalisation layers (so a
  512² slice behaves like the 96² training crops), predicting a residual added to the input;
- a **degradation-type prior** (VL-DUN style): a small strided CNN on the input that predicts,
  per finding type, presence (logits) and severity (0–1), trained with the engine's records;
- **conditioning**: the prior's prediction is fused with the external description (the
  conditioning vector of `medq.restore.condition`: assessment findings, a given-flag, the
  modality) by an MLP, which scales and shifts the features of every block (FiLM, initialised
  to identity). With `conditioning=False` neither prior nor FiLM exists (the ablation).

`forward` returns a dict: `image` (restored, normalised), `residual`, and with conditioning
`prior_logits` / `prior_severity`; a joint restoration + segmentation model adds `labels`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medq.restore.condition import COND_DIM, N_FINDINGS


class FiLMBlock(nn.Module):
    """Residual block `x + conv(act(film(conv(x))))`; FiLM from the fused conditioning."""

    def __init__(self, ch: int, embed: int | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.film = nn.Linear(embed, 2 * ch) if embed else None
        nn.init.zeros_(self.conv2.weight)  # every block starts as the identity (stable, no norm)
        nn.init.zeros_(self.conv2.bias)
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        """Apply the block (FiLM only when an embedding is given)."""
        h = self.conv1(x)
        if self.film is not None and emb is not None:
            gamma, beta = self.film(emb)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + gamma) + beta
        return x + self.conv2(F.silu(h))


class DegradationPrior(nn.Module):
    """Strided CNN + global mean/std pooling → per-finding presence logits and severities."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in (width // 2, width, width, 2 * width):
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.SiLU()]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * c_in, 64), nn.SiLU(), nn.Linear(64, 2 * N_FINDINGS))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(presence logits, severity 0–1), each `[B, N_FINDINGS]`."""
        h = self.features(x)
        spread = 1 if h.shape[-2] * h.shape[-1] > 1 else 0  # a 16² input leaves one position
        pooled = torch.cat([h.mean(dim=(2, 3)), h.std(dim=(2, 3), correction=spread)], dim=1)
        logits, sev = self.head(pooled).chunk(2, dim=1)
        return logits, torch.sigmoid(sev)


class RestoreUNet(nn.Module):
    """Residual U-Net restorer with an optional degradation prior and FiLM conditioning."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), blocks: int = 1,
                 bottleneck: int = 2, conditioning: bool = True, embed: int = 64,
                 prior_width: int = 32) -> None:
        super().__init__()
        self.args: dict[str, Any] = {"channels": list(channels), "blocks": blocks,
                                     "bottleneck": bottleneck, "conditioning": conditioning,
                                     "embed": embed, "prior_width": prior_width}
        self.conditioning = conditioning
        emb = embed if conditioning else None
        self.prior = DegradationPrior(prior_width) if conditioning else None
        self.fuse = nn.Sequential(nn.Linear(COND_DIM + 2 * N_FINDINGS, embed), nn.SiLU(),
                                  nn.Linear(embed, embed), nn.SiLU()) if conditioning else None
        self.head = nn.Conv2d(4, channels[0], 3, padding=1)
        self.enc = nn.ModuleList(nn.ModuleList(FiLMBlock(c, emb) for _ in range(blocks))
                                 for c in channels[:-1])
        self.down = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1)
                                  for a, b in zip(channels[:-1], channels[1:], strict=True))
        self.mid = nn.ModuleList(FiLMBlock(channels[-1], emb) for _ in range(bottleneck))
        self.up = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2)
                                for a, b in zip(channels[:-1], channels[1:], strict=True))
        self.dec = nn.ModuleList(nn.ModuleList(FiLMBlock(c, emb) for _ in range(blocks))
                                 for c in channels[:-1])
        self.tail = nn.Conv2d(channels[0], 4, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        self.multiple = 2 ** len(channels)

    def embedding(self, x: torch.Tensor, cond: torch.Tensor | None
                  ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """Fused conditioning embedding and the prior's outputs (empty without conditioning)."""
        if not self.conditioning:
            return None, {}
        logits, severity = self.prior(x)
        if cond is None:
            cond = x.new_zeros(x.shape[0], COND_DIM)
        prior = torch.cat([torch.sigmoid(logits), severity], dim=1).detach()
        emb = self.fuse(torch.cat([prior, cond], dim=1))
        return emb, {"prior_logits": logits, "prior_severity": severity}

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """Restore a batch `[B, 1, H, W]` of normalised images (any H, W)."""
        h0, w0 = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h0) % m, (-w0) % m
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        emb, extra = self.embedding(xp, cond)
        h = self.head(F.pixel_unshuffle(xp, 2))
        skips = []
        for blocks, down in zip(self.enc, self.down, strict=True):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            h = down(F.silu(h))
        for block in self.mid:
            h = block(h, emb)
        for blocks, up, skip in zip(reversed(self.dec), reversed(self.up), reversed(skips),
                                    strict=True):
            h = up(h) + skip
            for block in blocks:
                h = block(h, emb)
        residual = F.pixel_shuffle(self.tail(F.silu(h)), 2)[..., :h0, :w0]
        return {"image": x + residual, "residual": residual, **extra}
