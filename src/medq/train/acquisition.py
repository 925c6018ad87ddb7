"""Physics pretraining on your own scans: the acquisition their DICOM headers state.

MedIQA pretrains its encoder on physical parameters read from the images' headers — the CT
tube current–time product (dose) and the MR field strength — whose values go with image
quality. `medq train CONFIG --tagged ARCHIVE` does the same on the user's archive: every image
whose header states one of `TARGETS` becomes a training item, and a stage that weights the
`acquisition` loss regresses them (MSE on the targets the header states, the others masked out).

Each target is `log2(value / reference)`: one unit is a doubling (half the dose is −1), so CT
and radiograph exposures of any protocol, CTDIvol and field strengths share one scale. An MR
header without MagneticFieldStrength gives it from the imaging frequency (the proton's Larmor
frequency, 42.577 MHz per tesla). 20 % of the items (a DICOM series is one) are held out, whole
patients at a time where the headers name them (`medq.train.split`): the card gives, per
target, the held-out Spearman correlation of the head's estimate with the header's value.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medq.assess.acquisition import STATED, TARGETS, implausible, targets
from medq.errors import InvalidParameter, MedqError
from medq.image import MedImage
from medq.wording import plural

__all__ = ["MIN_ITEMS", "TARGETS", "estimates", "held_out_metrics", "load_tagged", "targets"]

MIN_ITEMS = 5
"""Fewest tagged images a run trains on (one of them is held out)."""


def _tagged_item(image: MedImage, source: str, size: int, extras: tuple[str, ...]
                 ) -> dict[str, Any] | None:
    """A training item of one image (no score), or None when its header states no target."""
    from medq.train.scores import user_item

    values, known = targets(image)
    if not known.any():
        return None
    item = user_item(image, size, extras, float("nan"), source)
    return {**item, "scored": False, "acquisition": values, "acq_known": known}


def _read(found: list[Any], size: int, extras: tuple[str, ...], exclude: set[str],
          exclude_subjects: set[str], archive: str | Path
          ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The tagged items of the archive's `found` entries, and how many entries were skipped and
    why (unreadable, the same bytes as an earlier one, a value out of range, `exclude`d or of an
    `exclude_subjects` patient)."""
    from rich.progress import track

    from medq.qc.discover import load_item
    from medq.qc.fingerprint import fingerprint

    items: list[dict[str, Any]] = []
    skipped = dict.fromkeys(("unreadable", "duplicates", "implausible", "excluded"), 0)
    seen: set[str] = set()
    for entry in track(found, description="tagged images", transient=True,
                       disable=not sys.stderr.isatty()):
        if {str(Path(f).resolve()) for f in entry.files} & exclude:
            skipped["excluded"] += 1
            continue
        try:
            digest = fingerprint(entry.files)
            image = load_item(entry)
            odd = implausible(image)
            item = _tagged_item(image, entry.path, size, extras)
        except (MedqError, OSError) as e:
            skipped["unreadable"] += 1
            print(f"medq: note: skipping {getattr(e, 'message', None) or e}", file=sys.stderr)
            continue
        if digest in seen:  # a copy would sit on both sides of the split
            skipped["duplicates"] += 1
            continue
        if item is not None and item["subject"] in exclude_subjects:
            skipped["excluded"] += 1
            continue
        seen.add(digest)
        if odd:
            skipped["implausible"] += 1
            print(f"medq: note: {_as_given(entry.path, archive)}: {', '.join(odd)} is out of "
                  "the plausible range; not trained on", file=sys.stderr)
        if item is not None:
            items.append(item)
    return items, skipped


