"""Assess → describe → restore → re-assess, with a quality gate.

1. **Assess** the image (`medq.assess`, unless an Assessment is given) and **describe** it
   (`medq.describe.report_from`).
2. **Gate**: the problems to fix are the restorable findings (`condition.RESTORABLE`) of the
   description, unless all of them are mild findings the network repairs by adding detail
   (`gate.DETAIL_FINDINGS`: blur, low resolution, motion). When there are none, the image is
   returned unchanged and the note says so: a good image is never quietly altered. The
   network's own degradation-type prior is reported (`detected`: types with probability ≥
   `PRIOR_THRESHOLD`) but does not open the gate: in the shipped network it does not yet
   separate clean from degraded images (see its model card and `medq bench restore`'s gate
   numbers); `gate_on_prior=True` lets it.
3. **Restore** with the chosen method: `auto`/`net` (the shipped network, conditioned on the
   description; when the description reports low resolution or blur, one back-projection
   step makes the result, acquired again, give the input: `consistency`; for an MR image
   restored for noise alone, the correction is scaled by Stein's unbiased risk estimate, and
   `auto` takes BM3D's output inside the body instead where that estimate reads it closer to
   the clean image: `sure`, `RestoreResult.denoiser`), or the classical `bm3d`, `nlm`, `tv`.
   The step log says what the consistency step did (`consistency`: its acquisition and
   parameter). A network that also segments (a `labels` output: the joint
   restoration + segmentation the `segment` stage will ship) hands back its label map
   (`RestoreResult.labels`).
4. **Re-assess** the result; when the score did not rise, the note says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medq.assess.assessment import as_assessed
from medq.assess.models.blocks import FINDING_TYPES
from medq.errors import InvalidParameter
from medq.image import MedImage
from medq.io.arrays import finite_pixels, with_nonfinite
from medq.io.polarity import as_displayed, as_stored, physical_floor, within_storable
from medq.restore import condition, sure
from medq.restore.apply import (
    apply_planes,
    as_restored,
    normalised_planes,
    plane_axis,
    plane_spacing,
    prior_of,
)
from medq.restore.checks import DENOISED, took_anatomy
from medq.restore.classical import METHODS as CLASSICAL
from medq.restore.consistency import described, reports_noise
from medq.restore.gate import to_repair
from medq.restore.notes import restored_note, unchanged_note, why_forced

METHODS = ("auto", "net", *CLASSICAL)
"""Values of `method` (`auto` is the network, gated, with BM3D for MR noise where SURE reads
it better; `net` the network alone)."""

PRIOR_THRESHOLD = 0.5
"""Prior probability at which the network's own detection counts as a finding to fix."""


