"""Findings → 2–5 clinical sentences on low-level appearance, ending with the verdict.

Sentences, in order: one per finding (the worst first; a fourth and later finding share one
sentence), what is fine (the `normal` types, in the modality's words), the lossy compression the
file's header states (if any), for volumes how many slices were assessed, and "Overall, the
quality of this image is <verdict>." — at most five.
Wording depends on the finding type, the modality and the severity; where several phrasings fit,
one is chosen by a hash of the report's content, so the same input always reads the same.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from medq.assess.noisy_slices import found, spiked
from medq.describe.schema import Finding
from medq.wording import joined

SEVERITY_WORDS = {"mild": ("mild", "slight"), "moderate": ("moderate", "noticeable"),
                  "severe": ("severe", "marked")}
"""Adjectives per severity (a hash picks one)."""

SEVERITY_ADVERBS = {"mild": ("mildly", "slightly"), "moderate": ("moderately", "noticeably"),
                    "severe": ("severely", "markedly")}
"""Adverbs per severity."""

CONSEQUENCE = {
    "mild": ("without limiting interpretation", "while diagnostic detail is preserved"),
    "moderate": ("which reduces the conspicuity of fine and low-contrast detail",
                 "limiting the assessment of fine detail"),
    "severe": ("which obscures diagnostic detail", "to a degree that limits interpretation"),
}
"""What a finding of each severity does to reading the image."""

COMBINED = ("which, together with the other findings, limits interpretation",
            "and the findings together degrade the image")
"""Consequence of a mild worst finding when the findings together make the image a reject."""

WHERE = {"global": "throughout the image", "central": "most marked centrally",
         "peripheral": "most marked towards the periphery",
         "superior": "most marked in the upper part of the image",
         "inferior": "most marked in the lower part of the image"}
"""Location phrases."""

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "noise": {
        "CT": ("{adj} quantum mottle is present {where}",
               "there is {adj} quantum mottle {where}, as from a low tube current"),
        "MR": ("{adj} Rician noise gives a grainy appearance {where}",
               "the signal-to-noise ratio is reduced, with {adj} graininess {where}"),
        "PT": ("{adj} count-limited noise gives a blotchy uptake pattern {where}",
               "the uptake pattern is {adv} noisy from low counts {where}"),
        "XR": ("{adj} quantum mottle from a low detector dose is visible {where}",
               "there is {adj} quantum noise {where}, as from an underexposed radiograph"),
        "OP": ("{adj} sensor noise gives the fundus a grainy, speckled appearance {where}",
               "there is {adj} camera noise {where}, as from a dim flash or a high sensor gain"),
        "": ("{adj} image noise is present {where}",),
    },
    "blur": {"": ("edges are {adv} unsharp and fine detail is blurred {where}",
                  "there is {adj} blurring of edges and fine structure {where}")},
    "low_resolution": {"": (
        "spatial resolution is {adv} reduced, so fine detail is lost {where}",
        "there is {adj} loss of resolution, with soft, interpolated-looking edges {where}")},
    "aliasing": {"MR": (
        "{adj} aliasing wrap-around from undersampling repeats structures along the "
        "phase-encode direction",
        "undersampling artefact is {adj}: aliased copies and streaks run along the phase-encode "
        "direction")},
    "motion": {"MR": (
        "{adj} motion artefact smears and ghosts the anatomy along the phase-encode direction",
        "there is {adj} patient-motion artefact, with ghost replicas along the phase-encode "
        "direction")},
    "ghosting": {"MR": (
        "a {adj} N/2 ghost of the anatomy is displaced by half the field of view",
        "{adj} ghosting places a replica of the anatomy half a field of view away")},
    "spike": {"MR": (
        "a {adj} herringbone stripe pattern from a k-space spike overlies the image",
        "{adj} corduroy striping, typical of a k-space spike, crosses the image")},
    "bias_field": {"MR": (
        "{adj} intensity inhomogeneity (bias field) shades the tissue, {where}",
        "the signal is {adv} non-uniform from RF inhomogeneity, {where}")},
    "streak": {"CT": (
        "{adj} streak artefacts radiate from high-contrast edges {where}, as from too few "
        "projection views",
        "there are {adj} view-aliasing streaks {where}")},
    "low_contrast": {"": (
        "contrast is {adv} reduced: tissue differences are compressed",
        "there is {adj} loss of contrast, so tissues are less clearly differentiated")},
    "illumination": {"OP": (
        "illumination is {adv} uneven, darkening the fundus {where}",
        "there is {adj} uneven illumination with shading {where}")},
}
"""Finding phrases per type and modality group ("" = any modality)."""

NORMAL_WORDS: dict[str, dict[str, str]] = {
    "noise": {"CT": "noise is low", "MR": "the signal-to-noise ratio is good",
              "PT": "counts are adequate, with little noise", "XR": "quantum mottle is minimal",
              "OP": "the fundus is free of visible sensor noise", "": "noise is low"},
    "blur": {"": "edges are sharp"},
    "low_resolution": {"": "fine detail is resolved"},
    "streak": {"CT": "there are no streak artefacts"},
    "aliasing": {"MR": "there is no wrap-around"},
    "motion": {"MR": "there is no motion artefact"},
    "ghosting": {"MR": "there is no ghosting"},
    "spike": {"MR": "there is no spike artefact"},
    "bias_field": {"MR": "the signal is uniform"},
    "low_contrast": {"": "contrast is adequate"},
    "illumination": {"OP": "illumination is even"},
}
"""How the text says a finding type is absent."""

NORMAL_ORDER = ("noise", "blur", "streak", "aliasing", "motion", "ghosting", "low_contrast",
                "illumination", "bias_field", "low_resolution", "spike")
"""Which absent types the text mentions first (at most three)."""

SYNTAX_NOISE = r"\s*\(Process[^)]*\)|\s*Image Compression"
"""Parts of a transfer syntax's name the text leaves out ("JPEG 2000 Image Compression" →
"JPEG 2000", "JPEG Baseline (Process 1)" → "JPEG Baseline")."""

METHOD_NAMES = {"ISO_10918_1": "JPEG", "ISO_14495_1": "JPEG-LS", "ISO_15444_1": "JPEG 2000",
                "ISO_13818_2": "MPEG-2", "ISO_14496_10": "H.264"}
"""DICOM's Lossy Image Compression Method codes (0028,2114), as the text names them."""

NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _group(modality: str) -> str:
    return "XR" if modality in ("CR", "DX") else modality


def _pick(options: tuple[str, ...], key: str) -> str:
    """A deterministic choice among options, seeded by `key`."""
    digest = hashlib.sha256(key.encode()).digest()
    return options[digest[0] % len(options)]


def _by_modality(table: dict[str, Any], modality: str) -> Any:
    return table.get(_group(modality), table.get(""))


def finding_clause(finding: Finding, modality: str, key: str, streaks: bool = False) -> str:
    """The clause describing one finding (no capital, no full stop); `streaks`: the image
    also has a streak finding (a CT noise level quoted then says it counts them)."""
    options = _by_modality(PHRASES.get(finding.type, {}), modality) or (
        "{adj} " + finding.type.replace("_", " ") + " is present {where}",)
    adj = _pick(SEVERITY_WORDS[finding.severity], key + "adj")
    adv = _pick(SEVERITY_ADVERBS[finding.severity], key + "adj")
    text = _pick(options, key).format(adj=adj, adv=adv, where=WHERE.get(finding.location, ""))
    return " ".join(text.replace(" ,", ",").split()) + _measured(finding, modality, streaks)


def _measured(finding: Finding, modality: str, streaks: bool = False) -> str:
    """A CT noise finding's level in HU in the flattest tissue (the flat-window σ of the classical
    measures, when they were computed), else nothing. It reads 7-px windows: on CT's correlated
    noise about a quarter below the std of a large uniform ROI (`iqms.noise_sigma_flat`); with
    `streaks`, the streaks crossing those windows count in it (a 24-view CT_small read σ 48 HU,
    called mild noise beside moderate streaks, where the clean file reads 21 HU), and the text
    says so."""
    sigma = (finding.evidence or {}).get("noise_sigma_flat")
    if finding.type != "noise" or _group(modality) != "CT" or sigma is None \
            or not math.isfinite(float(sigma)) or sigma <= 0:
        return ""
    level = f"{sigma:.3g}" if sigma >= 1000 else f"{sigma:.0f}"  # no 30-digit number
    return f" (σ ≈ {level} HU in the flattest tissue{', streaks included' if streaks else ''})"


