"""The physics data engine: registered degradations and `simulate()` (see DESIGN.md).

Importing this package registers every kind (CT, MR, PET, radiograph, photograph, generic).
"""

from __future__ import annotations

from medq.degrade import ct, generic, mri, pet, photo, xray  # noqa: F401  (register the kinds)
from medq.degrade.registry import (
    SEVERITIES,
    Degradation,
    DegradationSpec,
    available,
    get_spec,
    simulate,
)

__all__ = ["SEVERITIES", "Degradation", "DegradationSpec", "available", "get_spec", "simulate"]
