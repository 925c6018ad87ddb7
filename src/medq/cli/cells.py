"""How results read in the terminal's tables: the path column, findings and prompts in words,
and the physics `medq info` shows."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from rich.table import Column, Table


def path_table(*columns: str, paths: list[str], **options: Any) -> tuple[Table, list[str]]:
    """A results table whose first column names each input, and the names to put in it.

    Several inputs under one folder are named relative to it and the folder goes into the
    title; a long name wraps (never cut to "…"), so every row says which file it is."""
    heads = [p.partition("#")[0] for p in paths]  # `<folder>#<series>`: the folder is the path
    try:
        common = os.path.commonpath(heads) if len(paths) > 1 else ""
    except ValueError:  # absolute and relative paths mixed
        common = ""
    names = list(paths)
    if common and common not in heads and common != os.sep:
        names = [os.path.relpath(h, common) + p[len(h):] for h, p in zip(heads, paths, strict=True)]
        options.setdefault("title", f"in {as_cell(common)}")
    return Table(Column("path", overflow="fold"), *columns, **options), [as_cell(n) for n in names]


def as_cell(name: str) -> str:
    """A file name as a table shows it: as it is, not read as markup (`x[/y]z.dcm` crashed the
    table and lost the batch's results; `[red]a.dcm` read as `a.dcm`), with a newline shown as
    `\\n` (it split the row), as the error lines write it (`errors.printable`)."""
    from rich.markup import escape

    from medq.errors import printable

    return escape(printable(name))


def findings_text(findings: list[dict[str, Any]], suspected: Iterable[dict[str, Any]] = (),
                  lossy: dict[str, Any] | None = None,
                  gaps: dict[str, Any] | None = None, nonfinite: float | None = None,
                  outliers: dict[str, Any] | None = None) -> str:
    """An Assessment's findings, then its suspected types as "possible …", in words (`bias
    field`, not the JSON's `bias_field`), then the lossy compression its file's
    header states ("file: lossy, 339:1"), a series' uneven spacing ("series: 2 slices
    missing?"), a volume's noisy slices ("noisy slices 63–67 (5 of 127 compared), up to 3×")
    and the share of pixels that were not numbers ("file: 5.0% of pixels not a number", read
    as no signal: `io.arrays.finite_pixels`); "none" when there is nothing to say."""
    def words(f: dict[str, Any]) -> str:
        return f"{f['type'].replace('_', ' ')} ({f['severity']})"

    named = ", ".join([words(f) for f in findings] + [f"possible {words(f)}" for f in suspected])
    parts = [named] if named else []
    if lossy:
        from medq.describe.text import ratio_text

        parts.append("file: lossy" + (f", {ratio_text(lossy)}" if ratio_text(lossy) else ""))
    if gaps:
        from medq.io.dicom import gaps_text

        parts.append(f"series: {gaps_text(gaps)}")
    from medq.assess.noisy_slices import found, outliers_cell

    if found(outliers):
        parts.append(outliers_cell(outliers))
    if nonfinite:
        parts.append(f"file: {nonfinite:.1%} of pixels NaN or infinite")
    return "; ".join(parts) or "none"


def assessment_findings(row: dict[str, Any]) -> str:
    """`findings_text` of an Assessment's JSON dict (`Assessment.to_dict`)."""
    return findings_text(row["findings"], row.get("suspected", []), row.get("lossy_compression"),
                         row.get("slice_gaps"), row.get("nonfinite_fraction"),
                         row.get("noisy_slices"))


PROMPT_FIELDS = ("dimension", "modality", "region", "type")
"""The prompt fields a results table shows, in order."""


PREDICTED_NOTE = ("? the file does not state it: predicted by medq's prompt classifier (an MR, "
                  "PET or radiograph it predicts is graded as if stated; a CT, whose values "
                  "hold no Hounsfield units, by the prompt only), or read from the pixels (CT "
                  "from Hounsfield units, a colour picture as a fundus photograph; --modality "
                  "sets the modality)")
"""Caption of a table with a prompt the file did not state."""

UNKNOWN_MODALITY_NOTE = ("other / OT: neither the file nor medq's prompt classifier can tell the "
                         "modality, so only noise, blur, low resolution and low contrast are "
                         "looked for; --modality CT, MR, PT, DX or OP grades it as that modality")
"""Caption of a table with an input whose modality neither its file, its values nor the prompt
classifier tell (its findings are then generic, `assessment.finding_types_for`)."""


def prompts_text(prompts: dict[str, Any]) -> str:
    """The prompts as a table cell, a field the file did not state (predicted, or read from the
    pixel values) marked `?`."""
    source = prompts.get("source", {})
    return " ".join(f"{prompts[k]}{'?' if source.get(k) in ('predicted', 'values') else ''}"
                    for k in PROMPT_FIELDS)


KEY_PHYSICS = ("kvp", "exposure_mAs", "ctdi_vol", "convolution_kernel", "field_strength_T",
               "tr_ms", "te_ms", "slice_thickness_mm", "radiopharmaceutical", "radionuclide",
               "frame_duration_ms")
"""Physics shown in the `medq info` table (`--json` has all of it)."""