def _sentence(clause: str) -> str:
    return clause[0].upper() + clause[1:] + "."


def named(findings: list[Any]) -> list[str]:
    """Findings as a sentence names them: "mild blur", "moderate low resolution"."""
    return [f"{f.severity} {f.type.replace('_', ' ')}" for f in findings]


def coverage_sentence(gaps: dict[str, Any]) -> str:
    """The sentence on an unevenly spaced series: its gaps and the slices they would hold, or
    the range of its steps."""
    spacing, largest = gaps["spacing_mm"], gaps["largest_step_mm"]
    n, count = int(gaps.get("missing_slices") or 0), int(gaps.get("gaps") or 0)
    if n:
        where = (f"one step is {largest:g} mm" if count == 1
                 else f"{NUMBERS[count] if count < len(NUMBERS) else count} steps reach up to "
                      f"{largest:g} mm")
        return (f"Coverage is incomplete: the slices are {spacing:g} mm apart but {where}, so "
                f"about {NUMBERS[n] if n < len(NUMBERS) else n} slice{'s' * (n != 1)} "
                f"appear{'s' * (n == 1)} to be missing.")
    return (f"Slice spacing is uneven ({gaps['smallest_step_mm']:g}–{largest:g} mm between "
            "neighbouring slices), so distances along the slice axis are approximate.")


def said_normal(normal: list[str], outliers: dict[str, Any] | None) -> list[str]:
    """The finding types the text may call fine: not noise where some slices are noisy, not
    spikes where some are spiked."""
    seen = {"noise": bool((outliers or {}).get("slices")), "spike": bool(spiked(outliers))}
    return [t for t in normal if not seen.get(t)]


def outliers_sentence(outliers: dict[str, Any]) -> str:
    """The sentence on a volume's slices noisier than those around them or marked by a spike
    (`medq.assess.noisy_slices`), which its salient slices may not show."""
    from medq.assess.noisy_slices import runs_text

    compared = outliers["compared"]
    clauses = []
    if outliers.get("slices"):
        clauses.append(f"noise is raised on {runs_text(outliers, compared)}, up to "
                       f"{outliers['ratio']:.1f} times that of the slices around them")
    if spiked(outliers):
        clauses.append("spike noise lays herringbone stripes over "
                       f"{runs_text(outliers['spiked'], compared)}")
    text = "; ".join(clauses)
    return f"{text[0].upper()}{text[1:]}; the assessed slices may not show it."


def ratio_text(lossy: dict[str, Any]) -> str:
    """A `lossy_compression` record's ratio as "339:1" ("" when none is stated)."""
    ratio = lossy.get("ratio")
    return f"{ratio:.0f}:1" if isinstance(ratio, (int, float)) and ratio >= 1.5 else ""


DETAIL_LOSS = ("blur", "low_resolution")
"""Findings lossy compression can cause: the storage sentence names it as a possible cause."""


