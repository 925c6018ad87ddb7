"""JSON-safe values: what medq writes into JSON files, records and database columns."""

from __future__ import annotations

import json
import math
from typing import Any


def plain(value: Any) -> Any:
    """JSON-safe copy: NumPy scalars → Python numbers, NaN/inf → None, tuples → lists."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalar or array
        return plain(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return json.loads(json.dumps(value, default=str))
