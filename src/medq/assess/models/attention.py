"""Attention layers of the transformer models: ViT blocks, transposed (channel) attention, Swin."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medq.assess.models.blocks import mlp
from medq.errors import ModelError


class Mlp(nn.Module):
    """Transformer feed-forward block (Linear → GELU → Linear)."""

    def __init__(self, dim: int, ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = mlp(dim, int(dim * ratio), dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the feed-forward network."""
        return self.net(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over tokens `[..., N, C]` with an optional additive mask."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ModelError(f"dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend; `mask` broadcasts to `[..., heads, N, N]`."""
        *lead, n, c = x.shape
        qkv = self.qkv(x).view(*lead, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.movedim(-3, 0).transpose(-3, -2).unbind(0)  # [..., heads, N, d]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(-3, -2).reshape(*lead, n, c))


class TransformerBlock(nn.Module):
    """Pre-norm ViT block: x + MSA(LN(x)), x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.mlp = Mlp(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to `[B, N, C]`."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TransposedAttention(nn.Module):
    """MANIQA's TAB: attention across channels (C×C maps per head), size-independent.

    Restormer-style: q, k are L2-normalised along tokens and scaled by a learned temperature,
    so the block works for any number of tokens (MANIQA's Linear(N, N) projections do not).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ModelError(f"dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to `[B, N, C]` with a residual connection."""
        b, n, c = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 4, 1).unbind(0)  # [B, heads, c/h, N]
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(-1)
        out = (attn @ v).reshape(b, c, n).transpose(1, 2)
        return x + self.proj(out)


def relative_index(window: int) -> torch.Tensor:
    """Index of each (query, key) token pair of a window×window window into the
    `(2·window − 1)²` relative-position bias table (int64 `[w², w²]`; built in NumPy so that a
    model built on the meta device, as `medq train`'s config check does, gets it too)."""
    ys, xs = np.divmod(np.arange(window * window, dtype=np.int64), window)
    dy = ys[:, None] - ys[None, :] + window - 1
    dx = xs[:, None] - xs[None, :] + window - 1
    return torch.from_numpy(dy * (2 * window - 1) + dx)


class SwinBlock(nn.Module):
    """Swin block: (shifted) window attention with relative position bias, then an MLP.

    Token grids of any size work: the grid is padded to a multiple of the window and padded
    tokens are masked out of every real token's attention.
    """

    def __init__(self, dim: int, heads: int, window: int, shift: bool,
                 mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.mlp = Mlp(dim, mlp_ratio, dropout)
        self.rel_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        self.register_buffer("rel_index", relative_index(window), persistent=False)
        self._layouts: dict[tuple[int, int, int, str], tuple[torch.Tensor, torch.Tensor,
                                                            torch.Tensor | None]] = {}

    def _partition(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, Hp, Wp, C]` → `[B, nW, w·w, C]`."""
        b, hp, wp, c = x.shape
        w = self.window
        x = x.view(b, hp // w, w, wp // w, w, c).transpose(2, 3)
        return x.reshape(b, (hp // w) * (wp // w), w * w, c)

    def _layout(self, h: int, w: int, shift: int, device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Cached token order (roll + window partition), its inverse and the additive mask.

        The mask `[nW, 1, w·w, w·w]` keeps shifted regions and padding apart (None if unneeded).
        """
        key = (h, w, shift, str(device))
        if key not in self._layouts:
            win = self.window
            hp, wp = -(-h // win) * win, -(-w // win) * win
            index = torch.arange(hp * wp, device=device).view(1, hp, wp, 1)
            order = self._partition(torch.roll(index, (-shift, -shift), (1, 2))).reshape(-1)
            mask = None
            if shift or (hp, wp) != (h, w):
                label = torch.zeros(hp, wp, device=device)
                label[h:, :] = 1
                label[:, w:] = 1
                label = torch.roll(label, (-shift, -shift), (0, 1))
                if shift:
                    cuts = (slice(0, -win), slice(-win, -shift), slice(-shift, None))
                    for i, rs in enumerate(cuts):
                        for j, cs in enumerate(cuts):
                            label[rs, cs] += 2 * (3 * i + j + 1)
                lab = self._partition(label[None, :, :, None]).squeeze(-1)[0]  # nW, w·w
                diff = lab[:, :, None] != lab[:, None, :]
                mask = torch.zeros(diff.shape, device=device).masked_fill(
                    diff, float("-inf"))[:, None]
            self._layouts[key] = (order, torch.argsort(order), mask)
        return self._layouts[key]

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Apply to tokens `[B, H·W, C]` laid out on the `size = (H, W)` grid."""
        h, w = size
        b, _, c = x.shape
        win = self.window
        shift = win // 2 if self.shift and min(h, w) > win else 0
        hp, wp = -(-h // win) * win, -(-w // win) * win
        order, inverse, mask = self._layout(h, w, shift, x.device)
        y = self.norm1(x)
        if (hp, wp) != (h, w):
            y = F.pad(y.view(b, h, w, c), (0, 0, 0, wp - w, 0, hp - h)).view(b, hp * wp, c)
        n_win = order.numel() // (win * win)
        y = y[:, order].view(b * n_win, win * win, c)
        bias = self.rel_bias[self.rel_index].permute(2, 0, 1)[None]  # 1, heads, N, N
        if mask is not None:  # 4D batch-first masks keep SDPA on its fast CPU kernel
            bias = (bias + mask).expand(b, -1, -1, -1, -1).reshape(b * n_win, *bias.shape[1:])
        y = self.attn(y, bias.to(y.dtype)).view(b, hp * wp, c)[:, inverse]
        if (hp, wp) != (h, w):
            y = y.view(b, hp, wp, c)[:, :h, :w].reshape(b, h * w, c)
        x = x + y
        return x + self.mlp(self.norm2(x))
