"""Shared torch pieces of the quality models: output types, heads, slice weights, base class.

Input convention for every model: a float tensor `[B, 3, H, W]` with intensities in [0, 1]
(windowed or min-max normalised by the caller; models do no intensity normalisation). Grey
images may be passed as `[B, 1, H, W]` (or `[B, H, W]`): they are repeated to 3 channels.
Outputs follow `ModelOutput`; scores are on medq's 1 (non-diagnostic) … 5 (excellent) scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from medq.errors import ModelError
from medq.severity import SEVERITIES

FINDING_TYPES = (
    "noise", "blur", "low_resolution", "aliasing", "motion", "ghosting", "spike", "bias_field",
    "streak", "low_contrast", "illumination",
)
"""Finding types of the finding heads, in logit order (DESIGN.md, Assessment)."""

SCORE_MIN, SCORE_MAX = 1.0, 5.0
"""Quality score range: 1 = non-diagnostic … 5 = excellent."""


@dataclass
class HeadConfig:
    """Output sizes shared by every model config (0 physics/findings/acquisition disables that
    head; `n_acquisition`: what DICOM headers state, `medq.train.acquisition`)."""

    n_physics: int = 8
    n_findings: int = len(FINDING_TYPES)
    n_severity: int = len(SEVERITIES)
    slice_hidden: int = 64
    n_acquisition: int = 0

    def validate(self) -> None:
        """Raise ModelError on impossible sizes."""
        if min(self.n_physics, self.n_findings, self.n_acquisition) < 0 or self.n_severity < 2:
            raise ModelError(f"bad head sizes in {self}: need n_physics, n_findings, "
                             "n_acquisition ≥ 0 and n_severity ≥ 2")


@dataclass
class ModelOutput:
    """What every quality model returns for a batch of B images (optional parts may be None)."""

    score: torch.Tensor
    features: torch.Tensor
    patch_scores: torch.Tensor | None = None
    patch_weights: torch.Tensor | None = None
    physics: torch.Tensor | None = None
    finding_logits: torch.Tensor | None = None
    severity_logits: torch.Tensor | None = None
    acquisition: torch.Tensor | None = None


@dataclass
class VolumeOutput:
    """A 3D volume's score `Q = Σ w̄_i q_i` with its per-slice scores, weights and outputs."""

    score: torch.Tensor
    slice_scores: torch.Tensor
    slice_weights: torch.Tensor
    slices: ModelOutput


def to_score_range(raw: torch.Tensor) -> torch.Tensor:
    """Map unbounded values onto (SCORE_MIN, SCORE_MAX) with a sigmoid."""
    return SCORE_MIN + (SCORE_MAX - SCORE_MIN) * torch.sigmoid(raw)


def weighted_mean(scores: torch.Tensor, weights: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """MANIQA/WaDIQaM pooling over the last axis: `Σ w_i s_i / Σ w_i`."""
    return (scores * weights).sum(-1) / (weights.sum(-1) + eps)


def prepare_input(x: torch.Tensor) -> torch.Tensor:
    """Check a batch and bring it to `[B, 3, H, W]` (grey channels are repeated)."""
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ModelError(f"model input must be [B, 1|3, H, W], got {tuple(x.shape)}")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def prompt_tensor(prompts: Any, batch: int, dim: int, ref: torch.Tensor) -> torch.Tensor:
    """Prompts as `[batch, dim]` on `ref`'s device: None → zeros, `[dim]` → repeated."""
    if prompts is None:
        return ref.new_zeros(batch, dim)
    p = torch.as_tensor(prompts, dtype=ref.dtype, device=ref.device)
    if p.ndim == 1:
        p = p[None]
    if p.shape[-1] != dim or p.shape[0] not in (1, batch):
        raise ModelError(f"prompts must be [{batch}, {dim}] or [{dim}], got {tuple(p.shape)}")
    return p.expand(batch, -1)


def extract_patches(x: torch.Tensor, size: int, stride: int | None = None) -> tuple[torch.Tensor,
                                                                                   int]:
    """Cut `[B, C, H, W]` into `[B·P, C, size, size]` patches (stride defaults to size)."""
    if x.shape[-1] < size or x.shape[-2] < size:
        raise ModelError(f"image {tuple(x.shape[-2:])} is smaller than the {size}px patch")
    stride = stride or size
    b, c = x.shape[:2]
    p = x.unfold(2, size, stride).unfold(3, size, stride)  # B, C, nh, nw, s, s
    n = p.shape[2] * p.shape[3]
    return p.permute(0, 2, 3, 1, 4, 5).reshape(b * n, c, size, size), n


def mlp(dim_in: int, hidden: int, dim_out: int, dropout: float = 0.0) -> nn.Sequential:
    """Two-layer perceptron Linear → GELU → Dropout → Linear."""
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim_out))


