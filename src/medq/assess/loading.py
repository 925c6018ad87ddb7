"""The per-input work of an assessment that needs no model: load, evidence rows, classical measures.

This is most of the cost of `medq assess` (the evidence and the measures are NumPy/SciPy work
that mostly holds the GIL), so `Assessor.assess_many` runs it in worker processes for larger
batches (`medq.workers.worker_pool`) while the main process runs the model. Everything here is
a plain function of its arguments, so a worker needs nothing but this module.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from medq.assess.evidence import evidence_pass
from medq.assess.prompts import Prompts
from medq.assess.slices import input_indices
from medq.errors import InputError, MedqError
from medq.image import GRADED_MODALITIES, MedImage

Item = MedImage | str | Path | np.ndarray
"""An input: an image already in memory, a path (file, or a directory holding one series) or a
NumPy array (`medq.io.arrays.from_array`)."""

T = TypeVar("T")

POOL_MIN_ITEMS = 2
"""A single input is loaded in the calling process; batches go to a worker pool forked for the
call (forking the workers is cheap next to one slice's evidence)."""


@dataclass
class Loaded:
    """One input, loaded and measured: the image (of a volume only its planes at `indices`, see
    `slim`), its slice indices, evidence rows, measures, prompts and full shape."""

    image: MedImage
    indices: list[int]
    rows: np.ndarray
    prompts: Prompts
    shape: tuple[int, ...]
    measures: dict[str, float | None] = field(default_factory=dict)
    features: np.ndarray | None = None
    """The description's full-plane detector features (`evidence.feature_vector`), when asked
    for (`load_measured`'s `features`)."""
    noisy_slices: dict[str, Any] | None = None
    """A volume's slices noisier than those around them (`medq.assess.noisy_slices`), read
    with the classical measures; None when not compared (2D images, without measures)."""
    noise_weight: float = 0.0
    """How fully its noise is also read on the full planes (`features`): its views'
    `evidence.EvidencePass.noise_weight` (the noise they average away), for a modality with a
    finding type for it (`detector.PIXEL_TYPES`), else 0."""


def slim(image: MedImage, indices: list[int]) -> MedImage:
    """A volume reduced to its planes at `indices` (what the model reads once the evidence,
    measures and prompts are taken), so a chunk of loaded CT series holds a few slices each
    instead of whole volumes; 2D images as they are."""
    if not image.is_volume:
        return image
    return image.evolve(array=np.ascontiguousarray(image.array[indices]))


def plane_measures(image: MedImage, indices: list[int],
                   streaks: list[float] | None = None) -> list[dict[str, float]]:
    """Classical measures of a 2D image, or of each of a volume's salient slices; `streaks`:
    each plane's CT streak index when already taken (`evidence.evidence_pass`)."""
    from medq.assess.measures import compute_measures

    arrays = [image.array[i] for i in indices] if image.is_volume else [image.array]
    return [compute_measures(a, image.modality, streak=s)
            for a, s in zip(arrays, streaks or [None] * len(arrays), strict=True)]


def classical_measures(image: MedImage, indices: list[int],
                       streaks: list[float] | None = None,
                       planes: list[dict[str, float]] | None = None) -> dict[str, float | None]:
    """Classical measures of a 2D image, or their mean over a volume's salient slices
    (`plane_measures`, or its `planes` when already taken)."""
    from medq.assess.assessment import clean_number

    values = planes if planes is not None else plane_measures(image, indices, streaks)
    merged = {}
    for key in values[0]:
        finite = [v[key] for v in values if np.isfinite(v[key])]
        merged[key] = clean_number(np.mean(finite)) if finite else None
    return merged


MIN_SIDE = 16
"""Smallest in-plane side (pixels) medq assesses: the measures' windows and the model's
resampling need a few pixels of content (a volume may have any number of slices)."""


NOT_MAGNITUDE = frozenset({"P", "PHASE", "PHASE MAP", "REAL", "IMAGINARY"})
"""DICOM ImageType values (and Complex Image Components) of an MR image that is not a magnitude
image: Siemens writes P for phase, Philips PHASE MAP, enhanced MR its complex component."""


NOT_MAGNITUDE_BIDS = {"part": frozenset({"phase", "real", "imag"}),
                      "suffix": frozenset({"phasediff", "phase1", "phase2"})}
"""BIDS names of an MR image that is not a magnitude image: the `part` entity's values and the
field map suffixes of phase images."""


def phase_like(image: MedImage) -> str | None:
    """What the header, its sidecar or its BIDS name says when an MR image is a phase, real or
    imaginary image, else None."""
    if image.modality != "MR":
        return None
    part, suffix = image.meta.get("bids_part"), image.meta.get("bids_suffix")
    if part in NOT_MAGNITUDE_BIDS["part"]:
        return f"BIDS part-{part}"
    if suffix in NOT_MAGNITUDE_BIDS["suffix"]:
        return f"BIDS suffix {suffix}"
    component = str(image.meta.get("complex_component") or "").upper()
    if component in NOT_MAGNITUDE:
        return f"Complex Image Component {component}"
    kinds = [str(v).upper() for v in image.meta.get("image_type") or []]
    shown = "\\".join(kinds)  # as DICOM writes a multi-valued string
    return f"ImageType {shown}" if NOT_MAGNITUDE & set(kinds[2:]) else None


def check_assessable(image: MedImage, told: bool = False) -> None:
    """Raise InvalidImage for an image with nothing to assess (too small in-plane, or constant)
    and UnsupportedImage for a derived map (`NOT_ACQUIRED`: a DICOM SEG, an RT dose grid), an
    MR phase, real or imaginary image (`phase_like`) and, unless the user `told` medq what to
    read it as (`--modality`), a file stating a modality medq does not grade (`GRADED`) or a
    label map or mask given by mistake (`label_values`)."""
    from medq.errors import InvalidImage, UnsupportedImage
    from medq.io.dicom_tags import GRADED, NOT_ACQUIRED, PHOTOGRAPHS

    stated = str(image.meta.get("dicom_modality") or "").upper()
    if stated in NOT_ACQUIRED:
        raise UnsupportedImage(f"{NOT_ACQUIRED[stated]} (Modality {stated}), not an acquired "
                               "image: nothing to grade", image.source)
    if "dicom_modality" in image.meta and stated not in GRADED and not told:
        raise UnsupportedImage(f"the file states Modality {stated}, which medq does not grade "
                               "(CT, MR, PET, radiographs, photographs); the --modality of "
                               "medq assess, describe, restore or qc run reads it as one of "
                               "those",
                               image.source)
    if image.is_rgb and stated not in PHOTOGRAPHS | {"OT", "SC", ""} and not told:
        raise UnsupportedImage(f"colour pixels in a file stating Modality {stated} (a screen "
                               "capture or a fused display?): medq grades such images in grey; "
                               "the --modality OP of medq assess, describe, restore or qc run "
                               "reads it as a photograph", image.source)
    if image.modality not in (*GRADED_MODALITIES, "OT"):  # a MedImage made as US, say
        raise UnsupportedImage(f"modality {image.modality} is not one medq grades (CT, MR, PET, "
                               "radiographs, photographs): name one of those, or OT",
                               image.source)
    said = phase_like(image)
    if said:
        raise UnsupportedImage(f"not a magnitude image ({said}): medq assesses magnitude MR "
                               "images", image.source)

    plane = image.shape[-3:-1] if image.is_rgb else image.shape[-2:]
    if min(plane) < MIN_SIDE:
        what = (f"a stack of {image.shape[0]} lines of {max(plane)} pixels (slices of "
                f"{plane[0]}×{plane[1]}), not of images" if image.is_volume and min(plane) == 1
                else f"image is {plane[0]}×{plane[1]} pixels in-plane")
        raise InvalidImage(f"{what}; medq assesses images of at least {MIN_SIDE}×{MIN_SIDE} "
                           "pixels in-plane", image.source)
    a = image.array
    with warnings.catch_warnings():  # all-NaN: nan, checked below; reductions copy nothing
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if not (np.isfinite(lo) and np.isfinite(hi)):  # ±inf or all NaN: the finite values decide
        finite = a[np.isfinite(a)]
        if finite.size == 0:
            raise InvalidImage("image has no finite pixel value, nothing to assess",
                               image.source)
        lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:
        raise InvalidImage(f"image is blank: every pixel is {lo:g}, nothing to assess",
                           image.source)
    labels = label_values(image) if image.modality == "OT" and not told else None
    if labels is not None:
        shown = ", ".join(f"{v:g}" for v in labels[:6]) + (", …" if labels.size > 6 else "")
        raise UnsupportedImage(f"a label map or mask, not an image: its pixels take only "
                               f"{labels.size} whole values ({shown}); naming its modality "
                               "(--modality on the command line, modality= in Python) grades "
                               "it as an image all the same",
                               image.source)


MAX_LABELS = 16
"""Most distinct values a label map or mask has (an image has hundreds or more)."""


def label_values(image: MedImage) -> np.ndarray | None:
    """The distinct values of a grey image that looks like a label map or mask (a segmentation
    given by mistake: at most `MAX_LABELS` values, all whole numbers), else None. Pictures (PNG,
    JPEG, TIFF: `meta['bit_depth']`) and DICOM files are not: a quantised or thresholded
    picture, or a file stating Modality OT, holds few values and is still an image. A large
    image is first read on a stride, and only one that passes there is read whole."""
    if image.is_rgb or "bit_depth" in image.meta or "dicom_modality" in image.meta:
        return None
    a = image.array.reshape(-1)
    for values in (a[:: max(1, a.size // 262_144)], a):
        found = np.unique(values[np.isfinite(values)])
        if found.size > MAX_LABELS or not np.array_equal(found, np.round(found)):
            return None
        if values.size == a.size:
            break
    return found


def captured(call: Callable[[], T], path: str | Path | None) -> T | MedqError:
    """`call()`, with a failure returned as a typed error naming `path` instead of raised."""
    try:
        return call()
    except MedqError as e:
        return e
    except (ValueError, OSError) as e:  # a reader's own error: still the input's fault
        return InputError(f"cannot assess ({type(e).__name__}: {e})", path)


def load_measured(item: Item, modality: str | None, measures: bool,
                  extras: tuple[str, ...] = (),
                  features: tuple[str, ...] | None = None) -> Loaded | MedqError:
    """Load one input, its evidence rows (the model's measure input and the evidence score's;
    `extras`: the row extras of a model trained on them, `evidence.ROW_EXTRAS`), its prompts
    (tags, gaps filled by the shipped prompt classifier; a grey image whose file states no
    modality is read as the one the classifier is sure of), with `measures` its classical
    measures and the volume's noisy slices (`noisy_slices`), and with `features` (the
    detector's extras), or for planes over `evidence.LARGE_PLANE` or whose views average
    noise away (`noise_weight`), the description's full-plane detector features, which read the
    measures they share (and the evidence pass's features of a
    plane no larger than its view: `EvidencePass.whole`); a volume keeps only its salient planes
    (`slim`); a failure is returned as a typed error (a uniform QA phantom as
    `phantom.UniformPhantom`, with its ROI measures)."""
    from medq.assess.assessment import finding_types_for
    from medq.assess.detector import PIXEL_TYPES, load_detector
    from medq.assess.evidence import feature_vector, reads_full_planes
    from medq.assess.guess import guessed_modality, with_guessed_modality
    from medq.assess.noisy_slices import located, noisy_slices
    from medq.assess.phantom import refuse_phantom
    from medq.assess.prompt_classifier import filled_with
    from medq.assess.prompts import prompts_from_image
    from medq.io.arrays import as_image
    from medq.io.polarity import as_displayed

    def run() -> Loaded:
        image = as_image(item, modality=modality)
        check_assessable(image, modality is not None)
        image = as_displayed(image)  # a MONOCHROME1 radiograph as it is shown
        found = guessed_modality(image)  # one guess: for the prompt and the reading
        image = with_guessed_modality(image, found)
        indices = input_indices(image)
        refuse_phantom(image, indices)  # a uniform QA phantom: its ROI numbers, no grade
        noisy = any(t in finding_types_for(image.modality) for t in PIXEL_TYPES)
        taken = evidence_pass(image, indices, extras=extras, compare=noisy)  # streaks once
        planes = plane_measures(image, indices, taken.streaks) if measures else None
        weight = taken.noise_weight  # the noise the views average away
        wanted = load_detector().extras if features is None and (
            weight > 0.0 or reads_full_planes(image)) else features
        vector = None if wanted is None else feature_vector(
            image, indices if image.is_volume else None, wanted, planes, taken.whole)
        outliers = located(noisy_slices(image.array, image.modality), image.meta) \
            if measures and image.is_volume and not image.is_rgb else None
        return Loaded(slim(image, indices), indices, taken.rows,
                      prompts_from_image(image, filled_with(found)), tuple(image.shape),
                      classical_measures(image, indices, planes=planes) if measures else {},
                      vector, outliers, weight)

    return captured(run, item if isinstance(item, (str, Path)) else None)


def load_many(items: list[Item], modality: str | None, measures: bool,
              pool: Executor | None, extras: tuple[str, ...] = (),
              features: tuple[str, ...] | None = None) -> list[Any]:
    """`load_measured` for every item, in order: futures when `pool` is given, else results."""
    from concurrent.futures import BrokenExecutor

    out: list[Any] = []
    for item in items:
        try:
            if pool is not None:
                out.append(pool.submit(load_measured, item, modality, measures, extras,
                                       features))
                continue
        except BrokenExecutor:  # a worker died earlier: go on in this process
            pool = None
        out.append(load_measured(item, modality, measures, extras, features))
    return out


def resolve(pending: list[Any]) -> list[Loaded | MedqError]:
    """The results of `load_many` (waits on futures; a crashed worker is an internal error).

    `load_measured` returns input errors rather than raising them, so whatever a future raises
    is the worker's own failure."""
    from concurrent.futures import Future

    from medq.errors import ModelError

    out: list[Loaded | MedqError] = []
    for p in pending:
        if not isinstance(p, Future):
            out.append(p)
            continue
        try:
            out.append(p.result())
        except Exception as e:  # noqa: BLE001 — a worker died (memory, signal): report in place
            out.append(ModelError(f"assessment worker failed ({type(e).__name__}: {e})"))
    return out
