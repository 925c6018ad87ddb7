"""The demo gallery: every bundled sample under every applicable degradation at three severities."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from medq.image import MedImage
from medq.report.render import TILE_SIDE, display_window, png_data_uri, to_uint8

SEVERITY_COLUMNS = ("mild", "moderate", "severe")


@dataclass
class GalleryRow:
    """One degradation of one sample: the clean tile, one tile per severity and the records."""

    kind: str
    unit: str
    tiles: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


@dataclass
class GallerySample:
    """One sample's section of the gallery."""

    name: str
    origin: str
    summary: dict[str, Any]
    clean: str
    grid_png: str
    rows: list[GalleryRow] = field(default_factory=list)
    assessment: dict[str, Any] | None = None
    clean_score: float | None = None
    findings: str = ""
    """The full sample's findings as `medq assess` prints them (with an assessor)."""


def demo_plane(image: MedImage) -> MedImage:
    """The 2D image the gallery shows: the middle axial slice of a volume, the image otherwise."""
    if not image.is_volume:
        return image
    meta = dict(image.meta, slice_index=image.shape[0] // 2)
    return image.evolve(array=image.array[image.shape[0] // 2], spacing=image.spacing[1:],
                        meta=meta)


def _grid_png(path: Path, title: str, labels: list[str], tiles: list[list[np.ndarray]]) -> None:
    """Write a rows × (clean + severities) PNG grid with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medq.io.atomic import atomic_path

    nrow, ncol = len(tiles), len(tiles[0])
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.2 * ncol, 2.2 * nrow + 0.5), squeeze=False)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            ax = axes[r][c]
            ax.imshow(tile, cmap="gray" if tile.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(("clean", *SEVERITY_COLUMNS)[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(labels[r], fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def build_gallery(directory: str | Path, samples: list[str] | None = None, seed: int = 0,
                  progress: Console | None = None, assessor: Any = None) -> Path:
    """Simulate every degradation at three severities on each sample; write PNG grids + HTML.

    With an `assessor` (medq.assess.predictor.Assessor) each full sample is assessed and every
    tile is scored; the assessments are also written to `assessment.json`; and each sample is
    degraded, described and restored (`report.restore_gallery`, a before/after section).
    """
    from medq.data.samples import SAMPLES, load_sample
    from medq.degrade import available, get_spec, simulate
    from medq.io.atomic import atomic_write_text, make_folder

    directory = make_folder(directory)
    names = samples or list(SAMPLES)
    started = time.perf_counter()
    sections: list[GallerySample] = []
    restored: list[Any] = []
    bar = Progress(TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                   console=progress or Console(stderr=True), transient=False)
    with bar:
        task = bar.add_task("demo", total=len(names))
        for name in names:
            bar.update(task, description=f"demo: {name}")
            full = load_sample(name)
            plane = demo_plane(full)
            window = display_window(plane)
            clean = to_uint8(plane.array, window)
            section = GallerySample(name, SAMPLES[name].origin, full.summary(),
                                    png_data_uri(clean, TILE_SIDE), grid_png=f"{name}.png")
            grid: list[list[np.ndarray]] = []
            planes = [plane]
            for kind in available(plane.modality):
                spec = get_spec(kind)
                row = GalleryRow(kind, spec.unit)
                tiles = [clean]
                for severity in SEVERITY_COLUMNS:
                    degraded, record = simulate(plane, kind, severity=severity, seed=seed)
                    tile = to_uint8(degraded.array, window)
                    tiles.append(tile)
                    planes.append(degraded)
                    row.tiles.append(png_data_uri(tile, TILE_SIDE))
                    row.records.append(record.to_dict())
                grid.append(tiles)
                section.rows.append(row)
            if assessor is not None:
                from medq.report.restore_gallery import restore_row

                _score(assessor, section, full, planes)
                restored.append(restore_row(name, plane, assessor, seed))
            _grid_png(directory / section.grid_png, f"{name} ({plane.modality})",
                      [r.kind for r in section.rows], grid)
            sections.append(section)
            bar.advance(task)
    env = Environment(loader=PackageLoader("medq.report", "templates"),
                      autoescape=select_autoescape(["html"]))
    html = env.get_template("gallery.html").render(
        sections=sections, severities=SEVERITY_COLUMNS, seconds=time.perf_counter() - started,
        generated=time.strftime("%Y-%m-%d %H:%M:%S"))
    if restored:
        from medq.report.restore_gallery import section_html

        html = html.replace("</body>", section_html(restored) + "\n</body>")
    index = directory / "index.html"
    atomic_write_text(index, html)
    if assessor is not None:
        atomic_write_text(directory / "assessment.json", json.dumps(
            [dict(s.assessment or {}, sample=s.name) for s in sections], indent=2))
    return index


def _score(assessor: Any, section: GallerySample, full: MedImage, planes: list[MedImage]) -> None:
    """Assess the full sample and score the clean plane and every degraded tile."""
    from medq.cli.cells import assessment_findings  # the words `medq assess` prints

    a = section.assessment = assessor.assess(full).to_dict()
    section.findings = assessment_findings(a)
    scores = [a.score for a in assessor.assess_many(planes)]
    section.clean_score = scores[0]
    k = len(SEVERITY_COLUMNS)
    for i, row in enumerate(section.rows):
        row.scores = scores[1 + i * k: 1 + (i + 1) * k]
