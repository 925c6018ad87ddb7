"""QC at scale: discover the items of an archive, assess them on Dask, keep the results.

`discover` (archive → items: a DICOM series folder group is one 3D item, any other image file one
item), `fingerprint` (content hash), `store.Store` (SQLAlchemy results database), `runner.run_qc`
(Dask `LocalCluster` or an existing scheduler), `export.export_items` (CSV/TSV/Parquet/JSON),
`archive.make_archive` (a test archive from the bundled samples). Imports are lazy so that
`import medq.qc` stays light and does not need Dask.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Store": "medq.qc.store",
    "discover": "medq.qc.discover",
    "load_item": "medq.qc.discover",
    "fingerprint": "medq.qc.fingerprint",
    "run_qc": "medq.qc.runner",
    "export_items": "medq.qc.export",
    "make_archive": "medq.qc.archive",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medq.qc' has no attribute {name!r}")