class FindingHead(nn.Module):
    """Multi-label finding logits plus CORAL ordinal severity logits per finding.

    Severity logit k of finding f is `g_f(x) + b_{f,k}` with one shared projection per finding
    and thresholds `b_{f,0} > b_{f,1} > …` kept strictly decreasing (softplus gaps), so the
    cumulative probabilities P(level > k) are rank-consistent.
    """

    def __init__(self, dim: int, n_findings: int, n_severity: int) -> None:
        super().__init__()
        self.presence = nn.Linear(dim, n_findings)
        self.severity = nn.Linear(dim, n_findings)
        self.first = nn.Parameter(torch.zeros(n_findings, 1))
        self.gaps = nn.Parameter(torch.zeros(n_findings, n_severity - 2))

    def thresholds(self) -> torch.Tensor:
        """Decreasing thresholds `[n_findings, n_severity − 1]`."""
        steps = torch.cumsum(F.softplus(self.gaps), dim=1)
        return self.first - torch.cat([torch.zeros_like(self.first), steps], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return finding logits `[B, F]` and severity logits `[B, F, K−1]`."""
        return self.presence(x), self.severity(x)[..., None] + self.thresholds()


def interpret_findings(finding_logits: torch.Tensor, severity_logits: torch.Tensor
                       ) -> dict[str, torch.Tensor]:
    """Probabilities from the finding heads.

    Returns `presence` P(finding) `[B, F]`, `exceed` P(level > k) `[B, F, K−1]`, `severity_probs`
    P(level = k) `[B, F, K]` and `expected_severity` E[level] = Σ_k P(level > k) in [0, K−1].
    """
    exceed = torch.sigmoid(severity_logits)
    ones = torch.ones_like(exceed[..., :1])
    upper = torch.cat([ones, exceed], dim=-1)
    lower = torch.cat([exceed, torch.zeros_like(ones)], dim=-1)
    return {
        "presence": torch.sigmoid(finding_logits),
        "exceed": exceed,
        "severity_probs": (upper - lower).clamp_min(0.0),
        "expected_severity": exceed.sum(-1),
    }


def coral_targets(levels: torch.Tensor, n_severity: int = len(SEVERITIES)) -> torch.Tensor:
    """Integer severity levels `[...]` → CORAL binary targets `[..., K−1]` (level > k)."""
    ks = torch.arange(n_severity - 1, device=levels.device)
    return (levels[..., None] > ks).to(torch.float32)


class AuxHeads(nn.Module):
    """Physics regression, finding and acquisition heads on a pooled feature (each optional)."""

    def __init__(self, dim: int, cfg: HeadConfig) -> None:
        super().__init__()
        self.dim = dim
        self.physics = mlp(dim, dim, cfg.n_physics) if cfg.n_physics else None
        self.findings = (FindingHead(dim, cfg.n_findings, cfg.n_severity)
                         if cfg.n_findings else None)
        n_acquisition = getattr(cfg, "n_acquisition", 0)
        self.acquisition = mlp(dim, dim, n_acquisition) if n_acquisition else None

    def forward(self, feat: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Return `physics`, `finding_logits`, `severity_logits`, `acquisition` (None for
        absent heads)."""
        out: dict[str, torch.Tensor | None] = {
            "physics": self.physics(feat) if self.physics is not None else None,
            "finding_logits": None, "severity_logits": None,
            "acquisition": self.acquisition(feat) if self.acquisition is not None else None}
        if self.findings is not None:
            out["finding_logits"], out["severity_logits"] = self.findings(feat)
        return out


class SliceAggregator(nn.Module):
    """MedIQA's slice weighting: `w̄ = softmax_i(MLP(f_i))`, `Q = Σ w̄_i q_i`."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = mlp(dim, hidden, 1)

    def forward(self, features: torch.Tensor, scores: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features `[n, F]`, scores `[n]` → (volume score `[]`, slice weights `[n]`)."""
        weights = self.net(features).squeeze(-1).softmax(0)
        return (weights * scores).sum(), weights


class MeasureEncoder(nn.Module):
    """Classical measures per image → an embedding: clip to the training range, standardise, MLP.

    The range (0.5th–99.5th percentiles), mean and std are buffers set once from the training
    items (`fit`), saved with the checkpoint, so an image unlike any training image is not
    extrapolated from; non-finite measures count as the training mean.
    """

    def __init__(self, n: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("low", torch.full((n,), -1e6))
        self.register_buffer("high", torch.full((n,), 1e6))
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))
        self.net = mlp(n, dim, dim)

    def fit(self, measures: Any) -> None:
        """Set the clipping range and standardisation from training measures `[N, n]`."""
        m = torch.as_tensor(measures, dtype=torch.float32)
        m = torch.where(torch.isfinite(m), m, torch.nanmean(m, 0, keepdim=True).nan_to_num())
        low, high = torch.quantile(m, 0.005, dim=0), torch.quantile(m, 0.995, dim=0)
        clipped = torch.minimum(torch.maximum(m, low), high)
        self.low.copy_(low)
        self.high.copy_(high)
        self.mean.copy_(clipped.mean(0))
        self.std.copy_(clipped.std(0).clamp_min(1e-3))

    def forward(self, measures: torch.Tensor) -> torch.Tensor:
        """`[B, n]` measures → `[B, dim]` embedding."""
        m = torch.where(torch.isfinite(measures), measures, self.mean)
        m = torch.minimum(torch.maximum(m, self.low), self.high)
        return self.net((m - self.mean) / self.std)