def storage_sentence(lossy: dict[str, Any], findings: list[Finding] = ()) -> str:
    """The sentence on a lossy-compressed file: how (transfer syntax, else method) and ratio,
    and, with a blur or low-resolution finding, that the compression may account for it."""
    method = lossy.get("method")
    how = lossy.get("transfer_syntax") or METHOD_NAMES.get(str(method), method)
    how = re.sub(SYNTAX_NOISE, "", how) if how else ""
    at = f" at about {ratio_text(lossy)}" if ratio_text(lossy) else ""
    lead = (f"The file is stored with lossy {how} compression" if lossy.get("stated_by")
            == "file format" else "The file header states lossy compression"
            + (f" ({how})" if how else ""))
    if any(f.type in DETAIL_LOSS for f in findings):
        return f"{lead}{at}, which may account for the loss of fine detail."
    return f"{lead}{at}, which can remove fine detail and add block or ringing artefacts."


ARTEFACTS = ("streak", "aliasing", "motion", "ghosting", "spike", "bias_field")
"""Finding types the no-finding sentence calls artefacts."""


def nothing_found(modality: str) -> str:
    """The sentence for an image without findings, naming only what is looked for in its
    modality (a fundus photograph is not checked for artefacts)."""
    from medq.assess.assessment import finding_types_for

    checked = set(finding_types_for(modality))
    words = [word for types, word in ((("noise",), "noise"), (("blur",), "blur"),
                                      (ARTEFACTS, "artefact"),
                                      (("illumination",), "uneven illumination"))
             if checked.intersection(types)]
    return f"No definite {joined(words or ['noise', 'blur', 'artefact'], 'or')} is identified."


def compose(findings: list[Finding], normal: list[str], verdict: str, modality: str,
            slices: list[dict[str, Any]] | None = None, shape: list[int] | None = None,
            lossy: dict[str, Any] | None = None, gaps: dict[str, Any] | None = None,
            outliers: dict[str, Any] | None = None) -> str:
    """The report text: finding sentences, what is fine, a series' missing slices or uneven
    spacing, a volume's noisy slices, the file's lossy compression (when its header states it),
    the slices assessed (3D), then the verdict."""
    key = "|".join([modality, verdict, *(f"{f.type}:{f.severity}:{f.location}"
                                          for f in findings)])
    sentences = []
    room = 4  # sentences before the verdict
    streaky = any(f.type == "streak" for f in findings)
    for i, f in enumerate(findings[:2]):
        clause = finding_clause(f, modality, f"{key}#{i}", streaky)
        if i == 0:
            combined = f.severity == "mild" and verdict == "reject" and len(findings) > 1
            clause += ", " + _pick(COMBINED if combined else CONSEQUENCE[f.severity], key + "c")
        sentences.append(_sentence(clause))
    facts = ([coverage_sentence(gaps)] if gaps else []) + \
        ([outliers_sentence(outliers)] if found(outliers) else [])  # always said
    rest = findings[2:]  # at most five sentences with the verdict: the facts come first
    if len(rest) == 1 and len(sentences) + len(facts) < room:
        sentences.append(_sentence(finding_clause(rest[0], modality, f"{key}#2", streaky)))
    elif rest and len(sentences) + len(facts) < room:
        sentences.append(_sentence("Also present: " + joined(named(rest))))
    fine = [w for t in NORMAL_ORDER if t in said_normal(normal, outliers)
            and (w := _by_modality(NORMAL_WORDS.get(t, {}), modality))][:3]
    if fine and len(sentences) < room - 1 and len(sentences) + len(facts) < room:
        lead = "Otherwise, " if findings else ""
        sentences.append(_sentence(lead + joined(fine)))
    elif not findings and not found(outliers):
        sentences.append(nothing_found(modality))
    sentences += facts
    if lossy and len(sentences) < room:
        sentences.append(storage_sentence(lossy, findings))
    if slices and shape and len(sentences) < room:
        n = len(slices)
        count = NUMBERS[n] if n < len(NUMBERS) else str(n)
        sentences.append(f"All {count} slices of the volume were assessed." if n == shape[0] > 1
                         else f"{count.capitalize()} salient slice{'s' * (n != 1)} across the "
                         f"{shape[0]}-slice volume {'were' if n != 1 else 'was'} assessed.")
    sentences.append(f"Overall, the quality of this image is {verdict}.")
    return " ".join(sentences)
