"""The demo's describe + restore section: each sample degraded, described, restored, re-assessed.

For every bundled sample the gallery's 2D plane is degraded by the engine at moderate severity
with the degradation its modality suffers most (`DEMO_KIND`), then `medq.restore` runs the full
pipeline (assess → describe → restore → re-assess, gated) and the clean plane itself goes through
the same pipeline to show the gate leaving a good image alone. The section shows degraded,
restored and clean tiles, the description, the note, scores and PSNR against the clean plane.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from medq.image import MedImage
from medq.report.render import TILE_SIDE, display_window, png_data_uri, to_uint8

DEMO_KIND = {"CT": "ct_low_dose", "MR": "mr_noise", "PT": "pet_low_count", "DX": "xr_quantum_noise",
             "CR": "xr_quantum_noise", "OP": "blur"}
"""Degradation shown per modality (moderate severity, seed 0)."""


@dataclass
class RestoreRow:
    """One sample's before/after entry."""

    name: str
    kind: str
    tiles: tuple[str, str, str]
    description: str
    note: str
    clean_note: str
    clean_changed: bool
    psnr: tuple[float, float]
    scores: tuple[float | None, float | None]


def _psnr(x: np.ndarray, ref: np.ndarray, modality: str) -> float:
    from medq.metrics.fidelity import psnr
    from medq.restore.benchmark import CT_WINDOW  # CT as `medq bench restore` reads it

    window = CT_WINDOW if modality == "CT" else None
    return round(psnr(x, ref, window=window), 2)


def restore_row(name: str, plane: MedImage, assessor: Any = None, seed: int = 0) -> RestoreRow:
    """Degrade, restore and re-assess one sample plane; also pass the clean plane through."""
    from medq.degrade import simulate
    from medq.restore.pipeline import restore

    kind = DEMO_KIND.get(plane.modality, "blur")
    degraded, _ = simulate(plane, kind, severity="moderate", seed=seed)
    result = restore(degraded, "auto", assessor=assessor)
    clean = restore(plane, "auto", assessor=assessor, reassess=False)
    window = display_window(plane)
    tiles = tuple(png_data_uri(to_uint8(a, window), TILE_SIDE)
                  for a in (degraded.array, result.image.array, plane.array))
    return RestoreRow(name, kind, tiles, result.description, result.note, clean.note,
                      clean.changed, (_psnr(degraded.array, plane.array, plane.modality),
                                      _psnr(result.image.array, plane.array, plane.modality)),
                      (result.before, result.after))


def section_html(rows: list[RestoreRow]) -> str:
    """The HTML section (self-contained: images as data URIs)."""
    esc = html.escape
    parts = ['<h2 id="restore">Describe and restore</h2>',
             '<p class="summary">Each sample degraded at moderate severity, then '
             '<code>medq restore</code> (assess → describe → restore → re-assess). The clean '
             'sample goes through the same quality gate. PSNR against the clean image (CT in '
             'the [−160, 240] HU window).</p>',
             "<table><tr><th>sample</th><th>degraded</th><th>restored</th><th>clean</th>"
             "<th>what medq says</th></tr>"]
    for r in rows:
        before, after = (f"{s:.2f}" if s is not None else "–" for s in r.scores)
        parts.append(
            f"<tr><td>{esc(r.name)}<br><span class='rec'>{esc(r.kind)}, moderate</span></td>"
            + "".join(f"<td><img class='tile' src='{t}' alt='{esc(r.name)} {what}'></td>"
                      for t, what in zip(r.tiles, ("degraded", "restored", "clean"), strict=True))
            + f"<td style='text-align:left;max-width:420px'><p>{esc(r.description)}</p>"
            f"<p>{esc(r.note)}</p><p class='rec'>score {before} → {after}; PSNR "
            f"{r.psnr[0]:.2f} → {r.psnr[1]:.2f} dB. Clean image: {esc(r.clean_note)}</p></td></tr>")
    parts.append("</table>")
    return "\n".join(parts)