def load_tagged(archive: str | Path, size: int = 224, seed: int = 0,
                extras: tuple[str, ...] = (), exclude: Any = (), exclude_subjects: Any = (),
                trained: Any = (), trained_subjects: Any = ()
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """(train, test, summary) from the images of `archive` (a folder or one file, read as
    `medq qc` reads it) whose headers state a target. Unreadable images, byte-for-byte copies of
    an earlier one and the files and patients (`split.subject_key`) of `exclude` and
    `exclude_subjects` (a `--scores` run's held-out images) are skipped, and those of `trained`
    and `trained_subjects` (its training images) are never held out,
    values out of `PLAUSIBLE` are not taken; the summary counts them, and the images per target
    in all and in training."""
    from medq.data.bench import pack
    from medq.io.archive import is_archive
    from medq.qc.discover import discover
    from medq.train.config import shown_path
    from medq.train.split import held_out, split_made

    if is_archive(Path(archive)):
        raise InvalidParameter("a zip or tar archive: unpack it and give --tagged the folder "
                               "(each image's path names it in the card)", archive)
    found = discover(archive)
    items, skipped = _read(found, size, extras, {str(Path(f).resolve()) for f in exclude},
                           {str(k) for k in exclude_subjects if k}, archive)
    if len(items) < MIN_ITEMS:
        raise InvalidParameter(f"{len(items)} of {plural(len(found), 'image')} state {STATED}; "
                               f"need at least {MIN_ITEMS}", archive)
    subjects = [it["subject"] for it in items]
    scored = {str(Path(f).resolve()) for f in trained}
    also = {str(k) for k in trained_subjects if k}
    forced = [i for i, it in enumerate(items)
              if str(Path(it["source"]).resolve()) in scored or it["subject"] in also]
    train_at, test_at, note = held_out(subjects, seed, trained=forced)
    train, test = pack([items[i] for i in train_at]), pack([items[i] for i in test_at])
    n_test = len(test_at)
    known = np.stack([it["acq_known"] for it in items])
    per_train = train["acq_known"].sum(0)
    summary = {"archive": shown_path(Path(archive)), "items": len(found), "tagged": len(items),
               **skipped, "train": len(items) - n_test, "held_out": n_test,
               **split_made([subjects[i] for i in train_at], [subjects[i] for i in test_at]),
               "held_out_items": [_as_given(s, archive) for s in test["source"]],
               "per_target": {name: int(n) for name, n in zip(TARGETS, known.sum(0), strict=True)
                              if n},
               "per_target_train": {name: int(n) for name, n in zip(TARGETS, per_train,
                                                                   strict=True) if n}}
    if note:
        print(f"medq: note: {archive}: {note}", file=sys.stderr)
    counts = ", ".join(f"{k} {n}" for k, n in summary["per_target"].items())
    print(f"medq: note: {archive}: {len(items)} of {plural(len(found), 'image')} state an "
          f"acquisition ({counts})", file=sys.stderr)
    values = np.stack([it["acquisition"] for it in items])
    for k, name in enumerate(TARGETS):
        if known[:, k].any() and np.ptp(values[known[:, k], k]) == 0:
            print(f"medq: note: {archive}: every image states the same {name}: the head "
                  "learns that value, not how images differ", file=sys.stderr)
        if name in summary["per_target"] and name not in summary["per_target_train"]:
            print(f"medq: note: {archive}: no training image states {name} (all held out): "
                  "the head does not learn it", file=sys.stderr)
    return train, test, summary


def _as_given(item: str, archive: str | Path) -> str:
    """An archive item's path under `archive` as the user wrote it (discovery resolves it)."""
    try:
        return str(Path(archive) / Path(item).relative_to(Path(archive).resolve()))
    except ValueError:
        return item


@torch.no_grad()
def estimates(model: Any, data: dict[str, np.ndarray], use_prompts: bool = True) -> np.ndarray:
    """The acquisition head's estimate `[items, targets]` for every item (a volume: the mean
    over its stored slices)."""
    from medq.assess.precision import model_device
    from medq.data.bench import item_slices
    from medq.train.evaluate import model_measures

    model.eval()
    device = model_device(model)
    found = []
    for i in range(len(data["score"])):
        o, k = int(data["offset"][i]), int(data["n_valid"][i])
        x = torch.from_numpy(item_slices(data, i)).to(device)
        p = torch.from_numpy(data["prompt"][i]).to(device) if use_prompts else None
        out = model.run(x, p, model_measures(model, data, np.arange(o, o + k)))
        found.append(out.acquisition.float().mean(0).cpu().numpy())
    return np.stack(found)


def held_out_metrics(model: Any, test: dict[str, np.ndarray], use_prompts: bool = True
                     ) -> dict[str, dict[str, Any]]:
    """Per target stated by held-out images: n, Spearman correlation of estimate and header
    value (None under 3 images or without spread) and mean absolute error (doublings)."""
    from scipy.stats import spearmanr

    found = estimates(model, test, use_prompts)
    metrics: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(TARGETS):
        rows = test["acq_known"][:, k]
        if not rows.any():
            continue
        truth, guess = test["acquisition"][rows, k], found[rows, k]
        srcc = (float(spearmanr(truth, guess)[0])
                if rows.sum() >= 3 and np.ptp(truth) > 0 else None)
        metrics[name] = {"n": int(rows.sum()), "srcc": srcc,
                         "mae_doublings": float(np.abs(truth - guess).mean())}
    return metrics
