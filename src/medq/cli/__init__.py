"""Command-line interface (Typer + Rich): `medq info|samples|simulate|degradations|demo|assess|
train|bench|qc|serve|restore|describe`.

Every command follows one error contract: a bad input prints one line
`medq: error: <file>: <reason>` on stderr, the other inputs are still processed, and the exit code
is 2 when any input was bad, 1 on an internal error (set MEDQ_DEBUG=1 for the traceback).
"""

from __future__ import annotations

from medq.cli import (  # noqa: F401  (registers the commands)
    assess,
    data,
    describe,
    qc,
    qc_report,
    restore,
    serve,
    train,
)
from medq.cli.common import app

__all__ = ["app"]