def make_config(config_class: type, name: str, **fields: Any) -> Any:
    """Instantiate `config_class(**fields)`, turning unknown fields into a ModelError."""
    try:
        return config_class(**fields)
    except TypeError as e:
        raise ModelError(f"bad config for {name}: {e}") from e


class IQAModel(nn.Module):
    """Base class of the quality models: shared volume scoring, findings and checkpoints.

    Subclasses set `config_class`, build `self.heads` (AuxHeads) and `self.slice_head`
    (SliceAggregator) and implement `forward(x, prompts=None) -> ModelOutput` (models that
    take classical measures: `forward(x, prompts, measures)`; callers use `run`).
    """

    config_class: ClassVar[type]

    def __init__(self, config: Any) -> None:
        super().__init__()
        config.validate()
        self.config = config

    @property
    def n_measures(self) -> int:
        """Classical measures (evidence row columns) the model takes per slice; 0 for none."""
        return int(getattr(self.config, "n_measures", 0))

    @property
    def uses_measures(self) -> bool:
        """Whether the model takes classical measures (evidence rows) beside the pixels."""
        return self.n_measures > 0

    def run(self, x: torch.Tensor, prompts: Any = None, measures: Any = None) -> ModelOutput:
        """Call the model, passing `measures` only to a model that takes them."""
        if not self.uses_measures:
            return self(x, prompts)
        if measures is None:
            raise ModelError(f"{type(self).__name__} needs measures (evidence rows) per image")
        return self(x, prompts, torch.as_tensor(measures, dtype=x.dtype, device=x.device))

    def forward_volume(self, slices: torch.Tensor, prompts: Any = None, measures: Any = None
                       ) -> VolumeOutput:
        """Score the slices `[n, C, H, W]` of one volume and aggregate with learned weights."""
        out = self.run(slices, prompts, measures)
        score, weights = self.slice_head(out.features, out.score)
        return VolumeOutput(score=score, slice_scores=out.score, slice_weights=weights,
                            slices=out)

    @staticmethod
    def findings(output: ModelOutput) -> dict[str, torch.Tensor] | None:
        """Finding probabilities and expected severities of an output (None without heads)."""
        if output.finding_logits is None or output.severity_logits is None:
            return None
        return interpret_findings(output.finding_logits, output.severity_logits)

    def add_acquisition_head(self, n: int) -> None:
        """Give the model a fresh acquisition head of `n` outputs when it has none of that size
        (a checkpoint trained without one, fine-tuned on DICOM-stated acquisitions)."""
        if self.config.n_acquisition == n:
            return
        self.config.n_acquisition = n
        self.heads.acquisition = mlp(self.heads.dim, self.heads.dim, n) if n else None

    def match_physics_targets(self, trained: list[str] | None, kinds: tuple[str, ...]) -> None:
        """Give the physics head one output per kind of `kinds` when it was trained on the kinds
        `trained` (a checkpoint from before the engine gained a degradation): each kind both
        know keeps its trained output, a new kind gets a fresh one."""
        if not trained or list(trained) == list(kinds) or self.heads.physics is None:
            return
        old = self.heads.physics[-1]
        new = nn.Linear(old.in_features, len(kinds))
        with torch.no_grad():
            for k, kind in enumerate(kinds):
                if kind in trained:
                    new.weight[k] = old.weight[trained.index(kind)]
                    new.bias[k] = old.bias[trained.index(kind)]
        self.heads.physics[-1] = new
        self.config.n_physics = len(kinds)

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def to_dict(self) -> dict[str, Any]:
        """`{"model", "config", "state_dict"}`: what a checkpoint holds for this model."""
        return {"model": type(self).__name__, "config": dataclasses.asdict(self.config),
                "state_dict": self.state_dict()}

    def save_checkpoint(self, path: str | Path, **extra: Any) -> None:
        """Write `{"model", "config", "state_dict", **extra}` with torch.save (atomically)."""
        from medq.io.atomic import atomic_path

        with atomic_path(path) as tmp:
            torch.save({**self.to_dict(), **extra}, tmp)

    @classmethod
    def from_dict(cls, ckpt: dict[str, Any]) -> IQAModel:
        """Rebuild a model (eval mode) from `to_dict` output; raises KeyError/TypeError/…"""
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in ckpt["config"].items()}
        model = cls(cls.config_class(**fields))
        model.load_state_dict(ckpt["state_dict"])
        return model.eval()

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str = "cpu") -> IQAModel:
        """Rebuild a model from `save_checkpoint` output (the hook for shipped weights)."""
        try:
            model = cls.from_dict(torch.load(path, map_location=map_location, weights_only=True))
        except FileNotFoundError as e:
            raise ModelError("checkpoint file not found", path) from e
        except (KeyError, TypeError, RuntimeError, ValueError) as e:
            raise ModelError(f"checkpoint does not fit {cls.__name__} ({type(e).__name__}: "
                             f"{e})", path) from e
        return model
