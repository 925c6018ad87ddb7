"""Held-out splits of the user's own images by subject, so no person is on both sides.

An archive or a scores file often holds several images of one person (a study's series, a
follow-up scan); an image held out beside its own patient's trained-on series would make the
held-out numbers look better than they are on new patients. `subject_key` names who an image
shows as far as its file says — the DICOM PatientID (kept only as a digest) or a BIDS
file name's `sub-<label>` — and `held_out` holds out whole subjects. Images whose file
names no subject are each their own subject, so a set without any gives the plain per-image
split of the same seed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FRACTION", "held_out", "split_made", "subject_key"]

FRACTION = 0.2
"""Share of the images held out (at least one)."""
MAX_FRACTION = 0.4
"""A subject with more than this share of the images is never held out (it would leave too
little to train on); when every subject is that large, the split falls back to images."""

_BIDS_SUBJECT = re.compile(r"^sub-([A-Za-z0-9]+)_")
"""A BIDS file name (`sub-<label>_…`); folder names are not read, so a `sub-projects` folder
above an archive does not make its files one subject."""


def subject_key(image: Any, path: str | Path | None = None) -> str | None:
    """Who `image` shows as far as its file says: its DICOM PatientID's digest, else the BIDS
    subject of `path`'s file name (`sub-<label>_…`), else None."""
    stated = (getattr(image, "meta", None) or {}).get("patient_key")
    if stated:
        return str(stated)
    found = _BIDS_SUBJECT.match(Path(path or getattr(image, "source", "") or "").name)
    return f"bids:{found.group(1)}" if found else None


def held_out(keys: list[str | None], seed: int = 0, trained: Any = ()
             ) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(train, test) indices into `keys` (one subject key per image, None: its own subject) with
    whole subjects held out, about `FRACTION` of the images; and a note when the split could not
    keep subjects apart (None otherwise). `trained`: indices of images trained on anyway (by
    another loss), whose subjects are never held out. Seeded; without keys or `trained` it is
    the permutation split."""
    n = len(keys)
    groups: dict[object, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key if key is not None else ("image", i), []).append(i)
    members = list(groups.values())
    kept = {int(i) for i in trained}
    order = np.random.default_rng(seed).permutation(len(members))
    target, cap = max(1, n // round(1 / FRACTION)), max(1, math.floor(n * MAX_FRACTION))
    test: list[int] = []
    for g in order:
        if len(test) >= target:
            break
        if len(test) + len(members[g]) <= min(cap, n - 1) and not kept & set(members[g]):
            test.extend(members[g])
    note = None
    if not test:  # every subject too large to hold out: per image, said plainly
        free = [int(i) for i in np.random.default_rng(seed).permutation(n) if int(i) not in kept]
        test = free[:target] or [int(np.random.default_rng(seed).permutation(n)[0])]
        subjects = f"{len(members)} subject{'s' if len(members) != 1 else ''} for {n} images"
        also = ", some of them trained on by another loss" if kept else ""
        note = (f"no whole subject could be held out ({subjects}{also}): the held-out images' "
                "subjects are also trained on, so the held-out numbers flatter new patients"
                if free else "every image is also trained on by another loss: the held-out "
                "numbers are measured on trained images")
    held = set(test)
    train = [i for g in order for i in members[g] if i not in held]
    return np.array(train, dtype=int), np.array(test, dtype=int), note


def split_made(train_keys: Any, test_keys: Any) -> dict[str, Any]:
    """How a split of these subject keys (None or "": no subject named) came out, as records and
    cards state it: `subjects` named, and `split` "subject" when no named subject is on both
    sides, else "image" (`held_out` fell back to images)."""
    train = {str(k) for k in train_keys if k}
    test = {str(k) for k in test_keys if k}
    return {"subjects": len(train | test), "split": "image" if train & test else "subject"}
