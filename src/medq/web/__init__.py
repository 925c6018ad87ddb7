"""The review app: `create_app(db_url)` builds the FastAPI app that `medq serve` runs.

Pages to browse, view and review QC results and to assess an upload, plus a JSON API with
OpenAPI docs at `/docs`. Imported lazily so that `import medq.web` does not need FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from medq.web.app import create_app

        return create_app
    raise AttributeError(f"module 'medq.web' has no attribute {name!r}")
