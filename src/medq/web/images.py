"""Display pixels of stored QC items: the image behind an item, one plane of it, PNG bytes.

Only paths recorded in the results store are ever opened: callers hand in an item looked up by
its id, never a path that came from a client. CT is shown through a window chosen by region
(brain for head scans, bone for extremities, soft tissue otherwise); other images through the
0.5–99.5 percentiles of the whole image, so every slice of a volume shares one window.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any

import numpy as np

from medq.errors import MedqError, MissingInput
from medq.image import MedImage
from medq.report.render import CT_WINDOW, png_bytes, shrink, to_uint8

CT_REGION_WINDOWS: dict[str, tuple[float, float]] = {
    "head": (0.0, 80.0),  # brain: level 40, width 80 HU
    "brain": (0.0, 80.0),
    "extremity": (-500.0, 1300.0),  # bone: level 400, width 1800 HU
}
"""CT display windows (low, high HU) by region; any other region gets `CT_WINDOW`."""


def window_for(image: MedImage) -> tuple[float, float]:
    """Display window of an image: CT by region, RGB as is, else whole-image percentiles."""
    if image.is_rgb:
        return 0.0, 1.0
    if image.modality == "CT":
        return CT_REGION_WINDOWS.get(image.region, CT_WINDOW)
    arr = image.array
    step = max(1, int(round((arr.size / 2_000_000) ** (1 / arr.ndim))))
    sample = arr[(slice(None, None, step),) * arr.ndim]
    finite = sample[np.isfinite(sample)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
    return lo, hi if hi > lo else lo + 1.0


def slice_count(image: MedImage) -> int:
    """Number of axial slices (1 for a 2D image)."""
    return int(image.shape[0]) if image.is_volume else 1


def plane(image: MedImage, index: int | None = None) -> MedImage:
    """The 2D image shown for slice `index` (clamped; the middle slice when None)."""
    if not image.is_volume:
        return image
    n = slice_count(image)
    k = n // 2 if index is None else min(max(int(index), 0), n - 1)
    return image.evolve(array=image.array[k], spacing=image.spacing[1:],
                        meta=dict(image.meta, slice_index=k))


def plane_pixels(image: MedImage, index: int | None = None, max_side: int | None = None,
                 window: tuple[float, float] | None = None) -> np.ndarray:
    """uint8 display pixels of slice `index` of `image` (whole-image window unless given)."""
    shown = plane(image, index)
    return shrink(to_uint8(shown.array, window or window_for(image)), max_side)


@functools.lru_cache(maxsize=2)
def _load(path: str, modality: str | None, stamp: tuple[int, int, int]) -> MedImage:
    """Load once per (path, modality, `_stamp`); changes reload."""
    from medq.io.polarity import as_displayed
    from medq.qc.discover import load_item

    image = load_item(path)
    if modality and modality != image.modality:
        # the modality the item was assessed as (e.g. given for a headerless upload)
        with contextlib.suppress(MedqError):
            image = image.evolve(modality=modality)
    return as_displayed(image)  # a MONOCHROME1 radiograph shown as its file means it


def _stamp(path: str, members: bool = False) -> tuple[int, int, int]:
    """(files, bytes, newest mtime) of what a stored path names on disk: its file, the file of
    `<file>@volume=<k>` (it was taken for gone), or a series' folder; with `members`, every file
    in the folder (a member rewritten in place leaves the folder's own mtime as it was: a stat
    per file, kept off the per-slice image requests); OSError when it is gone."""
    from medq.io.dicom_series import SERIES_MARK
    from medq.io.volumes import volume_mark

    on_disk = path
    if not os.path.exists(path):
        named = volume_mark(path)
        on_disk = named[0] if named else path.rsplit(SERIES_MARK, 1)[0]
    st = os.stat(on_disk)
    if not (members and os.path.isdir(on_disk)):
        return 1, int(st.st_size), int(st.st_mtime_ns)
    with os.scandir(on_disk) as entries:
        files = [e.stat() for e in entries if e.is_file()]
    return (len(files), sum(int(f.st_size) for f in files),
            max([int(st.st_mtime_ns), *(int(f.st_mtime_ns) for f in files)]))


def item_image(item: dict[str, Any]) -> MedImage:
    """The image behind a stored item (its recorded path; raises MissingInput when gone)."""
    path = str(item["path"])
    try:
        stamp = _stamp(path)
    except OSError as e:
        raise MissingInput("the recorded image is no longer there", path) from e
    modality = item.get("modality")
    return _load(path, modality if modality and modality != "OT" else None, stamp)


def changed_since(item: dict[str, Any]) -> bool:
    """Whether the item's files no longer hold what was assessed (their fingerprint differs
    from the stored one): the page then shows new pixels beside the old score. False when they
    cannot be read (the image's own message says why). The fingerprint is cached per stamp of
    the files (`_stamp`): a rewrite of the same size within one tick of the file system's clock
    after the last look keeps the stamp, and is seen only once the stamp moves."""
    path = str(item["path"])
    try:
        changed = _fingerprint(path, _stamp(path, members=True)) != item["fingerprint"]
    except (OSError, MedqError):
        return False
    if changed:  # a series member rewritten in place: its images are read again, as it is now
        _load.cache_clear()
    return changed


@functools.lru_cache(maxsize=64)
def _fingerprint(path: str, stamp: tuple[int, int, int]) -> str:
    """The fingerprint of the files a stored path names, once per `_stamp`."""
    from medq.qc.discover import item_from_path
    from medq.qc.fingerprint import fingerprint

    return fingerprint(item_from_path(path).files)


def item_png(item: dict[str, Any], index: int | None = None, max_side: int | None = None) -> bytes:
    """PNG of slice `index` of a stored item's image (the whole image when 2D)."""
    return png_bytes(plane_pixels(item_image(item), index, max_side))
