"""MedIQA's four prompts (dimension, modality, region, type): vocabularies, rules and encoding.

Each prompt is one word of a fixed vocabulary; `encode` concatenates their one-hot vectors as in
the paper, `y = x + FC_i(concat(p_dim, p_mod, p_reg, p_type))`. Every vocabulary has a catch-all
slot (`other` / `unknown`; for the dimension, `2d`), so any value encodes and nothing crashes.

`prompts_from_image` reads what the image states (its array, modality, region, physics and
`meta['series_description']`/`meta['protocol_name']`) and records per field where the value came
from: `tags` (stated by, or derived by fixed rules from, the image and its header), `values`
(a modality the file does not state, read from its pixel values: Hounsfield units are CT,
`medq.io.units`), `predicted` (filled in by a learned classifier through the `predict_missing`
hook, or a modality the assessment took from it, `meta["modality_from"]` `GUESSED`) or `default`
(catch-all).

Type rules (first that applies wins):

* MR: description keywords (FLAIR/TIRM/DarkFluid → flair; T1/MPRAGE/SPGR/BRAVO/VIBE → t1;
  PD/proton → pd; T2 → t2; DWI/ADC/SWI/BOLD/perfusion → other), else TR/TE/TI: TI ≥ 1500 ms →
  flair, 300 ≤ TI < 1500 → t1 (IR-prepared T1 such as MPRAGE), TI < 300 → other (STIR);
  TR ≤ 800 and TE ≤ 30 → t1; TR ≥ 2000 and TE ≥ 80 → t2; TR ≥ 2000 and TE ≤ 40 → pd; else other.
* CT: description keywords (lung, bone, soft tissue/mediastinum/abdomen/brain), else the display
  window (`window_center`/`window_width` in meta or physics): WL ≤ −300 and WW ≥ 1000 → lung,
  WL ≥ 200 and WW ≥ 1000 → bone, −100 ≤ WL ≤ 150 and WW ≤ 700 → soft tissue; else the kernel
  (LUNG / BONE / SOFT, STANDARD, STND, SMOOTH; Siemens-style letters+number: ≤ 45 soft,
  ≥ 60 sharp → lung in the chest, bone elsewhere); else ct_other.
* PT → pet; CR/DX → radiograph; OP → fundus; anything else → other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medq.image import REGIONS, MedImage
from medq.io.units import GUESSED

DIMENSIONS = ("2d", "3d")
"""Dimension prompt; unknown values fall back to `2d` (a single image)."""

MODALITY_PROMPTS = ("CT", "MR", "PT", "XR", "OP", "other")
"""Modality prompt; CR and DX share `XR` (projection radiography)."""

REGION_PROMPTS = REGIONS
"""Region prompt: medq's regions, `unknown` being the catch-all slot."""

TYPES = (
    "ct_soft_tissue", "ct_lung", "ct_bone", "ct_other",
    "mr_t1", "mr_t2", "mr_flair", "mr_pd", "mr_other",
    "pet", "radiograph", "fundus", "other",
)
"""Type prompt: reconstruction/contrast type within the modality."""

FIELDS = ("dimension", "modality", "region", "type")
"""Prompt fields, in encoding order."""

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "dimension": DIMENSIONS, "modality": MODALITY_PROMPTS, "region": REGION_PROMPTS, "type": TYPES,
}
"""Vocabulary of each field."""

FALLBACK = {"dimension": "2d", "modality": "other", "region": "unknown", "type": "other"}
"""Catch-all value of each field, used for anything outside the vocabulary."""

SOURCES = ("tags", "values", "predicted", "default", "user")
"""Where a prompt value came from (`values`: read from the pixel values; `user`: named by the
user over what the file says)."""

PROMPT_DIM = sum(len(v) for v in VOCABULARIES.values())
"""Length of the encoded prompt vector (sum of the four vocabulary sizes)."""

_OFFSETS = dict(zip(FIELDS, np.cumsum([0] + [len(VOCABULARIES[f]) for f in FIELDS])[:-1],
                    strict=True))
_MODALITY_ALIASES = {"CR": "XR", "DX": "XR", "MG": "XR", "MRI": "MR", "PET": "PT", "XC": "OP"}

PredictMissing = Callable[[MedImage, tuple[str, ...]], Mapping[str, str]]
"""Hook signature: `(image, missing field names) -> {field: value}` (a learned classifier)."""


def normalize(field_name: str, value: Any) -> str:
    """Map `value` onto the vocabulary of `field_name` (case-insensitive; unknown → catch-all)."""
    if field_name not in VOCABULARIES:
        raise KeyError(f"unknown prompt field {field_name!r}; expected one of {FIELDS}")
    text = str(value).strip() if value is not None else ""
    if field_name == "dimension":
        text = {"2": "2d", "3": "3d"}.get(text, text).lower()
    elif field_name == "modality":
        text = _MODALITY_ALIASES.get(text.upper(), text.upper())
        text = "other" if text == "OTHER" else text
    else:
        text = text.lower()
    return text if text in VOCABULARIES[field_name] else FALLBACK[field_name]


