"""Restoration stage: `medq.restore(image_path_or_array)` → RestoreResult (assess, describe,
restore, re-assess).

Parts: intensity normalisation (`normalise`), the conditioning vector (`condition`), classical
baselines (`classical`: BM3D, NLM, TV), the restoration networks (`models`), plane-wise
application (`apply`), Stein's risk estimate for MR noise (`sure`: how much of the network's
correction to keep, and where BM3D's is better), the quality gate (`gate`), the notes
(`notes`), the checks on a result (`checks`), the consistency step (`consistency`), the gated
pipeline (`pipeline`) and the benchmark (`benchmark`).
Submodules are imported on demand; the package itself is callable: `medq.restore(image)` is
`medq.restore.restore(image)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medq import callable_package


def restore(image: Any, method: str = "auto", assessment: Any = None, *,
            modality: str | None = None, region: str | None = None,
            spacing: float | Sequence[float] | None = None, **options: Any) -> Any:
    """Restore one image, gated by its assessment → `pipeline.RestoreResult` (the restored
    pixels as a NumPy array: `result.array`). The image is a MedImage, a path or a NumPy array,
    as `medq.assess` takes them (with the same `modality`, `region` and `spacing` overrides);
    `options` are `pipeline.restore`'s."""
    from medq.image import graded_modality
    from medq.io.arrays import as_image
    from medq.restore.pipeline import restore as run

    modality = graded_modality(modality)  # an alias (XR, PET, MRI) as its DICOM code
    loaded = as_image(image, modality=modality, region=region, spacing=spacing)
    if modality is not None and options.get("assessor") is None:  # assessed as told, twice
        from medq.assess import shared_assessor

        options["assessor"] = shared_assessor("mediqa-s", True, modality)
    return run(loaded, method, assessment, **options)


def __getattr__(name: str) -> Any:
    if name == "RestoreResult":
        from medq.restore.pipeline import RestoreResult

        return RestoreResult
    raise AttributeError(f"module 'medq.restore' has no attribute {name!r}")


callable_package(__name__, restore)
