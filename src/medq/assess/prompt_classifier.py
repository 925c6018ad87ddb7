"""Prompt classifier: predicts the modality of an image whose file does not state it.

A small CNN (four conv blocks, global pooling, two linear heads) on a 64² view of the image
normalised by percentiles (as nothing says it is CT, no window is applied), plus the unit cues
the percentile view drops (`intensity_cues`). An image whose values are Hounsfield units (a
NIfTI or NumPy CT: air and lung below −500, where no other modality stores values,
`states_hounsfield`) is CT whatever its pixels look like.

Trained by `medq train configs/prompt_classifier.yaml` on the benchmark's training sources, each
plane clean or with any of the engine's degradations of its modality, in any orientation and
often on a padded canvas (`as_found`), its units varied as files vary (`vary_units`: arbitrary
scanner scales, CT stored as HU + 1024, 8-bit display exports that keep no units at all); the
held-out test sources give its accuracy in the model card. A volume is read at `VOLUME_PLANES`
and the probabilities averaged; each volume of a 4D file takes the guess for its file's middle
volume (`medq.assess.guess`). A prediction below `CONFIDENCE` fills nothing (the prompt stays
at its catch-all); an MR, PET or radiograph at or above it is the modality the assessment
reads the image as (`medq.assess.guess`: its measures, evidence and finding types, as if
`--modality` named it; a CT fills the prompt only). The type prompt follows from the modality
for PET, radiographs and photographs; CT and MR types cannot
be told from pixels alone and stay at their catch-all (`ct_other`, `mr_other`).
The region head is trained and its held-out accuracy reported, but it fills no prompt: right
for about six images in ten, it gave one scan different regions at different noise levels, and
so different scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from medq.assess.preprocess import model_input
from medq.assess.prompts import MODALITY_PROMPTS, REGION_PROMPTS, normalize
from medq.assess.weights import PROMPT_CLASSIFIER
from medq.image import MedImage
from medq.io.units import HU_AIR, in_hounsfield_units

SIZE = 64
"""Input side of the classifier."""

MODALITIES = tuple(m for m in MODALITY_PROMPTS if m != "other")
"""Modalities the classifier can answer."""

WEIGHTS_NAME = PROMPT_CLASSIFIER
"""File stem of the shipped classifier in medq/weights/."""


CONFIDENCE = 0.98
"""Smallest predicted probability that fills the modality prompt, and that the assessment then
reads the image as (`medq.assess.guess`); below it the prompt stays `other`. A wrong
modality misleads the quality model and claims another modality's artefacts, so the bar is
high: at 0.8 this classifier named the wrong modality for 12 % of the held-out `as found`
examples it filled, at 0.98 for 1.2 % (the model card)."""

N_CUES = 6
"""Length of `intensity_cues`."""


class PromptNet(nn.Module):
    """Four conv–BN–ReLU–pool blocks → global average, with the unit cues → modality and region
    logits."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = 3
        for w in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(ch, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            ch = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.modality = nn.Linear(ch + N_CUES, len(MODALITIES))
        self.region = nn.Linear(ch + N_CUES, len(REGION_PROMPTS))

    def forward(self, x: torch.Tensor, cues: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`[B, 3, 64, 64]` in [0, 1] and `[B, N_CUES]` → (modality logits, region logits)."""
        f = torch.cat([self.body(x), cues], dim=1)
        return self.modality(f), self.region(f)


VIEW = 256
"""Longest side of the plane the classifier reads (a larger one is taken on an integer stride:
its 64² input and percentile cues need no more, and a 512² slice costs a quarter)."""


VOLUME_PLANES = (0.35, 0.5, 0.65)
"""Where along z the classifier reads a volume (fractions of its depth): the mean of its
probabilities there, so one atypical plane (the skull base, a slab's edge) does not decide."""


def _plane(image: MedImage, at: float = 0.5) -> np.ndarray:
    """The 2D plane the classifier reads: the slice of a volume at fraction `at` of its depth
    (the middle by default), on a stride of at most `VIEW` pixels per side."""
    a = image.array[min(int(image.shape[0] * at), image.shape[0] - 1)] if image.is_volume \
        else image.array
    step = max(1, -(-max(a.shape[:2]) // VIEW))
    return a[::step, ::step]


def classifier_input(image: MedImage, at: float = 0.5) -> np.ndarray:
    """The `[3, 64, 64]` input of an image (a volume's slice at `at`, percentile-normalised)."""
    x = model_input(_plane(image, at), "OT", SIZE)
    return np.repeat(x, 3, axis=0) if x.shape[0] == 1 else x


def _signed_log(v: float) -> float:
    """sign(v)·log10(1 + |v|) / 4: raw values from −3000 to 10⁴ onto about ±1."""
    return float(np.sign(v) * np.log10(1.0 + abs(v)) / 4.0)


def intensity_cues(image: MedImage, at: float = 0.5) -> np.ndarray:
    """Unit cues (`N_CUES`) of the plane at `at`: colour, the fractions below `HU_AIR` and below
    0, and the signed logs of the 1st, 50th and 99th percentiles of the raw values."""
    a = np.asarray(_plane(image, at), dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return np.zeros(N_CUES, np.float32)
    p1, p50, p99 = np.percentile(a, [1.0, 50.0, 99.0])
    return np.array([float(image.is_rgb), float(np.mean(a < HU_AIR)), float(np.mean(a < 0)),
                     _signed_log(p1), _signed_log(p50), _signed_log(p99)], np.float32)


def states_hounsfield(image: MedImage) -> bool:
    """Whether the plane the classifier reads is in Hounsfield units (`medq.io.units`): such an
    image is CT whatever its pixels look like."""
    return not image.is_rgb and in_hounsfield_units(_plane(image))


def _modality_probabilities(logits: torch.Tensor, hounsfield: np.ndarray) -> np.ndarray:
    """Softmax of the modality logits, with images in Hounsfield units set to CT (certain)."""
    prob = torch.softmax(logits, 1).numpy()
    prob[hounsfield] = np.eye(len(MODALITIES))[MODALITIES.index("CT")]
    return prob


def _export_8bit(image: MedImage, rng: np.random.Generator) -> MedImage:
    """The image as an 8-bit display export (percentile window, jittered): no units left."""
    a = image.array.astype(np.float64)
    lo, hi = np.percentile(a, [rng.uniform(0.0, 2.0), rng.uniform(98.0, 100.0)])
    out = np.round(np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1) * 255.0)
    return image.evolve(array=out.astype(np.float32))


def vary_units(image: MedImage, rng: np.random.Generator, exports: float = 0.25) -> MedImage:
    """The image in the units another file might hold it in: a share `exports` as 8-bit display
    exports; CT otherwise in HU, a fifth stored as HU + 1024; other modalities at an arbitrary
    scanner scale (× 10^U(−1, 3)). Photographs keep their 8-bit values."""
    if image.is_rgb:
        return image
    if rng.random() < exports:
        return _export_8bit(image, rng)
    if image.modality == "CT":
        return image.evolve(array=image.array + 1024.0) if rng.random() < 0.2 else image
    return image.evolve(array=(image.array * 10.0 ** rng.uniform(-1.0, 3.0)).astype(np.float32))


def as_found(image: MedImage, rng: np.random.Generator) -> MedImage:
    """The plane as files lay it out: any of the eight orientations (a NIfTI's voxel axes
    follow the scanner, not the viewer) and, half the time, centred on a larger canvas of its
    lowest value (the zero padding of a reconstruction matrix), each side up to 40 % longer."""
    transpose, turns = bool(rng.random() < 0.5), int(rng.integers(4))
    a = np.rot90(np.swapaxes(image.array, 0, 1) if transpose else image.array, turns)
    spacing = image.spacing[::-1] if transpose != bool(turns % 2) else image.spacing
    if rng.random() < 0.5:
        pad = [(int(rng.integers(0, int(0.2 * n) + 1)),) * 2 for n in a.shape[:2]]
        fill = float(np.nanmin(a)) if np.isfinite(a).any() else 0.0
        a = np.pad(a, pad + [(0, 0)] * (a.ndim - 2), constant_values=fill)
    return image.evolve(array=np.ascontiguousarray(a, dtype=np.float32), spacing=spacing)


def _degraded(image: MedImage, kinds: str, rng: np.random.Generator) -> MedImage:
    """The image clean or with one degradation: `generic` draws blur, low contrast or low
    resolution (mild/moderate), `all` any of the engine's degradations of its modality at any
    severity (a file to be graded may be as noisy, streaked or aliased as it gets)."""
    from medq.degrade import available, get_spec, simulate

    names = ("blur", "low_contrast", "low_resolution") if kinds == "generic" else available()
    options = ["none", *(k for k in names if image.modality in get_spec(k).modalities)]
    kind = str(rng.choice(options))
    if kind == "none":
        return image
    levels = ["mild", "moderate"] + (["severe"] if kinds == "all" else [])
    return simulate(image, kind, severity=str(rng.choice(levels)),
                    seed=int(rng.integers(2**31)))[0]


def labels(image: MedImage) -> tuple[int, int]:
    """(modality index, region index) of an image whose tags state them."""
    mod = normalize("modality", image.modality)
    region = "retina" if mod == "OP" and image.region == "unknown" else image.region
    return MODALITIES.index(mod), REGION_PROMPTS.index(normalize("region", region))


def make_examples(source_split: str, n: int, seed: int, units: str = "native",
                  kinds: str = "generic", geometry: bool = False) -> dict[str, np.ndarray]:
    """`n` labelled classifier inputs from the benchmark sources of a split. `units`: `native`
    (as the source gives them), `scaled` (`vary_units` without 8-bit exports), `varied`
    (`vary_units`, for training) or `8bit` (exports); `kinds`: the degradations drawn
    (`_degraded`); `geometry`: laid out as files are (`as_found`)."""
    from medq.data.sources import sources

    rng = np.random.default_rng(seed)
    pool = sources(source_split, "2d")
    xs, cs, hu, ms, rs, names = [], [], [], [], [], []
    for i in range(n):
        src = pool[i % len(pool)]
        image = _degraded(src.draw(rng, "2d"), kinds, rng)
        m, r = labels(image.evolve(region=image.region if image.region != "unknown"
                                   else _SOURCE_REGIONS.get(src.name, "unknown")))
        if geometry:
            image = as_found(image, rng)
        if units in ("varied", "scaled"):
            image = vary_units(image, rng, exports=0.25 if units == "varied" else 0.0)
        elif units == "8bit" and not image.is_rgb:
            image = _export_8bit(image, rng)
        xs.append(classifier_input(image))
        cs.append(intensity_cues(image))
        hu.append(states_hounsfield(image))
        ms.append(m)
        rs.append(r)
        names.append(src.name)
    return {"x": np.stack(xs).astype(np.float32), "cues": np.stack(cs), "hu": np.array(hu),
            "modality": np.array(ms), "region": np.array(rs), "source": np.array(names)}


_SOURCE_REGIONS = {"ct_small": "spine"}
"""Regions of test sources whose files do not state one."""


@torch.no_grad()
def held_out_check(net: PromptNet, test: dict[str, np.ndarray]) -> dict[str, Any]:
    """Accuracies on labelled examples: all, per source, and of the predictions that reach
    `CONFIDENCE` (with the share that does)."""
    m, r = net.eval()(torch.from_numpy(test["x"]), torch.from_numpy(test["cues"]))
    prob = _modality_probabilities(m, test["hu"])
    right = prob.argmax(1) == test["modality"]
    sure = prob.max(1) >= CONFIDENCE
    region_prob = torch.softmax(r, 1).numpy()
    region_right = region_prob.argmax(1) == test["region"]
    region_sure = sure & (region_prob.max(1) >= CONFIDENCE)  # where a region guess would go

    def share(hit: np.ndarray, mask: np.ndarray) -> float | None:
        return round(float(hit[mask].mean()), 3) if mask.any() else None

    return {"modality_accuracy": round(float(right.mean()), 3),
            "region_accuracy": round(float(region_right.mean()), 3),
            "confident_share": round(float(sure.mean()), 3),
            "confident_accuracy": share(right, sure),
            "region_confident_share": round(float(region_sure.mean()), 3),
            "region_confident_accuracy": share(region_right, region_sure),
            "per_source": {str(s): round(float(right[test["source"] == s].mean()), 3)
                           for s in dict.fromkeys(test["source"].tolist())}}


def train_classifier(steps: int = 600, n_train: int = 1500, n_test: int = 200, seed: int = 0,
                     log: Callable[[str], None] = print) -> tuple[PromptNet, dict[str, Any]]:
    """Train the classifier; returns it with its record (accuracies on held-out sources, in
    their native units and as 8-bit exports)."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    train = make_examples("train", n_train, seed, units="varied", kinds="all", geometry=True)
    log(f"prompt classifier: {n_train} training examples drawn in "
        f"{time.perf_counter() - started:.0f} s")
    net = PromptNet()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    for step in range(steps):
        net.train()
        idx = rng.integers(0, len(train["x"]), 64)
        x = torch.from_numpy(train["x"][idx])
        x = torch.where(torch.rand(len(idx), 1, 1, 1) < 0.5, x, x.flip(-1))
        m, r = net(x, torch.from_numpy(train["cues"][idx]))
        loss = loss_fn(m, torch.from_numpy(train["modality"][idx])) + 0.5 * loss_fn(
            r, torch.from_numpy(train["region"][idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            log(f"prompt classifier step {step + 1}/{steps} loss={loss.item():.3f}")
    native = held_out_check(net, make_examples("test", n_test, seed + 1))
    export = held_out_check(net, make_examples("test", n_test, seed + 2, units="8bit"))
    found = held_out_check(net, make_examples("test", n_test, seed + 3, units="scaled",
                                              kinds="all", geometry=True))
    record = {"steps": steps, "n_train": n_train, "n_test": n_test, "seed": seed,
              "confidence": CONFIDENCE,
              "test_modality_accuracy": native["modality_accuracy"],
              "test_region_accuracy": native["region_accuracy"],
              "test": native, "test_8bit": export, "test_as_found": found}
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


TYPES = {"PT": "pet", "XR": "radiograph", "OP": "fundus", "CT": "ct_other", "MR": "mr_other"}
"""The type prompt a guessed modality implies (CT and MR types cannot be told from pixels)."""


def filled_with(found: str | None) -> Callable[[MedImage, tuple[str, ...]], dict[str, str]]:
    """The `predict_missing` hook of `prompts_from_image` that fills a missing modality prompt
    (and its type) with `found`, the one guess made for the image (nothing when None)."""

    def fill(image: MedImage, missing: tuple[str, ...]) -> dict[str, str]:
        if found is None or "modality" not in missing:
            return {}
        return {k: v for k, v in {"modality": found, "type": TYPES[found]}.items()
                if k in missing}

    return fill


def load_classifier() -> Callable[[MedImage, tuple[str, ...]], dict[str, str]] | None:
    """The `predict_missing` hook of `prompts_from_image`, or None when no weights are shipped."""
    net = _shipped()
    if net is None:
        return None

    @torch.no_grad()
    def predict_missing(image: MedImage, missing: tuple[str, ...]) -> dict[str, str]:
        if "modality" not in missing:
            return {}  # the region head is not used (see the module docstring)
        ats = VOLUME_PLANES if image.is_volume and image.shape[0] >= len(VOLUME_PLANES) \
            else (0.5,)
        m, _ = net(torch.from_numpy(np.stack([classifier_input(image, a) for a in ats])),
                   torch.from_numpy(np.stack([intensity_cues(image, a) for a in ats])))
        prob = _modality_probabilities(m, np.array([states_hounsfield(image)] * len(ats)))
        prob = prob.mean(0)  # the mean over the planes read
        if float(prob.max()) < CONFIDENCE:
            return {}  # unsure of the modality: nothing is filled
        return filled_with(MODALITIES[int(prob.argmax())])(image, missing)

    return predict_missing
