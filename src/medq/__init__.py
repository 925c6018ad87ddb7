"""medq: assess, describe, restore and segment medical images (CT, MRI, PET, radiographs, fundus)."""

from __future__ import annotations

__version__ = "0.1.0"

from medq.errors import InputError, MedqError, ModelError  # noqa: E402
from medq.image import MedImage  # noqa: E402

__all__ = ["InputError", "MedImage", "MedqError", "ModelError", "__version__"]
