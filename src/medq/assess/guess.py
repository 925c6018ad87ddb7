"""A modality guessed for a file that states none: one guess per image (per file for the volumes of
a 4D file), adopted as the modality the assessment reads the image as when it is sure.

The shipped prompt classifier (`medq.assess.prompt_classifier`) guesses at its bar
(`CONFIDENCE`). An MR, PET or radiograph guess is then the image's modality for the whole
assessment, as if `--modality` named it, recorded in `meta["modality_from"]` (`GUESSED`): its
measures, evidence, finding types, the description's wording and the restoration's
conditioning (`medq.assess.assessment.as_assessed`). A CT guess fills the prompt only
(`ADOPTED`). The same guess fills the prompt (`filled_with`), so prompt and reading agree.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from medq.assess import prompt_classifier
from medq.image import MedImage


def guessed_modality(image: MedImage) -> str | None:
    """The modality prompt (`MR`, `PT`, `XR`, …) the shipped classifier is sure of
    (`CONFIDENCE`) for a grey image whose file states none (`OT`); for one volume of a 4D file,
    the guess for the file (`_file_guess`); None when unsure, stated, colour or unshipped."""
    unstated = image.modality == "OT" and not image.is_rgb
    guess = prompt_classifier.load_classifier() if unstated else None
    if guess is None:
        return None
    shared = _file_guess(image)
    return shared[0] if shared else guess(image, ("modality",)).get("modality")


ADOPTED = ("MR", "PT", "XR")
"""Guesses the assessment reads the image as. Not CT: its windows and scales assume Hounsfield
units, a file in them is CT by its values already (`medq.io.units`), and one guessed CT holds
other values (an 8-bit export, HU + 1024) that a CT window reads as severe low contrast; such
a guess fills the prompt only."""


def with_guessed_modality(image: MedImage, found: str | None) -> MedImage:
    """The image as the modality `found` (`guessed_modality`) when it is one of `ADOPTED` and
    the file states none, recorded in `meta["modality_from"]` (`GUESSED`); else the image
    itself. The assessment then reads it as that modality, as if `--modality` named it: its
    measures, evidence, finding types and the restoration's conditioning."""
    from medq.image import modality_code
    from medq.io.units import GUESSED

    if found not in ADOPTED or image.modality != "OT" or image.is_rgb:
        return image
    return image.evolve(modality=modality_code(found),
                        meta={**image.meta, "modality_from": GUESSED})


def _file_guess(image: MedImage) -> tuple[str | None] | None:
    """For one volume of a multi-volume file (`<file>@volume=<k>`), the guess for the whole
    file: that of its middle volume (read once per file as it is now, `_volume_guess`), so its
    volumes are all read as one modality (a volume with a spike was read as none, its neighbours
    as MR); None for any other image."""
    volumes, source = image.meta.get("volumes"), image.source
    if not source or not isinstance(volumes, int) or volumes < 2 or "volume" not in image.meta:
        return None
    from medq.io.volumes import volume_in_file

    found = volume_in_file(Path(source))
    if found is None:
        return None
    try:
        stat = found[0].stat()
    except OSError:
        return None
    return (_volume_guess(str(found[0]), volumes // 2, stat.st_mtime_ns, stat.st_size,
                          prompt_classifier.CONFIDENCE),)


@lru_cache(maxsize=32)
def _volume_guess(path: str, volume: int, mtime_ns: int, size: int, bar: float) -> str | None:
    """The classifier's modality for volume `volume` of a file (None when unsure or
    unreadable); the file's stamp and the bar (`CONFIDENCE`) key the cache."""
    from medq.errors import MedqError
    from medq.io import load

    guess = prompt_classifier.load_classifier()
    try:
        image = load(f"{path}@volume={volume}")
    except (MedqError, OSError, ValueError):
        return None
    return guess(image, ("modality",)).get("modality") if guess is not None else None