@dataclass(frozen=True)
class Prompts:
    """The four prompts plus where each came from (`source[field]` ∈ tags/values/predicted/
    default, or user: named with `--modality`/`--region` or `modality=`/`region=`, over what
    the file says)."""

    dimension: str = "2d"
    modality: str = "other"
    region: str = "unknown"
    type: str = "other"
    source: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in FIELDS:
            object.__setattr__(self, name, normalize(name, getattr(self, name)))
        src = {name: str(self.source.get(name, "default")) for name in FIELDS}
        object.__setattr__(self, "source", {
            k: v if v in SOURCES else "default" for k, v in src.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the four values and their sources."""
        return {**{name: getattr(self, name) for name in FIELDS}, "source": dict(self.source)}


def _words(*texts: Any) -> list[str]:
    """Upper-case alphanumeric tokens of the given texts (underscores and dashes split)."""
    out: list[str] = []
    for text in texts:
        if text:
            out.extend(t for t in re.split(r"[^A-Z0-9]+", str(text).upper()) if t)
    return out


def _number(*values: Any) -> float | None:
    """First value that reads as a finite float (multi-valued DICOM strings: first item)."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        elif isinstance(value, str):
            value = value.split("\\")[0]
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if np.isfinite(number):
            return number
    return None


def _descriptions(image: MedImage) -> list[str]:
    """Tokens of the series description and protocol name, then of a BIDS file name's suffix
    (`T1w`, `FLAIR`: `medq.io.bids`), when the image carries them."""
    meta = image.meta or {}
    return _words(meta.get("series_description"), meta.get("protocol_name"),
                  meta.get("bids_suffix"))


def mr_type_from_words(words: Sequence[str]) -> str | None:
    """MR contrast from description tokens (None when no keyword matches)."""
    rules = (
        ("mr_flair", lambda w: w.startswith("FLAIR") or w in ("TIRM", "DARKFLUID")),
        ("mr_t1", lambda w: w.startswith("T1") or w in ("MPRAGE", "SPGR", "FSPGR", "BRAVO",
                                                          "VIBE", "TFL", "MPR")),
        ("mr_pd", lambda w: w in ("PD", "PDW", "PDFS", "PROTON")),
        ("mr_t2", lambda w: w.startswith("T2") and not w.startswith("T2STAR")),
        ("mr_other", lambda w: w in ("DWI", "ADC", "DTI", "TRACE", "SWI", "BOLD", "PERFUSION",
                                     "T2STAR", "T2STARW", "DIFFUSION", "EPI", "ASL")),
    )
    for name, test in rules:
        if any(test(w) for w in words):
            return name
    return None


def mr_type_from_physics(tr_ms: float | None, te_ms: float | None,
                         ti_ms: float | None = None) -> str | None:
    """MR contrast from TR/TE/TI in ms (None when TR or TE is missing and TI says nothing)."""
    if ti_ms is not None and ti_ms > 0:
        if ti_ms >= 1500:
            return "mr_flair"
        return "mr_t1" if ti_ms >= 300 else "mr_other"
    if tr_ms is None or te_ms is None:
        return None
    if tr_ms <= 800 and te_ms <= 30:
        return "mr_t1"
    if tr_ms >= 2000 and te_ms >= 80:
        return "mr_t2"
    if tr_ms >= 2000 and te_ms <= 40:
        return "mr_pd"
    return "mr_other"


def ct_type_from_window(center: float | None, width: float | None) -> str | None:
    """CT type from the display window (HU); None when it is missing or matches no rule."""
    if center is None or width is None:
        return None
    if center <= -300 and width >= 1000:
        return "ct_lung"
    if center >= 200 and width >= 1000:
        return "ct_bone"
    if -100 <= center <= 150 and width <= 700:
        return "ct_soft_tissue"
    return None


def ct_type_from_kernel(kernel: Any, region: str = "unknown") -> str | None:
    """CT type from the reconstruction kernel name; None when the name says nothing."""
    words = _words(kernel)
    if any(w.startswith("LUNG") for w in words):
        return "ct_lung"
    if any(w.startswith("BONE") for w in words):
        return "ct_bone"
    if any(w in ("SOFT", "STANDARD", "STND", "SMOOTH", "STD", "ABDOMEN") for w in words):
        return "ct_soft_tissue"
    for w in words:
        m = re.fullmatch(r"[A-Z]{1,2}(\d{2})[A-Z]?", w)  # Siemens B30f, Br40, I70f, Hr38
        if m:
            sharpness = int(m.group(1))
            if sharpness <= 45:
                return "ct_soft_tissue"
            if sharpness >= 60:
                return "ct_lung" if region == "chest" else "ct_bone"
    return None


def ct_type_from_words(words: Sequence[str]) -> str | None:
    """CT type from description tokens (None when no keyword matches)."""
    if any(w.startswith("LUNG") or w == "PULMONARY" for w in words):
        return "ct_lung"
    if any(w.startswith("BONE") or w == "SKELETAL" for w in words):
        return "ct_bone"
    if any(w in ("SOFT", "MEDIASTINUM", "MEDIASTINAL", "ABDOMEN", "BRAIN", "STANDARD")
           for w in words):
        return "ct_soft_tissue"
    return None


def _ct_type(image: MedImage) -> str | None:
    """CT type from description, window, then kernel."""
    found = ct_type_from_words(_descriptions(image))
    if found:
        return found
    meta, phys = image.meta or {}, image.physics or {}
    center = _number(meta.get("window_center"), phys.get("window_center"))
    width = _number(meta.get("window_width"), phys.get("window_width"))
    return ct_type_from_window(center, width) or ct_type_from_kernel(
        phys.get("convolution_kernel") or meta.get("convolution_kernel"), image.region)


def _mr_type(image: MedImage) -> str | None:
    """MR type from description, then TR/TE/TI."""
    found = mr_type_from_words(_descriptions(image))
    if found:
        return found
    phys = image.physics or {}
    return mr_type_from_physics(_number(phys.get("tr_ms")), _number(phys.get("te_ms")),
                                _number(phys.get("ti_ms")))


def _type(image: MedImage, modality: str) -> str | None:
    """Type prompt from the image, or None when nothing states it."""
    if modality == "CT":
        return _ct_type(image)
    if modality == "MR":
        return _mr_type(image)
    return {"PT": "pet", "XR": "radiograph", "OP": "fundus"}.get(modality)


def prompts_from_image(image: MedImage, predict_missing: PredictMissing | None = None) -> Prompts:
    """Derive the four prompts from what `image` states; `predict_missing` fills the gaps.

    Fields the image does not state go to `predict_missing(image, missing)` when given (its
    answers are marked `predicted`; values outside the vocabulary go to the catch-all slot),
    else to the catch-all value (`default`). A modality the image states is never overridden.
    """
    values: dict[str, str] = {"dimension": "3d" if image.is_volume else "2d"}
    modality = normalize("modality", image.modality)
    if image.modality != "OT":  # OT means the source did not say
        values["modality"] = modality
    region = image.region
    derived = set()  # fields that follow from the modality alone: they take its source
    if region == "unknown" and modality == "OP":
        region = "retina"  # ophthalmic photographs in medq are fundus images
        derived.add("region")
    if region != "unknown":
        values["region"] = region
    kind = _type(image, modality)
    if modality in ("PT", "XR", "OP"):
        derived.add("type")
    if kind is None and image.modality not in ("OT", "CT", "MR"):
        kind = "other"  # a stated modality without types of its own (US)
    if kind is not None:
        values["type"] = kind
    source = {name: "tags" for name in values}
    if image.meta.get("modality_from") and "modality" in source:  # not a tag: read from the
        source["modality"] = ("predicted" if image.meta["modality_from"] == GUESSED  # classifier
                              else "values")  # or from the pixel values (`medq.io.units`)
    for name in image.meta.get("named", ()):  # --modality / --region, or modality= in Python
        if name in source:
            source[name] = "user"
    for name in derived & set(source) - set(image.meta.get("named", ())):
        source[name] = source.get("modality", source[name])
    missing = tuple(name for name in FIELDS if name not in values)
    if missing and predict_missing is not None:
        guesses = dict(predict_missing(image, missing) or {})
        for name in missing:
            if name in guesses:
                values[name] = normalize(name, guesses[name])
                source[name] = "predicted"
    for name in FIELDS:
        values.setdefault(name, FALLBACK[name])
        source.setdefault(name, "default")
    if values["type"] == "other" and source["type"] == "default":
        values["type"] = {"CT": "ct_other", "MR": "mr_other"}.get(values["modality"], "other")
    return Prompts(**values, source=source)


def encode(prompts: Prompts) -> np.ndarray:
    """Concatenated one-hots `[p_dim, p_mod, p_reg, p_type]` as float32 of length PROMPT_DIM."""
    vec = np.zeros(PROMPT_DIM, dtype=np.float32)
    for name in FIELDS:
        value = normalize(name, getattr(prompts, name))
        vec[_OFFSETS[name] + VOCABULARIES[name].index(value)] = 1.0
    return vec


def encode_many(prompts: Sequence[Prompts]) -> np.ndarray:
    """Stack `encode` over a batch: `[B, PROMPT_DIM]`."""
    return np.stack([encode(p) for p in prompts]) if prompts else np.zeros((0, PROMPT_DIM),
                                                                            np.float32)


def decode(vector: Any, source: str = "predicted") -> Prompts:
    """Inverse of `encode`: argmax within each field's segment (soft vectors/logits work too)."""
    vec = np.asarray(vector, dtype=np.float64).reshape(-1)
    if vec.size != PROMPT_DIM:
        raise ValueError(f"prompt vector must have {PROMPT_DIM} entries, got {vec.size}")
    values = {}
    for name in FIELDS:
        start = _OFFSETS[name]
        segment = vec[start:start + len(VOCABULARIES[name])]
        values[name] = VOCABULARIES[name][int(np.argmax(segment))]
    return Prompts(**values, source={name: source for name in FIELDS})