@dataclass
class RestoreResult:
    """What `medq restore` did to one image."""

    image: MedImage
    changed: bool
    method: str
    before: float | None
    after: float | None
    findings_addressed: list[str]
    note: str
    detected: dict[str, float] = field(default_factory=dict)
    description: str = ""
    path: str | None = None
    consistency: dict[str, Any] | None = None
    """What the consistency step did (`consistency.consistent`), if it ran."""
    labels: np.ndarray | None = None
    """The label map of a network that also segments (int16, the input's grey shape: `(y, x)`
    or `(z, y, x)`), from the planes it restored; None for other methods, for a network without
    a label output, for a photograph, and when the gate left the image unchanged."""
    model: str | None = None
    """The restoration network that restored the image, as named (a shipped name, or the
    checkpoint or run folder given); None for a classical method and when the gate left the
    image unchanged."""
    sure_scale: float | None = None
    """The share of the network's correction kept for an MR image restored for noise alone
    (SURE's α, `medq.restore.sure`; the mean over the planes); None otherwise."""
    denoiser: str | None = None
    """"bm3d" where `auto` restored MR noise with BM3D inside the body: SURE read BM3D's output
    closer to the clean image there than the network's scaled correction
    (`sure.classical_choice`); outside the body the network's stands. None otherwise."""
    forced: str = ""
    """Why a forced restoration that addressed no finding ran all the same, as its note says
    it (`why_forced`); not in the JSON."""

    def rescored(self, after: float | None) -> RestoreResult:
        """This result with another re-assessed score and the note that says it: `medq restore`
        scores the restored file as written (its pixels rounded to what the file holds)."""
        if not self.changed:
            return self
        note = restored_note(self.method, self.findings_addressed, self.before, after,
                             self.image.meta.get("lossy_compression"), self.forced,
                             self.sure_scale, self.denoiser)
        return replace(self, after=after, note=note)

    @property
    def array(self) -> np.ndarray:
        """The result's pixels (the input's when the gate left it unchanged), as `image.array`;
        a colour array given as 0–255 or 0–65535 comes back on that scale (`image` keeps
        MedImage's 0–1), and an array given with an axis of one (`(1, y, x)`) in that shape."""
        from medq.io.arrays import on_given_scale

        out = on_given_scale(self.image)
        given = self.image.meta.get("array_shape")
        return out.reshape(given) if given and int(np.prod(given)) == out.size else out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (without the pixels)."""
        return {"path": self.path, "method": self.method, "changed": self.changed,
                "before": self.before, "after": self.after,
                "findings_addressed": list(self.findings_addressed), "note": self.note,
                "detected": dict(self.detected), "description": self.description,
                "consistency": self.consistency, "sure_scale": self.sure_scale,
                "denoiser": self.denoiser,
                "labels": label_summary(self.labels),
                "model": self.model}


def label_summary(labels: np.ndarray | None) -> dict[str, Any] | None:
    """JSON summary of a label map: its shape and the pixel count of each class present."""
    if labels is None:
        return None
    classes, counts = np.unique(labels, return_counts=True)
    return {"shape": list(labels.shape),
            "pixels": {str(int(c)): int(n) for c, n in zip(classes, counts, strict=True)}}


def _prior_findings(prior: dict[str, np.ndarray], threshold: float) -> dict[str, float]:
    """Restorable finding types the prior detects, with their probabilities."""
    if not prior:
        return {}
    return {t: round(float(prior["presence"][i]), 3) for i, t in enumerate(FINDING_TYPES)
            if t in condition.RESTORABLE and prior["presence"][i] >= threshold}


def _score(assessment: Any) -> float | None:
    return None if assessment is None else float(assessment.score)


def _assess(image: MedImage, assessor: Any, *, measures: bool | None, describe: bool) -> Any:
    """Assess with the given Assessor's model, else medq's default one (loaded once): the first
    assessment takes the detector's features in its loader (`Assessor(describe=True)`) and the
    classical measures as the Assessor does (`measures=None`; the default one takes them), the
    second, whose score alone is read, takes neither (`measures=False`)."""
    if assessor is None:
        from medq.assess import shared_assessor
        from medq.assess.weights import DEFAULT_MODEL

        assessor = shared_assessor(DEFAULT_MODEL, True, None, True)
    return assessor.with_settings(measures=measures, describe=describe).assess(image)


def check_assessment(assessment: Any, image: MedImage) -> None:
    """InvalidParameter unless `assessment` is None or an Assessment of an image of `image`'s
    dimension and shape (`medq.assess.assessment.check_fits`)."""
    from medq.assess.assessment import Assessment, check_fits

    if assessment is None:
        return
    if not isinstance(assessment, Assessment):
        raise InvalidParameter(f"assessment must be the Assessment of this image "
                               f"(medq.assess(image)) or None, got {type(assessment).__name__}")
    check_fits(assessment, image)


def restore(image: MedImage, method: str = "auto", assessment: Any = None, *,
            model: str | Path | None = None, assessor: Any = None, reassess: bool = True,
            force: bool = False, threshold: float = PRIOR_THRESHOLD,
            gate_on_prior: bool = False, consistency: bool = True,
            progress: Callable[[int, int], None] | None = None) -> RestoreResult:
    """Assess, describe, gate, restore and re-assess one image (see the module docstring).

    `force` skips the gate (the method runs even when nothing was found); `consistency=False`
    returns the network's output without the consistency step; `reassess=False`
    skips the second assessment (`after` is then None); `progress(done, total)` is called as
    planes (a volume's slices, a photograph's channels) are restored: one by one by a classical
    method, four at a time by the network, and for MR noise alone (where SURE and BM3D's
    choice follow the network) BM3D's planes one by one, the rest at the end (BM3D's
    comparison on up to three planes counts none).
    """
    from medq.describe import report_from
    from medq.restore.models import DEFAULT_RESTORER, load_restorer

    image = finite_pixels(image)  # NaN/inf set aside as a file's are, handed back at the end
    named, method = method, str(method).strip().lower()  # "BM3D" as bm3d
    if method not in METHODS:
        raise InvalidParameter(f"unknown method {named!r}; choose from {', '.join(METHODS)}")
    check_assessment(assessment, image)
    assessment = assessment if assessment is not None else _assess(
        image, assessor, measures=None, describe=True)
    seen = as_assessed(image, assessment)  # a guessed modality too; the result keeps the file's
    report = report_from(assessment, seen)
    net, _ = load_restorer(model or DEFAULT_RESTORER)
    shown = as_displayed(seen)  # a MONOCHROME1 radiograph restored as it is shown
    planes = normalised_planes(shown)
    detected = _prior_findings(prior_of(net, planes), threshold)
    found = set(to_repair(report)) | (set(detected) if gate_on_prior else set())
    addressed = sorted(found, key=FINDING_TYPES.index)
    if method in CLASSICAL:  # denoisers: blur, aliasing or streaks they leave as they are
        addressed = [a for a in addressed if a in DENOISED]
    before = _score(assessment)
    common = {"method": method, "before": before, "detected": detected,
              "description": report.text, "path": image.source}
    if not addressed and not force:
        note = unchanged_note(report, method, found)
        return RestoreResult(_as_it_was(image), False, after=before, findings_addressed=[],
                             note=note, **common)
    done: dict[str, Any] = {}
    labels: list[np.ndarray] = []
    kept: list[float | None] = []  # SURE's α per plane, where it scaled the correction
    denoiser: str | None = None  # what replaced the network's output (`Restored.denoiser`)
    finished = [0]  # planes restored so far, of len(planes)

    def tick(n: int) -> None:
        finished[0] += n
        if progress is not None and n > 0:
            progress(finished[0], len(planes))

    if method in CLASSICAL:
        from medq.restore.classical import classical_planes

        array = apply_planes(shown, lambda ps: classical_planes(method, ps, tick))
    else:
        cond = condition.from_report(report, seen.modality)
        acquisitions = described(report, plane_spacing(image)) if consistency else {}
        noisy = reports_noise(report)

        scaled = sure.applies(seen.modality, addressed)  # MR noise alone: keep what is noise
        compare = scaled and method == "auto"  # and take BM3D's where SURE reads it better

        def restore_planes(ps: list[np.ndarray]) -> list[np.ndarray]:
            nonlocal denoiser
            start = finished[0]
            restored = as_restored(net, ps, cond, acquisitions, noisy, scaled, compare, tick)
            tick(start + len(ps) - finished[0])  # planes not yet counted (compared, or SURE's)
            labels.extend(restored.extra.get("labels", ()))
            kept.extend(restored.alphas)
            denoiser = restored.denoiser or denoiser
            done.update(restored.consistency)
            return restored.planes

        array = apply_planes(shown, restore_planes)
    if image.is_rgb:  # a colour outside 0–1 (MedImage's colour scale) is no colour
        array = np.clip(array, 0.0, 1.0)
    checked = not (image.is_rgb or force or method in CLASSICAL)  # a network's grey result
    if checked and (share := took_anatomy(addressed, shown.array, array, seen.modality)):
        who = "The restoration" if denoiser else "The network"
        note = (f"{who} took out {share:.1f} times the image's own noise, so more than "
                "noise (anatomy smoothed away); the image is returned unchanged (--force keeps "
                "the restoration).")
        return RestoreResult(_as_it_was(image), False, after=before, findings_addressed=[],
                             note=note, **common)
    scale = _sure_scale(kept)
    if kept and all(a == 0.0 for a in kept) and not denoiser:  # SURE kept none: no restoration
        note = ("The network's correction is not the noise it was asked to remove (SURE kept "
                "none of it); the image is returned unchanged.")
        return RestoreResult(_as_it_was(image), False, after=before, findings_addressed=[],
                             note=note, **scale, **common)
    array = as_stored(array, image)  # the file's own values: physical, and what it can hold
    array = with_nonfinite(within_storable(physical_floor(array, image), image), image)
    network = str(model or DEFAULT_RESTORER) if method in ("auto", "net") else None
    step = {"step": "restore", "method": method, "findings": addressed, "model": network,
            "consistency": done or None, **scale, **({"denoiser": denoiser} if denoiser else {})}
    restored = image.with_array(array, step=step)
    after = _score(_assess(restored, assessor, measures=False, describe=False)) \
        if reassess else None
    lossy = image.meta.get("lossy_compression")
    forced = "" if addressed else why_forced(report, method, found)
    return RestoreResult(restored, True, after=after, findings_addressed=addressed,
                         note=restored_note(method, addressed, before, after, lossy, forced,
                                            scale.get("sure_scale"), denoiser),
                         consistency=done or None, labels=_label_map(image, labels), **scale,
                         model=network, forced=forced, denoiser=denoiser, **common)


def _sure_scale(alphas: list[float | None]) -> dict[str, float]:
    """`{"sure_scale": mean α}` over the planes whose α SURE estimated, else nothing."""
    found = [a for a in alphas if a is not None]
    return {"sure_scale": round(float(np.mean(found)), 3)} if found else {}


def _as_it_was(image: MedImage) -> MedImage:
    """The image returned unchanged (with the file's NaN/inf pixels, as they were)."""
    if image.meta.get("nonfinite"):
        return image.evolve(array=with_nonfinite(image.array, image))
    return image


def _label_map(image: MedImage, planes: list[np.ndarray]) -> np.ndarray | None:
    """The per-plane label maps as one array of the image's grey shape (None for none, and for
    a photograph, whose channels are restored one by one)."""
    if not planes or image.is_rgb:
        return None
    return np.moveaxis(np.stack(planes), 0, plane_axis(image)) if image.is_volume else planes[0]
