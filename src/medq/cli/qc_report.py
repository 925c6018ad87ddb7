"""`medq qc report`: one self-contained HTML file summarising a QC results database."""

from __future__ import annotations

from pathlib import Path

import typer

from medq.cli.common import Outcome, err
from medq.cli.qc import DB_OPTION, qc_app


@qc_app.command("report")
def qc_report(
    db: str = DB_OPTION,
    output: Path = typer.Option(Path("qc-report.html"), "--output", "-o",
                                help="HTML file to write."),
    max_flagged: int = typer.Option(200, "--max-flagged", min=0,
                                    help="Flagged items shown with thumbnails (worst first)."),
    max_errors: int = typer.Option(500, "--max-errors", min=0, help="Errors listed."),
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="The results of this model (needed when the database "
                                          "holds several)."),
) -> None:
    """Write the QC report: totals, histograms, flagged items with thumbnails, errors, runs."""
    from medq.report.qc_report import build_qc_report

    outcome = Outcome()
    written = outcome.run(db, lambda: build_qc_report(db, output, max_flagged=max_flagged,
                                                      max_errors=max_errors, console=err,
                                                      model=model))
    if not isinstance(written, BaseException):
        err.print(f"QC report written to {written}", markup=False, highlight=False)
    outcome.exit()
