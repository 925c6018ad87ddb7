"""Prompt classifier: predicts modality and region of an image whose file does not state them.

A small CNN (four conv blocks, global pooling, two linear heads) on a 64² view of the image
normalised by percentiles (as nothing says it is CT, no window is applied). Trained by
`medq train configs/prompt_classifier.yaml` on the benchmark's training sources (clean and with
generic degradations); the held-out test sources give its accuracy in the model card. The type
prompt follows from the modality for PET, radiographs and photographs; CT and MR types cannot
be told from pixels alone and stay at their catch-all (`ct_other`, `mr_other`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from medq.assess.preprocess import model_input
from medq.assess.prompts import MODALITY_PROMPTS, REGION_PROMPTS, normalize
from medq.image import MedImage

SIZE = 64
"""Input side of the classifier."""

MODALITIES = tuple(m for m in MODALITY_PROMPTS if m != "other")
"""Modalities the classifier can answer."""

WEIGHTS_NAME = "prompt-classifier"
"""File stem of the shipped classifier in medq/weights/."""


class PromptNet(nn.Module):
    """Four conv–BN–ReLU–pool blocks → global average → modality and region logits."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = 3
        for w in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(ch, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            ch = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.modality = nn.Linear(ch, len(MODALITIES))
        self.region = nn.Linear(ch, len(REGION_PROMPTS))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`[B, 3, 64, 64]` in [0, 1] → (modality logits, region logits)."""
        f = self.body(x)
        return self.modality(f), self.region(f)


def classifier_input(image: MedImage) -> np.ndarray:
    """The `[3, 64, 64]` input of an image (middle slice of a volume, percentile-normalised)."""
    a = image.array[image.shape[0] // 2] if image.is_volume else image.array
    x = model_input(a, "OT", SIZE)
    return np.repeat(x, 3, axis=0) if x.shape[0] == 1 else x


def labels(image: MedImage) -> tuple[int, int]:
    """(modality index, region index) of an image whose tags state them."""
    mod = normalize("modality", image.modality)
    region = "retina" if mod == "OP" and image.region == "unknown" else image.region
    return MODALITIES.index(mod), REGION_PROMPTS.index(normalize("region", region))


def make_examples(source_split: str, n: int, seed: int) -> dict[str, np.ndarray]:
    """`n` labelled classifier inputs from the benchmark sources of a split."""
    from medq.data.sources import sources
    from medq.degrade import get_spec, simulate

    rng = np.random.default_rng(seed)
    pool = sources(source_split, "2d")
    xs, ms, rs = [], [], []
    for i in range(n):
        src = pool[i % len(pool)]
        image = src.draw(rng, "2d")
        kinds = ["none", *(k for k in ("blur", "low_contrast", "low_resolution")
                           if image.modality in get_spec(k).modalities)]
        kind = rng.choice(kinds)
        if kind != "none":
            image, _ = simulate(image, str(kind), severity=str(rng.choice(["mild", "moderate"])),
                                seed=int(rng.integers(2**31)))
        xs.append(classifier_input(image))
        m, r = labels(image.evolve(region=image.region if image.region != "unknown"
                                   else _SOURCE_REGIONS.get(src.name, "unknown")))
        ms.append(m)
        rs.append(r)
    return {"x": np.stack(xs).astype(np.float32), "modality": np.array(ms),
            "region": np.array(rs)}


_SOURCE_REGIONS = {"ct_small": "spine"}
"""Regions of test sources whose files do not state one."""


def train_classifier(steps: int = 600, n_train: int = 1500, n_test: int = 200, seed: int = 0,
                     log: Callable[[str], None] = print) -> tuple[PromptNet, dict[str, Any]]:
    """Train the classifier; returns it with its record (accuracies on held-out sources)."""
    torch.manual_seed(seed)
    train = make_examples("train", n_train, seed)
    test = make_examples("test", n_test, seed + 1)
    net = PromptNet()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    for step in range(steps):
        idx = rng.integers(0, len(train["x"]), 64)
        x = torch.from_numpy(train["x"][idx])
        x = torch.where(torch.rand(len(idx), 1, 1, 1) < 0.5, x, x.flip(-1))
        m, r = net(x)
        loss = loss_fn(m, torch.from_numpy(train["modality"][idx])) + 0.5 * loss_fn(
            r, torch.from_numpy(train["region"][idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            log(f"prompt classifier step {step + 1}/{steps} loss={loss.item():.3f}")
    net.eval()
    with torch.no_grad():
        m, r = net(torch.from_numpy(test["x"]))
    record = {"steps": steps, "n_train": n_train, "n_test": n_test, "seed": seed,
              "test_modality_accuracy": float((m.argmax(1).numpy() == test["modality"]).mean()),
              "test_region_accuracy": float((r.argmax(1).numpy() == test["region"]).mean())}
    return net, record


@lru_cache(maxsize=1)
def _shipped() -> PromptNet | None:
    from medq.assess.weights import WEIGHTS_DIR

    path = WEIGHTS_DIR / f"{WEIGHTS_NAME}.pt"
    if not path.is_file():
        return None
    net = PromptNet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    return net.eval()


def load_classifier() -> Callable[[MedImage, tuple[str, ...]], dict[str, str]] | None:
    """The `predict_missing` hook of `prompts_from_image`, or None when no weights are shipped."""
    net = _shipped()
    if net is None:
        return None

    @torch.no_grad()
    def predict_missing(image: MedImage, missing: tuple[str, ...]) -> dict[str, str]:
        m, r = net(torch.from_numpy(classifier_input(image))[None])
        modality = MODALITIES[int(m.argmax())]
        if "modality" not in missing:
            modality = normalize("modality", image.modality)
        guess = {"modality": modality, "region": REGION_PROMPTS[int(r.argmax())]}
        guess["type"] = {"PT": "pet", "XR": "radiograph", "OP": "fundus", "CT": "ct_other",
                         "MR": "mr_other"}[modality]
        return {k: v for k, v in guess.items() if k in missing}

    return predict_missing
