"""The QC report: one self-contained HTML file summarising a results store.

Totals per modality × verdict, score histograms, the flagged items (reject first, then usable)
with thumbnails, findings and description, the error list and how the runs were made. Every
image is embedded as a `data:` URI, so the file can be mailed or archived on its own. Large
archives are capped: at most `max_flagged` thumbnails and `max_errors` errors are listed, and
the counts say how many more there are.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from medq.describe.schema import VERDICTS
from medq.errors import InvalidParameter, MedqError
from medq.report.render import png_data_uri

VERDICT_COLOURS = {"good": "#2e7d32", "usable": "#ef8f00", "reject": "#c62828"}
"""Colour of each verdict in tables, badges and histograms."""

FLAGGED = ("reject", "usable")
"""Verdicts listed as flagged, in the order they are shown."""

PAGE = 2000
"""Items read from the store per query while totalling."""


@dataclass
class Totals:
    """What the report counts: verdicts per modality, scores per modality, models, errors."""

    table: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    scores: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    models: Counter = field(default_factory=Counter)
    total: int = 0

    def add(self, item: dict[str, Any]) -> None:
        """Count one item."""
        modality = item.get("modality") or "not read"
        self.total += 1
        self.models[item.get("model") or "?"] += 1
        if item.get("status") == "error":
            self.table[modality]["error"] += 1
            return
        self.table[modality][item.get("verdict") or "unknown"] += 1
        if item.get("score") is not None:
            self.scores[modality].append(float(item["score"]))

    def column(self, key: str) -> int:
        """Total of one column (a verdict or 'error') over all modalities."""
        return sum(row[key] for row in self.table.values())


def short_time(iso: str | None) -> str:
    """An ISO 8601 UTC timestamp shown to the second: `2025-01-31 14:05:09 UTC`."""
    if not iso:
        return ""
    try:
        value = dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def collect_totals(store: Any, progress: Progress | None = None,
                   model: str | None = None) -> Totals:
    """Read every item of the store (of one model, or all) once, in pages, and count it."""
    totals = Totals()
    n = store.count(model=model)
    task = progress.add_task("qc report: totals", total=n) if progress else None
    for offset in range(0, n, PAGE):
        page = store.items(sort="id", limit=PAGE, offset=offset, model=model)
        for item in page:
            totals.add(item)
        if progress is not None and task is not None:
            progress.advance(task, len(page))
    return totals


def histogram_uri(scores: dict[str, list[float]]) -> str | None:
    """Score histograms (one panel per modality, bars coloured by score band: the verdict a
    score alone would give, not the items' own verdicts) as a PNG data URI."""
    if not any(scores.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from medq.describe.schema import verdict_for

    names = sorted(k for k, v in scores.items() if v)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    edges = np.linspace(1.0, 5.0, 33)
    centres = (edges[:-1] + edges[1:]) / 2
    colours = [VERDICT_COLOURS[verdict_for(c)] for c in centres]
    for ax, name in zip(axes.flat, names, strict=False):
        values = np.clip(np.asarray(scores[name], dtype=float), 1.0, 5.0)
        counts, _ = np.histogram(values, bins=edges)
        ax.bar(centres, counts, width=edges[1] - edges[0], color=colours, edgecolor="white")
        for bound in (2.5, 3.5):
            ax.axvline(bound, color="#555", linestyle=":", linewidth=1)
        ax.set_title(f"{name} (n = {len(values)})", fontsize=10)
        ax.set_xlim(1, 5)
        ax.set_xlabel("score (1 non-diagnostic … 5 excellent)", fontsize=8)
        ax.set_ylabel("items", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return png_data_uri(pixels)


def thumbnail_uri(item: dict[str, Any], max_side: int) -> tuple[str | None, str | None]:
    """(data URI, None) of an item's thumbnail, or (None, why) when its image cannot be read."""
    from medq.web.images import item_image, plane_pixels

    try:
        return png_data_uri(plane_pixels(item_image(item), None, max_side)), None
    except MedqError as e:
        return None, e.reason
    except Exception as e:  # noqa: BLE001 - one unreadable image must not stop the report
        return None, f"{type(e).__name__}: {e}"


def flagged_items(store: Any, limit: int, model: str | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Flagged items to show (reject first, worst score first; at most `limit`) and their counts."""
    counts = {v: store.count(verdict=v, status="ok", model=model) for v in FLAGGED}
    shown: list[dict[str, Any]] = []
    for verdict in FLAGGED:
        room = limit - len(shown)
        if room <= 0:
            break
        shown += store.items(verdict=verdict, status="ok", sort="score", limit=room,
                             model=model)
    return shown, counts


def one_model(store: Any, model: str | None) -> str | None:
    """The model a report covers: `model`, checked against the database (`Store.check_model`),
    or the only one it holds; InvalidParameter when it holds several and none is named (one
    report mixing two models' scores of one file counts each file twice)."""
    if model is not None:
        return store.check_model(model)
    models = store.values("model")
    if len(models) > 1:
        raise InvalidParameter(f"the database holds the results of {len(models)} models "
                               f"({', '.join(models)}): name one with --model", store.display_url)
    return models[0] if models else None


def build_qc_report(db: Any, output: str | Path, *, max_flagged: int = 200,
                    max_errors: int = 500, thumb_side: int = 160,
                    console: Console | None = None, model: str | None = None) -> Path:
    """Write the QC report of a results store (a `Store` or its URL/path) to `output` (HTML):
    the results of one model (`model`; needed only when the database holds several)."""
    from medq import __version__
    from medq.io.atomic import atomic_write_text
    from medq.qc.store import Store

    if Path(output).suffix.lower() not in (".html", ".htm"):  # r.pdf held HTML
        raise InvalidParameter("the QC report is an HTML page: name the output .html", output)
    store = db if isinstance(db, Store) else Store(db, create=False)
    try:
        store.refuse_output(output)
        model = one_model(store, model)
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), console=console or Console(stderr=True),
                       transient=True)
        with bar:
            totals = collect_totals(store, bar, model)
            flagged, flagged_counts = flagged_items(store, max(0, int(max_flagged)), model)
            task = bar.add_task("qc report: thumbnails", total=len(flagged))
            for item in flagged:
                item["thumb"], item["thumb_error"] = thumbnail_uri(item, thumb_side)
                bar.advance(task)
        errors = store.items(status="error", sort="path", limit=max(0, int(max_errors)),
                             model=model)
        context = {
            "totals": totals, "verdicts": VERDICTS, "colours": VERDICT_COLOURS,
            "modalities": sorted(totals.table), "histogram": histogram_uri(totals.scores),
            "flagged": flagged, "flagged_counts": flagged_counts,
            "flagged_total": sum(flagged_counts.values()), "errors": errors,
            "error_total": store.count(status="error", model=model),
            "runs": [run for run in store.runs() if model is None or run["model"] == model],
            "reviewed": store.count(reviewed=True, model=model), "database": store.display_url,
            "model": model,
            "medq_version": __version__,
            "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
    finally:
        if store is not db:
            store.close()
    env = Environment(loader=PackageLoader("medq.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters["when"] = short_time
    html = env.get_template("qc_report.html.j2").render(**context)
    try:
        return atomic_write_text(output, html)
    except OSError as e:
        raise InvalidParameter(f"cannot write the report ({e.strerror or e})", output) from e
